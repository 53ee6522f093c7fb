//! Streams over the HTTP gateway: Server-Sent Events (read by curl, by a
//! raw TCP client and by Python's urllib), the WebSocket at `GET /rpc`
//! (tokio-tungstenite and jsonrpsee's `WsClient`), and the doors that
//! cannot carry a stream (REST without SSE, `POST /rpc`, XML-RPC) naming
//! the ones that can.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::http::{Connection, basic, post_json};
use common::{server_builder, within, within_for};
use futures::StreamExt;
use rpc_core::{Error, ErrorKind, Registry, Stream};
use rpc_transport::Server;
use rpc_transport::config::Limits;
use rpc_transport::http::{HttpConfig, HttpGateway};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::Command;
use tokio::task::JoinHandle;

const PASSWORD: &str = "http-streams-password";

#[rpc_core::rpc_service]
/// Numbers streamed over HTTP.
pub trait Ticks {
    /// 0..n, then the end.
    #[rpc(idempotent)]
    async fn count(&self, n: u64) -> Stream<u64>;
    /// 0..n, then an application error.
    async fn fail_after(&self, n: u64) -> Stream<u64>;
    /// 0, 1, 2… until the receiver goes away (which the drop flag records).
    #[rpc(idempotent)]
    async fn forever(&self) -> Stream<u64>;
    /// 0, 1, 2… as fast as they are taken (`produced` counts them).
    #[rpc(idempotent)]
    async fn many(&self) -> Stream<u64>;
    /// A plain call.
    async fn add(&self, a: i64, b: i64) -> i64;
    /// Takes a stream: only TCP carries it.
    async fn total(&self, items: Stream<u64>) -> u64;
}

#[derive(Clone, Default)]
struct Impl {
    dropped: Arc<AtomicBool>,
    produced: Arc<AtomicU64>,
}

/// Sets its flag when the producer holding it is dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Ticks for Impl {
    async fn count(&self, n: u64) -> Stream<u64> {
        Stream::iter(0..n)
    }
    async fn fail_after(&self, n: u64) -> Stream<u64> {
        let items = (0..n)
            .map(Ok)
            .chain([Err(Error::new(ErrorKind::Application, "ran out of ticks"))]);
        Stream::try_new(futures::stream::iter(items))
    }
    async fn forever(&self) -> Stream<u64> {
        let flag = DropFlag(self.dropped.clone());
        Stream::new(futures::stream::unfold(
            (0u64, flag),
            |(n, flag)| async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                Some((n, (n + 1, flag)))
            },
        ))
    }
    async fn many(&self) -> Stream<u64> {
        let produced = self.produced.clone();
        Stream::new(futures::stream::iter(0..).inspect(move |_| {
            produced.fetch_add(1, Ordering::Relaxed);
        }))
    }
    async fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }
    async fn total(&self, items: Stream<u64>) -> u64 {
        items.fold(0, |a, b| async move { a + b }).await
    }
}

