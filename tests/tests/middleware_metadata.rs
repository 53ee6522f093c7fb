//! Per-call metadata: a round trip over TCP in both codecs (text and bytes,
//! handles that keep it and handles made for one call), at its limits; over
//! HTTP from `x-rpc-*` headers and `traceparent`, never the gateway's
//! `Authorization`, with a JSON-RPC (or WebSocket message's) `"meta"` set
//! over the headers and each batch member's its own; metadata a layer adds;
//! and hostile maps — raw frames one past the limits, with a bad or
//! repeated key, a bad tag or cut short, a huge `"meta"`, bad headers —
//! refused without running the handler, the connection still serving. A
//! protocol-1 peer's metadata is tested on the wire (the library client
//! cannot be made to send it).

mod common;

use std::sync::Arc;

use rpc_core::codec::{Bincode, Codec, OutRequest};
use rpc_core::metadata::{MAX_BYTES, MAX_ENTRIES, Metadata};
use rpc_core::{ErrorKind, Registry};
use serde_json::{Value, json};
use tokio::net::TcpStream;

use common::hostile::{bincode_value, raw_session, read_bincode_response};
use common::middleware::{
    Door, Doors, MwClient, exchange, json_rpc, post, python_available, python_call, request, rest,
    start, ws_connect, ws_exchange,
};
use common::{
    CODECS, KEY, client_handshake, connect, expect_frame, expect_json, json_round_trip,
    raw_connect, within, write_frame,
};
use rpc_core::layer::{BoxError, Call, Next, from_fn};
use rpc_core::service::Reply;

async fn plain() -> Doors {
    start(|_: &mut Registry| {}).await
}

// ---------------------------------------------------------------------------
// TCP, the library client.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn text_and_bytes_metadata_round_trip_over_tcp_in_both_codecs() {
    let doors = plain().await;
    for codec in CODECS {
        let base = connect(&doors.tcp, codec).await;
        let tagged = base
            .with_metadata("x-request-id", "r-1")
            .with_metadata("sig", vec![0u8, 1, 255]);
        let client = MwClient::new(tagged.clone());
        let seen = within("seen", client.seen("x-request-id".into())).await;
        assert_eq!(seen.unwrap().as_deref(), Some("r-1"), "{codec}");
        let bytes = within("seen_bytes", client.seen_bytes("sig".into())).await;
        assert_eq!(bytes.unwrap(), Some(vec![0, 1, 255]), "{codec}");
        // Bytes are not text.
        let as_text = within("seen", client.seen("sig".into())).await.unwrap();
        assert_eq!(as_text, None, "{codec}");

        // A clone keeps the metadata; adding to a clone leaves the original.
        let more = tagged.clone().with_metadata("extra", "1");
        let keys = within("keys", MwClient::new(more).keys()).await.unwrap();
        assert_eq!(sorted(keys), ["extra", "sig", "x-request-id"], "{codec}");
        let keys = within("keys", MwClient::new(tagged.clone()).keys()).await;
        assert_eq!(sorted(keys.unwrap()), ["sig", "x-request-id"], "{codec}");

        // A handle for one call; the base handle carries nothing.
        let once = MwClient::new(base.with_metadata("once", "yes"));
        let seen = within("seen", once.seen("once".into())).await.unwrap();
        assert_eq!(seen.as_deref(), Some("yes"), "{codec}");
        let plain = MwClient::new(base.clone());
        assert_eq!(
            within("keys", plain.keys()).await.unwrap(),
            Vec::<String>::new()
        );
        assert!(base.metadata().is_none(), "{codec}");
    }
}

/// `keys`, in order (a JSON map's order is not kept).
fn sorted(mut keys: Vec<String>) -> Vec<String> {
    keys.sort();
    keys
}

