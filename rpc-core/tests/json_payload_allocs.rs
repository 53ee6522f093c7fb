//! The JSON writer writes a `Bytes` payload's base64 into its output in
//! place, and the check for non-finite floats passes over a payload: neither
//! makes a base64 string of its own, which for a megabyte is 1.4 MB more.
//!
//! Counted by `allocation-counter` (this thread's allocations), in its own
//! test binary since it installs a global allocator.

use rpc_core::Bytes;

/// The base64 of the payload below.
const TEXT: u64 = (1 << 20) / 3 * 4;

fn allocated(f: impl FnOnce()) -> u64 {
    allocation_counter::measure(f).bytes_total
}

#[test]
fn a_payload_is_written_without_a_base64_string_of_its_own() {
    let value: Box<dyn erased_serde::Serialize> = Box::new((1u8, Bytes::from(vec![9u8; 1 << 20])));
    let mut out = Vec::with_capacity(2 << 20);
    let bytes = allocated(|| {
        let _ = rpc_core::finite::to_writer(&mut out, &value).unwrap();
    });
    assert_eq!(out.len() as u64, TEXT + b"[1,\"\"]".len() as u64 + 4);
    assert!(bytes < TEXT / 16, "writing allocated {bytes} bytes");
}

#[test]
fn the_non_finite_check_passes_over_a_payload() {
    // A `None` writes `null`, which sends the value to be walked again.
    let value = (None::<u8>, Bytes::from(vec![9u8; 1 << 20]), 0.5f64);
    let mut out = Vec::with_capacity(2 << 20);
    let written = rpc_core::finite::to_writer(&mut out, &value).unwrap();
    let bytes = allocated(|| written.result(&value, "json").unwrap());
    assert!(bytes < TEXT / 16, "the check allocated {bytes} bytes");
    let nan = (None::<u8>, Bytes::from(vec![9u8; 16]), f64::NAN);
    let written = rpc_core::finite::to_writer(Vec::new(), &nan).unwrap();
    let e = written.result(&nan, "json").unwrap_err();
    assert!(
        e.message().contains("`[2]`") && e.message().contains("NaN"),
        "{e}"
    );
}
