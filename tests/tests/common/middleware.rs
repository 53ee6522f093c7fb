//! Helpers for the middleware tests (`middleware_*.rs`): a service that
//! records what its handlers saw, a server with a TCP listener (Python
//! peers too) and an HTTP gateway in front of the same layered registry,
//! and one way to make a call through each door, whose outcome reads the
//! same whichever door answered.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use rpc_core::{Context, ErrorKind, Registry, Stream};
use rpc_transport::Server;
use rpc_transport::http::{HttpConfig, HttpGateway};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::Command;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::http::{Answer, Connection, basic};
use super::{KEY, LONG_CALL, client_builder, server_builder, within, within_for};

/// The gateway's password.
pub(crate) const PASSWORD: &str = "middleware-http-password";

/// How long any one answer may take.
const ANSWER: Duration = Duration::from_secs(20);

/// A service whose handlers record what they saw.
#[rpc_core::rpc_service]
pub(crate) trait Mw {
    /// `x + y`.
    #[rpc(idempotent)]
    async fn add(&self, x: i64, y: i64) -> i64;

    /// How many times `bump` ran, this one included (not idempotent).
    async fn bump(&self) -> u64;

    /// Sleeps `ms`, counted in the in-flight peak.
    async fn nap(&self, ms: u64) -> u64;

    /// The metadata value of `key` as text, as the handler sees it.
    async fn seen(&self, key: String) -> Option<String>;

    /// The metadata value of `key` as bytes.
    async fn seen_bytes(&self, key: String) -> Option<Vec<u8>>;

    /// Every metadata key the handler sees, in order.
    async fn keys(&self) -> Vec<String>;

    /// `0..n`, streamed.
    #[rpc(idempotent)]
    async fn count(&self, n: u64) -> Stream<u64>;
}

/// What the handlers did.
#[derive(Debug, Default)]
pub(crate) struct MwState {
    /// Handlers run, of any method.
    pub(crate) handled: AtomicUsize,
    /// `nap` handlers running now.
    in_flight: AtomicUsize,
    /// The most `nap` handlers ever running at once.
    pub(crate) peak: AtomicUsize,
    /// When each `add`, `nap` and `count` handler started.
    starts: Mutex<Vec<Instant>>,
}

impl MwState {
    fn enter(&self) {
        self.handled.fetch_add(1, Ordering::SeqCst);
        self.starts.lock().unwrap().push(Instant::now());
    }

    /// Handlers run so far.
    pub(crate) fn handled(&self) -> usize {
        self.handled.load(Ordering::SeqCst)
    }

