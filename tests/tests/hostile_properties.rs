//! Generated hostile sessions against a real server: after the hello, any
//! frames at all — noise, near-requests, near-batches — and the connection
//! still answers a good call under its own id, while a well-behaved client on
//! another connection is served throughout.

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use common::hostile::{
    ObservedServer, ProbeState, bincode_request, bincode_value, frame, raw_session,
    read_bincode_response,
};
use common::{expect_frame, within, within_for};
use proptest::prelude::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

/// One server for every case, on a runtime that outlives them.
struct Shared {
    runtime: Runtime,
    address: String,
    _server: ObservedServer,
    _state: std::sync::Arc<ProbeState>,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let (server, state) = runtime.block_on(ObservedServer::probe());
        Shared {
            address: server.address.clone(),
            runtime,
            _server: server,
            _state: state,
        }
    })
}

/// A JSON-RPC-looking frame: pieces of requests put together any which way.
fn jsonish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(r#"{"jsonrpc":"2.0","#.to_owned()),
        Just(r#""id":"#.to_owned()),
        Just(r#""method":"Probe.add","#.to_owned()),
        Just(r#""method":"Probe.echo","#.to_owned()),
        Just(r#""params":"#.to_owned()),
        Just(r#""deadline_ms":"#.to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just(",".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        "[a-z\"\\\\]{0,6}",
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat().into_bytes())
}

/// A bincode-looking frame: a request's head, then anything.
fn bincodeish() -> impl Strategy<Value = Vec<u8>> {
    (
        0u8..3,
        any::<u8>(),
        prop_oneof![Just("Probe.add"), Just("Probe.echo"), Just("Probe.reflect")],
        proptest::collection::vec(prop_oneof![3 => 0u8..10, 1 => any::<u8>()], 0..48),
    )
        .prop_map(|(kind, id, method, tail)| {
            let mut payload = bincode_request(u64::from(id), method, None, &());
            payload[0] = kind;
            payload.extend_from_slice(&tail);
            payload
        })
}

fn noise() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..128)
}

/// Sends `frames`, then a good `add` under an id no generated frame uses,
/// and reads until its answer arrives.
async fn good_call_is_answered_after(codec: &str, frames: &[Vec<u8>]) -> Result<(), TestCaseError> {
    let address = &shared().address;
    let mut stream = raw_session(address, codec, 1 << 20).await;
    let mut bytes: Vec<u8> = frames.iter().flat_map(|f| frame(f)).collect();
    const ID: u64 = 1 << 40;
    let good = match codec {
        "json" => format!(r#"{{"jsonrpc":"2.0","id":{ID},"method":"Probe.add","params":[2,3]}}"#)
            .into_bytes(),
        _ => bincode_request(ID, "Probe.add", None, &(2i64, 3i64)),
    };
    bytes.extend(frame(&good));
    within("the frames to be written", stream.write_all(&bytes))
        .await
        .expect("the server reads what it is sent");
    within_for(Duration::from_secs(10), "the good call's answer", async {
        loop {
            let answer = expect_frame(&mut stream, "answers").await;
            if is_good_answer(codec, &answer, ID) {
                return;
            }
        }
    })
    .await;
    assert_still_served(address).await;
    drop(stream);
    Ok(())
}

fn is_good_answer(codec: &str, answer: &[u8], id: u64) -> bool {
    if codec == "json" {
        let value: serde_json::Value = serde_json::from_slice(answer).expect("answers are JSON");
        return value == serde_json::json!({"jsonrpc": "2.0", "id": id, "result": 5});
    }
    read_bincode_response(answer) == (id, Ok(bincode_value(&5i64)))
}

/// Another connection, in the codec the case is not using, is answered.
async fn assert_still_served(address: &str) {
    let mut other: TcpStream = raw_session(address, "bincode", 1 << 20).await;
    let request = bincode_request(1, "Probe.add", None, &(40i64, 2i64));
    other
        .write_all(&frame(&request))
        .await
        .expect("writing a request");
    let answer = expect_frame(&mut other, "the other connection's answer").await;
    assert_eq!(
        read_bincode_response(&answer),
        (1, Ok(bincode_value(&42i64)))
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn after_any_json_frames_a_good_call_is_answered(
        frames in proptest::collection::vec(prop_oneof![jsonish(), noise()], 0..12),
    ) {
        shared().runtime.block_on(good_call_is_answered_after("json", &frames))?;
    }

    #[test]
    fn after_any_bincode_frames_a_good_call_is_answered(
        frames in proptest::collection::vec(prop_oneof![bincodeish(), noise()], 0..12),
    ) {
        shared().runtime.block_on(good_call_is_answered_after("bincode", &frames))?;
    }
}
