//! Hostile framing, before and after authentication: empty frames and floods
//! of them, lengths of 2^31-1 and 2^63, negative lengths, the long form,
//! frames trickled a byte at a time, and streams that end mid-header or
//! mid-body. A bad length ends its connection at once with an error naming
//! it; the server goes on serving.

mod common;

use std::time::Duration;

use common::hostile::{
    ObservedServer, assert_still_serves, bincode_request, challenge_of, frame, long_header,
    raw_session, read_bincode_response, write_raw,
};
use common::{
    KEY, client_handshake, expect_closed, expect_frame, expect_json, json_round_trip, raw_connect,
    raw_json_session, read_frame, within,
};
use rpc_core::ErrorKind;
use rpc_transport::config::Limits;
use rpc_transport::handshake::FAILURE;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ADD: &str = r#"{"jsonrpc":"2.0","id":1,"method":"Probe.add","params":[2,3]}"#;

/// Where in the session a hostile frame is sent.
#[derive(Clone, Copy, Debug)]
enum Stage {
    /// As the answer to the server's challenge.
    Handshake,
    /// In place of the hello.
    Hello,
    /// After the hello, as a request.
    Calls,
}

const STAGES: [Stage; 3] = [Stage::Handshake, Stage::Hello, Stage::Calls];

/// A raw connection brought to `stage`.
async fn at(stage: Stage, address: &str) -> TcpStream {
    match stage {
        Stage::Handshake => {
            let mut stream = raw_connect(address).await;
            challenge_of(&mut stream).await;
            stream
        }
        Stage::Hello => {
            let mut stream = raw_connect(address).await;
            client_handshake(&mut stream, KEY).await;
            stream
        }
        Stage::Calls => raw_json_session(address).await,
    }
}

/// The kind and message a connection ended by a bad frame at `stage` ends with.
fn expected(stage: Stage, frame_error: &str, kind_after_auth: ErrorKind) -> (ErrorKind, String) {
    match stage {
        Stage::Handshake => (
            ErrorKind::Authentication,
            format!("framing error during the authentication handshake: {frame_error}"),
        ),
        Stage::Hello | Stage::Calls => (kind_after_auth, frame_error.to_owned()),
    }
}