    /// The most `nap` handlers that ran at once.
    pub(crate) fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// Waits until `n` `nap` handlers are running.
    pub(crate) async fn wait_napping(&self, n: usize) {
        within("nap handlers to start", async {
            while self.in_flight.load(Ordering::SeqCst) < n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
    }

    /// The shortest time between two handler starts, sorted.
    pub(crate) fn shortest_gap(&self) -> Duration {
        let mut starts = self.starts.lock().unwrap().clone();
        starts.sort();
        starts
            .windows(2)
            .map(|w| w[1] - w[0])
            .min()
            .expect("at least two handlers started")
    }
}

/// The service over a [`MwState`].
#[derive(Clone, Debug, Default)]
pub(crate) struct MwImpl(pub(crate) Arc<MwState>);

fn metadata_of_current() -> rpc_core::metadata::Metadata {
    Context::current()
        .map(|c| c.metadata().clone())
        .unwrap_or_default()
}

impl Mw for MwImpl {
    async fn add(&self, x: i64, y: i64) -> i64 {
        self.0.enter();
        x + y
    }

    async fn bump(&self) -> u64 {
        self.0.handled.fetch_add(1, Ordering::SeqCst) as u64 + 1
    }

    async fn nap(&self, ms: u64) -> u64 {
        self.0.enter();
        let now = self.0.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.0.peak.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        ms
    }

    async fn seen(&self, key: String) -> Option<String> {
        self.0.handled.fetch_add(1, Ordering::SeqCst);
        metadata_of_current().text(&key).map(str::to_owned)
    }

    async fn seen_bytes(&self, key: String) -> Option<Vec<u8>> {
        self.0.handled.fetch_add(1, Ordering::SeqCst);
        metadata_of_current()
            .get(&key)
            .map(|v| v.as_bytes().to_vec())
    }

    async fn keys(&self) -> Vec<String> {
        self.0.handled.fetch_add(1, Ordering::SeqCst);
        metadata_of_current()
            .iter()
            .map(|(k, _)| k.to_owned())
            .collect()
    }

    async fn count(&self, n: u64) -> Stream<u64> {
        self.0.enter();
        Stream::iter(0..n)
    }
}

/// A TCP listener (Python peers welcome) and an HTTP gateway serving one
/// layered registry; stopped when dropped.
pub(crate) struct Doors {
    /// The TCP listener's address.
    pub(crate) tcp: String,
    /// The HTTP gateway's address.
    pub(crate) http: String,
    /// What the handlers did.
    pub(crate) state: Arc<MwState>,
    tasks: [JoinHandle<()>; 2],
}

impl Drop for Doors {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

/// Serves [`Mw`] with the layers `layers` adds, on every door.
pub(crate) async fn start(layers: impl FnOnce(&mut Registry)) -> Doors {
    start_server(layers, |server| server).await
}

/// Serves [`Mw`] with the layers `layers` adds to the registry, then those
/// `server_layers` adds with `Server::layer`, on every door.
pub(crate) async fn start_server(
    layers: impl FnOnce(&mut Registry),
    server_layers: impl FnOnce(Server) -> Server,
) -> Doors {
    let state = Arc::new(MwState::default());
    let mut registry = Registry::new()
        .with(MwServer::new(MwImpl(state.clone())))
        .expect("the service registers");
    layers(&mut registry);
    let config = server_builder()
        .python_compat(true)
        .allow_legacy_auth(true)
        .build()
        .expect("a server config");
    let server = server_layers(Server::new(config, registry));
    let http = HttpConfig::builder()
        .listen("127.0.0.1:0")
        .password(PASSWORD)
        .request_timeout(LONG_CALL)
        .build()
        .expect("an [http] config");
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
        state,
        tasks: [tokio::spawn(http.serve()), tokio::spawn(tcp.serve())],
    }
}

// ---------------------------------------------------------------------------
// One call through any door.
// ---------------------------------------------------------------------------

/// A way in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Door {
    /// The typed client, bincode.
    Bincode,
    /// The typed client, JSON.
    Json,
    /// A stock Python `multiprocessing.connection.Client`, pickle.
    Python,
    /// HTTP `POST /rpc`.
    JsonRpc,
    /// HTTP `POST /RPC2`.
    XmlRpc,
    /// HTTP `POST /Mw/{method}`.
    Rest,
    /// A stream opened by the typed client (bincode).
    TcpStream,
    /// A stream opened over Server-Sent Events.
    Sse,
    /// A stream opened over the WebSocket at `/rpc`.
    WebSocket,
}

impl Door {
    /// Every door.
    pub(crate) const ALL: [Door; 9] = [
        Door::Bincode,
        Door::Json,
        Door::Python,
        Door::JsonRpc,
        Door::XmlRpc,
        Door::Rest,
        Door::TcpStream,
        Door::Sse,
        Door::WebSocket,
    ];

    /// Whether a call through this door opens a stream (`count`) rather
    /// than makes a unary call (`add`).
    pub(crate) fn streams(self) -> bool {
        matches!(self, Door::TcpStream | Door::Sse | Door::WebSocket)
    }

    /// Whether this door can carry metadata.
    pub(crate) fn carries_metadata(self) -> bool {
        self != Door::Python
    }

    /// The name `Context::transport` gives this door.
    pub(crate) fn transport(self) -> &'static str {
        match self {
            Door::Bincode | Door::Json | Door::TcpStream => "tcp",
            Door::Python => "python",
            Door::JsonRpc | Door::XmlRpc | Door::Rest => "http",
            Door::Sse => "sse",
            Door::WebSocket => "websocket",
        }
    }