#[tokio::test]
async fn a_bad_key_fails_every_call_of_its_handle_before_it_is_sent() {
    let doors = plain().await;
    let base = connect(&doors.tcp, "bincode").await;
    let e = base.try_with_metadata("Bad Key", "x").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{e}");
    let bad = MwClient::new(base.with_metadata("Bad Key", "x"));
    for _ in 0..2 {
        let e = within("a call", bad.add(1, 1)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{e}");
    }
    let big = MwClient::new(base.with_metadata("big", "x".repeat(MAX_BYTES)));
    let e = within("a call", big.add(1, 1)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{e}");
    assert_eq!(doors.state.handled(), 0);
    assert_eq!(
        within("a call", MwClient::new(base).add(1, 1))
            .await
            .unwrap(),
        2
    );
}

// ---------------------------------------------------------------------------
// HTTP.
// ---------------------------------------------------------------------------

/// `Mw.{method}(arg)` over `POST /rpc` with `headers` and the request's
/// `extra` members; its result.
async fn rpc_with(
    doors: &Doors,
    method: &str,
    arg: &str,
    headers: &[(&str, &str)],
    extra: Value,
) -> Value {
    let params = if arg.is_empty() {
        json!([])
    } else {
        json!([arg])
    };
    let mut body =
        json!({"jsonrpc": "2.0", "id": 1, "method": format!("Mw.{method}"), "params": params});
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    let bytes = request(
        "POST",
        "/rpc",
        headers,
        "application/json",
        body.to_string().as_bytes(),
    );
    let answer = exchange(doors, &bytes).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let value: Value = serde_json::from_slice(&answer.body).unwrap();
    assert!(value.get("error").is_none(), "{value}");
    value["result"].clone()
}

#[tokio::test]
async fn http_headers_become_metadata_but_not_the_authorization_header() {
    let doors = plain().await;
    let trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let headers = [
        ("X-RPC-Foo", "bar"),
        ("x-rpc-timeout-ms", "5000"),
        ("traceparent", trace),
        ("tracestate", "vendor=1"),
        ("x-unrelated", "no"),
    ];
    let none = json!({});
    assert_eq!(
        rpc_with(&doors, "seen", "foo", &headers, none.clone()).await,
        "bar"
    );
    // The trace is continued: the same trace id, the server's own span.
    let seen = rpc_with(&doors, "seen", "traceparent", &headers, none.clone()).await;
    let seen = seen.as_str().expect("a traceparent");
    assert_eq!(seen[..36], trace[..36], "{seen}");
    assert_ne!(seen, trace);
    // The request carries the gateway's Basic password in `Authorization`;
    // `x-rpc-timeout-ms` is the call's timeout, not metadata.
    let keys = rpc_with(&doors, "keys", "", &headers, none.clone()).await;
    let mut keys: Vec<String> = serde_json::from_value(keys).unwrap();
    keys.sort();
    assert_eq!(keys, ["foo", "traceparent", "tracestate"]);
    // A token for the handler travels as `x-rpc-authorization`.
    let token = [("x-rpc-authorization", "Bearer t0k")];
    let seen = rpc_with(&doors, "seen", "authorization", &token, none.clone()).await;
    assert_eq!(seen, "Bearer t0k");
    // REST maps them the same way.
    let got = post(&doors, "/Mw/seen", &json!(["foo"]), &[("foo", "rest")]).await;
    assert_eq!((got.status, got.text()), (200, "\"rest\"".to_owned()));
    let got = post(&doors, "/Mw/seen", &json!(["authorization"]), &[]).await;
    assert_eq!((got.status, got.text()), (200, "null".to_owned()));
}

#[tokio::test]
async fn a_json_rpc_meta_member_is_set_over_the_headers() {
    let doors = plain().await;
    let headers = [("x-rpc-foo", "header"), ("x-rpc-kept", "header")];
    let meta = json!({"meta": {"foo": "body", "sig": {"bytes": "AAH/"}}});
    assert_eq!(
        rpc_with(&doors, "seen", "foo", &headers, meta.clone()).await,
        "body"
    );
    assert_eq!(
        rpc_with(&doors, "seen", "kept", &headers, meta.clone()).await,
        "header"
    );
    let sig = rpc_with(&doors, "seen_bytes", "sig", &headers, meta).await;
    assert_eq!(sig, json!([0, 1, 255]));
}

/// Three `seen("k")` calls in a batch: with `k` = `a`, with `k` = `b`, and
/// with no `"meta"`.
fn batch_of_three() -> Value {
    let call = |id: u64, meta: Option<Value>| {
        let mut call = json!({"jsonrpc": "2.0", "id": id, "method": "Mw.seen", "params": ["k"]});
        if let Some(meta) = meta {
            call["meta"] = meta;
        }
        call
    };
    json!([
        call(1, Some(json!({"k": "a"}))),
        call(2, Some(json!({"k": "b"}))),
        call(3, None)
    ])
}

/// The results of a batch answer, by id.
fn results_by_id(answer: &Value) -> Vec<(i64, Value)> {
    let mut results: Vec<(i64, Value)> = answer
        .as_array()
        .unwrap_or_else(|| panic!("a batch answer: {answer}"))
        .iter()
        .map(|a| (a["id"].as_i64().unwrap(), a["result"].clone()))
        .collect();
    results.sort_by_key(|(id, _)| *id);
    results
}

#[tokio::test]
async fn each_batch_member_carries_its_own_metadata() {
    let doors = plain().await;
    let mut raw = raw_session2(&doors.tcp, "json").await;
    let answer = json_round_trip(&mut raw, &batch_of_three().to_string()).await;
    let expected = [(1, json!("a")), (2, json!("b")), (3, Value::Null)];
    assert_eq!(results_by_id(&answer), expected, "TCP: {answer}");
    let answer = post(&doors, "/rpc", &batch_of_three(), &[("k", "header")]).await;
    let answer: Value = serde_json::from_slice(&answer.body).unwrap();
    let expected = [(1, json!("a")), (2, json!("b")), (3, json!("header"))];
    assert_eq!(results_by_id(&answer), expected, "HTTP: {answer}");
}

#[tokio::test]
async fn a_websocket_message_meta_is_set_over_the_upgrade_headers() {
    let doors = plain().await;
    let mut socket = ws_connect(&doors, &[("foo", "header")]).await;
    let seen = |id: u64, extra: Value| {
        let mut call = json!({"jsonrpc": "2.0", "id": id, "method": "Mw.seen", "params": ["foo"]});
        if let (Some(call), Value::Object(extra)) = (call.as_object_mut(), extra) {
            call.extend(extra);
        }
        call
    };
    let answer = ws_exchange(&mut socket, &seen(1, json!({"meta": {"foo": "body"}}))).await;
    assert_eq!(answer["result"], "body", "{answer}");
    let answer = ws_exchange(&mut socket, &seen(2, json!({}))).await;
    assert_eq!(answer["result"], "header", "{answer}");
}

#[tokio::test]
async fn bad_header_metadata_is_answered_400_and_runs_nothing() {
    let doors = plain().await;
    let big = "a".repeat(MAX_BYTES + 1);
    let many: Vec<(String, &str)> = (0..=MAX_ENTRIES)
        .map(|i| (format!("x-rpc-k{i}"), "v"))
        .collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let cases: [(&str, Vec<(&str, &str)>); 4] = [
        ("an oversized value", vec![("x-rpc-big", big.as_str())]),
        ("too many entries", many),
        ("a bad key", vec![("x-rpc-a+b", "v")]),
        ("an empty key", vec![("x-rpc-", "v")]),
    ];
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "Mw.add", "params": [1, 1]});
    for (what, headers) in cases {
        for path in ["/rpc", "/Mw/add"] {
            let body = if path == "/rpc" {
                body.clone()
            } else {
                json!([1, 1])
            };
            let bytes = request(
                "POST",
                path,
                &headers,
                "application/json",
                body.to_string().as_bytes(),
            );
            let answer = exchange(&doors, &bytes).await;
            assert_eq!(answer.status, 400, "{what} at {path}: {}", answer.text());
        }
    }
    assert_eq!(doors.state.handled(), 0);
}

