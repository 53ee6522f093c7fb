//! The wire, byte by byte: a raw `TcpStream` speaks the framing, the authkey
//! handshake, the hello and JSON-RPC 2.0 to a real server serving the
//! calculator, as a client in another language would.

mod common;

use std::time::Duration;

use common::{
    KEY, client_handshake, connect, expect_closed, expect_closed_within, expect_frame, expect_json,
    json_round_trip, raw_connect, raw_json_session, read_frame, say_hello, serve, serve_with,
    server_builder, write_frame,
};
use examples::calculator::{Calc, CalculatorClient, CalculatorServer};
use rpc_core::Registry;
use rpc_transport::handshake::{CHALLENGE, FAILURE};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

fn calculator() -> Registry {
    Registry::new()
        .with(CalculatorServer::new(Calc))
        .expect("the calculator registers")
}

/// A real (typed, bincode and json) client is still served at `address`.
async fn assert_still_serves(address: &str) {
    for codec in common::CODECS {
        let calc = CalculatorClient::new(connect(address, codec).await);
        let sum = common::within("add on a fresh connection", calc.add(40, 2)).await;
        assert_eq!(sum.expect("add succeeds"), 42, "{codec}");
    }
}

fn error_code(answer: &Value) -> i64 {
    answer["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("not an error answer: {answer}"))
}

#[tokio::test]
async fn a_hand_made_handshake_and_json_hello_are_answered_with_a_json_hello() {
    let server = serve(calculator()).await;
    let mut stream = raw_connect(&server.address).await;
    client_handshake(&mut stream, KEY).await;
    let answer = say_hello(&mut stream, "json").await;
    assert_eq!(answer["protocol"], 1, "{answer}");
    assert_eq!(answer["codec"], "json", "{answer}");
    assert!(answer["max_frame_bytes"].as_u64().is_some(), "{answer}");
    assert!(answer.get("error").is_none(), "{answer}");
}

#[tokio::test]
async fn a_positional_json_request_is_answered_with_exactly_the_result() {
    let server = serve(calculator()).await;
    let mut stream = raw_json_session(&server.address).await;
    write_frame(
        &mut stream,
        br#"{"jsonrpc":"2.0","id":1,"method":"Calculator.add","params":[2,3]}"#,
    )
    .await;
    let answer = expect_frame(&mut stream, "the answer to add").await;
    assert_eq!(
        String::from_utf8_lossy(&answer),
        r#"{"jsonrpc":"2.0","id":1,"result":5}"#
    );
}

#[tokio::test]
async fn named_json_params_are_accepted() {
    let server = serve(calculator()).await;
    let mut stream = raw_json_session(&server.address).await;
    let answer = json_round_trip(
        &mut stream,
        r#"{"jsonrpc":"2.0","id":7,"method":"Calculator.add","params":{"x":2,"y":3}}"#,
    )
    .await;
    assert_eq!(answer, json!({"jsonrpc": "2.0", "id": 7, "result": 5}));
}

#[tokio::test]
async fn a_bare_method_name_is_accepted_on_the_wire() {
    let server = serve(calculator()).await;
    let mut stream = raw_json_session(&server.address).await;
    let answer = json_round_trip(
        &mut stream,
        r#"{"jsonrpc":"2.0","id":"s-1","method":"add","params":[20,22]}"#,
    )
    .await;
    assert_eq!(answer, json!({"jsonrpc": "2.0", "id": "s-1", "result": 42}));
}

#[tokio::test]
async fn a_batch_of_two_requests_is_answered_by_one_array_frame_holding_both() {
    let server = serve(calculator()).await;
    let mut stream = raw_json_session(&server.address).await;
    let answer = json_round_trip(
        &mut stream,
        r#"[{"jsonrpc":"2.0","id":10,"method":"Calculator.add","params":[1,2]},
            {"jsonrpc":"2.0","id":11,"method":"Calculator.sub","params":[5,3]}]"#,
    )
    .await;
    let items = answer
        .as_array()
        .unwrap_or_else(|| panic!("a batch is answered by an array: {answer}"));
    assert_eq!(items.len(), 2, "{answer}");
    let by_id = |id: i64| {
        items
            .iter()
            .find(|item| item["id"] == id)
            .unwrap_or_else(|| panic!("no answer with id {id} in {answer}"))
    };
    assert_eq!(by_id(10), &json!({"jsonrpc": "2.0", "id": 10, "result": 3}));
    assert_eq!(by_id(11), &json!({"jsonrpc": "2.0", "id": 11, "result": 2}));
}

