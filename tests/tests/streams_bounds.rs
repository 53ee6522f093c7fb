//! What a stream makes a side hold, and an item too large to send: a
//! message must fit its stream's credit (a lone item may overshoot it, and
//! arrives whole and in its place),
//! held items do not pin the buffers they were read into, and an item over
//! the receiver's frame limit ends its stream with a reason.

/// Over the client's 16 MiB `max_frame_bytes`.
const BIG: u64 = 17 << 20;

mod common;
#[path = "common/streams.rs"]
mod streams;

use bytes::BytesMut;
use rpc_core::codec::Codec;
use rpc_transport::ServerConfig;
use rpc_transport::config::Limits;
use tokio::net::TcpStream;

use common::server_builder;
use streams::{codec, ping, raw_session2, send_items, send_request, send_with, serve_flows};

fn config(limits: Limits) -> ServerConfig {
    server_builder()
        .limits(limits)
        .build()
        .expect("a valid server config")
}

/// Serves `service` with the default limits until the guard is dropped.
async fn serve<S: rpc_core::Service>(service: S) -> (String, common::TaskGuard<()>) {
    let registry = rpc_core::Registry::new().with(service).expect("registers");
    let listening = rpc_transport::Server::new(config(Limits::default()), registry)
        .bind()
        .await
        .expect("binds");
    let address = listening.local_addr().to_owned();
    (address, common::TaskGuard(tokio::spawn(listening.serve())))
}

fn rss_mib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096 / (1024 * 1024)
}

/// One items message of stream `id` claiming `count` items, `len` bytes of zeros.
async fn send_blob(
    raw: &mut TcpStream,
    codec: &'static dyn Codec,
    id: u64,
    len: usize,
    count: u32,
) {
    send_with(raw, codec, |c, buf: &mut BytesMut| {
        c.begin_items(buf, id);
        buf.extend_from_slice(&vec![0u8; len]);
        c.finish_items(buf, 0, count);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_of_many_items_past_the_byte_window_is_refused() {
    let codec = codec("bincode");
    let mut served = serve_flows(config(Limits {
        stream_window_bytes: 1024,
        ..Limits::default()
    }))
    .await;
    let (mut raw, _) = raw_session2(&served.address, "bincode", 64, 4096).await;
    // A handler that will not take an item for ten minutes.
    send_request(&mut raw, codec, 1, "Flows.slow_sum", &((), 600_000u64)).await;
    send_blob(&mut raw, codec, 1, 8 << 20, 2).await;
    let before = ping(&mut raw, codec, 7).await;
    // Refused: a cancel of the stream, and the error saying why.
    assert!(
        !before.is_empty(),
        "8 MiB in two items were taken on a 1 KiB window"
    );
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_held_items_do_not_pin_the_read_buffers_they_were_cut_from() {
    let codec = codec("bincode");
    let mut served = serve_flows(config(Limits {
        stream_window_items: 64,
        ..Limits::default()
    }))
    .await;
    let (mut raw, _) = raw_session2(&served.address, "bincode", 64, 4096).await;
    send_request(&mut raw, codec, 1, "Flows.slow_sum", &((), 600_000u64)).await;
    // Control: 64 junk messages of 2 MiB for no stream (ignored, freed).
    for _ in 0..64 {
        send_blob(&mut raw, codec, 999, 2 << 20, 1).await;
    }
    ping(&mut raw, codec, 1).await;
    let base = rss_mib();
    for _ in 0..64 {
        send_blob(&mut raw, codec, 999, 2 << 20, 1).await;
    }
    ping(&mut raw, codec, 2).await;
    let control = rss_mib();
    // Attack: the same, each junk message followed by ONE 1-item message
    // (a few bytes, within credit) for the stalled upload.
    for i in 0..64u64 {
        send_blob(&mut raw, codec, 999, 2 << 20, 1).await;
        send_items(&mut raw, codec, 1, &[i]).await;
    }
    let before = ping(&mut raw, codec, 3).await;
    assert!(before.is_empty(), "refused: {before:?}");
    let attacked = rss_mib();
    eprintln!(
        "rss: base {base} MiB, control +{} MiB, attack +{} MiB",
        control.saturating_sub(base),
        attacked.saturating_sub(control)
    );
    // The window is 64 items / 256 KiB; a few MiB of slack for noise.
    assert!(
        attacked.saturating_sub(control) < 64,
        "64 held items of ~9 bytes hold {} MiB",
        attacked - control
    );
    served.stop().await;
}

/// A stream of one `n`-byte item.
#[rpc_core::rpc_service]
pub(crate) trait Big {
    /// One item of `n` bytes.
    async fn big(&self, n: u64) -> rpc_core::Stream<Vec<u8>>;
}

struct BigImpl;

impl Big for BigImpl {
    async fn big(&self, n: u64) -> rpc_core::Stream<Vec<u8>> {
        rpc_core::Stream::iter(std::iter::once(vec![7u8; n as usize]))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_larger_than_the_clients_frame_ends_the_stream() {
    use futures::StreamExt;
    let (address, _serving) = serve(BigServer::new(BigImpl)).await;
    let client = BigClient::new(common::connect(&address, "bincode").await);
    let mut stream = common::within("the stream to open", client.big(BIG))
        .await
        .expect("opens");
    let next = common::within("the end", stream.next()).await;
    assert!(next.is_none());
    let end = stream
        .end()
        .expect("ended")
        .as_ref()
        .expect_err("not finished");
    assert_eq!(end.kind(), rpc_core::ErrorKind::FrameTooLarge, "{end}");
    assert!(end.message().contains("frame limit"), "{end}");
}

/// Items of many sizes, each filled with its index.
#[rpc_core::rpc_service]
pub(crate) trait Sizes {
    /// `n` items; item `i` has `len(i)` bytes, each `i as u8`.
    async fn sizes(&self, n: u64) -> rpc_core::Stream<Vec<u8>>;
}

struct SizesImpl;

/// From 1 byte to 60 KB, in no order: a batch often ends on an item that
/// takes it past what credit is left.
fn len(i: u64) -> usize {
    (i * 7919 % 60_000 + 1) as usize
}

impl Sizes for SizesImpl {
    async fn sizes(&self, n: u64) -> rpc_core::Stream<Vec<u8>> {
        rpc_core::Stream::iter((0..n).map(|i| vec![i as u8; len(i)]))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_sent_alone_past_the_credit_arrive_whole_and_in_order() {
    use futures::StreamExt;
    const N: u64 = 400;
    let (address, _serving) = serve(SizesServer::new(SizesImpl)).await;
    for name in ["bincode", "json"] {
        let client = SizesClient::new(common::connect(&address, name).await);
        let mut stream = common::within("the stream to open", client.sizes(N))
            .await
            .expect("opens");
        // Not read yet: the server runs out of credit, so batches end on
        // an item that goes alone once more is granted.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        for i in 0..N {
            let item = common::within("an item", stream.next())
                .await
                .unwrap_or_else(|| panic!("{name}: ended at {i}: {:?}", stream.end()));
            assert_eq!(item.len(), len(i), "{name}: item {i}");
            assert!(item.iter().all(|&b| b == i as u8), "{name}: item {i}");
        }
        let next = common::within("the end", stream.next()).await;
        assert!(next.is_none(), "{name}: more than {N} items");
        assert!(
            matches!(stream.end(), Some(Ok(()))),
            "{name}: {:?}",
            stream.end()
        );
    }
}