/// Adds `checked: yes` to every call's metadata, as a layer that checked
/// a token might.
async fn mark_checked(mut call: Call, next: Next) -> Result<Reply, BoxError> {
    let mut metadata = call.metadata().clone();
    metadata.insert("checked", "yes")?;
    let context = call
        .context()
        .clone()
        .with_metadata(Some(Arc::new(metadata)));
    *call.context_mut() = context;
    next.run(call).await
}

#[tokio::test]
async fn metadata_a_layer_adds_reaches_the_handler_on_every_unary_door() {
    let doors = start(|r| {
        r.layer(from_fn(mark_checked));
    })
    .await;
    for door in Door::ALL.into_iter().filter(|d| !d.streams()) {
        if door == Door::Python && !python_available() {
            continue;
        }
        let seen = match door {
            Door::Bincode | Door::Json => {
                let codec = if door == Door::Json {
                    "json"
                } else {
                    "bincode"
                };
                let client = MwClient::new(connect(&doors.tcp, codec).await);
                within("seen", client.seen("checked".into()))
                    .await
                    .map(Value::from)
                    .ok()
            }
            Door::Python => python_call(&doors.tcp, "seen", &json!(["checked"]))
                .await
                .ok(),
            Door::JsonRpc => {
                let call =
                    json!({"jsonrpc": "2.0", "id": 1, "method": "Mw.seen", "params": ["checked"]});
                json_rpc(&doors, &call, &[]).await.ok()
            }
            Door::Rest => rest(&doors, "seen", &json!(["checked"]), &[]).await.ok(),
            // XML-RPC has no nil: `seen` answers a string or nothing.
            _ => continue,
        };
        assert_eq!(seen, Some(json!("yes")), "{door:?}");
    }
}

