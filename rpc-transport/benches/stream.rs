//! Stream throughput over loopback TCP, no criterion: one server-streaming
//! call for an endless stream of u64, counted by the client for a few
//! seconds, in each codec; items/s printed per codec.
//!
//! ```text
//! cargo bench -p rpc-transport --bench stream            # 3 s per codec
//! cargo bench -p rpc-transport --bench stream -- 10      # 10 s per codec
//! ```

use std::time::{Duration, Instant};

use futures::StreamExt;
use rpc_core::{Registry, Stream, rpc_service};
use rpc_transport::{ClientConfig, Server, ServerConfig};

/// The bench's service.
#[rpc_service]
pub trait Items {
    /// Items 0, 1, 2, …
    async fn items(&self, n: u64) -> Stream<u64>;
}

struct Endless;

impl Items for Endless {
    async fn items(&self, n: u64) -> Stream<u64> {
        Stream::iter(0..n)
    }
}

fn main() {
    let seconds: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let config = ServerConfig::builder()
            .listen("127.0.0.1:0")
            .authkey("bench")
            .build()
            .expect("config");
        let registry = Registry::new()
            .with(ItemsServer::new(Endless))
            .expect("registers");
        let listening = Server::new(config, registry).bind().await.expect("binds");
        let address = listening.local_addr().to_owned();
        tokio::spawn(listening.serve());
        for codec in ["bincode", "json"] {
            let config = ClientConfig::builder()
                .connect(address.clone())
                .authkey("bench")
                .codec(codec)
                .build()
                .expect("config");
            let client = ItemsClient::new(rpc_transport::connect(&config).await.expect("connects"));
            let mut items = client.items(u64::MAX).await.expect("opens");
            let (mut count, mut expected) = (0u64, 0u64);
            let start = Instant::now();
            let window = Duration::from_secs(seconds);
            while start.elapsed() < window {
                for _ in 0..4096 {
                    let item = items.next().await.expect("endless");
                    assert_eq!(item, expected);
                    expected += 1;
                }
                count += 4096;
            }
            let rate = count as f64 / start.elapsed().as_secs_f64();
            println!("stream {codec}: {:.2} M items/s", rate / 1e6);
        }
    });
}
