//! Hostile protocol-2 peers, by hand, in both codecs: credit for streams
//! that do not exist and absurd grants, items and ends for no stream, an
//! end sent twice, an upload past its window, a peer that opens
//! `max_streams` streams and never reads, unknown kinds, malformed stream
//! messages.

mod common;
#[path = "common/streams.rs"]
mod streams;

use std::sync::atomic::Ordering;
use std::time::Duration;

use rpc_core::codec::{Codec, Flow, Inbound};
use rpc_core::{ErrorKind, Stream};
use rpc_transport::ServerConfig;
use rpc_transport::config::Limits;
use tokio::net::TcpStream;

use common::{CODECS, expect_closed, expect_frame, server_builder, within, write_frame};
use streams::{
    codec, drain, flows_client, next_inbound, ping, raw_session2, send_end, send_items,
    send_request, send_with, serve_flows,
};

fn config(limits: Limits) -> ServerConfig {
    server_builder()
        .limits(limits)
        .build()
        .expect("a valid server config")
}

/// Reads until the response to `id`; returns its result's bytes decoded
/// as a `u64`, or its error, and the stream messages seen before it.
async fn response_to(
    stream: &mut TcpStream,
    codec: &'static dyn Codec,
    id: u64,
) -> (Result<u64, (ErrorKind, String)>, Vec<Inbound>) {
    let mut before = Vec::new();
    within("a response", async {
        loop {
            let (payload, inbound) = next_inbound(stream, codec).await;
            match inbound {
                Inbound::Response {
                    id: got,
                    outcome,
                    stream: false,
                } if got == id => {
                    let result = match outcome {
                        Ok(range) => Ok(rpc_core::codec::decode::<u64>(codec, &payload[range])
                            .expect("a u64 result")),
                        Err(fault) => Err((ErrorKind::from_code(fault.code), fault.message)),
                    };
                    return (result, before);
                }
                other => before.push(other),
            }
        }
    })
    .await
}

/// Reads one error answer: its kind and message (any id).
async fn error_answer(stream: &mut TcpStream, codec: &'static dyn Codec) -> (ErrorKind, String) {
    let payload = expect_frame(stream, "an error answer").await;
    if codec.name() == "json" {
        let value: serde_json::Value = serde_json::from_slice(&payload).expect("JSON");
        assert!(value["id"].is_null(), "{value}");
        let code = value["error"]["code"].as_i64().expect("an error code");
        let message = value["error"]["message"].as_str().unwrap_or_default();
        return (
            ErrorKind::from_code(i32::try_from(code).unwrap()),
            message.to_owned(),
        );
    }
    match codec.decode_response(&payload) {
        Ok(Inbound::Response {
            outcome: Err(fault),
            ..
        }) => (ErrorKind::from_code(fault.code), fault.message),
        other => panic!("not an error answer: {other:?} {payload:?}"),
    }
}

