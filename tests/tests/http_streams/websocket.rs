//! The WebSocket at `GET /rpc`, with tokio-tungstenite and jsonrpsee.

use std::time::Duration;

use futures::StreamExt;
use rpc_transport::config::Limits;
use tokio::net::TcpStream;

use crate::common::http::basic;
use crate::common::within;
use crate::service::{PASSWORD, paused, producer_dropped, start, start_with};
use futures::SinkExt;
use jsonrpsee_core::client::{ClientT, SubscriptionClientT};
use jsonrpsee_core::rpc_params;
use jsonrpsee_ws_client::{HeaderMap, HeaderValue, WsClientBuilder};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

async fn connect(address: &str) -> Socket {
    let mut request = format!("ws://{address}/rpc").into_client_request().unwrap();
    let auth = basic(PASSWORD).parse().unwrap();
    request.headers_mut().insert("authorization", auth);
    let (socket, response) = within("the upgrade", tokio_tungstenite::connect_async(request))
        .await
        .expect("the gateway upgrades");
    assert_eq!(response.status(), 101);
    socket
}

async fn send(socket: &mut Socket, message: Value) {
    let sent = socket.send(Message::text(message.to_string()));
    within("a message to be sent", sent).await.unwrap();
}

async fn receive(socket: &mut Socket) -> Value {
    loop {
        let message = within("a message", socket.next()).await;
        match message.expect("the socket stays open").expect("a message") {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("an unexpected message {other:?}"),
        }
    }
}

fn call(id: u64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

fn item(method: &str, subscription: u64, result: Value) -> Value {
    let params = json!({"subscription": subscription, "result": result});
    json!({"jsonrpc": "2.0", "method": method, "params": params})
}

fn end(method: &str, subscription: u64, error: Value) -> Value {
    let params = json!({"subscription": subscription, "error": error});
    json!({"jsonrpc": "2.0", "method": method, "params": params})
}

#[tokio::test]
async fn a_unary_call_a_batch_and_a_subscription_with_its_end() {
    let gateway = start().await;
    let mut socket = connect(&gateway.http).await;
    send(&mut socket, call(1, "Ticks.add", json!([2, 3]))).await;
    assert_eq!(
        receive(&mut socket).await,
        json!({"jsonrpc": "2.0", "id": 1, "result": 5})
    );
    let batch = json!([
        call(2, "Ticks.add", json!([1, 1])),
        call(3, "Ticks.add", json!({"a": 4, "b": 4}))
    ]);
    send(&mut socket, batch).await;
    let answers = receive(&mut socket).await;
    assert_eq!(answers[0]["result"], 2, "{answers}");
    assert_eq!(answers[1]["result"], 8, "{answers}");
    send(&mut socket, call(4, "Ticks.count", json!([3]))).await;
    let opened = receive(&mut socket).await;
    assert_eq!(opened["id"], 4, "{opened}");
    let number = opened["result"].as_u64().expect("a subscription id");
    for i in 0..3 {
        assert_eq!(
            receive(&mut socket).await,
            item("Ticks.count", number, json!(i))
        );
    }
    let finished = json!({"code": 0, "message": "the stream finished"});
    assert_eq!(
        receive(&mut socket).await,
        end("Ticks.count", number, finished)
    );
    send(&mut socket, call(5, "Ticks.fail_after", json!({"n": 1}))).await;
    let number = receive(&mut socket).await["result"].as_u64().unwrap();
    assert_eq!(
        receive(&mut socket).await,
        item("Ticks.fail_after", number, json!(0))
    );
    let failed = json!({"code": -32000, "message": "ran out of ticks"});
    assert_eq!(
        receive(&mut socket).await,
        end("Ticks.fail_after", number, failed)
    );
}

#[tokio::test]
async fn unsubscribing_ends_the_stream_and_drops_the_producer() {
    let gateway = start().await;
    let mut socket = connect(&gateway.http).await;
    send(&mut socket, call(1, "Ticks.forever", json!([]))).await;
    let number = receive(&mut socket).await["result"].as_u64().unwrap();
    assert_eq!(
        receive(&mut socket).await,
        item("Ticks.forever", number, json!(0))
    );
    send(&mut socket, call(2, "rpc.unsubscribe", json!([number]))).await;
    let answer = loop {
        let message = receive(&mut socket).await;
        if message.get("id").is_some() {
            break message;
        }
        assert_eq!(message["params"]["subscription"], number, "{message}");
        assert!(
            message["params"].get("error").is_none(),
            "no end after unsubscribe"
        );
    };
    assert_eq!(answer, json!({"jsonrpc": "2.0", "id": 2, "result": true}));
    producer_dropped(&gateway.ticks).await;
    send(&mut socket, call(3, "rpc.unsubscribe", json!([number]))).await;
    assert_eq!(receive(&mut socket).await["result"], false);
}

#[tokio::test]
async fn closing_the_socket_drops_the_producer() {
    let gateway = start().await;
    let mut socket = connect(&gateway.http).await;
    send(&mut socket, call(1, "Ticks.forever", json!([]))).await;
    receive(&mut socket).await;
    receive(&mut socket).await;
    drop(socket);
    producer_dropped(&gateway.ticks).await;
}

#[tokio::test]
async fn subscriptions_past_max_streams_are_refused() {
    let limits = Limits {
        max_streams: 2,
        ..Limits::default()
    };
    let gateway = start_with(limits).await;
    let mut socket = connect(&gateway.http).await;
    for id in 1..=3 {
        send(&mut socket, call(id, "Ticks.forever", json!([]))).await;
    }
    let refused = loop {
        let message = receive(&mut socket).await;
        if message["id"] == 3 {
            break message;
        }
    };
    assert_eq!(refused["error"]["code"], -32012, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_streams")
    );
}

#[tokio::test]
async fn a_draining_server_ends_subscriptions_as_shutting_down() {
    let limits = Limits {
        shutdown_grace: Duration::from_millis(300),
        ..Limits::default()
    };
    let gateway = start_with(limits).await;
    let mut socket = connect(&gateway.http).await;
    send(&mut socket, call(1, "Ticks.forever", json!([]))).await;
    let number = receive(&mut socket).await["result"].as_u64().unwrap();
    gateway.server.shut_down();
    let ended = loop {
        let message = receive(&mut socket).await;
        if message["params"].get("error").is_some() {
            break message;
        }
    };
    assert_eq!(ended["params"]["subscription"], number);
    assert_eq!(ended["params"]["error"]["code"], -32003, "{ended}");
}

#[tokio::test]
async fn a_subscription_no_one_reads_pauses_its_producer() {
    let gateway = start().await;
    let mut socket = connect(&gateway.http).await;
    send(&mut socket, call(1, "Ticks.many", json!([]))).await;
    receive(&mut socket).await;
    let held = paused(&gateway.ticks.produced).await;
    println!("paused at {held} items");
    assert!(
        held < 2_000_000,
        "{held} items produced for a client that reads none"
    );
    send(&mut socket, call(2, "Ticks.add", json!([1, 2]))).await;
    let answer = loop {
        let message = receive(&mut socket).await;
        if message.get("id").is_some() {
            break message;
        }
    };
    assert_eq!(answer["result"], 3, "calls are answered behind the stream");
}

#[tokio::test]
async fn a_message_over_max_body_bytes_closes_the_socket() {
    let gateway = start().await;
    let mut socket = connect(&gateway.http).await;
    let big = call(1, "Ticks.add", json!(["x".repeat(100 * 1024), 1]));
    send(&mut socket, big).await;
    match within("the socket to close", socket.next()).await {
        Some(Ok(Message::Close(_)) | Err(_)) | None => {}
        Some(Ok(other)) => panic!("an answer to an oversized message: {other:?}"),
    }
}

#[tokio::test]
async fn the_upgrade_needs_the_password() {
    let gateway = start().await;
    let request = format!("ws://{}/rpc", gateway.http)
        .into_client_request()
        .unwrap();
    let refused = within("the upgrade", tokio_tungstenite::connect_async(request)).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 401)
        }
        other => panic!("expected a 401, got {:?}", other.map(|(_, r)| r)),
    }
}

