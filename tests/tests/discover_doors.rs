//! `rpc.discover` on every door that speaks JSON — the TCP JSON codec,
//! `POST /rpc`, the WebSocket — and over bincode, which reads the document
//! back as a `Value`; `GET /openrpc.json` and the explorer page behind the
//! gateway's password. A TCP server and its gateway on `127.0.0.1:0`,
//! driven by hand (`common::http`, raw JSON frames) and by real clients.

mod common;
#[path = "common/openrpc.rs"]
mod openrpc;

use std::time::Duration;

use common::http::{Answer, Connection, basic, get, post_json};
use common::{connect, json_round_trip, raw_json_session, server_builder, within};
use examples::calculator::{Calc, CalculatorServer};
use examples::kv::{KeyValueServer, MemoryStore};
use futures::{SinkExt, StreamExt};
use rpc_core::{ErrorKind, Registry};
use rpc_transport::Server;
use rpc_transport::http::{HttpConfig, HttpGateway};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const PASSWORD: &str = "discover-doors-password";
const ANSWER: Duration = Duration::from_secs(10);
const DISCOVER: &str = r#"{"jsonrpc":"2.0","id":1,"method":"rpc.discover"}"#;

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .register(CalculatorServer::new(Calc))
        .and_then(|r| r.register(KeyValueServer::new(MemoryStore::default())))
        .expect("the services register")
        .openrpc_info("Doors", "0.0.7");
    registry
}