/// Sends `bytes` at every stage and asserts the server closes the
/// connection at once, ending it with `(kind, message)` from `expect`.
async fn assert_each_stage_refuses(bytes: &[u8], expect: impl Fn(Stage) -> (ErrorKind, String)) {
    let (mut server, _) = ObservedServer::probe().await;
    for stage in STAGES {
        let mut stream = at(stage, &server.address).await;
        write_raw(&mut stream, bytes).await;
        let seen = expect_closed(&mut stream).await;
        assert!(
            seen.is_empty(),
            "{stage:?}: nothing answers a bad frame: {seen:?}"
        );
        let e = server.next_error().await;
        let (kind, message) = expect(stage);
        assert_eq!((e.kind(), e.message()), (kind, &*message), "{stage:?}");
    }
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn a_length_of_2_pow_31_minus_1_is_refused_from_its_header_at_every_stage() {
    let header = i32::MAX.to_be_bytes();
    assert_each_stage_refuses(&header, |stage| match stage {
        Stage::Handshake => (
            ErrorKind::Authentication,
            "handshake frame of 2147483647 bytes exceeds the 256-byte cap".into(),
        ),
        _ => (
            ErrorKind::FrameTooLarge,
            "frame of 2147483647 bytes exceeds the limit of 16777216 bytes".into(),
        ),
    })
    .await;
}

#[tokio::test]
async fn an_eight_byte_length_of_2_pow_63_is_refused_from_its_header_at_every_stage() {
    assert_each_stage_refuses(&long_header(1 << 63), |stage| match stage {
        Stage::Handshake => (
            ErrorKind::Authentication,
            "handshake frame of 9223372036854775808 bytes exceeds the 256-byte cap".into(),
        ),
        _ => (
            ErrorKind::FrameTooLarge,
            "frame of 9223372036854775808 bytes exceeds the limit of 16777216 bytes".into(),
        ),
    })
    .await;
}

#[tokio::test]
async fn negative_lengths_other_than_minus_one_are_protocol_errors_at_every_stage() {
    for n in [-2, i32::MIN] {
        let message = format!("invalid frame length {n}: the only negative length allowed is -1");
        assert_each_stage_refuses(&n.to_be_bytes(), |stage| {
            expected(stage, &message, ErrorKind::Protocol)
        })
        .await;
    }
}

#[tokio::test]
async fn eof_mid_header_ends_the_connection_with_how_far_it_got() {
    let (mut server, _) = ObservedServer::probe().await;
    for stage in STAGES {
        let mut stream = at(stage, &server.address).await;
        write_raw(&mut stream, &[0, 0]).await;
        stream.shutdown().await.expect("closing our side");
        expect_closed(&mut stream).await;
        let e = server.next_error().await;
        let (kind, message) = match stage {
            Stage::Calls => (
                ErrorKind::ConnectionLost,
                "the client closed the connection 2 bytes into a frame".to_owned(),
            ),
            _ => expected(
                stage,
                "connection closed mid-frame after 2 of 4 bytes",
                ErrorKind::ConnectionLost,
            ),
        };
        assert_eq!((e.kind(), e.message()), (kind, &*message), "{stage:?}");
    }
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn eof_mid_long_header_and_mid_body_end_the_connection_with_how_far_it_got() {
    let (mut server, _) = ObservedServer::probe().await;
    let mid_long_header = long_header(5)[..7].to_vec();
    let mid_body = [&40u32.to_be_bytes()[..], b"{\"jsonrpc\""].concat();
    for (bytes, have, need) in [(mid_long_header, 7, 12), (mid_body, 14, 44)] {
        for stage in STAGES {
            let mut stream = at(stage, &server.address).await;
            write_raw(&mut stream, &bytes).await;
            stream.shutdown().await.expect("closing our side");
            expect_closed(&mut stream).await;
            let e = server.next_error().await;
            let (kind, message) = match stage {
                Stage::Calls => (
                    ErrorKind::ConnectionLost,
                    format!("the client closed the connection {have} bytes into a frame"),
                ),
                _ => expected(
                    stage,
                    &format!("connection closed mid-frame after {have} of {need} bytes"),
                    ErrorKind::ConnectionLost,
                ),
            };
            assert_eq!((e.kind(), e.message()), (kind, &*message), "{stage:?}");
        }
    }
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn an_empty_json_request_frame_is_a_parse_error_and_the_connection_stays_usable() {
    let (server, _) = ObservedServer::probe().await;
    let mut stream = raw_json_session(&server.address).await;
    let answer = json_round_trip(&mut stream, "").await;
    assert_eq!(answer["id"], json!(null), "{answer}");
    assert_eq!(answer["error"]["code"], ErrorKind::Parse.code(), "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("the request is not valid JSON: EOF"),
        "{answer}"
    );
    let answer = json_round_trip(&mut stream, ADD).await;
    assert_eq!(answer, json!({"jsonrpc": "2.0", "id": 1, "result": 5}));
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn an_empty_bincode_request_frame_is_a_parse_error_and_the_connection_stays_usable() {
    let (server, _) = ObservedServer::probe().await;
    let mut stream = raw_session(&server.address, "bincode", 1 << 20).await;
    write_raw(&mut stream, &frame(b"")).await;
    let (id, outcome) = read_bincode_response(&expect_frame(&mut stream, "an answer").await);
    assert_eq!(id, 0);
    let (code, message) = outcome.expect_err("an empty frame is no request");
    assert_eq!(code, ErrorKind::Parse.code(), "{message}");
    assert!(message.starts_with("a request is malformed"), "{message}");

    let request = bincode_request(9, "Probe.add", None, &(2i64, 3i64));
    write_raw(&mut stream, &frame(&request)).await;
    let (id, outcome) = read_bincode_response(&expect_frame(&mut stream, "an answer").await);
    assert_eq!(id, 9);
    assert_eq!(
        outcome.expect("add succeeds"),
        common::hostile::bincode_value(&5i64)
    );
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn an_empty_hello_is_refused_as_not_a_hello() {
    let (mut server, _) = ObservedServer::probe().await;
    let mut stream = at(Stage::Hello, &server.address).await;
    write_raw(&mut stream, &frame(b"")).await;
    expect_closed(&mut stream).await;
    let e = server.next_error().await;
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
    assert!(
        e.message()
            .starts_with("the first frame after authentication is not a hello: EOF"),
        "{e}"
    );
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn a_flood_of_empty_frames_before_authentication_gets_one_failure() {
    let (mut server, _) = ObservedServer::probe().await;
    let mut stream = at(Stage::Handshake, &server.address).await;
    write_raw(&mut stream, &[0u8; 4 * 10_000]).await;
    assert_eq!(read_frame(&mut stream).await.as_deref(), Some(FAILURE));
    expect_closed(&mut stream).await;
    let e = server.next_error().await;
    assert_eq!(e.kind(), ErrorKind::Authentication, "{e}");
    assert!(
        e.message()
            .contains("malformed handshake message of 0 bytes"),
        "{e}"
    );
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn a_flood_of_empty_frames_under_a_raised_invalid_message_limit_is_answered_one_by_one() {
    const FLOOD: usize = 20_000;
    let limits = Limits {
        max_invalid_messages: FLOOD as u32 + 1,
        ..Limits::default()
    };
    let config = common::server_builder()
        .limits(limits)
        .build()
        .expect("a valid config");
    let (server, _) = ObservedServer::probe_with(config).await;
    let stream = raw_json_session(&server.address).await;
    let (mut read, mut write) = stream.into_split();
    let flood = tokio::spawn(async move {
        let mut bytes = vec![0u8; 4 * FLOOD];
        bytes.extend_from_slice(&frame(ADD.as_bytes()));
        write.write_all(&bytes).await.expect("writing the flood");
        write
    });
    let parse_error = within("the flood's answers", async {
        let mut last = Vec::new();
        for _ in 0..FLOOD {
            last = read_payload(&mut read).await;
        }
        last
    })
    .await;
    let parse_error: serde_json::Value = serde_json::from_slice(&parse_error).expect("JSON");
    assert_eq!(
        parse_error["error"]["code"],
        ErrorKind::Parse.code(),
        "{parse_error}"
    );
    let answer: serde_json::Value =
        serde_json::from_slice(&within("the call after the flood", read_payload(&mut read)).await)
            .expect("JSON");
    assert_eq!(answer, json!({"jsonrpc": "2.0", "id": 1, "result": 5}));
    drop(within("the flood to be written", flood).await);
    assert_still_serves(&server.address).await;
}

/// One frame's payload from a read half.
async fn read_payload(read: &mut tokio::net::tcp::OwnedReadHalf) -> Vec<u8> {
    let len = read.read_u32().await.expect("a frame header");
    let mut payload = vec![0; len as usize];
    read.read_exact(&mut payload).await.expect("a frame body");
    payload
}

#[tokio::test]
async fn a_small_frame_in_the_eight_byte_form_is_answered() {
    let (server, _) = ObservedServer::probe().await;
    let mut stream = raw_json_session(&server.address).await;
    let mut bytes = long_header(ADD.len() as u64);
    bytes.extend_from_slice(ADD.as_bytes());
    write_raw(&mut stream, &bytes).await;
    let answer = expect_json(&mut stream, "the answer").await;
    assert_eq!(answer, json!({"jsonrpc": "2.0", "id": 1, "result": 5}));
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn frames_trickled_a_byte_at_a_time_across_header_forms_are_answered() {
    let (server, _) = ObservedServer::probe().await;
    let mut stream = raw_json_session(&server.address).await;
    let mut bytes = long_header(ADD.len() as u64);
    bytes.extend_from_slice(ADD.as_bytes());
    bytes.extend_from_slice(&frame(ADD.replace("\"id\":1", "\"id\":2").as_bytes()));
    for byte in bytes {
        write_raw(&mut stream, &[byte]).await;
        tokio::time::sleep(Duration::from_micros(300)).await;
    }
    for id in [1, 2] {
        let answer = expect_json(&mut stream, "an answer").await;
        assert_eq!(answer, json!({"jsonrpc": "2.0", "id": id, "result": 5}));
    }
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn many_frames_in_one_write_are_each_answered_in_order_of_completion() {
    let (server, _) = ObservedServer::probe().await;
    let mut stream = raw_json_session(&server.address).await;
    let mut bytes = Vec::new();
    for id in 0..500 {
        let request =
            format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"Probe.add","params":[{id},1]}}"#);
        bytes.extend_from_slice(&frame(request.as_bytes()));
    }
    write_raw(&mut stream, &bytes).await;
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..500 {
        let answer = expect_json(&mut stream, "an answer").await;
        let id = answer["id"].as_i64().expect("a numeric id");
        assert_eq!(answer["result"], id + 1, "{answer}");
        assert!(seen.insert(id), "answered twice: {answer}");
    }
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn a_hello_announcing_a_frame_limit_no_reply_fits_in_is_refused() {
    let (mut server, _) = ObservedServer::probe().await;
    let mut stream = at(Stage::Hello, &server.address).await;
    let hello = json!({"protocol": 1, "codec": "json", "max_frame_bytes": 10});
    write_raw(&mut stream, &frame(hello.to_string().as_bytes())).await;
    let answer = expect_json(&mut stream, "the answer to the hello").await;
    let refusal = "the client's largest frame of 10 bytes is below the 1024-byte minimum";
    assert_eq!(answer, json!({"error": refusal}));
    expect_closed(&mut stream).await;
    let e = server.next_error().await;
    assert_eq!((e.kind(), e.message()), (ErrorKind::Protocol, refusal));
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn a_flood_of_empty_frames_is_cut_off_at_the_invalid_message_limit() {
    let (mut server, _) = ObservedServer::probe().await;
    let mut stream = raw_json_session(&server.address).await;
    let limit = Limits::default().max_invalid_messages as usize;
    // Whatever the server did not read when it closed is simply lost.
    let _ = stream.write_all(&vec![0u8; 4 * 20_000]).await;
    let mut answers = 0;
    while let Some(answer) = read_frame(&mut stream).await {
        let answer: serde_json::Value = serde_json::from_slice(&answer).expect("JSON");
        assert_eq!(answer["error"]["code"], ErrorKind::Parse.code(), "{answer}");
        answers += 1;
    }
    assert_eq!(
        answers, limit,
        "answered until the limit closed the connection"
    );
    let error = server.next_error().await;
    assert_eq!(error.kind(), ErrorKind::Protocol, "{error}");
    assert!(
        error
            .message()
            .starts_with(&format!("closed after {limit} invalid messages")),
        "{error}"
    );
    assert_still_serves(&server.address).await;
}
