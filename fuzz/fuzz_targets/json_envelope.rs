//! Any frame, read by the JSON codec as a request (server) and as a response (client).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rpc_core::codec::Json;

fuzz_target!(|frame: &[u8]| {
    rpc_fuzz::check_requests(&Json, frame);
    rpc_fuzz::check_responses(&Json, frame);
});