/// A TCP server and its HTTP gateway, both stopped when dropped.
struct Doors {
    tcp: String,
    http: String,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Doors {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

async fn start() -> Doors {
    let config = server_builder().build().expect("a valid server config");
    let server = Server::new(config, registry());
    let http = HttpConfig::builder()
        .listen("127.0.0.1:0")
        .password(PASSWORD)
        .build()
        .expect("a valid [http] config");
    let gateway = HttpGateway::new(http, &server).expect("the gateway builds");
    let http = within("the gateway to bind", gateway.bind())
        .await
        .expect("binds");
    let tcp = within("the server to bind", server.bind())
        .await
        .expect("binds");
    Doors {
        tcp: tcp.local_addr().to_owned(),
        http: http.local_addr().to_owned(),
        tasks: vec![tokio::spawn(tcp.serve()), tokio::spawn(http.serve())],
    }
}

async fn http(doors: &Doors, request: &[u8]) -> Answer {
    let mut connection = Connection::open(&doors.http).await;
    connection
        .exchange(request, ANSWER)
        .await
        .expect("the gateway answers")
}

fn json_body(answer: &Answer) -> Value {
    serde_json::from_slice(&answer.body).unwrap_or_else(|e| panic!("{e}: {}", answer.text()))
}

#[tokio::test]
async fn tcp_json_answers_the_document() {
    let doors = start().await;
    let mut stream = raw_json_session(&doors.tcp).await;
    let answer = json_round_trip(&mut stream, DISCOVER).await;
    assert_eq!(answer["result"], registry().openrpc(), "{answer}");
    assert_eq!(answer["result"]["info"]["title"], "Doors");
    let named = r#"{"jsonrpc":"2.0","id":2,"method":"rpc.discover","params":{}}"#;
    let answer = json_round_trip(&mut stream, named).await;
    assert_eq!(answer["result"]["openrpc"], "1.3.2", "{answer}");
    let extra = r#"{"jsonrpc":"2.0","id":3,"method":"rpc.discover","params":[1]}"#;
    let answer = json_round_trip(&mut stream, extra).await;
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
}

#[tokio::test]
async fn both_codecs_read_the_document_through_a_client() {
    let doors = start().await;
    for codec in common::CODECS {
        let client = connect(&doors.tcp, codec).await;
        let document: rpc_core::Value = within("rpc.discover", client.call("rpc.discover", &()))
            .await
            .unwrap_or_else(|e| panic!("{codec}: {e}"));
        assert_eq!(document.0, registry().openrpc(), "{codec}");
    }
}

#[tokio::test]
async fn a_bare_discover_is_not_the_framework_s() {
    let doors = start().await;
    let client = connect(&doors.tcp, "json").await;
    let refused = within("discover", client.call::<_, Value>("discover", &())).await;
    let error = refused.expect_err("`discover` alone names no method");
    assert_eq!(error.kind(), ErrorKind::MethodNotFound, "{error}");
}

#[tokio::test]
async fn post_rpc_answers_the_document() {
    let doors = start().await;
    let answer = http(&doors, &post_json("/rpc", PASSWORD, DISCOVER.as_bytes())).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(json_body(&answer)["result"], registry().openrpc());
    let batch = format!("[{DISCOVER}]");
    let answer = http(&doors, &post_json("/rpc", PASSWORD, batch.as_bytes())).await;
    assert_eq!(json_body(&answer)[0]["result"]["openrpc"], "1.3.2");
}

#[tokio::test]
async fn the_websocket_answers_the_document() {
    let doors = start().await;
    let mut request = format!("ws://{}/rpc", doors.http)
        .into_client_request()
        .expect("a request");
    let auth = basic(PASSWORD).parse().expect("a header");
    request.headers_mut().insert("authorization", auth);
    let (mut socket, _) = within("the upgrade", tokio_tungstenite::connect_async(request))
        .await
        .expect("the gateway upgrades");
    within("the request", socket.send(Message::text(DISCOVER)))
        .await
        .expect("sent");
    let answer = loop {
        match within("the answer", socket.next()).await {
            Some(Ok(Message::Text(text))) => break serde_json::from_str::<Value>(&text).unwrap(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("an unexpected message {other:?}"),
        }
    };
    assert_eq!(answer["result"], registry().openrpc(), "{answer}");
}

#[tokio::test]
async fn openrpc_json_is_the_same_document_behind_the_password() {
    let doors = start().await;
    let answer = http(&doors, &get("/openrpc.json", PASSWORD)).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(json_body(&answer), registry().openrpc());
    let refused = http(&doors, &get("/openrpc.json", "wrong")).await;
    assert_eq!(refused.status, 401, "{}", refused.text());
    assert!(!refused.text().contains("openrpc"), "{}", refused.text());
}

#[tokio::test]
async fn a_curl_of_openrpc_json_validates_against_the_openrpc_meta_schema() {
    let doors = start().await;
    let url = format!("http://{}/openrpc.json", doors.http);
    let user = format!("rpc:{PASSWORD}");
    let output = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", "-u", &user, &url])
        .output();
    let output = within("curl", output).await.expect("curl runs");
    assert!(output.status.success(), "{output:?}");
    let document: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(document["methods"][0]["name"], "Calculator.add");
    // What a user fetches is what the issue asks to validate.
    assert_eq!(openrpc::violations(&document), "", "{document}");
}

fn get_html(path: &str, password: &str) -> Vec<u8> {
    let mut request = get(path, password);
    let at = request.len() - 2;
    request.splice(at..at, *b"Accept: text/html,*/*;q=0.8\r\n");
    request
}

#[tokio::test]
async fn a_browser_gets_the_explorer_and_other_clients_the_index() {
    let doors = start().await;
    let page = http(&doors, &get_html("/", PASSWORD)).await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let html = page.text();
    assert!(html.contains("rpc</span> explorer") && html.contains("rpc.discover"));
    assert!(
        !html.contains("<script src") && !html.contains("<link"),
        "self-contained"
    );
    let index = http(&doors, &get("/", PASSWORD)).await;
    assert_eq!(json_body(&index)["services"][0]["name"], "Calculator");
    let refused = http(&doors, &get_html("/", "wrong")).await;
    assert_eq!(refused.status, 401);
    assert_eq!(
        refused
            .header("www-authenticate")
            .map(|h| h.starts_with("Basic")),
        Some(true)
    );
}