// ---------------------------------------------------------------------------
// Hostile frames.
// ---------------------------------------------------------------------------

/// A raw connection past a protocol-2 hello for `codec`.
async fn raw_session2(address: &str, codec: &str) -> TcpStream {
    let mut stream = raw_connect(address).await;
    client_handshake(&mut stream, KEY).await;
    let hello = json!({
        "protocol": 2,
        "codec": codec,
        "max_frame_bytes": 1 << 20,
        "stream_window": {"items": 64, "bytes": 65536},
    });
    write_frame(&mut stream, hello.to_string().as_bytes()).await;
    let answer = expect_json(&mut stream, "the answer to the hello").await;
    assert_eq!(answer["protocol"], 2, "{answer}");
    stream
}

/// One metadata entry as the bincode kind 09 writes it: key, tag, value.
fn entry(key: &str, tag: u8, value: &[u8]) -> Vec<u8> {
    [
        bincode_value(&key),
        vec![tag],
        bincode_value(&serde_bytes(value)),
    ]
    .concat()
}

/// `value` as bincode writes a byte string (length, then the bytes).
fn serde_bytes(value: &[u8]) -> Vec<u8> {
    value.to_vec()
}

/// A kind-09 request for `Mw.add(2, 3)` claiming `count` entries, holding
/// `entries`, then the arguments unless `truncated`.
fn meta_frame(id: u64, count: u64, entries: &[Vec<u8>], truncated: bool) -> Vec<u8> {
    let mut frame = bincode_value(&(9u8, id, 0u64, "Mw.add"));
    frame.extend(bincode_value(&count));
    entries.iter().for_each(|e| frame.extend(e));
    if !truncated {
        frame.extend(bincode_value(&(2i64, 3i64)));
    }
    frame
}

/// A good kind-09 request for `Mw.add(2, 3)`, as the codec writes it.
fn good_meta_request(id: u64) -> Vec<u8> {
    let mut metadata = Metadata::new();
    metadata.insert("tenant", "acme").unwrap();
    let mut buf = bytes::BytesMut::new();
    let request = OutRequest {
        id,
        method: "Mw.add",
        deadline: None,
        args: &(2i64, 3i64),
        metadata: Some(&metadata),
    };
    Bincode.encode_request(&mut buf, &request).unwrap();
    buf.to_vec()
}

