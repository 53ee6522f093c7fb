//! Any bytes read as a `Value`: the first byte picks the codec. What reads,
//! written again, reads back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rpc_core::codec::{Bincode, Json};

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    match which % 2 {
        0 => rpc_fuzz::check_value(&Bincode, bytes),
        _ => rpc_fuzz::check_value(&Json, bytes),
    }
});
