//! What decoding a peer's message may allocate: a junk batch is refused
//! after `max_batch + 1` members whatever its length, and a dynamic value
//! never allocates much past its decode budget (32 bytes per byte of its
//! message), in any codec.
//!
//! Counted by `allocation-counter` (this thread's allocations), in its own
//! test binary since it installs a global allocator.

use rpc_core::codec::{self, Bincode, Codec, Incoming, Json};
use rpc_core::python::{Pickle, PyJson, PyValue, write};
use rpc_core::{ErrorKind, Value, budget};

/// The most bytes live at once while `f` runs.
fn peak_bytes(f: impl FnOnce()) -> u64 {
    allocation_counter::measure(f).bytes_max
}

#[test]
fn a_16_mib_junk_batch_is_refused_after_max_batch_plus_one_members() {
    let mut frame = b"[0".to_vec();
    while frame.len() < 16 << 20 {
        frame.extend_from_slice(b",0");
    }
    frame.push(b']');
    let mut refusal = None;
    let peak = peak_bytes(|| {
        refusal = Some(match Json.decode_request_within(&frame, 1024) {
            Incoming::Invalid { id, error } => (id, error),
            other => panic!("not refused: {other:?}"),
        });
    });
    let (id, error) = refusal.unwrap();
    assert_eq!(id, codec::Id::Null);
    assert_eq!(error.kind(), ErrorKind::InvalidRequest);
    assert_eq!(
        error.message(),
        "a batch of more than 1024 calls exceeds the limit of 1024 (max_batch)"
    );
    // 1024 borrowed members (16 KiB, doubled while growing), not 8 million.
    assert!(peak < 64 << 10, "refusing the batch allocated {peak} bytes");
}

/// `[{"a":null}, …]`: a B-tree leaf (about 640 bytes) for every 11 bytes.
fn objects(n: usize) -> Value {
    Value::from(vec![serde_json::json!({"a": null}); n])
}

#[test]
fn a_dense_value_is_refused_at_its_budget_in_every_codec() {
    let value = objects(100_000);
    let json = serde_json::to_vec(&value).unwrap();
    let bin = bincode::serde::encode_to_vec(&value, bincode::config::standard()).unwrap();
    let cases: [(&dyn Codec, &[u8]); 3] = [(&Json, &json), (&Bincode, &bin), (&PyJson, &json)];
    for (codec, bytes) in cases {
        let mut outcome = None;
        let peak = peak_bytes(|| outcome = Some(codec::decode::<Value>(codec, bytes)));
        let e = outcome.unwrap().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::OverBudget, "{}: {e}", codec.name());
        assert_eq!(
            e.message(),
            format!(
                "the value would take more than {} bytes of memory, the decode budget \
                 for its message (32 bytes per byte received, at least 65536)",
                budget::for_message(bytes.len())
            ),
            "{}",
            codec.name()
        );
        let limit = budget::for_message(bytes.len()) as u64;
        assert!(
            peak < limit + limit / 4,
            "{}: refusing allocated {peak} bytes, over the budget of {limit}",
            codec.name()
        );
    }
}

#[test]
fn honest_dense_values_fit_their_budget_in_every_codec() {
    // Small ints, short strings and records: what real callers send.
    let value = Value::from(serde_json::json!({
        "ints": (0..20_000).collect::<Vec<_>>(),
        "names": vec!["alice"; 5_000],
        "records": vec![serde_json::json!({"name": "alice", "age": 30}); 2_000],
    }));
    let json = serde_json::to_vec(&value).unwrap();
    let bin = bincode::serde::encode_to_vec(&value, bincode::config::standard()).unwrap();
    let pickle = write(&PyValue::from_json(value.clone().into_inner()));
    let cases: [(&dyn Codec, &[u8]); 4] = [
        (&Json, &json),
        (&Bincode, &bin),
        (&PyJson, &json),
        (&Pickle, &pickle),
    ];
    for (codec, bytes) in cases {
        let mut outcome = None;
        let peak = peak_bytes(|| outcome = Some(codec::decode::<Value>(codec, bytes)));
        let read = outcome
            .unwrap()
            .unwrap_or_else(|e| panic!("{}: {e}", codec.name()));
        assert_eq!(read, value, "{}", codec.name());
        assert!(
            peak < 64 * bytes.len() as u64,
            "{}: {} bytes allocated {peak} bytes",
            codec.name(),
            bytes.len()
        );
    }
}
