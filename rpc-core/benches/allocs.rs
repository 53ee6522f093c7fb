//! Heap allocations per call of `add(2, 3) -> i64`, for each codec, along
//! the path a call takes without the network (the transport's steps,
//! rebuilt here; frames are written into reused buffers as the outboxes do):
//!
//! | column | what runs |
//! |---|---|
//! | client encode | `Codec::encode_request` |
//! | server | `decode_request`, `Registry::dispatch_encoded` inside `blob::decoding_from`, `Context::scope`, one poll, `encode_response` |
//! | client decode | `decode_response`, then `Response::into_result::<i64>` (`codec::decode` inside `decoding_from`) |
//!
//! Counted by `allocation-counter`, which installs a global allocator
//! counting this thread's allocations (a reallocation counts as one): the
//! workspace forbids `unsafe_code`, which a hand-written `GlobalAlloc` needs.
//! Prints a table to stdout; no timing.
//!
//! ```text
//! cargo bench -p rpc-core --bench allocs
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rpc_core::codec::{self, Codec, Inbound, Incoming, OutRequest};
use rpc_core::{Context, Registry, Response, rpc_service};

/// Calls measured per cell, after one warm-up call.
const CALLS: u64 = 1_000;

/// The measured method.
#[rpc_service]
pub trait Bench {
    /// `x + y`.
    async fn add(&self, x: i64, y: i64) -> i64;
}

struct Impl;

impl Bench for Impl {
    async fn add(&self, x: i64, y: i64) -> i64 {
        x.wrapping_add(y)
    }
}

#[derive(serde::Serialize)]
struct AddArgs {
    x: i64,
    y: i64,
}

/// Mean allocations and bytes allocated per run of `step`.
fn per_call(mut step: impl FnMut()) -> (f64, f64) {
    step();
    let info = allocation_counter::measure(|| {
        for _ in 0..CALLS {
            step();
        }
    });
    (
        info.count_total as f64 / CALLS as f64,
        info.bytes_total as f64 / CALLS as f64,
    )
}

/// The server's handling of one request frame, as the transport's
/// connection does it, the reply appended to `out`.
fn serve(registry: &Registry, codec: &dyn Codec, frame: &bytes::Bytes, out: &mut BytesMut) {
    let Incoming::Request(request) = codec.decode_request(frame) else {
        panic!("not a request");
    };
    let call = rpc_core::blob::decoding_from(frame, || {
        registry.dispatch_encoded(&request.method, codec, request.params)
    })
    .expect("dispatches");
    let deadline = request.deadline.map(|d| Instant::now() + d);
    let mut call = Context::new().with_deadline(deadline).scope(call);
    let mut cx = std::task::Context::from_waker(Waker::noop());
    let Poll::Ready(reply) = Pin::new(&mut call).poll(&mut cx) else {
        panic!("the handler is ready at once");
    };
    let id = request.id.expect("not a notification");
    codec.encode_response(out, &id, &reply).expect("encodes");
}

fn main() {
    let registry = Registry::new()
        .with(BenchServer::new(Impl))
        .expect("one service");
    let args = AddArgs { x: 2, y: 3 };
    let request = OutRequest {
        id: 1,
        method: "Bench.add",
        deadline: Some(Duration::from_secs(30)),
        args: &args,
        metadata: None,
    };

    println!(
        "allocations per call of Bench.add(2, 3) -> i64 (mean of {CALLS} calls; bytes allocated in brackets)"
    );
    println!();
    println!(
        "| codec | client encode_request | server decode+dispatch+poll+encode | client decode_response+decode | total |"
    );
    println!("|---|---|---|---|---|");
    for &codec in codec::ALL {
        let mut buf = BytesMut::with_capacity(256);
        let client_encode = per_call(|| {
            buf.clear();
            codec.encode_request(&mut buf, &request).expect("encodes");
        });

        let frame = buf.clone().freeze();
        let mut out = BytesMut::with_capacity(256);
        let server = per_call(|| {
            out.clear();
            serve(&registry, codec, &frame, &mut out);
        });

        let reply = out.clone().freeze();
        let client_decode = per_call(|| {
            let Inbound::Response { id, outcome, .. } =
                codec.decode_response(&reply).expect("decodes")
            else {
                unreachable!("one kind of inbound frame")
            };
            assert_eq!(id, 1);
            let sum: i64 = Response::new(codec, reply.clone(), outcome)
                .into_result()
                .expect("an i64");
            assert_eq!(sum, 5);
        });

        let cell = |(n, bytes): (f64, f64)| format!("{n:.1} ({bytes:.0} B)");
        let total = (
            client_encode.0 + server.0 + client_decode.0,
            client_encode.1 + server.1 + client_decode.1,
        );
        println!(
            "| {} | {} | {} | {} | {} |",
            codec.name(),
            cell(client_encode),
            cell(server),
            cell(client_decode),
            cell(total),
        );
    }
}