struct Gateway {
    http: String,
    tcp: String,
    server: Server,
    ticks: Impl,
    tasks: [JoinHandle<()>; 2],
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

async fn start() -> Gateway {
    start_with(Limits::default()).await
}

async fn start_with(limits: Limits) -> Gateway {
    let ticks = Impl::default();
    let registry = Registry::new()
        .with(TicksServer::new(ticks.clone()))
        .expect("the service registers");
    let config = server_builder()
        .limits(limits)
        .python_compat(true)
        .allow_legacy_auth(true)
        .build()
        .expect("a config");
    let server = Server::new(config, registry);
    let http = HttpConfig::builder()
        .listen("127.0.0.1:0")
        .password(PASSWORD)
        .max_body_bytes(64 * 1024)
        .build()
        .expect("an [http] config");
    let listening = within(
        "the gateway to bind",
        HttpGateway::new(http, &server).unwrap().bind(),
    )
    .await
    .expect("binds");
    let tcp = within("the server to bind", server.clone().bind())
        .await
        .expect("binds");
    Gateway {
        http: listening.local_addr().to_owned(),
        tcp: tcp.local_addr().to_owned(),
        server,
        ticks,
        tasks: [tokio::spawn(listening.serve()), tokio::spawn(tcp.serve())],
    }
}

/// Runs curl with `args` against the gateway and returns its stdout.
async fn curl(args: &[&str]) -> String {
    let output = within_for(
        Duration::from_secs(30),
        "curl",
        Command::new("curl")
            .args(["-sS", "-N", "--max-time", "20", "-u"])
            .arg(format!("rpc:{PASSWORD}"))
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("curl runs");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The `data:` lines of an event stream, and its end reason.
fn events(text: &str) -> (Vec<String>, Option<String>) {
    let mut data = Vec::new();
    let mut end = None;
    for block in text.split("\n\n").filter(|b| !b.is_empty()) {
        let line = |prefix: &str| block.lines().find_map(|l| l.strip_prefix(prefix));
        match (line("event: "), line("data: ")) {
            (Some("end"), Some(reason)) => end = Some(reason.to_owned()),
            (None, Some(item)) => data.push(item.to_owned()),
            other => panic!("an unexpected event {other:?} in {text:?}"),
        }
    }
    (data, end)
}

fn numbers(n: u64) -> Vec<String> {
    (0..n).map(|i| i.to_string()).collect()
}

#[tokio::test]
async fn curl_reads_a_stream_by_get_and_by_post_with_its_end() {
    let gateway = start().await;
    let base = format!("http://{}", gateway.http);
    let accept = "Accept: text/event-stream";
    let got = curl(&["-H", accept, &format!("{base}/Ticks/count?n=5")]).await;
    assert_eq!(events(&got), (numbers(5), Some(r#"{"ok":true}"#.into())));
    let got = curl(&["-H", accept, "-d", "[3]", &format!("{base}/Ticks/count")]).await;
    assert_eq!(events(&got), (numbers(3), Some(r#"{"ok":true}"#.into())));
    let got = curl(&[
        "-H",
        accept,
        "-d",
        r#"{"n":2}"#,
        &format!("{base}/Ticks/fail_after"),
    ])
    .await;
    let (items, end) = events(&got);
    assert_eq!(items, numbers(2));
    assert_eq!(
        end.as_deref(),
        Some(r#"{"code":-32000,"message":"ran out of ticks"}"#)
    );
}

#[tokio::test]
async fn a_plain_method_over_sse_is_one_item_and_the_end() {
    let gateway = start().await;
    let url = format!("http://{}/Ticks/add", gateway.http);
    let got = curl(&["-H", "Accept: text/event-stream", "-d", "[2,3]", &url]).await;
    assert_eq!(
        events(&got),
        (vec!["5".into()], Some(r#"{"ok":true}"#.into()))
    );
}

#[tokio::test]
async fn get_is_refused_for_a_stream_method_not_marked_idempotent() {
    let gateway = start().await;
    let mut connection = Connection::open(&gateway.http).await;
    let request = format!(
        "GET /Ticks/fail_after?n=2 HTTP/1.1\r\nHost: t\r\nAuthorization: {}\r\nAccept: text/event-stream\r\n\r\n",
        basic(PASSWORD)
    );
    let answer = connection
        .exchange(request.as_bytes(), Duration::from_secs(10))
        .await
        .expect("an answer");
    assert_eq!(answer.status, 405, "{}", answer.text());
    assert!(answer.text().contains("use POST"), "{}", answer.text());
}

/// Sends an SSE `GET path` over a raw connection and returns the reader,
/// past the response head (checked to be a 200 event stream).
async fn open_events(address: &str, path: &str) -> BufReader<TcpStream> {
    let mut stream = within("connect", TcpStream::connect(address))
        .await
        .unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: t\r\nAuthorization: {}\r\nAccept: text/event-stream\r\n\r\n",
        basic(PASSWORD)
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        within("the response head", reader.read_line(&mut line))
            .await
            .unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        head.push_str(&line);
    }
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/event-stream"),
        "{head}"
    );
    reader
}

/// Reads lines until one containing `needle`; returns everything read.
async fn read_until(reader: &mut BufReader<TcpStream>, needle: &str) -> String {
    let mut seen = String::new();
    within("an event", async {
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await.unwrap() == 0 {
                panic!("the stream closed before {needle:?}: {seen}");
            }
            seen.push_str(&line);
            if line.contains(needle) {
                return;
            }
        }
    })
    .await;
    seen
}

#[tokio::test]
async fn a_raw_client_reads_chunked_events_and_closing_it_drops_the_producer() {
    let gateway = start().await;
    let mut reader = open_events(&gateway.http, "/Ticks/forever").await;
    let seen = read_until(&mut reader, "data: 20\n").await;
    assert!(seen.contains("data: 0\n"), "{seen}");
    assert!(!gateway.ticks.dropped.load(Ordering::SeqCst));
    drop(reader);
    within("the producer to be dropped", async {
        while !gateway.ticks.dropped.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// Waits until `produced` stops growing (no change over 300 ms) and
/// returns it: a producer no one reads from must pause.
async fn paused(produced: &AtomicU64) -> u64 {
    within_for(Duration::from_secs(20), "the producer to pause", async {
        let mut last = 0;
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = produced.load(Ordering::Relaxed);
            if now == last && now > 0 {
                return now;
            }
            last = now;
        }
    })
    .await
}

#[tokio::test]
async fn an_event_stream_no_one_reads_pauses_its_producer() {
    let gateway = start().await;
    let mut reader = open_events(&gateway.http, "/Ticks/many").await;
    read_until(&mut reader, "data: 1\n").await;
    let held = paused(&gateway.ticks.produced).await;
    println!("paused at {held} items");
    // Socket buffers and one chunk: nowhere near the unbounded stream.
    assert!(
        held < 2_000_000,
        "{held} items produced for a client that reads none"
    );
    within_for(Duration::from_secs(30), "the producer to resume", async {
        let mut line = String::new();
        while gateway.ticks.produced.load(Ordering::Relaxed) <= held {
            line.clear();
            assert!(
                reader.read_line(&mut line).await.unwrap() > 0,
                "the stream ended"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn a_draining_server_ends_an_event_stream_as_shutting_down_after_the_grace() {
    let limits = Limits {
        shutdown_grace: Duration::from_millis(300),
        ..Limits::default()
    };
    let gateway = start_with(limits).await;
    let mut reader = open_events(&gateway.http, "/Ticks/forever").await;
    read_until(&mut reader, "data: 3\n").await;
    gateway.server.shut_down();
    let seen = read_until(&mut reader, "event: end").await;
    let seen = seen + &read_until(&mut reader, "}\n").await;
    assert!(
        seen.contains(r#"data: {"code":-32003,"message":"the server is shutting down"#),
        "{seen}"
    );
    within("the producer to be dropped", async {
        while !gateway.ticks.dropped.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

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
async fn python_urllib_reads_an_event_stream() {
    let gateway = start().await;
    let script = r#"
import base64, sys, urllib.request
url, password = sys.argv[1], sys.argv[2]
request = urllib.request.Request(url, headers={
    "Accept": "text/event-stream",
    "Authorization": "Basic " + base64.b64encode(("rpc:" + password).encode()).decode(),
})
with urllib.request.urlopen(request, timeout=20) as response:
    event = None
    for raw in response:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            print(("end " if event == "end" else "item ") + line[6:])
            if event == "end":
                break
"#;
    let url = format!("http://{}/Ticks/count?n=3", gateway.http);
    let stdout = python(script, &[&url, PASSWORD]).await;
    assert_eq!(stdout, "item 0\nitem 1\nitem 2\nend {\"ok\":true}\n");
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
    let stdout = python(script, &[&gateway.tcp, common::KEY]).await;
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

/// Runs a Python script given as text with `args`; its stdout, after
/// checking it exited 0.
async fn python(script: &str, args: &[&str]) -> String {
    let output = within_for(
        Duration::from_secs(30),
        "python3",
        Command::new("python3")
            .args(["-c", script])
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    stdout
}

mod websocket {
    //! The WebSocket at `GET /rpc`, with tokio-tungstenite and jsonrpsee.

    use super::*;
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
        within("the producer to be dropped", async {
            while !gateway.ticks.dropped.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
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
        within("the producer to be dropped", async {
            while !gateway.ticks.dropped.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
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
        let closed = within("the socket to close", async {
            loop {
                match socket.next().await {
                    Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                    Some(Ok(other)) => panic!("an answer to an oversized message: {other:?}"),
                }
            }
        });
        closed.await;
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
        within("the producer to be dropped", async {
            while !gateway.ticks.dropped.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
    }
}