#[tokio::test]
async fn jsonrpsee_subscribes_unchanged() {
    let gateway = start().await;
    let mut headers = HeaderMap::new();
    headers.insert(
        "authorization",
        HeaderValue::from_str(&basic(PASSWORD)).unwrap(),
    );
    let client = within(
        "jsonrpsee to connect",
        WsClientBuilder::default()
            .set_headers(headers)
            .build(format!("ws://{}/rpc", gateway.http)),
    )
    .await
    .expect("jsonrpsee connects");
    let sum: i64 = within("a call", client.request("Ticks.add", rpc_params![20, 22]))
        .await
        .unwrap();
    assert_eq!(sum, 42);
    let mut ticks = within(
        "the subscription",
        client.subscribe::<u64, _>("Ticks.count", rpc_params![4], "rpc.unsubscribe"),
    )
    .await
    .expect("subscribes");
    let mut got = Vec::new();
    while let Some(tick) = within("a tick", ticks.next()).await {
        got.push(tick.unwrap());
    }
    assert_eq!(got, [0, 1, 2, 3]);
    let mut forever = within(
        "the subscription",
        client.subscribe::<u64, _>("Ticks.forever", rpc_params![], "rpc.unsubscribe"),
    )
    .await
    .expect("subscribes");
    assert_eq!(within("a tick", forever.next()).await.unwrap().unwrap(), 0);
    within("unsubscribe", forever.unsubscribe()).await.unwrap();
    producer_dropped(&gateway.ticks).await;
}
