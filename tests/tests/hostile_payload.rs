//! Hostile payloads inside well-formed frames, in both codecs: garbage,
//! envelopes of the wrong kind, wrong arguments, unknown methods, deep
//! nesting, lengths that claim more than the frame holds, invalid UTF-8,
//! NaN and infinities, and a JSON-RPC batch of 100,000 calls. Each gets an
//! error answer saying what is wrong, and the connection stays usable.

mod common;

use common::hostile::{
    ObservedServer, ProbeClient, assert_still_serves, bincode_request, bincode_value, frame,
    raw_session, read_bincode_response, write_raw,
};
use common::{
    CODECS, KEY, client_handshake, connect, expect_closed, expect_frame, expect_json,
    json_round_trip, raw_connect, raw_json_session, within, write_frame,
};
use rpc_core::ErrorKind;
use rpc_transport::config::Limits;
use serde_json::{Value, json};
use tokio::net::TcpStream;

const ADD: &str = r#"{"jsonrpc":"2.0","id":1,"method":"Probe.add","params":[2,3]}"#;

/// Asserts `answer` is an error answer with `kind`'s code, under `id`, whose
/// message contains `needle`.
#[track_caller]
fn assert_error(answer: &Value, id: Value, kind: ErrorKind, needle: &str) {
    assert_eq!(answer["jsonrpc"], "2.0", "{answer}");
    assert_eq!(answer["id"], id, "{answer}");
    assert!(answer.get("result").is_none(), "{answer}");
    assert_eq!(answer["error"]["code"], kind.code(), "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(needle), "expected {needle:?} in {answer}");
}

/// A server that answers every invalid message instead of closing the
/// connection after `max_invalid_messages` of them (see `hostile_framing`).
fn tolerant() -> rpc_transport::ServerConfig {
    let limits = Limits {
        max_invalid_messages: u32::MAX,
        ..Limits::default()
    };
    common::server_builder()
        .limits(limits)
        .build()
        .expect("a valid config")
}

/// The connection still answers a good JSON request.
async fn assert_json_usable(stream: &mut TcpStream) {
    let answer = json_round_trip(stream, ADD).await;
    assert_eq!(answer, json!({"jsonrpc": "2.0", "id": 1, "result": 5}));
}

/// Sends a bincode request payload and reads the answer as the client would.
async fn bincode_round_trip(
    stream: &mut TcpStream,
    payload: &[u8],
) -> (u64, Result<Vec<u8>, (i32, String)>) {
    write_raw(stream, &frame(payload)).await;
    read_bincode_response(&expect_frame(stream, "a bincode answer").await)
}

/// The connection still answers a good bincode request.
async fn assert_bincode_usable(stream: &mut TcpStream) {
    let request = bincode_request(77, "Probe.add", None, &(2i64, 3i64));
    let (id, outcome) = bincode_round_trip(stream, &request).await;
    assert_eq!((id, outcome), (77, Ok(bincode_value(&5i64))));
}

/// `n` bytes from a fixed xorshift sequence seeded with `seed`.
fn garbage(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[tokio::test]
async fn random_garbage_gets_one_error_answer_per_frame_in_both_codecs() {
    let (server, state) = ObservedServer::probe_with(tolerant()).await;
    let mut json = raw_json_session(&server.address).await;
    let mut bincode = raw_session(&server.address, "bincode", 1 << 20).await;
    for seed in 0..300u64 {
        let bytes = garbage(seed, 1 + (seed as usize * 7) % 700);
        let answer = json_round_trip(&mut json, &String::from_utf8_lossy(&bytes)).await;
        assert_eq!(answer["id"], Value::Null, "seed {seed}: {answer}");
        let code = answer["error"]["code"].as_i64().unwrap_or_default();
        assert!(
            [ErrorKind::Parse.code(), ErrorKind::InvalidRequest.code()].contains(&(code as i32)),
            "seed {seed}: {answer}"
        );

        let (_, outcome) = bincode_round_trip(&mut bincode, &bytes).await;
        let (code, message) = outcome.expect_err("garbage is never a good call");
        let kind = ErrorKind::from_code(code);
        assert!(
            matches!(
                kind,
                ErrorKind::Parse | ErrorKind::InvalidRequest | ErrorKind::MethodNotFound
            ),
            "seed {seed}: {kind:?}: {message}"
        );
    }
    assert_eq!(state.entered.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_json_usable(&mut json).await;
    assert_bincode_usable(&mut bincode).await;
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn a_bincode_message_of_another_kind_is_an_invalid_request_under_its_id() {
    let (server, _) = ObservedServer::probe().await;
    let mut stream = raw_session(&server.address, "bincode", 1 << 20).await;
    for kind in [1u8, 10, 255] {
        let mut payload = bincode_request(41, "Probe.add", None, &(2i64, 3i64));
        payload[0] = kind;
        let (id, outcome) = bincode_round_trip(&mut stream, &payload).await;
        assert_eq!(id, 41);
        let (code, message) = outcome.expect_err("not a request");
        assert_eq!(code, ErrorKind::InvalidRequest.code(), "{message}");
        assert_eq!(
            message,
            format!("unexpected message kind {kind} from the client")
        );
    }
    assert_bincode_usable(&mut stream).await;
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn json_ids_and_methods_of_the_wrong_type_are_invalid_requests() {
    let (server, state) = ObservedServer::probe().await;
    let mut stream = raw_json_session(&server.address).await;
    for (request, id, needle) in [
        (
            r#"{"jsonrpc":"2.0","id":[1],"method":"Probe.add","params":[2,3]}"#,
            Value::Null,
            "`id` must be",
        ),
        (
            r#"{"jsonrpc":"2.0","id":{"a":1},"method":"Probe.add","params":[2,3]}"#,
            Value::Null,
            "`id` must be",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1.5,"method":"Probe.add","params":[2,3]}"#,
            Value::Null,
            "`id` must be",
        ),
        (
            r#"{"jsonrpc":"2.0","id":-1,"method":"Probe.add","params":[2,3]}"#,
            Value::Null,
            "`id` must be",
        ),
        (
            r#"{"jsonrpc":"2.0","id":true,"method":"Probe.add","params":[2,3]}"#,
            Value::Null,
            "`id` must be",
        ),
        (
            r#"{"jsonrpc":"2.0","id":7,"method":5,"params":[2,3]}"#,
            json!(7),
            "not a JSON-RPC request",
        ),
        (
            r#"{"jsonrpc":"2.0","id":8,"method":null}"#,
            json!(8),
            "not a JSON-RPC request",
        ),
        (
            r#"{"jsonrpc":2,"id":9,"method":"Probe.add"}"#,
            json!(9),
            "not a JSON-RPC request",
        ),
        (
            r#"{"jsonrpc":"2.0","id":10,"method":"Probe.add","params":[2,3],"deadline_ms":-1}"#,
            json!(10),
            "not a JSON-RPC request",
        ),
    ] {
        let answer = json_round_trip(&mut stream, request).await;
        assert_error(&answer, id, ErrorKind::InvalidRequest, needle);
    }
    assert_eq!(state.entered.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_json_usable(&mut stream).await;
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn wrong_argument_counts_and_types_are_invalid_params_in_json() {
    let (server, state) = ObservedServer::probe().await;
    let mut stream = raw_json_session(&server.address).await;
    for (id, params) in [
        (1, "[2,3,4]"),
        (2, "[2]"),
        (3, "[]"),
        (4, "null"),
        (5, r#""2,3""#),
        (6, "[2.5,3]"),
        (7, "[9223372036854775808,1]"),
        (8, r#"{"x":2,"y":3,"z":4}"#),
    ] {
        let request =
            format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"Probe.add","params":{params}}}"#);
        let answer = json_round_trip(&mut stream, &request).await;
        assert_error(&answer, json!(id), ErrorKind::InvalidParams, "Probe.add");
    }
    let answer = json_round_trip(
        &mut stream,
        r#"{"jsonrpc":"2.0","id":9,"method":"Probe.add"}"#,
    )
    .await;
    assert_error(&answer, json!(9), ErrorKind::InvalidParams, "Probe.add");
    assert_eq!(state.entered.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_json_usable(&mut stream).await;
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn wrong_argument_counts_and_types_are_invalid_params_in_bincode() {
    let (server, state) = ObservedServer::probe().await;
    let mut stream = raw_session(&server.address, "bincode", 1 << 20).await;
    let cases: [(&str, Vec<u8>); 4] = [
        (
            "one argument short",
            bincode_request(1, "Probe.add", None, &(2i64,)),
        ),
        ("no arguments", bincode_request(2, "Probe.add", None, &())),
        (
            "a string for a number",
            bincode_request(3, "Probe.add", None, &("two", 3i64)),
        ),
        (
            "an extra argument",
            bincode_request(4, "Probe.add", None, &(2i64, 3i64, 4i64)),
        ),
    ];
    for (n, (what, payload)) in (1..).zip(cases) {
        let (id, outcome) = bincode_round_trip(&mut stream, &payload).await;
        assert_eq!(id, n, "{what}");
        let (code, message) = outcome.expect_err(what);
        assert_eq!(code, ErrorKind::InvalidParams.code(), "{what}: {message}");
        assert!(message.contains("Probe.add"), "{what}: {message}");
    }
    assert_eq!(state.entered.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_bincode_usable(&mut stream).await;
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn unknown_methods_are_method_not_found_in_both_codecs() {
    let (server, _) = ObservedServer::probe().await;
    let long = "m".repeat(100_000);
    let mut json = raw_json_session(&server.address).await;
    let mut bincode = raw_session(&server.address, "bincode", 1 << 20).await;
    for method in ["Probe.mul", "", "Probe.", ".add", "Nope.add", long.as_str()] {
        let request = json!({"jsonrpc": "2.0", "id": 3, "method": method, "params": [1, 2]});
        let answer = json_round_trip(&mut json, &request.to_string()).await;
        assert_error(&answer, json!(3), ErrorKind::MethodNotFound, "");

        let payload = bincode_request(3, method, None, &(1i64, 2i64));
        let (id, outcome) = bincode_round_trip(&mut bincode, &payload).await;
        assert_eq!(id, 3);
        let (code, message) = outcome.expect_err("no such method");
        assert_eq!(code, ErrorKind::MethodNotFound.code(), "{message:.200}");
    }
    assert_json_usable(&mut json).await;
    assert_bincode_usable(&mut bincode).await;
    assert_still_serves(&server.address).await;
}

/// `[` × `depth`, `inner`, `]` × `depth`.
fn nested(depth: usize, inner: &str) -> String {
    format!("{}{inner}{}", "[".repeat(depth), "]".repeat(depth))
}

#[tokio::test]
async fn json_nested_100000_deep_as_an_argument_is_refused_without_overflowing_the_stack() {
    let (server, state) = ObservedServer::probe().await;
    let mut stream = raw_json_session(&server.address).await;
    let deep = nested(100_000, "1");
    let request =
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"Probe.reflect","params":[{deep}]}}"#);
    let answer = json_round_trip(&mut stream, &request).await;
    assert_error(
        &answer,
        json!(1),
        ErrorKind::InvalidParams,
        "recursion limit exceeded",
    );
    assert_eq!(state.entered.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_json_usable(&mut stream).await;
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn json_nested_100000_deep_in_an_ignored_member_is_skipped_without_recursion() {
    let (server, _) = ObservedServer::probe().await;
    let mut stream = raw_json_session(&server.address).await;
    let deep = nested(100_000, "");
    let request = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"Probe.add","params":[2,3],"ignored":{deep}}}"#
    );
    let answer = json_round_trip(&mut stream, &request).await;
    assert_eq!(answer, json!({"jsonrpc": "2.0", "id": 1, "result": 5}));
    let request = format!(
        r#"{{"jsonrpc":"2.0","id":2,"method":"Probe.add","params":{{"x":2,"y":3,"z":{deep}}}}}"#
    );
    // Named arguments are strict: the unknown member is refused, not recursed into.
    let answer = json_round_trip(&mut stream, &request).await;
    assert_error(
        &answer,
        json!(2),
        ErrorKind::InvalidParams,
        "unknown field `z`",
    );
    assert_json_usable(&mut stream).await;
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn json_nested_100000_deep_as_the_whole_frame_is_an_error_answer() {
    let (server, _) = ObservedServer::probe().await;
    let mut stream = raw_json_session(&server.address).await;
    // An array opens a batch; its one member is not a request.
    let answer = json_round_trip(&mut stream, &nested(100_000, "")).await;
    let items = answer
        .as_array()
        .unwrap_or_else(|| panic!("a batch answer: {answer:.300}"));
    assert_eq!(items.len(), 1, "{answer:.300}");
    assert_error(
        &items[0],
        Value::Null,
        ErrorKind::InvalidRequest,
        "not a JSON-RPC request",
    );
    // An object nested in objects.
    let deep = format!("{}1{}", r#"{"a":"#.repeat(100_000), "}".repeat(100_000));
    let answer = json_round_trip(&mut stream, &deep).await;
    assert_error(
        &answer,
        Value::Null,
        ErrorKind::InvalidRequest,
        "not a JSON-RPC request",
    );
    assert_json_usable(&mut stream).await;
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn a_hello_nested_100000_deep_is_refused_and_closed() {
    let (mut server, _) = ObservedServer::probe().await;
    let mut stream = raw_connect(&server.address).await;
    client_handshake(&mut stream, KEY).await;
    let hello = format!(r#"{{"protocol":1,"codec":{}}}"#, nested(100_000, ""));
    write_frame(&mut stream, hello.as_bytes()).await;
    expect_closed(&mut stream).await;
    let e = server.next_error().await;
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
    assert!(
        e.message()
            .starts_with("the first frame after authentication is not a hello"),
        "{e}"
    );
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn a_bincode_value_nested_100000_deep_is_refused_at_128_levels() {
    let (server, state) = ObservedServer::probe().await;
    let mut stream = raw_session(&server.address, "bincode", 1 << 20).await;
    let mut payload = bincode_request(5, "Probe.reflect", None, &());
    // Value::Array (tag 6) of one element, 100,000 times, then Value::Null.
    for _ in 0..100_000 {
        payload.extend_from_slice(&[6, 1]);
    }
    payload.push(0);
    let (id, outcome) = bincode_round_trip(&mut stream, &payload).await;
    assert_eq!(id, 5);
    let (code, message) = outcome.expect_err("too deep");
    assert_eq!(code, ErrorKind::InvalidParams.code(), "{message}");
    assert!(
        message.contains("a value nests deeper than 128 levels"),
        "{message}"
    );
    assert!(
        message.len() < 1000,
        "the message does not grow with the depth: {message:.300}"
    );
    assert_eq!(state.entered.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_bincode_usable(&mut stream).await;
    assert_still_serves(&server.address).await;
}

/// A bincode varint announcing `len`: `0xfd` and a little-endian u64.
fn huge_len(len: u64) -> Vec<u8> {
    [&[0xfd][..], &len.to_le_bytes()].concat()
}

#[tokio::test]
async fn bincode_lengths_claiming_more_than_the_frame_holds_are_invalid_params() {
    let (server, state) = ObservedServer::probe().await;
    let mut stream = raw_session(&server.address, "bincode", 1 << 20).await;
    for (method, claim) in [
        ("Probe.echo", 1 << 29),
        ("Probe.echo", (1 << 30) + 1),
        ("Probe.echo", u64::MAX),
        ("Probe.count", 1 << 29),
        ("Probe.count", u64::MAX),
        ("Probe.reflect", 1 << 29),
    ] {
        let mut payload = bincode_request(8, method, None, &());
        if method == "Probe.reflect" {
            payload.push(5); // Value::String
        }
        payload.extend_from_slice(&huge_len(claim));
        payload.extend_from_slice(b"abc");
        let (id, outcome) = bincode_round_trip(&mut stream, &payload).await;
        assert_eq!(id, 8);
        let (code, message) = outcome.expect_err("the frame does not hold the claim");
        assert_eq!(
            code,
            ErrorKind::InvalidParams.code(),
            "{method} {claim}: {message}"
        );
        assert!(message.contains(method), "{method} {claim}: {message}");
    }
    assert_eq!(state.entered.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_bincode_usable(&mut stream).await;
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn invalid_utf8_is_refused_in_json_frames_and_bincode_strings() {
    let (server, _) = ObservedServer::probe().await;
    let mut json = raw_json_session(&server.address).await;
    for request in [
        &b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"Probe.echo\",\"params\":[\"\xff\"]}"[..],
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"Probe.\xc3\x28\",\"params\":[\"a\"]}",
    ] {
        write_frame(&mut json, request).await;
        let answer = expect_json(&mut json, "an answer").await;
        assert_eq!(answer["error"]["code"], ErrorKind::Parse.code(), "{answer}");
        assert!(answer.get("result").is_none(), "{answer}");
    }
    // A lone surrogate is valid JSON text but no Rust string.
    let answer = json_round_trip(
        &mut json,
        r#"{"jsonrpc":"2.0","id":2,"method":"Probe.echo","params":["\ud800"]}"#,
    )
    .await;
    assert_error(&answer, json!(2), ErrorKind::InvalidParams, "hex escape");
    assert_json_usable(&mut json).await;

    let mut bincode = raw_session(&server.address, "bincode", 1 << 20).await;
    let mut payload = bincode_request(3, "Probe.echo", None, &());
    payload.extend_from_slice(&[2, 0xc3, 0x28]);
    let (id, outcome) = bincode_round_trip(&mut bincode, &payload).await;
    assert_eq!(id, 3);
    let (code, message) = outcome.expect_err("not UTF-8");
    assert_eq!(code, ErrorKind::InvalidParams.code(), "{message}");
    assert!(message.contains("Utf8"), "{message}");

    let mut payload = bincode_request(4, "Probe.echo", None, &("a",));
    let at = payload
        .iter()
        .position(|&b| b == b'P')
        .expect("the method name");
    payload[at] = 0xff;
    let (_, outcome) = bincode_round_trip(&mut bincode, &payload).await;
    let (code, message) = outcome.expect_err("not UTF-8");
    assert_eq!(code, ErrorKind::Parse.code(), "{message}");
    assert!(message.starts_with("a request is malformed"), "{message}");
    assert_bincode_usable(&mut bincode).await;
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn nan_and_infinity_are_not_json_numbers() {
    let (server, _) = ObservedServer::probe().await;
    let mut stream = raw_json_session(&server.address).await;
    for literal in ["NaN", "Infinity", "-Infinity", "nan", "inf"] {
        let request =
            format!(r#"{{"jsonrpc":"2.0","id":1,"method":"Probe.half","params":[{literal}]}}"#);
        let answer = json_round_trip(&mut stream, &request).await;
        assert_error(&answer, Value::Null, ErrorKind::Parse, "not valid JSON");
    }
    let answer = json_round_trip(
        &mut stream,
        r#"{"jsonrpc":"2.0","id":2,"method":"Probe.half","params":[1e999]}"#,
    )
    .await;
    assert_error(
        &answer,
        json!(2),
        ErrorKind::InvalidParams,
        "number out of range",
    );
    let answer = json_round_trip(
        &mut stream,
        r#"{"jsonrpc":"2.0","id":3,"method":"Probe.half","params":[1e308]}"#,
    )
    .await;
    assert_eq!(answer, json!({"jsonrpc": "2.0", "id": 3, "result": 5e307}));
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn nan_and_infinity_round_trip_in_bincode_and_are_refused_by_name_in_json() {
    let (server, _) = ObservedServer::probe().await;
    for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let probe = ProbeClient::new(connect(&server.address, "bincode").await);
        let half = within("half", probe.half(x))
            .await
            .expect("bincode carries any f64");
        assert!(
            half.is_nan() == x.is_nan() && (x.is_nan() || half == x),
            "{x} → {half}"
        );

        // JSON has no NaN: refused on the sending side, by name.
        let probe = ProbeClient::new(connect(&server.address, "json").await);
        let e = within("half", probe.half(x))
            .await
            .expect_err("json has no NaN");
        assert_eq!(e.kind(), ErrorKind::InvalidParams, "{x}: {e}");
        assert!(
            e.message()
                .contains("the json codec cannot carry NaN or ±infinity"),
            "{x}: {e}"
        );
    }
    assert_still_serves(&server.address).await;
}

/// A JSON-RPC batch of `n` calls to `Probe.add` with ids `0..n`.
fn batch(n: usize) -> String {
    let calls: Vec<String> = (0..n)
        .map(|id| {
            format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"Probe.add","params":[{id},1]}}"#)
        })
        .collect();
    format!("[{}]", calls.join(","))
}

#[tokio::test]
async fn a_batch_of_100000_calls_is_refused_whole_at_the_default_batch_limit() {
    let (server, _) = ObservedServer::probe().await;
    let mut stream = raw_session(&server.address, "json", 16 << 20).await;
    let answer = within(
        "the batch's answer",
        json_round_trip(&mut stream, &batch(100_000)),
    )
    .await;
    let limit = Limits::default().max_batch;
    assert_error(
        &answer,
        Value::Null,
        ErrorKind::InvalidRequest,
        &format!("a batch of more than {limit} calls exceeds the limit of {limit} (max_batch)"),
    );
    assert_json_usable(&mut stream).await;
    assert_still_serves(&server.address).await;
}

/// A server that takes JSON-RPC batches of up to 100,000 calls.
async fn large_batches() -> ObservedServer {
    let limits = Limits {
        max_batch: 100_000,
        ..Limits::default()
    };
    let config = common::server_builder()
        .limits(limits)
        .build()
        .expect("a valid config");
    ObservedServer::probe_with(config).await.0
}

#[tokio::test]
async fn a_batch_of_100000_calls_under_a_raised_limit_is_answered_in_one_frame() {
    const N: usize = 100_000;
    let server = large_batches().await;
    let mut stream = raw_session(&server.address, "json", 16 << 20).await;
    let answer = within(
        "the batch's answer",
        json_round_trip(&mut stream, &batch(N)),
    )
    .await;
    let items = answer.as_array().expect("a batch answer");
    assert_eq!(items.len(), N);
    let mut seen = vec![false; N];
    for item in items {
        let id = item["id"].as_u64().expect("a numeric id") as usize;
        assert_eq!(item["result"], id as u64 + 1, "{item}");
        assert!(
            !std::mem::replace(&mut seen[id], true),
            "answered twice: {item}"
        );
    }
    assert_json_usable(&mut stream).await;
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn a_batch_whose_answer_exceeds_the_clients_frame_limit_is_one_error() {
    let server = large_batches().await;
    let mut stream = raw_session(&server.address, "json", 1 << 20).await;
    let answer = within(
        "the batch's answer",
        json_round_trip(&mut stream, &batch(100_000)),
    )
    .await;
    assert_error(
        &answer,
        Value::Null,
        ErrorKind::FrameTooLarge,
        "exceeds the client's frame limit of 1048576 bytes",
    );
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.contains("TooLarge {"), "a Debug format: {answer}");
    assert_json_usable(&mut stream).await;
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn every_codec_survives_all_payloads_of_one_byte() {
    let (server, _) = ObservedServer::probe_with(tolerant()).await;
    for codec in CODECS {
        let mut stream = raw_session(&server.address, codec, 1 << 20).await;
        for byte in 0..=255u8 {
            write_raw(&mut stream, &frame(&[byte])).await;
            let answer = expect_frame(&mut stream, "an answer").await;
            assert!(!answer.is_empty(), "{codec} {byte}");
        }
        match codec {
            "json" => assert_json_usable(&mut stream).await,
            _ => assert_bincode_usable(&mut stream).await,
        }
    }
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn an_error_reply_over_the_clients_frame_limit_becomes_a_short_error_saying_so() {
    let (server, _) = ObservedServer::probe().await;
    let mut stream = raw_session(&server.address, "json", 1024).await;
    // The method-not-found message names the method: 2,000 bytes of it.
    let request = json!({"jsonrpc": "2.0", "id": 1, "method": "m".repeat(2_000), "params": []});
    let answer = json_round_trip(&mut stream, &request.to_string()).await;
    assert_error(
        &answer,
        json!(1),
        ErrorKind::FrameTooLarge,
        "exceeds the client's frame limit of 1024 bytes",
    );
    assert_json_usable(&mut stream).await;
    assert_still_serves(&server.address).await;
}