/// Two calls where the first can only finish once the second has run on.
#[rpc_core::rpc_service]
trait Gate {
    async fn wait(&self) -> bool;
    async fn open_later(&self) -> bool;
}

#[derive(Default)]
struct GateImpl(tokio::sync::Notify);

impl Gate for GateImpl {
    async fn wait(&self) -> bool {
        self.0.notified().await;
        true
    }

    async fn open_later(&self) -> bool {
        tokio::task::yield_now().await;
        self.0.notify_one();
        true
    }
}

#[tokio::test]
async fn the_members_of_a_batch_run_together() {
    let server = serve(
        Registry::new()
            .with(GateServer::new(GateImpl::default()))
            .unwrap(),
    )
    .await;
    let mut stream = raw_json_session(&server.address).await;
    let answer = json_round_trip(
        &mut stream,
        r#"[{"jsonrpc":"2.0","id":1,"method":"Gate.wait"},
            {"jsonrpc":"2.0","id":2,"method":"Gate.open_later"}]"#,
    )
    .await;
    let items = answer.as_array().unwrap_or_else(|| panic!("{answer}"));
    assert_eq!(items.len(), 2, "{answer}");
    assert!(items.iter().all(|item| item["result"] == true), "{answer}");
}

#[tokio::test]
async fn a_notification_gets_no_answer() {
    let server = serve(calculator()).await;
    let mut stream = raw_json_session(&server.address).await;
    write_frame(
        &mut stream,
        br#"{"jsonrpc":"2.0","method":"Calculator.add","params":[1,1]}"#,
    )
    .await;
    let answer = json_round_trip(
        &mut stream,
        r#"{"jsonrpc":"2.0","id":2,"method":"Calculator.add","params":[2,2]}"#,
    )
    .await;
    assert_eq!(answer, json!({"jsonrpc": "2.0", "id": 2, "result": 4}));
}

