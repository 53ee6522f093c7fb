//! The stream types without a transport: local streams, the channel's
//! close reasons, an inbox's credit, and the stream messages of every codec.

use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use super::*;
use crate::codec::{ALL, Flow, Inbound, Incoming};

#[tokio::test]
async fn a_local_stream_yields_its_items_then_says_it_finished() {
    let mut s = Stream::iter(vec![1, 2, 3]);
    assert_eq!((&mut s).collect::<Vec<_>>().await, vec![1, 2, 3]);
    assert!(matches!(s.end(), Some(Ok(()))));
}

#[tokio::test]
async fn try_new_ends_with_the_first_error() {
    let items = futures::stream::iter(vec![
        Ok(1),
        Err(Error::new(ErrorKind::Application, "no more")),
        Ok(3),
    ]);
    let mut s = Stream::try_new(items);
    assert_eq!(s.next().await, Some(1));
    assert_eq!(s.next().await, None);
    let end = s.end().unwrap().as_ref().unwrap_err();
    assert_eq!(
        (end.kind(), end.message()),
        (ErrorKind::Application, "no more")
    );
}

#[tokio::test]
async fn a_sender_learns_that_its_receiver_dropped_the_stream() {
    let (tx, mut rx) = Stream::<u32>::channel(1);
    tx.send(1).await.unwrap();
    assert_eq!(rx.next().await, Some(1));
    drop(rx);
    assert_eq!(tx.send(2).await.unwrap_err().kind(), ErrorKind::Cancelled);
    assert_eq!(tx.closed().await.kind(), ErrorKind::Cancelled);
}

#[tokio::test]
async fn a_failed_channel_ends_with_its_error_after_the_items_sent() {
    let (tx, mut rx) = Stream::<u32>::channel(4);
    tx.send(1).await.unwrap();
    tx.fail(Error::new(ErrorKind::Application, "broken"));
    assert_eq!(rx.next().await, Some(1));
    assert_eq!(rx.next().await, None);
    assert_eq!(rx.end().unwrap().as_ref().unwrap_err().message(), "broken");
}

#[tokio::test]
async fn a_channel_finishes_when_every_sender_is_dropped() {
    let (tx, mut rx) = Stream::<u32>::channel(4);
    let other = tx.clone();
    drop(tx);
    other.send(7).await.unwrap();
    drop(other);
    assert_eq!(rx.next().await, Some(7));
    assert_eq!(rx.next().await, None);
    assert!(matches!(rx.end(), Some(Ok(()))));
}

#[test]
fn a_stream_outside_a_transport_names_the_doors_that_carry_one() {
    let e = serde_json::to_string(&Stream::iter(vec![1u8])).unwrap_err();
    assert!(e.to_string().contains("Server-Sent Events"), "{e}");
}

#[test]
fn a_captured_stream_leaves_a_placeholder_and_can_be_sent_once() {
    let s = Stream::iter(vec![1u8]);
    let (json, source) = capturing(|| serde_json::to_string(&s));
    assert_eq!(json.unwrap(), "null");
    assert!(source.is_some());
    let (again, source) = capturing(|| serde_json::to_string(&s));
    assert!(again.unwrap_err().to_string().contains("sent once"));
    assert!(source.is_none());
}

#[derive(Default)]
struct Granted(Mutex<Vec<(u64, u32, u32)>>, Mutex<Vec<u64>>);

impl Control for Granted {
    fn grant(&self, id: u64, items: u32, bytes: u32) {
        self.0.lock().unwrap().push((id, items, bytes));
    }
    fn cancel(&self, inbox: &Inbox) {
        self.1.lock().unwrap().push(inbox.id());
    }
}

/// An items message of `codec` for stream `id`.
fn items_frame(codec: &dyn crate::Codec, id: u64, items: &[u64]) -> Bytes {
    let mut buf = BytesMut::new();
    codec.begin_items(&mut buf, id);
    for (i, item) in items.iter().enumerate() {
        codec.encode_item(&mut buf, i == 0, item).unwrap();
    }
    codec.finish_items(&mut buf, 0, items.len() as u32);
    buf.freeze()
}