#[tokio::test]
async fn hostile_bincode_metadata_is_refused_without_running_the_handler() {
    let doors = plain().await;
    let text = |k: &str, v: &str| entry(k, 0, v.as_bytes());
    let many: Vec<Vec<u8>> = (0..=MAX_ENTRIES)
        .map(|i| text(&format!("k{i}"), "v"))
        .collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "one byte over MAX_BYTES",
            meta_frame(1, 1, &[text("big", &"x".repeat(MAX_BYTES - 2))], false),
        ),
        (
            "over MAX_ENTRIES",
            meta_frame(2, many.len() as u64, &many, false),
        ),
        ("a huge count", meta_frame(3, u64::MAX, &[], false)),
        (
            "a bad key",
            meta_frame(4, 1, &[text("Bad Key", "v")], false),
        ),
        (
            "a repeated key",
            meta_frame(5, 2, &[text("k", "1"), text("k", "2")], false),
        ),
        ("a bad tag", meta_frame(6, 1, &[entry("k", 2, b"v")], false)),
        ("truncated", meta_frame(7, 2, &[text("k", "1")], true)),
        ("cut inside a value", {
            let mut f = meta_frame(8, 1, &[text("k", "abcdef")], true);
            f.truncate(f.len() - 3);
            f
        }),
    ];
    let mut raw = raw_session2(&doors.tcp, "bincode").await;
    for (good_id, (what, frame)) in (100..).zip(cases) {
        write_frame(&mut raw, &frame).await;
        let (id, outcome) = read_bincode_response(&expect_frame(&mut raw, what).await);
        let (code, message) = outcome.expect_err(what);
        assert!(
            [ErrorKind::InvalidRequest.code(), ErrorKind::Parse.code()].contains(&code),
            "{what}: {code} {message}"
        );
        assert_eq!(id, frame_id(&frame), "{what}: {message}");
        assert_eq!(doors.state.handled(), 0, "{what}: the handler ran");
        // The connection still serves.
        write_frame(&mut raw, &good_meta_request(good_id)).await;
        let (id, outcome) = read_bincode_response(&expect_frame(&mut raw, "5").await);
        assert_eq!((id, outcome), (good_id, Ok(bincode_value(&5i64))), "{what}");
        doors
            .state
            .handled
            .store(0, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test]
async fn metadata_at_the_limits_is_taken_on_the_wire_and_from_the_client() {
    let doors = plain().await;
    let text = |k: &str, v: &str| entry(k, 0, v.as_bytes());
    let full: Vec<Vec<u8>> = (0..MAX_ENTRIES)
        .map(|i| text(&format!("k{i:02}"), "v"))
        .collect();
    let mut raw = raw_session2(&doors.tcp, "bincode").await;
    for (what, frame) in [
        (
            "MAX_BYTES",
            meta_frame(1, 1, &[text("big", &"x".repeat(MAX_BYTES - 3))], false),
        ),
        (
            "MAX_ENTRIES",
            meta_frame(2, MAX_ENTRIES as u64, &full, false),
        ),
    ] {
        write_frame(&mut raw, &frame).await;
        let (_, outcome) = read_bincode_response(&expect_frame(&mut raw, what).await);
        assert_eq!(outcome, Ok(bincode_value(&5i64)), "{what}");
    }
    let base = connect(&doors.tcp, "json").await;
    let big = base.with_metadata("big", "x".repeat(MAX_BYTES - 3));
    let seen = within("seen", MwClient::new(big).seen_bytes("big".into())).await;
    assert_eq!(seen.unwrap().map(|v| v.len()), Some(MAX_BYTES - 3));
    let full = (0..MAX_ENTRIES).fold(base.clone(), |c, i| c.with_metadata(&format!("k{i}"), ""));
    let keys = within("keys", MwClient::new(full.clone()).keys())
        .await
        .unwrap();
    assert_eq!(keys.len(), MAX_ENTRIES);
    let e = full.try_with_metadata("one-more", "").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{e}");
}

/// The id of a kind-09 frame built by [`meta_frame`] (one varint byte).
fn frame_id(frame: &[u8]) -> u64 {
    u64::from(frame[1])
}

#[tokio::test]
async fn hostile_json_metadata_is_refused_without_running_the_handler() {
    let doors = plain().await;
    let many: serde_json::Map<String, Value> = (0..=MAX_ENTRIES)
        .map(|i| (format!("k{i}"), json!("v")))
        .collect();
    let cases = [
        ("a huge value", json!({"big": "x".repeat(MAX_BYTES)})),
        (
            "huge bytes",
            json!({"big": {"bytes": "A".repeat(MAX_BYTES * 2)}}),
        ),
        ("over MAX_ENTRIES", Value::Object(many)),
        ("a bad key", json!({"Bad Key": "v"})),
        ("not a map", json!(["k", "v"])),
        ("a value neither text nor bytes", json!({"k": 5})),
    ];
    let mut raw = raw_session2(&doors.tcp, "json").await;
    for (i, (what, meta)) in cases.into_iter().enumerate() {
        let call =
            json!({"jsonrpc": "2.0", "id": i, "method": "Mw.add", "params": [2, 3], "meta": meta});
        let answer = json_round_trip(&mut raw, &call.to_string()).await;
        let code = answer["error"]["code"].as_i64().map(|c| c as i32);
        assert!(
            code == Some(ErrorKind::InvalidRequest.code()) || code == Some(ErrorKind::Parse.code()),
            "{what}: {answer}"
        );
        assert_eq!(answer["id"], i, "{what}: {answer}");
        assert_eq!(doors.state.handled(), 0, "{what}: the handler ran");
        let good = json!({"jsonrpc": "2.0", "id": 99, "method": "Mw.add", "params": [2, 3], "meta": {"k": "v"}});
        let answer = json_round_trip(&mut raw, &good.to_string()).await;
        assert_eq!(answer["result"], 5, "after {what}: {answer}");
        doors
            .state
            .handled
            .store(0, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_huge_json_rpc_meta_over_http_is_refused_without_running_the_handler() {
    let doors = plain().await;
    let huge = json!({"big": "x".repeat(MAX_BYTES)});
    let call =
        json!({"jsonrpc": "2.0", "id": 1, "method": "Mw.add", "params": [2, 3], "meta": huge});
    let answer = post(&doors, "/rpc", &call, &[]).await;
    let value: Value = serde_json::from_slice(&answer.body).expect("a JSON answer");
    assert_eq!(
        value["error"]["code"],
        ErrorKind::InvalidRequest.code(),
        "{value}"
    );
    assert_eq!(doors.state.handled(), 0);
    // In a batch, only its member is refused.
    let good = json!({"jsonrpc": "2.0", "id": 2, "method": "Mw.add", "params": [2, 3]});
    let answer = post(&doors, "/rpc", &json!([call, good]), &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let answers: Value = serde_json::from_slice(&answer.body).expect("a JSON answer");
    let by_id = |id: i64| {
        answers
            .as_array()
            .and_then(|a| a.iter().find(|m| m["id"] == id))
            .cloned()
    };
    let refused = by_id(1).unwrap_or_else(|| panic!("an answer to 1: {answers}"));
    assert_eq!(
        refused["error"]["code"],
        ErrorKind::InvalidRequest.code(),
        "{answers}"
    );
    assert_eq!(
        by_id(2).map(|m| m["result"].clone()),
        Some(json!(5)),
        "{answers}"
    );
    assert_eq!(doors.state.handled(), 1);
}

/// Tested on the wire: the library client refuses to send metadata on
/// protocol 1 (`Protocol`) and cannot be made to speak protocol 1 to this
/// server, so a raw protocol-1 peer sends a kind-09 frame.
#[tokio::test]
async fn a_protocol_1_bincode_peer_cannot_send_metadata() {
    let doors = plain().await;
    let mut raw = raw_session(&doors.tcp, "bincode", 1 << 20).await;
    write_frame(&mut raw, &good_meta_request(1)).await;
    let (id, outcome) = read_bincode_response(&expect_frame(&mut raw, "a refusal").await);
    let (code, message) = outcome.expect_err("metadata on protocol 1 is refused");
    assert_eq!(
        (id, code),
        (1, ErrorKind::InvalidRequest.code()),
        "{message}"
    );
    assert_eq!(doors.state.handled(), 0);
}

/// A protocol-1 JSON peer's `"meta"` member does not reach the handler.
#[tokio::test]
async fn a_protocol_1_json_peer_cannot_send_metadata() {
    let doors = plain().await;
    let mut raw = raw_session(&doors.tcp, "json", 1 << 20).await;
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "Mw.seen", "params": ["k"], "meta": {"k": "v"}});
    let answer = json_round_trip(&mut raw, &call.to_string()).await;
    assert!(
        answer.get("error").is_some() || answer["result"].is_null(),
        "a protocol-1 peer's metadata reached the handler: {answer}"
    );
}
