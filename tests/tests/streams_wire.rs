//! Streams on the wire, by hand, in both codecs: a protocol-1 peer calling
//! a streaming method is told it needs protocol 2 and otherwise sees the
//! old frames exactly; a ping gets a pong with its nonce; a stream call
//! needs a numeric id and no batch.

mod common;
#[path = "common/streams.rs"]
mod streams;

use rpc_core::ErrorKind;
use rpc_core::codec::{Codec, Flow, Inbound};
use rpc_transport::ServerConfig;
use serde_json::json;

use common::hostile::{bincode_request, raw_session, read_bincode_response};
use common::{CODECS, expect_frame, expect_json, json_round_trip, server_builder, write_frame};
use streams::{codec, next_inbound, ping, raw_session2, send_with, serve_flows};

fn default_config() -> ServerConfig {
    server_builder().build().expect("a valid server config")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protocol_1_peer_calling_a_stream_method_is_told_to_speak_protocol_2() {
    let mut served = serve_flows(default_config()).await;
    let invalid = i64::from(ErrorKind::InvalidRequest.code());

    // JSON, protocol 1.
    let mut raw = raw_session(&served.address, "json", 1 << 20).await;
    for (id, method, params) in [
        (1, "Flows.count", json!([5])),
        (2, "Flows.sum", json!([null])),
        (3, "Flows.open_or_refuse", json!([true])),
    ] {
        let call = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let answer = json_round_trip(&mut raw, &call.to_string()).await;
        assert_eq!(answer["id"], id, "{answer}");
        assert_eq!(answer["error"]["code"], invalid, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains("protocol 2"), "{answer}");
    }
    // Unary frames exactly as before: no `stream` member.
    let add = json!({"jsonrpc": "2.0", "id": 4, "method": "Flows.add", "params": [40, 2]});
    write_frame(&mut raw, add.to_string().as_bytes()).await;
    let payload = expect_frame(&mut raw, "the add's answer").await;
    assert_eq!(
        String::from_utf8(payload).unwrap(),
        r#"{"jsonrpc":"2.0","id":4,"result":42}"#
    );
    // A stream message on protocol 1 is refused.
    let credit = json!({"jsonrpc": "2.0", "method": "rpc.credit", "params": {"id": 1, "items": 1, "bytes": 1}});
    write_frame(&mut raw, credit.to_string().as_bytes()).await;
    let answer = expect_json(&mut raw, "the refusal of a credit").await;
    assert_eq!(answer["error"]["code"], invalid, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("protocol 2"),
        "{answer}"
    );

    // bincode, protocol 1.
    let mut raw = raw_session(&served.address, "bincode", 1 << 20).await;
    write_frame(&mut raw, &bincode_request(1, "Flows.count", None, &(5u64,))).await;
    let (id, outcome) = read_bincode_response(&expect_frame(&mut raw, "the refusal").await);
    let (code, message) = outcome.expect_err("refused");
    assert_eq!(
        (id, code),
        (1, ErrorKind::InvalidRequest.code()),
        "{message}"
    );
    assert!(message.contains("protocol 2"), "{message}");
    write_frame(
        &mut raw,
        &bincode_request(2, "Flows.add", None, &(40u64, 2u64)),
    )
    .await;
    let payload = expect_frame(&mut raw, "the add's answer").await;
    // 01 response, id 2, status 00 ok, 42.
    assert_eq!(payload, [0x01, 2, 0x00, 42]);
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_gets_a_pong_with_its_nonce() {
    let mut served = serve_flows(default_config()).await;
    for name in CODECS {
        let codec = codec(name);
        let (mut raw, answer) = raw_session2(&served.address, name, 64, 4096).await;
        assert_eq!(answer["protocol"], 2, "{answer}");
        assert!(
            answer["stream_window"]["items"].as_u64().is_some(),
            "{answer}"
        );
        for nonce in [0, 1, 0xdead_beef, u64::MAX] {
            let before = ping(&mut raw, codec, nonce).await;
            assert!(before.is_empty(), "{name}: {before:?}");
        }
        // The bytes, as the kind table draws them.
        send_with(&mut raw, codec, |c, buf| c.encode_ping(buf, 7, false)).await;
        let pong = expect_frame(&mut raw, "a pong").await;
        match name {
            "json" => {
                let value: serde_json::Value = serde_json::from_slice(&pong).unwrap();
                assert_eq!(
                    value,
                    json!({"jsonrpc": "2.0", "method": "rpc.pong", "params": {"nonce": 7}})
                );
            }
            _ => assert_eq!(pong, [0x05, 7]),
        }
        // A pong from the client is not answered.
        send_with(&mut raw, codec, |c, buf| c.encode_ping(buf, 9, true)).await;
        let before = ping(&mut raw, codec, 10).await;
        assert!(before.is_empty(), "{name}: {before:?}");
    }
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_call_needs_a_numeric_id_and_no_batch() {
    let mut served = serve_flows(default_config()).await;
    let (mut raw, _) = raw_session2(&served.address, "json", 64, 4096).await;
    let invalid = i64::from(ErrorKind::InvalidRequest.code());
    let call = json!({"jsonrpc": "2.0", "id": "s", "method": "Flows.count", "params": [3]});
    let answer = json_round_trip(&mut raw, &call.to_string()).await;
    assert_eq!(answer["error"]["code"], invalid, "{answer}");
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "Flows.count", "params": [3]},
        {"jsonrpc": "2.0", "id": 2, "method": "Flows.add", "params": [1, 2]},
    ]);
    let answer = json_round_trip(&mut raw, &batch.to_string()).await;
    let answers = answer.as_array().expect("a batch answer");
    let refused = answers
        .iter()
        .find(|a| a["id"] == 1)
        .expect("an answer to 1");
    assert!(refused.get("error").is_some(), "{answer}");
    let added = answers
        .iter()
        .find(|a| a["id"] == 2)
        .expect("an answer to 2");
    assert_eq!(added["result"], 3, "{answer}");
    // A notification (no id) of a stream method runs nothing and opens nothing.
    let note = json!({"jsonrpc": "2.0", "method": "Flows.count", "params": [3]});
    write_frame(&mut raw, note.to_string().as_bytes()).await;
    let codec: &'static dyn Codec = codec("json");
    let before = ping(&mut raw, codec, 5).await;
    assert!(before.is_empty(), "{before:?}");
    // A stream opened as JSON, with its member.
    let call = json!({"jsonrpc": "2.0", "id": 9, "method": "Flows.count", "params": [2]});
    let answer = json_round_trip(&mut raw, &call.to_string()).await;
    assert_eq!(
        answer,
        json!({"jsonrpc": "2.0", "id": 9, "result": null, "stream": true})
    );
    let (_, items) = next_inbound(&mut raw, codec).await;
    assert!(
        matches!(
            items,
            Inbound::Flow(Flow::Items {
                id: 9,
                count: 2,
                ..
            })
        ),
        "{items:?}"
    );
    let (_, end) = next_inbound(&mut raw, codec).await;
    assert_eq!(
        end,
        Inbound::Flow(Flow::End {
            id: 9,
            outcome: Ok(())
        })
    );
    served.stop().await;
}