#[tokio::test]
async fn an_inbox_grants_half_a_window_taken_and_refuses_items_past_its_credit() {
    for codec in ALL {
        let control = Arc::new(Granted::default());
        let window = Window {
            items: 4,
            bytes: 1 << 20,
        };
        let inbox = Inbox::new(9, *codec, window, control.clone());
        let frame = items_frame(*codec, 9, &[10, 11, 12, 13]);
        let Inbound::Flow(Flow::Items {
            id: 9,
            count: 4,
            items,
        }) = codec.decode_response(&frame).unwrap()
        else {
            panic!("{}: not an items message", codec.name());
        };
        inbox.push(frame.clone(), items.clone(), 4).unwrap();
        // The window is spent: one more item is over budget, and ends the stream.
        let over = inbox.push(frame.clone(), items, 1).unwrap_err();
        assert_eq!(over.kind(), ErrorKind::OverBudget, "{}", codec.name());
        let mut fresh = Stream::<u64>::remote(Inbox::new(9, *codec, window, control.clone()));
        let Stream { inner, .. } = &mut fresh;
        let Ok(Inner::Remote {
            inbox: fresh_inbox, ..
        }) = inner.get_mut()
        else {
            panic!("remote")
        };
        let frame = items_frame(*codec, 9, &[10, 11, 12, 13]);
        let Inbound::Flow(Flow::Items { items, .. }) = codec.decode_response(&frame).unwrap()
        else {
            panic!("items")
        };
        fresh_inbox.push(frame, items, 4).unwrap();
        let fresh_inbox = fresh_inbox.clone();
        let first: Vec<u64> = (&mut fresh).take(4).collect().await;
        assert_eq!(first, vec![10, 11, 12, 13]);
        fresh_inbox.finish(Ok(()));
        assert_eq!(fresh.next().await, None);
        assert!(matches!(fresh.end(), Some(Ok(()))));
        let granted = control.0.lock().unwrap().clone();
        assert_eq!(granted.len(), 1, "{}: {granted:?}", codec.name());
        assert_eq!((granted[0].0, granted[0].1), (9, 4));
    }
}

#[test]
fn every_stream_message_reads_back_in_every_codec() {
    for codec in ALL {
        let mut buf = BytesMut::new();
        codec.encode_credit(&mut buf, 3, 1 << 63, 7);
        let credit = Flow::Credit {
            id: 3,
            items: 1 << 63,
            bytes: 7,
        };
        assert!(matches!(codec.decode_request(&buf), Incoming::Flow(ref f) if *f == credit));
        assert_eq!(codec.decode_response(&buf).unwrap(), Inbound::Flow(credit));
        buf.clear();
        codec.encode_ping(&mut buf, 42, true);
        let pong = Flow::Ping {
            nonce: 42,
            pong: true,
        };
        assert_eq!(codec.decode_response(&buf).unwrap(), Inbound::Flow(pong));
        buf.clear();
        codec.encode_end(&mut buf, 5, Ok(())).unwrap();
        let end = Flow::End {
            id: 5,
            outcome: Ok(()),
        };
        assert_eq!(codec.decode_response(&buf).unwrap(), Inbound::Flow(end));
        buf.clear();
        let fault = crate::service::Fault::from(Error::new(ErrorKind::ShuttingDown, "bye"));
        codec.encode_end(&mut buf, 5, Err(&fault)).unwrap();
        let Inbound::Flow(Flow::End {
            id: 5,
            outcome: Err(f),
        }) = codec.decode_response(&buf).unwrap()
        else {
            panic!("{}: not an end", codec.name());
        };
        assert_eq!(
            (f.code, f.message.as_str()),
            (ErrorKind::ShuttingDown.code(), "bye")
        );
    }
}

#[test]
fn a_response_marked_as_opening_a_stream_says_so_in_every_codec() {
    for codec in ALL {
        let mut buf = BytesMut::new();
        let reply: crate::service::Reply = Ok(Box::new(()));
        codec
            .encode_response(&mut buf, &crate::codec::Id::Num(8), &reply)
            .unwrap();
        codec.mark_stream(&mut buf, 0);
        let Inbound::Response {
            id: 8,
            stream,
            outcome,
        } = codec.decode_response(&buf).unwrap()
        else {
            panic!("{}: not a response", codec.name());
        };
        assert!(stream && outcome.is_ok(), "{}", codec.name());
    }
}

#[test]
fn a_kind_this_side_does_not_know_is_unknown_not_invalid() {
    assert!(matches!(
        crate::codec::Bincode.decode_request(&[0x7f, 1, 2]),
        Incoming::Unknown { .. }
    ));
    let json = br#"{"jsonrpc":"2.0","method":"rpc.nonsense","params":[]}"#;
    assert!(matches!(
        crate::codec::Json.decode_request(json),
        Incoming::Unknown { .. }
    ));
    assert!(matches!(
        crate::codec::Json.decode_response(json).unwrap(),
        Inbound::Unknown { .. }
    ));
}

/// The check for NaN and ±infinity walks a written value again; a stream
/// handed over by the writing does not stop the walk before a float
/// after it.
#[test]
fn a_non_finite_float_after_a_stream_is_found() {
    #[derive(serde::Serialize)]
    struct Reply {
        items: Stream<u8>,
        ratio: f64,
    }
    let reply = Reply {
        items: Stream::iter([1u8, 2]),
        ratio: f64::NAN,
    };
    let (written, source) = capturing(|| crate::finite::to_writer(Vec::new(), &reply));
    assert!(source.is_some(), "the stream was handed over");
    let e = written.unwrap().result(&reply, "json").unwrap_err();
    assert!(
        e.message().contains("`ratio`") && e.message().contains("NaN"),
        "{e}"
    );
}
