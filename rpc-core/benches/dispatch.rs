//! Micro-benchmarks of server-side dispatch ([`rpc_core::Registry`]), no
//! network: `Registry::dispatch_encoded(name, codec, params)` (route lookup,
//! argument decoding through erased-serde, the generated `Service::call`,
//! boxing the handler's future) and one poll of the returned `CallFuture`,
//! which is ready at once, for each codec. The registry holds three
//! `#[rpc_service]` services, so the lookup is not of a lone entry; both
//! `Bench.add` and the bare name `add` are measured.
//!
//! ```text
//! cargo bench -p rpc-core --bench dispatch              # full run
//! cargo bench -p rpc-core --bench dispatch -- --quick   # a few seconds
//! ```

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;
use criterion::{Criterion, criterion_group, criterion_main};
use rpc_core::codec::{self, Codec, Incoming, OutRequest};
use rpc_core::{Bytes, Registry, rpc_service};

/// The peerbench workload.
#[rpc_service]
pub trait Bench {
    /// `x + y`.
    async fn add(&self, x: i64, y: i64) -> i64;
    /// `x - y`.
    async fn sub(&self, x: i64, y: i64) -> i64;
    /// `data`, unchanged.
    async fn echo(&self, data: Bytes) -> Bytes;
}

/// A second service, so the registry is not one entry.
#[rpc_service]
pub trait Store {
    /// The value under `key`.
    async fn get(&self, key: String) -> Option<String>;
    /// Sets `key` to `value`.
    async fn put(&self, key: String, value: String);
}

/// A third service.
#[rpc_service]
pub trait Clock {
    /// Seconds since some epoch.
    async fn now(&self) -> u64;
    /// Whether the clock runs.
    async fn running(&self) -> bool;
}

struct Impl;

impl Bench for Impl {
    async fn add(&self, x: i64, y: i64) -> i64 {
        x.wrapping_add(y)
    }
    async fn sub(&self, x: i64, y: i64) -> i64 {
        x.wrapping_sub(y)
    }
    async fn echo(&self, data: Bytes) -> Bytes {
        data
    }
}

impl Store for Impl {
    async fn get(&self, _key: String) -> Option<String> {
        None
    }
    async fn put(&self, _key: String, _value: String) {}
}

impl Clock for Impl {
    async fn now(&self) -> u64 {
        0
    }
    async fn running(&self) -> bool {
        true
    }
}

fn registry() -> Registry {
    Registry::new()
        .with(StoreServer::new(Impl))
        .and_then(|r| r.with(ClockServer::new(Impl)))
        .and_then(|r| r.with(BenchServer::new(Impl)))
        .expect("distinct names")
}

#[derive(serde::Serialize)]
struct AddArgs {
    x: i64,
    y: i64,
}

/// The encoded arguments of `add(2, 3)`, as a server finds them in a request.
fn add_params(codec: &dyn Codec) -> Vec<u8> {
    let mut frame = BytesMut::new();
    let request = OutRequest {
        id: 1,
        method: "Bench.add",
        deadline: None,
        args: &AddArgs { x: 2, y: 3 },
        metadata: None,
    };
    codec.encode_request(&mut frame, &request).expect("encodes");
    match codec.decode_request(&frame) {
        Incoming::Request(r) => r.params.to_vec(),
        other => panic!("not a request: {other:?}"),
    }
}

fn dispatch(c: &mut Criterion) {
    let registry = registry();
    for &codec in codec::ALL {
        let params = add_params(codec);
        let mut group = c.benchmark_group(format!("dispatch/{}", codec.name()));
        for name in ["Bench.add", "add"] {
            group.bench_function(name, |b| {
                b.iter(|| {
                    let mut call = registry
                        .dispatch_encoded(black_box(name), codec, black_box(&params))
                        .expect("dispatches");
                    let mut cx = Context::from_waker(Waker::noop());
                    match Pin::new(&mut call).poll(&mut cx) {
                        Poll::Ready(Ok(reply)) => black_box(reply),
                        Poll::Ready(Err(fault)) => panic!("the call failed: {fault:?}"),
                        Poll::Pending => panic!("the handler is ready at once"),
                    }
                });
            });
        }
        group.finish();
    }
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