    /// What a successful [`invoke`] of `n` answers.
    pub(crate) fn expected(self, n: i64) -> Value {
        if self.streams() {
            Value::from((0..n).collect::<Vec<_>>())
        } else {
            Value::from(n + 1)
        }
    }
}

/// A refusal, as the door that carried it reports it: each field the door
/// has must agree with one [`ErrorKind`].
#[derive(Debug, Default)]
pub(crate) struct Refusal {
    /// A JSON-RPC error code (or the library client's kind's code).
    pub(crate) code: Option<i32>,
    /// An HTTP status.
    pub(crate) status: Option<u16>,
    /// An XML-RPC `faultCode`.
    pub(crate) fault: Option<i32>,
    /// A Python exception's class name.
    pub(crate) python: Option<String>,
    /// What the door said.
    pub(crate) message: String,
}

impl Refusal {
    /// Whether every signal present names `kind` (and one is present).
    pub(crate) fn is(&self, kind: ErrorKind) -> bool {
        let present = self.code.is_some()
            || self.status.is_some()
            || self.fault.is_some()
            || self.python.is_some();
        present
            && self.code.is_none_or(|c| c == kind.code())
            && self.status.is_none_or(|s| s == kind.http_status())
            && self.fault.is_none_or(|f| f == kind.xmlrpc_fault())
            && self
                .python
                .as_deref()
                .is_none_or(|p| p == kind.python_exception())
    }
}

/// What a call through a door got: the result as JSON, or a refusal.
pub(crate) type Outcome = Result<Value, Refusal>;

/// Asserts `outcome` is a refusal of `kind`, saying which door.
#[track_caller]
pub(crate) fn assert_refused(door: Door, outcome: &Outcome, kind: ErrorKind) {
    match outcome {
        Err(refusal) if refusal.is(kind) => {}
        other => panic!("{door:?}: expected a refusal as {kind:?}, got {other:?}"),
    }
}

/// Calls `nap(ms)` through a unary `door`.
pub(crate) async fn nap(doors: &Doors, door: Door, ms: i64) -> Outcome {
    match door {
        Door::Bincode | Door::Json => {
            let codec = if door == Door::Json {
                "json"
            } else {
                "bincode"
            };
            let client = mw_client(&doors.tcp, codec).await;
            let ms = u64::try_from(ms).expect("a duration");
            within_for(LONG_CALL, "a nap", client.nap(ms))
                .await
                .map(Value::from)
                .map_err(|e| Refusal {
                    code: Some(e.code()),
                    message: e.to_string(),
                    ..Refusal::default()
                })
        }
        Door::Python => python_call(&doors.tcp, "nap", &json!([ms])).await,
        Door::JsonRpc => {
            let body = json!({"jsonrpc": "2.0", "id": 1, "method": "Mw.nap", "params": [ms]});
            json_rpc(doors, &body, &[]).await
        }
        Door::XmlRpc => xml_rpc(doors, "nap", &[ms], &[]).await,
        Door::Rest => rest(doors, "nap", &json!([ms]), &[]).await,
        streaming => panic!("{streaming:?} opens streams: no nap there"),
    }
}

/// Calls through `door` with `n`: `add(n, 1)` for a unary door, or opens
/// `count(n)` and reads it to its end for a streaming one; `tenant`, if
/// any, travels as the `tenant` metadata (a door that cannot carry it
/// ignores it).
pub(crate) async fn invoke(doors: &Doors, door: Door, n: i64, tenant: Option<&str>) -> Outcome {
    let meta: Vec<(&str, &str)> = tenant.map(|t| ("tenant", t)).into_iter().collect();
    match door {
        Door::Bincode | Door::Json | Door::TcpStream => tcp(doors, door, n, &meta).await,
        Door::Python => python_call(&doors.tcp, "add", &json!([n, 1])).await,
        Door::JsonRpc => {
            let body = json!({"jsonrpc": "2.0", "id": 1, "method": "Mw.add", "params": [n, 1]});
            json_rpc(doors, &body, &meta).await
        }
        Door::XmlRpc => xml_rpc(doors, "add", &[n, 1], &meta).await,
        Door::Rest => rest(doors, "add", &json!([n, 1]), &meta).await,
        Door::Sse => sse(doors, n, &meta).await,
        Door::WebSocket => websocket(doors, n, &meta).await,
    }
}