/// The connection answers a call: `Flows.add` as request `id`.
async fn still_answers(stream: &mut TcpStream, codec: &'static dyn Codec, id: u64) {
    send_request(stream, codec, id, "Flows.add", &(40u64, 2u64)).await;
    let (result, _) = response_to(stream, codec, id).await;
    assert_eq!(result, Ok(42), "{}", codec.name());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credit_for_unknown_streams_and_absurd_grants_change_nothing() {
    for name in CODECS {
        let codec = codec(name);
        let mut served = serve_flows(config(Limits::default())).await;
        let (mut raw, answer) = raw_session2(&served.address, name, 64, 4096).await;
        assert_eq!(answer["protocol"], 2, "{answer}");
        for (id, items, bytes) in [
            (999, 10, 10),
            (1 << 63, 1 << 63, 1 << 63),
            (7, u64::MAX, u64::MAX),
        ] {
            send_with(&mut raw, codec, |c, buf| {
                c.encode_credit(buf, id, items, bytes)
            })
            .await;
        }
        let before = ping(&mut raw, codec, 1).await;
        assert!(before.is_empty(), "{name}: {before:?}");

        // A real stream, granted 2^63 then u64::MAX more: capped, no overflow.
        send_request(&mut raw, codec, 1, "Flows.count", &(5000u64,)).await;
        let (mut items, mut end, mut granted) = (0u64, None, false);
        within("the whole stream", async {
            while end.is_none() {
                match next_inbound(&mut raw, codec).await.1 {
                    Inbound::Response { id: 1, stream, .. } => assert!(stream, "{name}"),
                    Inbound::Flow(Flow::Items { id: 1, count, .. }) => {
                        items += u64::from(count);
                        if !granted {
                            granted = true;
                            for grant in [1 << 63, u64::MAX, u64::MAX] {
                                send_with(&mut raw, codec, |c, buf| {
                                    c.encode_credit(buf, 1, grant, grant);
                                })
                                .await;
                            }
                        }
                    }
                    Inbound::Flow(Flow::End { id: 1, outcome }) => end = Some(outcome),
                    other => panic!("{name}: unexpected {other:?}"),
                }
            }
        })
        .await;
        assert_eq!(items, 5000, "{name}");
        assert_eq!(end, Some(Ok(())), "{name}");
        still_answers(&mut raw, codec, 2).await;
        served.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_and_ends_for_streams_that_do_not_exist_are_ignored() {
    for name in CODECS {
        let codec = codec(name);
        let mut served = serve_flows(config(Limits {
            max_invalid_messages: 3,
            ..Limits::default()
        }))
        .await;
        let (mut raw, _) = raw_session2(&served.address, name, 64, 4096).await;
        for id in [0, 77, u64::MAX] {
            send_items(&mut raw, codec, id, &[1, 2, 3]).await;
            send_end(&mut raw, codec, id).await;
            send_end(&mut raw, codec, id).await;
        }
        let before = ping(&mut raw, codec, 2).await;
        assert!(before.is_empty(), "{name}: {before:?}");
        // Items for a stream the server sends (not one it receives).
        send_request(&mut raw, codec, 1, "Flows.count", &(3u64,)).await;
        send_items(&mut raw, codec, 1, &[9]).await;
        // The server's own stream is untouched by them: all its items, then its end.
        let mut items = 0;
        within("stream 1 to end", async {
            loop {
                match next_inbound(&mut raw, codec).await.1 {
                    Inbound::Response { id: 1, stream, .. } => assert!(stream, "{name}"),
                    Inbound::Flow(Flow::Items { id: 1, count, .. }) => items += count,
                    Inbound::Flow(Flow::End { id: 1, outcome }) => {
                        assert_eq!(outcome, Ok(()), "{name}");
                        return;
                    }
                    other => panic!("{name}: unexpected {other:?}"),
                }
            }
        })
        .await;
        assert_eq!(items, 3, "{name}");
        still_answers(&mut raw, codec, 3).await;
        served.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_end_sent_twice_ends_the_upload_once() {
    for name in CODECS {
        let codec = codec(name);
        let mut served = serve_flows(config(Limits::default())).await;
        let (mut raw, _) = raw_session2(&served.address, name, 64, 4096).await;
        send_request(&mut raw, codec, 1, "Flows.sum", &((),)).await;
        send_items(&mut raw, codec, 1, &[1, 2, 3]).await;
        send_end(&mut raw, codec, 1).await;
        send_end(&mut raw, codec, 1).await;
        send_items(&mut raw, codec, 1, &[100]).await;
        let (result, _) = response_to(&mut raw, codec, 1).await;
        assert_eq!(result, Ok(6), "{name}");
        assert_eq!(served.reports.next_upload_end().await, Ok(()), "{name}");
        // The id is free again: a second upload under it.
        send_request(&mut raw, codec, 1, "Flows.sum", &((),)).await;
        send_items(&mut raw, codec, 1, &[4, 5]).await;
        send_end(&mut raw, codec, 1).await;
        let (result, _) = response_to(&mut raw, codec, 1).await;
        assert_eq!(result, Ok(9), "{name}");
        let before = ping(&mut raw, codec, 3).await;
        assert!(before.is_empty(), "{name}: {before:?}");
        served.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_past_the_window_cancel_that_upload_over_budget_and_no_other() {
    for name in CODECS {
        let codec = codec(name);
        let mut served = serve_flows(config(Limits {
            stream_window_items: 8,
            ..Limits::default()
        }))
        .await;
        let (mut raw, _) = raw_session2(&served.address, name, 64, 4096).await;
        send_request(&mut raw, codec, 1, "Flows.sum", &((),)).await;
        send_request(&mut raw, codec, 2, "Flows.sum", &((),)).await;
        send_items(&mut raw, codec, 2, &[1, 2]).await;
        send_items(&mut raw, codec, 1, &(0..20).collect::<Vec<u64>>()).await;
        // Told to stop, and why.
        let (mut cancelled, mut told) = (false, None);
        let mut answered_1 = None;
        within("the cancel and the error", async {
            while !cancelled || told.is_none() || answered_1.is_none() {
                let (payload, inbound) = next_inbound_lenient(&mut raw, codec).await;
                match inbound {
                    Some(Inbound::Cancel { id: 1 }) => cancelled = true,
                    Some(Inbound::Response { id: 1, outcome, .. }) => {
                        answered_1 =
                            Some(outcome.map(|r| {
                                rpc_core::codec::decode::<u64>(codec, &payload[r]).unwrap()
                            }));
                    }
                    Some(Inbound::Response {
                        id: 0,
                        outcome: Err(fault),
                        ..
                    }) => {
                        told = Some((ErrorKind::from_code(fault.code), fault.message));
                    }
                    None => {
                        let value: serde_json::Value = serde_json::from_slice(&payload).unwrap();
                        let code = value["error"]["code"].as_i64().unwrap();
                        let message = value["error"]["message"].as_str().unwrap().to_owned();
                        told = Some((ErrorKind::from_code(code as i32), message));
                    }
                    other => panic!("{name}: unexpected {other:?}"),
                }
            }
        })
        .await;
        let (kind, message) = told.unwrap();
        assert_eq!(kind, ErrorKind::OverBudget, "{name}: {message}");
        let end = served.reports.next_upload_end().await;
        assert_eq!(
            streams::kind_of(&end),
            Some(ErrorKind::OverBudget),
            "{name}: {end:?}"
        );
        eprintln!("{name}: the over-budget upload's call answered {answered_1:?}");
        // The other upload is unaffected.
        send_items(&mut raw, codec, 2, &[3, 4]).await;
        send_end(&mut raw, codec, 2).await;
        let (result, _) = response_to(&mut raw, codec, 2).await;
        assert_eq!(result, Ok(10), "{name}");
        served.stop().await;
    }
}

/// [`next_inbound`], but a JSON message with a null id (which a client
/// cannot route) is returned undecoded as `None`.
async fn next_inbound_lenient(
    stream: &mut TcpStream,
    codec: &'static dyn Codec,
) -> (Vec<u8>, Option<Inbound>) {
    let payload = expect_frame(stream, "a message from the server").await;
    if codec.name() == "json" {
        let value: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        if value.get("id").is_some_and(serde_json::Value::is_null) {
            return (payload, None);
        }
    }
    let inbound = codec
        .decode_response(&payload)
        .unwrap_or_else(|e| panic!("unreadable ({e}): {:?}", String::from_utf8_lossy(&payload)));
    (payload, Some(inbound))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_opens_max_streams_and_never_reads_holds_at_most_their_windows() {
    const MAX: u64 = 4;
    const WINDOW: u32 = 64;
    for name in CODECS {
        let codec = codec(name);
        let mut served = serve_flows(config(Limits {
            max_streams: MAX as usize,
            ..Limits::default()
        }))
        .await;
        let (mut raw, _) = raw_session2(&served.address, name, WINDOW, 1 << 20).await;
        for id in 1..=MAX {
            send_request(&mut raw, codec, id, "Flows.endless", &()).await;
        }
        let state = served.state.clone();
        let produced = within("the pumps to stop", async {
            let mut last = u64::MAX;
            loop {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let now = state.produced.load(Ordering::SeqCst);
                if now == last && now > 0 {
                    return now;
                }
                last = now;
            }
        })
        .await;
        eprintln!("{name}: {MAX} streams never read made {produced} items");
        let bound = MAX * (u64::from(WINDOW) + u64::from(WINDOW) / 4);
        assert!(
            produced <= bound,
            "{name}: {produced} items held, over {bound}"
        );
        // Other connections are served, streams and all.
        for other in CODECS {
            let client = flows_client(&served.address, other).await;
            assert_eq!(within("add", client.add(2, 2)).await.unwrap(), 4);
            let (items, end) = drain(client.count(100).await.expect("count opens")).await;
            assert_eq!((items.len(), end), (100, Ok(())), "{other}");
            let total = within("sum", client.sum(Stream::iter(0..10u64))).await;
            assert_eq!(total.unwrap(), 45);
        }
        // One more on the greedy connection is refused.
        send_request(&mut raw, codec, MAX + 1, "Flows.count", &(3u64,)).await;
        let (result, _) = response_to(&mut raw, codec, MAX + 1).await;
        let (kind, message) = result.expect_err("past max_streams");
        assert_eq!(kind, ErrorKind::OverBudget, "{name}: {message}");
        served.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kinds_get_an_error_answer_and_the_connection_stays_usable() {
    for name in CODECS {
        let codec = codec(name);
        let mut served = serve_flows(config(Limits {
            max_invalid_messages: 2,
            ..Limits::default()
        }))
        .await;
        let (mut raw, _) = raw_session2(&served.address, name, 64, 4096).await;
        for _ in 0..5 {
            match name {
                "json" => {
                    let nonsense = br#"{"jsonrpc":"2.0","method":"rpc.nonsense","params":{"x":1}}"#;
                    write_frame(&mut raw, nonsense).await;
                }
                _ => write_frame(&mut raw, &[0x7f, 1, 2, 3]).await,
            }
            let (kind, message) = error_answer(&mut raw, codec).await;
            assert_eq!(kind, ErrorKind::InvalidRequest, "{name}: {message}");
            assert!(
                message.contains("unexpected message kind"),
                "{name}: {message}"
            );
        }
        // Not counted as invalid (the limit is 2): still open.
        still_answers(&mut raw, codec, 1).await;
        served.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_stream_messages_count_as_invalid() {
    for name in CODECS {
        let codec = codec(name);
        let mut served = serve_flows(config(Limits {
            max_invalid_messages: 3,
            ..Limits::default()
        }))
        .await;
        let (mut raw, _) = raw_session2(&served.address, name, 64, 4096).await;
        let malformed: [&[u8]; 3] = match name {
            "json" => [
                br#"{"jsonrpc":"2.0","method":"rpc.credit","params":{"id":"x","items":1,"bytes":1}}"#,
                br#"{"jsonrpc":"2.0","method":"rpc.items","params":{"id":1}}"#,
                br#"{"jsonrpc":"2.0","method":"rpc.ping","params":{"nonce":-1}}"#,
            ],
            _ => [&[0x08], &[0x06, 1, 0xff], &[0x04]],
        };
        for (i, message) in malformed.iter().enumerate() {
            write_frame(&mut raw, message).await;
            if i < 2 {
                let (kind, text) = error_answer(&mut raw, codec).await;
                assert!(
                    matches!(kind, ErrorKind::Parse | ErrorKind::InvalidRequest),
                    "{name}: {kind:?} {text}"
                );
            }
        }
        // The third closes the connection.
        expect_closed(&mut raw).await;
        served.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reusing_the_id_of_an_open_stream_opens_no_stream_past_max_streams() {
    const MAX: u64 = 2;
    const WINDOW: u32 = 64;
    for name in CODECS {
        let codec = codec(name);
        let mut served = serve_flows(config(Limits {
            max_streams: MAX as usize,
            ..Limits::default()
        }))
        .await;
        let (mut raw, _) = raw_session2(&served.address, name, WINDOW, 1 << 20).await;
        // The handler of `endless` returns at once: its call is over, its
        // stream open, its id free as a call id but not as a stream's.
        let mut opened = 0;
        for _ in 0..10 {
            send_request(&mut raw, codec, 1, "Flows.endless", &()).await;
            within("the answer", async {
                loop {
                    match next_inbound(&mut raw, codec).await.1 {
                        Inbound::Response {
                            id: 1,
                            outcome,
                            stream,
                        } => {
                            if stream && outcome.is_ok() {
                                opened += 1;
                            }
                            return;
                        }
                        Inbound::Flow(_) => {}
                        other => panic!("{name}: unexpected {other:?}"),
                    }
                }
            })
            .await;
        }
        let state = served.state.clone();
        let produced = within("the pumps to stop", async {
            let mut last = u64::MAX;
            loop {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let now = state.produced.load(Ordering::SeqCst);
                if now == last {
                    return now;
                }
                last = now;
            }
        })
        .await;
        let live = opened - state.dropped.load(Ordering::SeqCst);
        eprintln!(
            "{name}: 10 calls under one id opened {opened} streams, {live} still running; \
             they made {produced} items"
        );
        assert!(
            live <= MAX,
            "{name}: {live} producers running, past max_streams"
        );
        // Whatever opened, the connection's end drops every producer.
        drop(raw);
        let closed = tokio::time::timeout(Duration::from_secs(3), async {
            while state.dropped.load(Ordering::SeqCst) < opened {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        let dropped = state.dropped.load(Ordering::SeqCst);
        assert!(
            closed.is_ok(),
            "{name}: {dropped} of {opened} producers dropped 3 s after the connection closed"
        );
        served.stop().await;
    }
}
