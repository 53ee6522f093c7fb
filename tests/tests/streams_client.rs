//! A hostile protocol-2 server, by hand, against our client in both codecs:
//! items past the window the client announced end that stream over budget
//! (cancelled at the server) and nothing else; stray items, ends and credit
//! change nothing.

mod common;
#[path = "common/streams.rs"]
mod streams;

use futures::StreamExt;
use rpc_core::ErrorKind;
use rpc_core::stream::Window;

use common::hostile::fake_listener;
use common::{CODECS, client_builder, within};
use streams::{
    FlowsClient, drain, fake_server_session2, kind_of, next_request_id, open_stream, send_end,
    send_items, send_with,
};

/// A typed client connecting to `address` over `codec`, with the fake
/// server's side of the session.
async fn fake_pair(
    codec: &str,
) -> (
    FlowsClient,
    tokio::net::TcpStream,
    &'static dyn rpc_core::codec::Codec,
) {
    let (listener, address) = fake_listener().await;
    let config = client_builder(&address, codec)
        .build()
        .expect("a client config");
    let (client, (raw, codec)) = tokio::join!(
        async { rpc_transport::connect(&config).await.expect("connects") },
        fake_server_session2(&listener, 64, 4096),
    );
    (FlowsClient::new(client), raw, codec)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_past_the_clients_window_end_that_stream_over_budget() {
    let window = u64::from(Window::DEFAULT.items);
    for name in CODECS {
        let (client, mut raw, codec) = fake_pair(name).await;
        let server = async {
            let first = next_request_id(&mut raw, codec).await;
            open_stream(&mut raw, codec, first).await;
            let second = next_request_id(&mut raw, codec).await;
            open_stream(&mut raw, codec, second).await;
            // The first stream: its window's worth, then one more message.
            let items: Vec<u64> = (0..window / 4).collect();
            for _ in 0..4 {
                send_items(&mut raw, codec, first, &items).await;
            }
            send_items(&mut raw, codec, first, &[1, 2, 3]).await;
            // The second: a few items and its end.
            send_items(&mut raw, codec, second, &[7, 8]).await;
            send_end(&mut raw, codec, second).await;
            // The client cancels the first.
            within("the client's cancel", async {
                loop {
                    match next_inbound_request(&mut raw, codec).await {
                        Some(id) if id == first => return,
                        _ => {}
                    }
                }
            })
            .await;
            raw
        };
        let calls = async {
            let first = client.count(0).await.expect("the first opens");
            let second = client.count(0).await.expect("the second opens");
            (first, second)
        };
        let (mut raw, (first, second)) =
            within("the fake session", async { tokio::join!(server, calls) }).await;
        let (items, end) = drain(second).await;
        assert_eq!((items, end), (vec![7, 8], Ok(())), "{name}");
        let (items, end) = drain(first).await;
        eprintln!(
            "{name}: the over-budget stream gave {} items, then {end:?}",
            items.len()
        );
        assert!(items.len() as u64 <= window, "{name}");
        assert_eq!(
            kind_of(&end),
            Some(ErrorKind::OverBudget),
            "{name}: {end:?}"
        );
        // Stray messages change nothing on the client.
        send_items(&mut raw, codec, 999, &[1]).await;
        send_end(&mut raw, codec, 999).await;
        send_with(&mut raw, codec, |c, buf| {
            c.encode_credit(buf, 999, u64::MAX, u64::MAX)
        })
        .await;
        let third = async {
            let id = next_request_id(&mut raw, codec).await;
            open_stream(&mut raw, codec, id).await;
            send_items(&mut raw, codec, id, &[5]).await;
            send_end(&mut raw, codec, id).await;
            send_end(&mut raw, codec, id).await;
        };
        let (_, opened) = within("a third stream", async {
            tokio::join!(third, client.count(0))
        })
        .await;
        let mut opened = opened.expect("the third opens");
        assert_eq!(within("its item", opened.next()).await, Some(5), "{name}");
        assert_eq!(within("its end", opened.next()).await, None, "{name}");
        assert_eq!(opened.end().map(Result::is_ok), Some(true), "{name}");
    }
}

/// The id of the next cancel the client sent; `None` for anything else.
async fn next_inbound_request(
    raw: &mut tokio::net::TcpStream,
    codec: &'static dyn rpc_core::codec::Codec,
) -> Option<u64> {
    let payload = common::expect_frame(raw, "a message from the client").await;
    match codec.decode_request(&payload) {
        rpc_core::codec::Incoming::Cancel(rpc_core::codec::Id::Num(id)) => Some(id),
        _ => None,
    }
}
