//! Any bytes as the peer's challenge (answered, and the answer verifies) and
//! as the peer's answer to our challenge (refused unless it is the MAC). The
//! first byte says whether legacy HMAC-MD5 is allowed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rpc_transport::handshake::{CHALLENGE, answer_challenge, make_challenge, verify_answer};

const KEY: &[u8] = b"fuzz-key";

fuzz_target!(|data: &[u8]| {
    let Some((&flags, bytes)) = data.split_first() else {
        return;
    };
    let legacy = flags & 1 == 1;

    if let Ok(answer) = answer_challenge(KEY, bytes, legacy) {
        let message = &bytes[CHALLENGE.len()..];
        assert!(verify_answer(KEY, message, &answer, true).is_ok());
        assert!(verify_answer(b"another key", message, &answer, true).is_err());
    }

    let ours = make_challenge(&[0x42; 40]);
    let right = answer_challenge(KEY, &ours, false).expect("our own challenge");
    let verdict = verify_answer(KEY, &ours[CHALLENGE.len()..], bytes, legacy);
    assert_eq!(verdict.is_ok(), bytes == right.as_slice());
});
