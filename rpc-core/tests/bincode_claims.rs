//! A bincode length prefix can claim far more than the frame holds; the
//! decoder must refuse such a claim before allocating for it, or a frame of
//! a few bytes makes it reserve up to a gigabyte.
//!
//! Counted by `allocation-counter` (this thread's allocations), in its own
//! test binary since it installs a global allocator.

use bytes::BytesMut;
use rpc_core::codec::{self, Bincode, Codec, Id, Inbound};
use rpc_core::{ErrorKind, Value};

/// The most one decode of a few bytes may allocate at once.
const SMALL: u64 = 64 * 1024;

/// A bincode varint announcing `len`: `0xfd` and a little-endian u64.
fn claim(len: u64) -> Vec<u8> {
    [&[0xfd][..], &len.to_le_bytes()].concat()
}

/// The largest allocation live at once while `f` runs.
fn peak_bytes(f: impl FnOnce()) -> u64 {
    allocation_counter::measure(f).bytes_max
}

#[test]
fn a_string_claiming_half_a_gigabyte_is_refused_without_allocating_it() {
    let bytes = [claim(1 << 29), b"abc".to_vec()].concat();
    let mut outcome = None;
    let peak = peak_bytes(|| outcome = Some(codec::decode::<String>(&Bincode, &bytes)));
    let e = outcome.unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Parse, "{e}");
    assert!(
        peak < SMALL,
        "decoding {} bytes allocated {peak} bytes",
        bytes.len()
    );
}

#[test]
fn a_value_string_claiming_half_a_gigabyte_is_refused_without_allocating_it() {
    let bytes = [vec![5], claim(1 << 29), b"abc".to_vec()].concat();
    let mut outcome = None;
    let peak = peak_bytes(|| outcome = Some(codec::decode::<Value>(&Bincode, &bytes)));
    assert!(outcome.unwrap().is_err());
    assert!(
        peak < SMALL,
        "decoding {} bytes allocated {peak} bytes",
        bytes.len()
    );
}

#[test]
fn an_error_message_claiming_half_a_gigabyte_is_refused_without_allocating_it() {
    // A response: kind 1, id 7, status err, code 0, then the message's length.
    let frame = [vec![1, 7, 1, 0], claim(1 << 29), b"abc".to_vec()].concat();
    let mut outcome = None;
    let peak = peak_bytes(|| outcome = Some(Bincode.decode_response(&frame)));
    assert!(outcome.unwrap().is_err());
    assert!(
        peak < SMALL,
        "decoding {} bytes allocated {peak} bytes",
        frame.len()
    );
}

#[test]
fn long_strings_that_are_there_still_decode() {
    let text = "x".repeat(3 << 20);
    let value = Value::from(vec![serde_json::Value::from(text.clone()); 2]);
    let mut buf = BytesMut::new();
    Bincode
        .encode_response(
            &mut buf,
            &Id::Num(1),
            &Ok(Box::new((text.clone(), value.clone()))),
        )
        .unwrap();
    let Ok(Inbound::Response { outcome, .. }) = Bincode.decode_response(&buf) else {
        panic!("not a response");
    };
    let back: (String, Value) = codec::decode(&Bincode, &buf[outcome.unwrap()]).unwrap();
    assert_eq!(back, (text, value));
}

#[test]
fn many_small_integers_still_decode() {
    // Each claims its in-memory size (8 bytes) but takes one byte on the wire.
    let numbers = vec![0u64; 1 << 20];
    let mut buf = BytesMut::new();
    Bincode
        .encode_response(&mut buf, &Id::Num(1), &Ok(Box::new(numbers.clone())))
        .unwrap();
    let Ok(Inbound::Response { outcome, .. }) = Bincode.decode_response(&buf) else {
        panic!("not a response");
    };
    let back: Vec<u64> = codec::decode(&Bincode, &buf[outcome.unwrap()]).unwrap();
    assert_eq!(back, numbers);
}
