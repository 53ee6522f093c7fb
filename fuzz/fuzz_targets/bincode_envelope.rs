//! Any frame, read by the bincode codec as a request (server) and as a response (client).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rpc_core::codec::Bincode;

fuzz_target!(|frame: &[u8]| {
    rpc_fuzz::check_requests(&Bincode, frame);
    rpc_fuzz::check_responses(&Bincode, frame);
});