#[tokio::test]
async fn malformed_json_is_a_parse_error_and_the_connection_stays_usable() {
    let server = serve(calculator()).await;
    let mut stream = raw_json_session(&server.address).await;
    let answer = json_round_trip(&mut stream, r#"{"jsonrpc":"2.0","id":1,"meth"#).await;
    assert_eq!(answer["jsonrpc"], "2.0", "{answer}");
    assert_eq!(answer["id"], Value::Null, "{answer}");
    assert!(answer.get("result").is_none(), "{answer}");
    assert_eq!(error_code(&answer), -32700, "{answer}");
    assert!(answer["error"]["message"].is_string(), "{answer}");

    let answer = json_round_trip(
        &mut stream,
        r#"{"jsonrpc":"2.0","id":2,"method":"Calculator.add","params":[2,3]}"#,
    )
    .await;
    assert_eq!(answer, json!({"jsonrpc": "2.0", "id": 2, "result": 5}));
}

#[tokio::test]
async fn valid_json_of_the_wrong_shape_is_an_invalid_request() {
    let server = serve(calculator()).await;
    let mut stream = raw_json_session(&server.address).await;
    // Answered under the request's id when that much can be read.
    for (request, id) in [
        (r#"{"hello":"world"}"#, json!(null)),
        (r#"{"jsonrpc":"2.0","id":3}"#, json!(3)),
        (
            r#"{"jsonrpc":"1.0","id":4,"method":"Calculator.add","params":[1,2]}"#,
            json!(4),
        ),
        ("42", json!(null)),
        ("[]", json!(null)),
    ] {
        let answer = json_round_trip(&mut stream, request).await;
        assert_eq!(error_code(&answer), -32600, "{request} → {answer}");
        assert_eq!(answer["id"], id, "{request} → {answer}");
        assert_eq!(answer["jsonrpc"], "2.0", "{request} → {answer}");
    }
    let answer = json_round_trip(
        &mut stream,
        r#"{"jsonrpc":"2.0","id":5,"method":"Calculator.sub","params":[2,3]}"#,
    )
    .await;
    assert_eq!(answer, json!({"jsonrpc": "2.0", "id": 5, "result": -1}));
}

#[tokio::test]
async fn an_unknown_method_on_the_wire_is_method_not_found() {
    let server = serve(calculator()).await;
    let mut stream = raw_json_session(&server.address).await;
    let answer = json_round_trip(
        &mut stream,
        r#"{"jsonrpc":"2.0","id":1,"method":"Calculator.mul","params":[2,3]}"#,
    )
    .await;
    assert_eq!(answer["id"], 1, "{answer}");
    assert_eq!(error_code(&answer), -32601, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("Calculator.mul"), "{answer}");
}

#[tokio::test]
async fn wrong_params_on_the_wire_are_invalid_params() {
    let server = serve(calculator()).await;
    let mut stream = raw_json_session(&server.address).await;
    for (id, params) in [
        (1, r#"["two",3]"#),
        (2, r#"{"x":2}"#),
        (3, r#"{"x":2,"y":{"z":1}}"#),
    ] {
        let request =
            format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"Calculator.add","params":{params}}}"#);
        let answer = json_round_trip(&mut stream, &request).await;
        assert_eq!(answer["id"], id, "{request} → {answer}");
        assert_eq!(error_code(&answer), -32602, "{request} → {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("Calculator.add"), "{request} → {answer}");
    }
}

#[tokio::test]
async fn a_typed_error_is_code_minus_32000_with_the_serialized_error_as_data() {
    let server = serve(calculator()).await;
    let mut stream = raw_json_session(&server.address).await;
    let answer = json_round_trip(
        &mut stream,
        r#"{"jsonrpc":"2.0","id":9,"method":"Calculator.div","params":[1,0]}"#,
    )
    .await;
    assert_eq!(answer["id"], 9, "{answer}");
    assert_eq!(error_code(&answer), -32000, "{answer}");
    assert_eq!(answer["error"]["data"], json!("DivideByZero"), "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("division by zero"), "{answer}");

    let answer = json_round_trip(
        &mut stream,
        r#"{"jsonrpc":"2.0","id":10,"method":"Calculator.div","params":[6,3]}"#,
    )
    .await;
    assert_eq!(answer, json!({"jsonrpc": "2.0", "id": 10, "result": 2}));
}

#[tokio::test]
async fn a_request_frame_written_one_byte_at_a_time_is_answered() {
    let server = serve(calculator()).await;
    let mut stream = raw_json_session(&server.address).await;
    let payload = br#"{"jsonrpc":"2.0","id":1,"method":"Calculator.add","params":[2,3]}"#;
    let mut frame = (payload.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(payload);
    for byte in frame {
        stream.write_all(&[byte]).await.expect("writing a byte");
        stream.flush().await.expect("flushing a byte");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let answer = expect_json(&mut stream, "the answer to the trickled request").await;
    assert_eq!(answer, json!({"jsonrpc": "2.0", "id": 1, "result": 5}));
}

#[tokio::test]
async fn eof_mid_frame_closes_that_connection_and_the_server_serves_the_next() {
    let server = serve(calculator()).await;
    let mut stream = raw_json_session(&server.address).await;
    let payload = br#"{"jsonrpc":"2.0","id":1,"method":"Calculator.add","params":[2,3]}"#;
    let mut half = (payload.len() as u32).to_be_bytes().to_vec();
    half.extend_from_slice(&payload[..payload.len() / 2]);
    stream.write_all(&half).await.expect("writing half a frame");
    stream.shutdown().await.expect("closing our side");
    let leftover = expect_closed(&mut stream).await;
    assert!(
        leftover.is_empty(),
        "nothing answers half a frame: {leftover:?}"
    );

    let mut next = raw_json_session(&server.address).await;
    let answer = json_round_trip(
        &mut next,
        r#"{"jsonrpc":"2.0","id":1,"method":"Calculator.add","params":[2,3]}"#,
    )
    .await;
    assert_eq!(answer, json!({"jsonrpc": "2.0", "id": 1, "result": 5}));
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn a_frame_declared_over_the_limit_closes_the_connection_without_its_body_being_read() {
    let config = server_builder()
        .max_frame_bytes(4096)
        .build()
        .expect("a valid server config");
    let server = serve_with(config, calculator()).await;
    let mut stream = raw_connect(&server.address).await;
    client_handshake(&mut stream, KEY).await;
    let answer = say_hello(&mut stream, "json").await;
    assert_eq!(answer["max_frame_bytes"], 4096, "{answer}");

    // Only the header: a server that waited for the declared body would hang
    // here, so the close proves the length was checked on its own.
    stream
        .write_all(&1_000_000u32.to_be_bytes())
        .await
        .expect("writing the header");
    expect_closed(&mut stream).await;

    // One byte over the limit, with a body: also refused.
    let mut stream = raw_json_session(&server.address).await;
    let mut frame = 4097u32.to_be_bytes().to_vec();
    frame.extend_from_slice(&[b' '; 4097]);
    stream.write_all(&frame).await.expect("writing the frame");
    expect_closed(&mut stream).await;

    let mut next = raw_json_session(&server.address).await;
    let answer = json_round_trip(
        &mut next,
        r#"{"jsonrpc":"2.0","id":1,"method":"Calculator.add","params":[2,3]}"#,
    )
    .await;
    assert_eq!(answer, json!({"jsonrpc": "2.0", "id": 1, "result": 5}));
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn an_http_request_before_authentication_is_refused_from_its_first_bytes() {
    let server = serve(calculator()).await;
    let mut stream = raw_connect(&server.address).await;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("writing the HTTP request");
    // The default handshake timeout is 5 s: a close well before it (and
    // before our own bound) comes from the length check, not the timer.
    let seen = expect_closed_within(&mut stream, Duration::from_secs(4)).await;
    assert!(
        seen.is_empty()
            || seen
                .get(4..)
                .is_some_and(|rest| rest.starts_with(CHALLENGE)),
        "at most the server's challenge arrives: {:?}",
        String::from_utf8_lossy(&seen)
    );
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn a_client_that_sends_nothing_is_closed_after_the_handshake_timeout() {
    let config = server_builder()
        .handshake_timeout(Duration::from_millis(200))
        .build()
        .expect("a valid server config");
    let server = serve_with(config, calculator()).await;
    let mut stream = raw_connect(&server.address).await;
    let challenge = expect_frame(&mut stream, "the server's challenge").await;
    assert!(challenge.starts_with(CHALLENGE));
    let seen = expect_closed(&mut stream).await;
    assert!(seen.is_empty(), "{seen:?}");
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn a_wrong_answer_to_the_challenge_gets_failure_and_a_close() {
    let server = serve(calculator()).await;
    let mut stream = raw_connect(&server.address).await;
    let challenge = expect_frame(&mut stream, "the server's challenge").await;
    assert!(challenge.starts_with(CHALLENGE));
    let mut wrong = b"{sha256}".to_vec();
    wrong.extend_from_slice(&[0u8; 32]);
    write_frame(&mut stream, &wrong).await;
    let verdict = read_frame(&mut stream).await;
    assert_eq!(verdict.as_deref(), Some(FAILURE));
    expect_closed(&mut stream).await;
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn after_every_kind_of_refused_connection_a_real_client_is_still_served() {
    let config = server_builder()
        .handshake_timeout(Duration::from_millis(200))
        .build()
        .expect("a valid server config");
    let server = serve_with(config, calculator()).await;

    let mut http = raw_connect(&server.address).await;
    http.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("writing the HTTP request");
    let mut silent = raw_connect(&server.address).await;
    let mut wrong = raw_connect(&server.address).await;
    expect_frame(&mut wrong, "the server's challenge").await;
    write_frame(&mut wrong, b"{sha256}not-the-mac-at-all-not-the-mac-at-all").await;

    expect_closed(&mut http).await;
    expect_closed(&mut silent).await;
    expect_closed(&mut wrong).await;
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn a_hello_asking_for_an_unknown_codec_is_refused_by_name_then_closed() {
    let server = serve(calculator()).await;
    let mut stream = raw_connect(&server.address).await;
    client_handshake(&mut stream, KEY).await;
    let answer = say_hello(&mut stream, "cbor").await;
    let error = answer["error"]
        .as_str()
        .unwrap_or_else(|| panic!("a refusal is {{\"error\": ...}}: {answer}"));
    assert!(error.contains("cbor"), "{answer}");
    assert!(
        error.contains("bincode") && error.contains("json"),
        "{answer}"
    );
    let seen = expect_closed(&mut stream).await;
    assert!(seen.is_empty(), "nothing follows a refusal: {seen:?}");
    assert_still_serves(&server.address).await;
}
