//! Large byte payloads (`rpc_core::Bytes`) end to end over TCP: several
//! multi-megabyte calls in flight on one connection, so writes fill the
//! socket and finish later, on both sides, in both codecs.

mod common;

use common::{CODECS, connect, serve, within};
use examples::bench::{BenchClient, BenchImpl, BenchServer};
use rpc_core::{Bytes, Registry};

fn payload(seed: u8, len: usize) -> Bytes {
    Bytes::from(
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect::<Vec<u8>>(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn megabyte_payloads_in_flight_together_come_back_intact() {
    let server = serve(Registry::new().with(BenchServer::new(BenchImpl)).unwrap()).await;
    for codec in CODECS {
        let bench = BenchClient::new(connect(&server.address, codec).await);
        let mut calls = tokio::task::JoinSet::new();
        for seed in 0..6u8 {
            let bench = bench.clone();
            calls.spawn(async move {
                let sent = payload(seed, 3 << 20);
                let back = bench.echo(sent.clone()).await.expect("echo");
                assert!(back == sent, "payload {seed} came back changed");
            });
        }
        within(&format!("{codec} echoes"), async {
            while let Some(done) = calls.join_next().await {
                done.expect("an echo task");
            }
        })
        .await;
        let sum = within("a small call after", bench.add(2, 3))
            .await
            .expect("add");
        assert_eq!(sum, 5);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_calls_interleave_with_a_large_one() {
    let server = serve(Registry::new().with(BenchServer::new(BenchImpl)).unwrap()).await;
    let bench = BenchClient::new(connect(&server.address, "bincode").await);
    let big = {
        let bench = bench.clone();
        tokio::spawn(async move { bench.echo(payload(7, 8 << 20)).await })
    };
    for i in 0..200 {
        assert_eq!(within("add", bench.add(i, 1)).await.expect("add"), i + 1);
    }
    let back = within("the large echo", big).await.unwrap().expect("echo");
    assert!(back == payload(7, 8 << 20));
}

/// Payloads at every alignment, in flight together: the sides splice them
/// by reference (on AMD CPUs, some are copied instead: see
/// `rpc_core::blob::splicing`), and frames of both kinds share the same
/// writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_at_every_alignment_come_back_intact() {
    let server = serve(Registry::new().with(BenchServer::new(BenchImpl)).unwrap()).await;
    let bench = BenchClient::new(connect(&server.address, "bincode").await);
    let mut calls = tokio::task::JoinSet::new();
    for skip in 0..64usize {
        let bench = bench.clone();
        calls.spawn(async move {
            let block = payload(skip as u8, (64 << 10) + skip);
            let sent = Bytes(block.0.slice(skip..));
            let back = bench.echo(sent.clone()).await.expect("echo");
            assert!(
                back == sent,
                "the payload at offset {skip} came back changed"
            );
        });
    }
    within("64 echoes", async {
        while let Some(done) = calls.join_next().await {
            done.expect("an echo task");
        }
    })
    .await;
}
