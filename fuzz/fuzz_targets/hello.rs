//! Any frame read as a client's hello and as the server's answer to one;
//! a hello that reads is answered, and the answer reads back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rpc_transport::hello::{Answer, Hello};

fuzz_target!(|frame: &[u8]| {
    let _ = Answer::decode(frame);
    let Ok(hello) = Hello::decode(frame) else {
        return;
    };
    let codecs = ["bincode".to_owned(), "json".to_owned()];
    match (
        hello.answer(&codecs, 1 << 20),
        Answer::decode(&hello.answer(&codecs, 1 << 20).encode()),
    ) {
        (Answer::Accept(ours), Ok(back)) => assert_eq!(ours, back),
        (Answer::Refuse { .. }, Err(_)) => {}
        (answer, back) => panic!("{answer:?} read back as {back:?}"),
    }
});
