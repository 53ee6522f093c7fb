//! The doors that cannot carry a stream (REST without SSE, `POST /rpc`,
//! XML-RPC, a stock Python multiprocessing peer) name the ones that can.

use std::time::Duration;

use crate::common::http::{Connection, basic, post_json};
use crate::service::{PASSWORD, python, start};

#[tokio::test]
async fn rest_and_json_rpc_calling_a_stream_method_are_told_the_doors() {
    let gateway = start().await;
    let mut connection = Connection::open(&gateway.http).await;
    let limit = Duration::from_secs(10);
    let rest = post_json("/Ticks/count", PASSWORD, b"[3]");
    let answer = connection.exchange(&rest, limit).await.expect("an answer");
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(
        answer.text().contains("Server-Sent Events"),
        "{}",
        answer.text()
    );
    assert!(
        answer.text().contains("WebSocket at `GET /rpc`"),
        "{}",
        answer.text()
    );
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"Ticks.count","params":[3]}"#;
    let answer = connection
        .exchange(&post_json("/rpc", PASSWORD, body), limit)
        .await
        .unwrap();
    assert!(
        answer.text().contains("`Ticks.count` returns a stream"),
        "{}",
        answer.text()
    );
    assert!(
        answer.text().contains("Server-Sent Events"),
        "{}",
        answer.text()
    );
    let xml = "<?xml version=\"1.0\"?><methodCall><methodName>Ticks.count</methodName>\
               <params><param><value><i4>3</i4></value></param></params></methodCall>";
    let answer = connection
        .exchange(&post_json("/RPC2", PASSWORD, xml.as_bytes()), limit)
        .await
        .unwrap();
    assert!(answer.text().contains("<fault>"), "{}", answer.text());
    assert!(
        answer.text().contains("WebSocket at `GET /rpc`"),
        "{}",
        answer.text()
    );
    let sse = format!(
        "POST /Ticks/total HTTP/1.1\r\nHost: t\r\nAuthorization: {}\r\nAccept: text/event-stream\r\nContent-Length: 4\r\n\r\n[[]]",
        basic(PASSWORD)
    );
    let answer = connection.exchange(sse.as_bytes(), limit).await.unwrap();
    assert!(
        answer.text().contains("takes a stream"),
        "{}",
        answer.text()
    );
}

#[tokio::test]
async fn a_python_multiprocessing_peer_calling_a_stream_method_is_told_the_doors() {
    let gateway = start().await;
    let script = r#"
import pickle, sys
from multiprocessing.connection import Client
host, port = sys.argv[1].rsplit(":", 1)
conn = Client((host, int(port)), authkey=sys.argv[2].encode())
conn.send(pickle.dumps(("count", (3,), {})))
print(repr(pickle.loads(conn.recv())))
conn.send(pickle.dumps(("add", (2, 3), {})))
print(repr(pickle.loads(conn.recv())))
"#;
    let stdout = python(script, &[&gateway.tcp, crate::common::KEY]).await;
    assert!(
        stdout.contains("`Ticks.count` failed: it returns a stream"),
        "{stdout}"
    );
    assert!(stdout.contains("Server-Sent Events"), "{stdout}");
    assert!(
        stdout.ends_with("\n5\n"),
        "the connection goes on: {stdout}"
    );
}
