//! Checks shared by the fuzz targets: what every decoder must guarantee for
//! any input, beyond not panicking.

use bytes::BytesMut;
use rpc_core::Value;
use rpc_core::codec::{self, Codec, Id, Inbound, Incoming};

/// Reads `frame` as a request, as a server would, and checks that every
/// call's parameters are a slice of the frame (or the `[]` of a JSON call
/// without any) and that reading them as a [`Value`] ends.
pub fn check_requests(codec: &dyn Codec, frame: &[u8]) {
    let mut pending = vec![codec.decode_request(frame)];
    while let Some(incoming) = pending.pop() {
        match incoming {
            Incoming::Request(request) => {
                let within = frame.as_ptr_range();
                let params = request.params.as_ptr_range();
                assert!(
                    (params.start >= within.start && params.end <= within.end)
                        || request.params == b"[]",
                    "parameters outside the frame"
                );
                let _ = codec::decode::<Value>(codec, request.params);
            }
            Incoming::Batch(items) => pending.extend(items),
            _ => {}
        }
    }
}

/// Reads `frame` as a response, as a client would, and reads the result or
/// the error's data it locates (slicing panics if a range is out of bounds).
pub fn check_responses(codec: &'static dyn Codec, frame: &[u8]) {
    let Ok(Inbound::Response { outcome, .. }) = codec.decode_response(frame) else {
        return;
    };
    let located = match &outcome {
        Ok(result) => Some(result.clone()),
        Err(fault) => fault.data.clone(),
    };
    if let Some(range) = located {
        let _ = codec::decode::<Value>(codec, &frame[range]);
    }
    let frame = bytes::Bytes::copy_from_slice(frame);
    let _ = rpc_core::Response::new(codec, frame, outcome).into_result::<Value>();
}

/// Reads `bytes` as a [`Value`]; whatever reads, written again, reads back
/// the same.
pub fn check_value(codec: &dyn Codec, bytes: &[u8]) {
    let Ok(value) = codec::decode::<Value>(codec, bytes) else {
        return;
    };
    let mut buf = BytesMut::new();
    codec
        .encode_response(&mut buf, &Id::Num(0), &Ok(Box::new(value.clone())))
        .expect("a decoded value encodes");
    let Ok(Inbound::Response { outcome, .. }) = codec.decode_response(&buf) else {
        panic!("our own response does not decode");
    };
    let range = outcome.expect("an ok response");
    let back: Value = codec::decode(codec, &buf[range]).expect("our own value decodes");
    assert_eq!(back, value);
}