async fn tcp(doors: &Doors, door: Door, n: i64, meta: &[(&str, &str)]) -> Outcome {
    let codec = if door == Door::Json {
        "json"
    } else {
        "bincode"
    };
    let mut client = super::connect(&doors.tcp, codec).await;
    for (k, v) in meta {
        client = client.with_metadata(k, *v);
    }
    let client = MwClient::new(client);
    let answer = if door.streams() {
        let n = u64::try_from(n).expect("a count");
        match within("a stream to open", client.count(n)).await {
            Ok(stream) => {
                let items: Vec<u64> = within("a stream to end", stream.collect()).await;
                Ok(Value::from(items))
            }
            Err(e) => Err(e),
        }
    } else {
        within("a call", client.add(n, 1)).await.map(Value::from)
    };
    answer.map_err(|e| Refusal {
        code: Some(e.code()),
        message: e.to_string(),
        ..Refusal::default()
    })
}

// ---------------------------------------------------------------------------
// Python.
// ---------------------------------------------------------------------------

/// A stock Python client that makes one pickled call and prints
/// `ok <json>` or `raised <class>: <message>`.
const PYTHON_CALL: &str = r#"
import json, pickle, sys
from multiprocessing.connection import Client
port, key, method, args = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3], json.loads(sys.argv[4])
c = Client(("127.0.0.1", port), authkey=key)
c.send(pickle.dumps((method, tuple(args), {})))
result = pickle.loads(c.recv())
if isinstance(result, Exception):
    print("raised", type(result).__name__ + ":", result)
else:
    print("ok", json.dumps(result))
c.close()
"#;

