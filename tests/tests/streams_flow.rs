//! Per-stream credit over TCP, in both codecs: a fast producer stops at its
//! receiver's window; a stalled stream holds up no other call or stream on
//! its connection; an upload honours the server's window, and stops when
//! the server answers early.

mod common;
#[path = "common/streams.rs"]
mod streams;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use rpc_core::stream::Window;
use rpc_core::{ErrorKind, Stream};
use rpc_transport::ServerConfig;
use rpc_transport::config::Limits;

use common::{CODECS, resident_bytes, server_builder, within};
use streams::{FlowState, drain, flows_client, serve_flows};

/// The client's window (it receives with the default) and its batch.
const CLIENT_WINDOW: Window = Window::DEFAULT;
const CLIENT_BATCH: u64 = CLIENT_WINDOW.items as u64 / 4;

fn config(limits: Limits) -> ServerConfig {
    server_builder()
        .limits(limits)
        .build()
        .expect("a valid server config")
}

/// Waits until `counter` stops moving for 300 ms; returns its value.
async fn settled(counter: &AtomicU64) -> u64 {
    within("the producer to stop", async {
        let mut last = counter.load(Ordering::SeqCst);
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = counter.load(Ordering::SeqCst);
            if now == last {
                return now;
            }
            last = now;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_producer_stops_at_the_clients_window() {
    for codec in CODECS {
        let mut served = serve_flows(config(Limits::default())).await;
        let client = flows_client(&served.address, codec).await;
        let before = resident_bytes();
        let stream = client.endless().await.expect("endless opens");
        let produced = settled(&served.state.produced).await;
        eprintln!(
            "{codec}: the endless producer made {produced} items for a consumer that never polls"
        );
        assert!(produced > 0, "{codec}: nothing was produced");
        assert!(
            produced <= u64::from(CLIENT_WINDOW.items) + CLIENT_BATCH,
            "{codec}: {produced} items produced for a window of {CLIENT_WINDOW:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            served.state.produced.load(Ordering::SeqCst),
            produced,
            "{codec}"
        );
        let grown = resident_bytes().saturating_sub(before);
        assert!(
            grown < 64 << 20,
            "{codec}: the client grew by {grown} bytes"
        );
        // Taking the window's items lets the producer go on.
        let mut stream = stream;
        for expected in 0..produced + 10 {
            assert_eq!(
                within("an item", stream.next()).await,
                Some(expected),
                "{codec}"
            );
        }
        drop(stream);
        served.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stream_holds_up_no_call_and_no_other_stream() {
    for codec in CODECS {
        let mut served = serve_flows(config(Limits::default())).await;
        let client = flows_client(&served.address, codec).await;
        let stalled = client.endless().await.expect("endless opens");
        let produced = settled(&served.state.produced).await;
        let calls = futures::future::join_all((0..1000u64).map(|i| client.add(i, 1)));
        let second = async {
            let stream = client.count(20_000).await.expect("the second stream opens");
            drain(stream).await
        };
        let (answers, (items, end)) = within("1000 calls and a second stream", async {
            tokio::join!(calls, second)
        })
        .await;
        for (i, answer) in answers.into_iter().enumerate() {
            assert_eq!(
                answer.expect("a call on a stalled connection"),
                i as u64 + 1
            );
        }
        assert_eq!(items.len(), 20_000, "{codec}");
        assert_eq!(end, Ok(()), "{codec}");
        // Still stalled, still within its window.
        assert_eq!(
            served.state.produced.load(Ordering::SeqCst),
            produced,
            "{codec}"
        );
        assert!(produced <= u64::from(CLIENT_WINDOW.items) + CLIENT_BATCH);
        drop(stalled);
        served.stop().await;
    }
}

/// An endless upload that counts its items in `produced`.
fn counted_upload(produced: Arc<AtomicU64>, n: u64) -> Stream<u64> {
    Stream::new(futures::stream::iter(0..n).inspect(move |_| {
        produced.fetch_add(1, Ordering::SeqCst);
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_stays_within_the_servers_window() {
    const WINDOW: u32 = 64;
    const BATCH: u64 = WINDOW as u64 / 4;
    for codec in CODECS {
        let mut served = serve_flows(config(Limits {
            stream_window_items: WINDOW,
            ..Limits::default()
        }))
        .await;
        let client = flows_client(&served.address, codec).await;
        let produced = Arc::new(AtomicU64::new(0));
        let call = client.slow_sum(counted_upload(produced.clone(), 300), 2);
        let state: Arc<FlowState> = served.state.clone();
        let watch = async {
            let mut worst = 0i64;
            loop {
                // Produced first: what was taken can only have grown since.
                let made = produced.load(Ordering::SeqCst);
                let taken = state.taken.load(Ordering::SeqCst);
                worst = worst.max(made as i64 - taken as i64);
                if taken >= 300 {
                    return worst;
                }
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        };
        let (total, worst) = within("a slow upload", async { tokio::join!(call, watch) }).await;
        assert_eq!(total.expect("slow_sum answers"), 300 * 299 / 2, "{codec}");
        eprintln!("{codec}: the producer ran at most {worst} items ahead of the server's handler");
        assert!(
            worst <= i64::from(WINDOW) + BATCH as i64,
            "{codec}: ran {worst} items ahead with a window of {WINDOW}"
        );
        assert_eq!(served.reports.next_upload_end().await, Ok(()), "{codec}");
        served.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_uploads_sum_correctly() {
    for codec in CODECS {
        let mut served = serve_flows(config(Limits::default())).await;
        let client = flows_client(&served.address, codec).await;
        let sums = futures::future::join_all(
            (1..=4u64).map(|k| client.sum(Stream::iter((1..=50_000u64).map(move |x| x * k)))),
        );
        let sums = within("four uploads at once", sums).await;
        for (k, total) in (1..=4u64).zip(sums) {
            assert_eq!(total.expect("sum"), k * 1_250_025_000, "{codec}");
        }
        let empty = within("an empty upload", client.sum(Stream::empty())).await;
        assert_eq!(empty.expect("sum of nothing"), 0, "{codec}");
        served.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_stops_when_the_server_answers_early() {
    for codec in CODECS {
        let mut served = serve_flows(config(Limits::default())).await;
        let client = flows_client(&served.address, codec).await;
        let (sender, stream) = Stream::channel(8);
        let producer = tokio::spawn(async move {
            let mut n = 0u64;
            loop {
                if let Err(e) = sender.send(n).await {
                    return (n, e);
                }
                n += 1;
            }
        });
        let total = within("take3", client.take3(stream)).await;
        assert_eq!(total.expect("take3 answers"), 3, "{codec}");
        let (sent, why) = within("the producer to stop", producer)
            .await
            .expect("the producer task");
        eprintln!("{codec}: the producer stopped after {sent} items: {why}");
        assert_eq!(why.kind(), ErrorKind::Cancelled, "{codec}: {why}");
        assert_eq!(within("add", client.add(1, 1)).await.unwrap(), 2);
        served.stop().await;
    }
}
