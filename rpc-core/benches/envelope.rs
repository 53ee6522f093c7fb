//! Micro-benchmarks of the envelope codecs ([`rpc_core::codec`]), no network,
//! for each codec (`bincode`, `json`, called through `&dyn Codec` as the
//! transport does):
//!
//! - `encode_request` of `add(x: i64, y: i64)`'s arguments, alone and
//!   inside `blob::splicing` as the transport's outbox runs it;
//! - `decode_request` of that frame (the envelope only: arguments stay encoded);
//! - `encode_response` of an `i64` result;
//! - `decode_response` then `codec::decode::<i64>` of the result;
//! - a request carrying a 64 KiB [`rpc_core::Bytes`]: encode, and decode
//!   (envelope and arguments, inside `blob::decoding_from` as the server
//!   does). bincode writes and slices the raw bytes; json base64-codes them,
//!   so it should be far slower here.
//!
//! ```text
//! cargo bench -p rpc-core --bench envelope              # full run
//! cargo bench -p rpc-core --bench envelope -- --quick   # a few seconds
//! ```

use std::hint::black_box;
use std::time::Duration;

use bytes::BytesMut;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rpc_core::codec::{self, Codec, Id, Inbound, Incoming, OutRequest};
use rpc_core::service::Reply;

/// The argument struct of `add(x: i64, y: i64)`, as the macro generates it.
#[derive(serde::Serialize, serde::Deserialize)]
struct AddArgs {
    x: i64,
    y: i64,
}

/// The argument struct of `echo(data: Bytes)`.
#[derive(serde::Serialize, serde::Deserialize)]
struct EchoArgs {
    data: rpc_core::Bytes,
}

const BLOB: usize = 64 * 1024;

/// A request as the client transport builds it (it always sends a deadline).
fn request<'a>(method: &'a str, args: &'a dyn erased_serde::Serialize) -> OutRequest<'a> {
    OutRequest {
        id: 12_345,
        method,
        deadline: Some(Duration::from_secs(30)),
        args,
        metadata: None,
    }
}

fn encoded_request(
    codec: &dyn Codec,
    method: &str,
    args: &dyn erased_serde::Serialize,
) -> BytesMut {
    let mut buf = BytesMut::new();
    codec
        .encode_request(&mut buf, &request(method, args))
        .expect("encodes");
    buf
}

/// The params of a request frame.
fn params<'a>(codec: &dyn Codec, frame: &'a [u8]) -> &'a [u8] {
    match codec.decode_request(frame) {
        Incoming::Request(r) => r.params,
        other => panic!("not a request: {other:?}"),
    }
}

fn add(c: &mut Criterion) {
    let args = AddArgs { x: 2, y: 3 };
    let result: Reply = Ok(Box::new(5_i64));
    for &codec in codec::ALL {
        let mut group = c.benchmark_group(format!("envelope/{}/add", codec.name()));

        let mut dst = BytesMut::with_capacity(256);
        group.bench_function("encode_request", |b| {
            b.iter(|| {
                dst.clear();
                codec
                    .encode_request(&mut dst, &request(black_box("Bench.add"), &args))
                    .expect("encodes");
                black_box(&dst);
            });
        });

        // What the transport's outbox adds: the encoding runs inside
        // `splicing`, so that a large `Bytes` could go by reference.
        group.bench_function("encode_request_splicing", |b| {
            b.iter(|| {
                dst.clear();
                let (done, spliced) = rpc_core::blob::splicing(&mut dst, 0, |dst| {
                    codec.encode_request(dst, &request(black_box("Bench.add"), &args))
                });
                done.expect("encodes");
                black_box((&dst, spliced));
            });
        });

        let frame = encoded_request(codec, "Bench.add", &args);
        group.bench_function("decode_request", |b| {
            b.iter(|| match codec.decode_request(black_box(&frame)) {
                Incoming::Request(r) => {
                    black_box(r);
                }
                other => panic!("not a request: {other:?}"),
            });
        });

        let id = Id::Num(12_345);
        group.bench_function("encode_response", |b| {
            b.iter(|| {
                dst.clear();
                codec
                    .encode_response(&mut dst, black_box(&id), &result)
                    .expect("encodes");
                black_box(&dst);
            });
        });

        let mut response = BytesMut::new();
        codec
            .encode_response(&mut response, &id, &result)
            .expect("encodes");
        group.bench_function("decode_response+decode_i64", |b| {
            b.iter(|| {
                let Inbound::Response { id, outcome, .. } = codec
                    .decode_response(black_box(&response))
                    .expect("decodes")
                else {
                    unreachable!("one kind of inbound frame")
                };
                let range = outcome.expect("a result");
                let sum: i64 = codec::decode(codec, &response[range]).expect("an i64");
                assert_eq!(sum, 5);
                black_box(id)
            });
        });
        group.finish();
    }
}

fn blob(c: &mut Criterion) {
    let args = EchoArgs {
        data: rpc_core::Bytes::from(vec![0x5a_u8; BLOB]),
    };
    for &codec in codec::ALL {
        let mut group = c.benchmark_group(format!("envelope/{}/echo_64KiB", codec.name()));
        group.throughput(Throughput::Bytes(BLOB as u64));

        let mut dst = BytesMut::with_capacity(2 * BLOB);
        group.bench_function("encode_request", |b| {
            b.iter(|| {
                dst.clear();
                codec
                    .encode_request(&mut dst, &request("Bench.echo", black_box(&args)))
                    .expect("encodes");
                black_box(&dst);
            });
        });

        let frame = encoded_request(codec, "Bench.echo", &args).freeze();
        group.bench_function("decode_request+args", |b| {
            b.iter_batched(
                || frame.clone(),
                |frame| {
                    let back: EchoArgs = rpc_core::blob::decoding_from(&frame, || {
                        codec::decode(codec, params(codec, &frame))
                    })
                    .expect("decodes");
                    assert_eq!(back.data.len(), BLOB);
                    (back, frame)
                },
                BatchSize::SmallInput,
            );
        });
        group.finish();
    }
}

criterion_group!(benches, add, blob);
criterion_main!(benches);