/// Whether `python3` runs here.
pub(crate) fn python_available() -> bool {
    std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Calls `method` with `args` from a stock Python client.
pub(crate) async fn python_call(tcp: &str, method: &str, args: &Value) -> Outcome {
    let port = tcp.rsplit(':').next().expect("a port");
    let output = within_for(
        Duration::from_secs(60),
        "a Python client",
        Command::new("python3")
            .args(["-c", PYTHON_CALL, port, KEY, method, &args.to_string()])
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "python3 failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout.trim();
    if let Some(result) = line.strip_prefix("ok ") {
        return Ok(serde_json::from_str(result).expect("JSON from Python"));
    }
    let raised = line
        .strip_prefix("raised ")
        .unwrap_or_else(|| panic!("unexpected Python output {line:?}"));
    let (class, message) = raised.split_once(':').unwrap_or((raised, ""));
    Err(Refusal {
        python: Some(class.to_owned()),
        message: message.trim().to_owned(),
        ..Refusal::default()
    })
}

// ---------------------------------------------------------------------------
// HTTP.
// ---------------------------------------------------------------------------

/// A request with the gateway's Basic credentials, `headers` (name, value)
/// and `body`.
pub(crate) fn request(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    content_type: &str,
    body: &[u8],
) -> Vec<u8> {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nAuthorization: {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
        basic(PASSWORD),
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// `meta` as `x-rpc-<key>` headers.
fn meta_headers<'a>(meta: &'a [(&'a str, &'a str)]) -> Vec<(String, &'a str)> {
    meta.iter()
        .map(|(k, v)| (format!("x-rpc-{k}"), *v))
        .collect()
}

/// Sends `request` on a fresh connection and reads its answer.
pub(crate) async fn exchange(doors: &Doors, request: &[u8]) -> Answer {
    let mut connection = Connection::open(&doors.http).await;
    connection
        .exchange(request, ANSWER)
        .await
        .expect("an HTTP answer")
}

/// POSTs `body` to `path` as JSON with `meta` as `x-rpc-` headers.
pub(crate) async fn post(doors: &Doors, path: &str, body: &Value, meta: &[(&str, &str)]) -> Answer {
    let headers = meta_headers(meta);
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let body = body.to_string();
    let bytes = request("POST", path, &headers, "application/json", body.as_bytes());
    exchange(doors, &bytes).await
}

/// A JSON-RPC error object as a refusal, with the HTTP status it came with.
fn json_rpc_error(error: &Value, status: Option<u16>) -> Refusal {
    Refusal {
        code: error["code"].as_i64().and_then(|c| i32::try_from(c).ok()),
        status,
        message: error.to_string(),
        ..Refusal::default()
    }
}

/// POSTs one JSON-RPC request (or batch) `body` to `/rpc`: its result, or
/// its error (a JSON-RPC answer comes with 200).
pub(crate) async fn json_rpc(doors: &Doors, body: &Value, meta: &[(&str, &str)]) -> Outcome {
    let answer = post(doors, "/rpc", body, meta).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let value: Value = serde_json::from_slice(&answer.body).expect("a JSON answer");
    match value.get("error") {
        Some(error) => Err(json_rpc_error(error, None)),
        None => Ok(value["result"].clone()),
    }
}

/// POSTs `Mw.{method}(args…)` as XML-RPC to `/RPC2`; an integer result.
pub(crate) async fn xml_rpc(
    doors: &Doors,
    method: &str,
    args: &[i64],
    meta: &[(&str, &str)],
) -> Outcome {
    let params: String = args
        .iter()
        .map(|a| format!("<param><value><int>{a}</int></value></param>"))
        .collect();
    let body = format!(
        "<?xml version=\"1.0\"?><methodCall><methodName>Mw.{method}</methodName>\
         <params>{params}</params></methodCall>"
    );
    let headers = meta_headers(meta);
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let bytes = request("POST", "/RPC2", &headers, "text/xml", body.as_bytes());
    let answer = exchange(doors, &bytes).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let text = answer.text();
    if text.contains("<fault>") {
        let fault = text
            .split("faultCode</name>")
            .nth(1)
            .and_then(first_int)
            .unwrap_or_else(|| panic!("a faultCode in {text}"));
        return Err(Refusal {
            fault: Some(i32::try_from(fault).expect("a fault code")),
            message: text,
            ..Refusal::default()
        });
    }
    let params = text.split("<params>").nth(1).expect("a methodResponse");
    Ok(Value::from(first_int(params).expect("an int result")))
}

/// The first `<int>`, `<i4>` or `<i8>` value in `xml`.
fn first_int(xml: &str) -> Option<i64> {
    let start = ["<int>", "<i4>", "<i8>"]
        .iter()
        .filter_map(|tag| xml.find(tag).map(|at| at + tag.len()))
        .min()?;
    let rest = &xml[start..];
    rest[..rest.find('<')?].trim().parse().ok()
}

/// POSTs `args` to `/Mw/{method}`: REST answers failures with a status.
pub(crate) async fn rest(
    doors: &Doors,
    method: &str,
    args: &Value,
    meta: &[(&str, &str)],
) -> Outcome {
    let answer = post(doors, &format!("/Mw/{method}"), args, meta).await;
    rest_outcome(&answer)
}

fn rest_outcome(answer: &Answer) -> Outcome {
    let value: Value = serde_json::from_slice(&answer.body)
        .unwrap_or_else(|e| panic!("a JSON answer ({e}): {}", answer.text()));
    if answer.status == 200 {
        return Ok(value);
    }
    Err(json_rpc_error(&value["error"], Some(answer.status)))
}

/// Opens `count(n)` as Server-Sent Events (POST, JSON body) and reads it
/// to its end; a call refused before its stream opens is answered as REST.
async fn sse(doors: &Doors, n: i64, meta: &[(&str, &str)]) -> Outcome {
    let mut headers = meta_headers(meta);
    headers.push(("accept".to_owned(), "text/event-stream"));
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let body = json!([n]).to_string();
    let bytes = request(
        "POST",
        "/Mw/count",
        &headers,
        "application/json",
        body.as_bytes(),
    );
    let stream = within("connect", TcpStream::connect(&doors.http))
        .await
        .expect("connects");
    let mut reader = BufReader::new(stream);
    within("the request", reader.get_mut().write_all(&bytes))
        .await
        .expect("written");
    let mut head = String::new();
    loop {
        let mut line = String::new();
        within("the response head", reader.read_line(&mut line))
            .await
            .expect("a head");
        if line == "\r\n" || line.is_empty() {
            break;
        }
        head.push_str(&line);
    }
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a status line in {head:?}"));
    let lower = head.to_ascii_lowercase();
    if status != 200 {
        let length: usize = lower
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().expect("a length"));
        let mut body = vec![0; length];
        within("the error body", reader.read_exact(&mut body))
            .await
            .expect("a body");
        let value: Value = serde_json::from_slice(&body).expect("a JSON error");
        return Err(json_rpc_error(&value["error"], Some(status)));
    }
    assert!(lower.contains("text/event-stream"), "{head}");
    read_events(&mut reader).await
}

/// Reads events until `end`: the items, or the end's error.
async fn read_events(reader: &mut BufReader<TcpStream>) -> Outcome {
    let mut items = Vec::new();
    let mut event = None;
    loop {
        let mut line = String::new();
        within("an event line", reader.read_line(&mut line))
            .await
            .expect("a line");
        assert!(!line.is_empty(), "the event stream ended without `end`");
        let line = line.trim_end();
        if let Some(name) = line.strip_prefix("event: ") {
            event = Some(name.to_owned());
        } else if let Some(data) = line.strip_prefix("data: ") {
            let value: Value = serde_json::from_str(data).expect("JSON data");
            if event.as_deref() == Some("end") {
                return match value.get("ok") {
                    Some(_) => Ok(Value::from(items)),
                    None => Err(json_rpc_error(&value, None)),
                };
            }
            items.push(value);
        }
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// A WebSocket at `/rpc`, upgraded with `meta` as `x-rpc-` headers.
pub(crate) async fn ws_connect(doors: &Doors, meta: &[(&str, &str)]) -> Socket {
    let mut request = format!("ws://{}/rpc", doors.http)
        .into_client_request()
        .expect("a request");
    let headers = request.headers_mut();
    headers.insert("authorization", basic(PASSWORD).parse().expect("a header"));
    for (name, value) in meta_headers(meta) {
        let name: tokio_tungstenite::tungstenite::http::HeaderName =
            name.parse().expect("a header name");
        headers.insert(name, value.parse().expect("a header value"));
    }
    let (socket, response) = within("the upgrade", tokio_tungstenite::connect_async(request))
        .await
        .expect("the gateway upgrades");
    assert_eq!(response.status(), 101);
    socket
}

/// Sends `message` and reads the next JSON message.
pub(crate) async fn ws_exchange(socket: &mut Socket, message: &Value) -> Value {
    within(
        "a message to be sent",
        socket.send(Message::text(message.to_string())),
    )
    .await
    .expect("sent");
    ws_receive(socket).await
}

async fn ws_receive(socket: &mut Socket) -> Value {
    loop {
        let message = within("a message", socket.next()).await;
        match message.expect("the socket stays open").expect("a message") {
            Message::Text(text) => return serde_json::from_str(&text).expect("JSON"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("an unexpected message {other:?}"),
        }
    }
}

/// Subscribes to `count(n)` over a WebSocket and reads it to its end.
async fn websocket(doors: &Doors, n: i64, meta: &[(&str, &str)]) -> Outcome {
    let mut socket = ws_connect(doors, meta).await;
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "Mw.count", "params": [n]});
    let opened = ws_exchange(&mut socket, &call).await;
    if let Some(error) = opened.get("error") {
        return Err(json_rpc_error(error, None));
    }
    let subscription = opened["result"].clone();
    let mut items = Vec::new();
    loop {
        let message = ws_receive(&mut socket).await;
        let params = &message["params"];
        assert_eq!(params["subscription"], subscription, "{message}");
        if let Some(error) = params.get("error") {
            return match error["code"].as_i64() {
                Some(0) => Ok(Value::from(items)),
                _ => Err(json_rpc_error(error, None)),
            };
        }
        items.push(params["result"].clone());
    }
}

/// A library client for `tcp` speaking `codec`, with a long call timeout.
pub(crate) async fn mw_client(tcp: &str, codec: &str) -> MwClient {
    let config = client_builder(tcp, codec).build().expect("a client config");
    let client = within("connect", rpc_transport::connect(&config))
        .await
        .expect("connects");
    MwClient::new(client)
}
