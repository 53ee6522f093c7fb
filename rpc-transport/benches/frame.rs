//! Micro-benchmarks of framing ([`rpc_transport::frame`]), no network:
//!
//! - `FrameCodec` encode and decode of a small (30 B) and a 64 KiB payload;
//! - decode of one buffer holding 64 small frames (a busy connection's read);
//! - `begin_frame` / `finish_frame` around a small payload written in place
//!   (how requests and responses are framed without a copy).
//!
//! ```text
//! cargo bench -p rpc-transport --bench frame              # full run
//! cargo bench -p rpc-transport --bench frame -- --quick   # a few seconds
//! ```
//!
//! `--quick` is a smoke run: its `frame/decode/*` numbers (few, small
//! batches) can be off by tens of percent; compare full runs.

use std::hint::black_box;

use bytes::{BufMut, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rpc_transport::frame::{DEFAULT_MAX_FRAME_BYTES, FrameCodec, begin_frame, finish_frame};
use tokio_util::codec::{Decoder, Encoder};

const SMALL: usize = 30;
const LARGE: usize = 64 * 1024;
const BATCH: usize = 64;

/// `payload` framed `times` times, back to back, as a reader receives them.
fn framed(payload: &[u8], times: usize) -> BytesMut {
    let mut codec = FrameCodec::default();
    let mut buf = BytesMut::new();
    for _ in 0..times {
        codec.encode(payload, &mut buf).expect("under the limit");
    }
    buf
}

/// `wire` in a read buffer as a connection holds it once it has split off a
/// frame: shared already, so splitting off the next one only bumps a count
/// (the first split of a fresh buffer allocates, once per buffer).
fn read_buffer(wire: &[u8]) -> BytesMut {
    let mut buf = BytesMut::with_capacity(1 + wire.len());
    buf.put_u8(0);
    drop(buf.split_to(1));
    buf.extend_from_slice(wire);
    buf
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame/encode");
    for (name, len) in [("small", SMALL), ("64KiB", LARGE)] {
        let payload = vec![0x5a_u8; len];
        let mut codec = FrameCodec::default();
        let mut dst = BytesMut::with_capacity(len + 16);
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                dst.clear();
                codec
                    .encode(black_box(&payload[..]), &mut dst)
                    .expect("under the limit");
                black_box(&dst);
            });
        });
    }
    group.finish();
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame/decode");
    // Each iteration gets its own read buffer holding the received bytes
    // (made, and the results dropped, outside the timing).
    for (name, len) in [("small", SMALL), ("64KiB", LARGE)] {
        let wire = framed(&vec![0x5a_u8; len], 1);
        let mut codec = FrameCodec::default();
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(name, |b| {
            b.iter_batched(
                || read_buffer(&wire),
                |mut src| {
                    let frame = codec.decode(&mut src).expect("valid").expect("whole");
                    (frame, src)
                },
                BatchSize::SmallInput,
            );
        });
    }
    let wire = framed(&[0x5a_u8; SMALL], BATCH);
    let mut codec = FrameCodec::default();
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("64_small_in_one_buffer", |b| {
        b.iter_batched(
            || (read_buffer(&wire), Vec::with_capacity(BATCH)),
            |(mut src, mut frames)| {
                while let Some(frame) = codec.decode(&mut src).expect("valid") {
                    frames.push(frame);
                }
                assert_eq!(frames.len(), BATCH);
                (src, frames)
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn in_place(c: &mut Criterion) {
    let payload = [0x5a_u8; SMALL];
    let mut dst = BytesMut::with_capacity(64);
    c.bench_function("frame/begin_finish_small", |b| {
        b.iter(|| {
            dst.clear();
            let start = begin_frame(&mut dst);
            dst.put_slice(black_box(&payload));
            finish_frame(&mut dst, start, DEFAULT_MAX_FRAME_BYTES).expect("under the limit");
            black_box(&dst);
        });
    });
}

criterion_group!(benches, encode, decode, in_place);
criterion_main!(benches);
