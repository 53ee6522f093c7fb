//! Smoke: server, client and bidirectional streams over the in-memory
//! transport, in both codecs.

use futures::StreamExt;
use rpc_core::{Registry, Stream, rpc_service};

#[rpc_service]
/// Numbers, streamed.
pub trait Numbers {
    /// 0..n.
    async fn count(&self, n: u64) -> Stream<u64>;
    /// The sum of what it is sent.
    async fn sum(&self, items: Stream<u64>) -> u64;
    /// Each item doubled.
    async fn double(&self, items: Stream<u64>) -> Stream<u64>;
}

struct Impl;

impl Numbers for Impl {
    async fn count(&self, n: u64) -> Stream<u64> {
        Stream::iter(0..n)
    }
    async fn sum(&self, items: Stream<u64>) -> u64 {
        items.fold(0, |a, b| async move { a + b }).await
    }
    async fn double(&self, items: Stream<u64>) -> Stream<u64> {
        Stream::new(items.map(|x| x * 2))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_shapes_in_both_codecs() {
    for codec in ["bincode", "json"] {
        let registry = Registry::new().with(NumbersServer::new(Impl)).unwrap();
        let client = NumbersClient::new(rpc_transport::local(registry, codec).await.unwrap());
        let run = async {
            let mut s = client.count(10_000).await.unwrap();
            let mut n = 0;
            while let Some(x) = s.next().await {
                assert_eq!(x, n);
                n += 1;
            }
            assert_eq!(n, 10_000);
            assert!(matches!(s.end(), Some(Ok(()))), "{:?}", s.end());
            let total = client.sum(Stream::iter(1..=100_000u64)).await.unwrap();
            assert_eq!(total, 5_000_050_000);
            let doubled: Vec<u64> = client
                .double(Stream::iter(0..5000u64))
                .await
                .unwrap()
                .collect()
                .await;
            assert_eq!(doubled, (0..5000).map(|x| x * 2).collect::<Vec<_>>());
        };
        tokio::time::timeout(std::time::Duration::from_secs(30), run)
            .await
            .unwrap_or_else(|_| panic!("{codec}: timed out"));
    }
}
