//! What a call over the HTTP gateway knows and who may make it: the peer and
//! deadline in the handler's `Context` over JSON-RPC, REST and XML-RPC; the
//! `[http] cors_origins` list, preflights and foreign origins; and the 413
//! for a body over `max_body_bytes`, heard even by a client that sends
//! 17 MiB before it reads (Python's `http.client`, run from here).
//!
//! Gateways on `127.0.0.1:0`, driven with raw HTTP/1.1 from a chosen
//! loopback address (`common::http`). Needs `python3` and `curl` on the `PATH`.

mod common;

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::http::{Answer, Connection, basic, get, post_json};
use common::{server_builder, within, within_for};
use rpc_core::{Context, Registry};
use rpc_transport::Server;
use rpc_transport::http::{HttpConfig, HttpConfigBuilder, HttpGateway};
use tokio::process::Command;
use tokio::task::JoinHandle;

const PASSWORD: &str = "http-context-password";
const APP: &str = "https://app.example";
const EVIL: &str = "https://evil.example";
/// Longer than any deadline a test sets, so the deadline seen is the caller's.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const MIB: usize = 1024 * 1024;
const ANSWER: Duration = Duration::from_secs(10);

/// A service that tells what its calls' context holds, and counts its calls.
#[rpc_core::rpc_service]
pub trait Witness {
    /// `peer=<addr> deadline_in_ms=<ms>`, from the handler's `Context`.
    #[rpc(idempotent)]
    async fn context(&self) -> String;

    /// Sleeps `ms` milliseconds.
    async fn nap(&self, ms: u64) -> u64;
}

#[derive(Default)]
struct Witnessed {
    calls: AtomicU64,
}

struct WitnessImpl(Arc<Witnessed>);

impl Witness for WitnessImpl {
    async fn context(&self) -> String {
        self.0.calls.fetch_add(1, Ordering::SeqCst);
        let context = Context::current().unwrap_or_default();
        let peer = context.peer().map_or("none".to_owned(), |p| p.to_string());
        let left = context.deadline().map_or("none".to_owned(), |d| {
            d.saturating_duration_since(Instant::now())
                .as_millis()
                .to_string()
        });
        format!("peer={peer} deadline_in_ms={left}")
    }

    async fn nap(&self, ms: u64) -> u64 {
        self.0.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    }
}

/// A gateway serving the witness, stopped when dropped.
struct Gateway {
    http: String,
    witnessed: Arc<Witnessed>,
    task: JoinHandle<()>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Gateway {
    fn calls(&self) -> u64 {
        self.witnessed.calls.load(Ordering::SeqCst)
    }

    async fn open(&self) -> Connection {
        Connection::open(&self.http).await
    }
}

fn config() -> HttpConfigBuilder {
    HttpConfig::builder()
        .listen("127.0.0.1:0")
        .password(PASSWORD)
        .request_timeout(REQUEST_TIMEOUT)
}

/// A gateway that lets pages from [`APP`] call.
fn with_cors() -> HttpConfigBuilder {
    config()
        .load_toml(&format!("[http]\ncors_origins = [\"{APP}\"]\n"))
        .expect("`cors_origins` is an [http] key")
}

async fn start(config: HttpConfigBuilder) -> Gateway {
    let witnessed = Arc::new(Witnessed::default());
    let registry = Registry::new()
        .with(WitnessServer::new(WitnessImpl(witnessed.clone())))
        .expect("the witness registers");
    let server = Server::new(server_builder().build().expect("a server config"), registry);
    let gateway = HttpGateway::new(config.build().expect("an [http] config"), &server)
        .expect("the gateway builds");
    let listening = within("the gateway to bind", gateway.bind())
        .await
        .expect("binds");
    Gateway {
        http: listening.local_addr().to_owned(),
        witnessed,
        task: tokio::spawn(listening.serve()),
    }
}

/// `request` with `headers` added after its request line.
fn with_headers(request: Vec<u8>, headers: &str) -> Vec<u8> {
    let text = String::from_utf8(request).expect("an ASCII request");
    let (line, rest) = text.split_once("\r\n").expect("a request line");
    format!("{line}\r\n{headers}{rest}").into_bytes()
}

fn json_rpc(method: &str, extra: &str) -> Vec<u8> {
    let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":[]{extra}}}"#);
    post_json("/rpc", PASSWORD, body.as_bytes())
}

fn xml_rpc(method: &str) -> Vec<u8> {
    let body = format!(
        "<?xml version=\"1.0\"?><methodCall><methodName>{method}</methodName><params></params></methodCall>"
    );
    post_json("/RPC2", PASSWORD, body.as_bytes())
}

async fn exchange(connection: &mut Connection, request: &[u8]) -> Answer {
    connection
        .exchange(request, ANSWER)
        .await
        .expect("an answer")
}

/// The peer and milliseconds left that a `Witness.context` answer reports.
fn seen(answer: &Answer) -> (String, u64) {
    let text = answer.text();
    let start = text
        .find("peer=")
        .unwrap_or_else(|| panic!("no context in {text}"));
    let mut fields = text[start..].split([' ', '"', '<']);
    let peer = fields
        .next()
        .unwrap()
        .trim_start_matches("peer=")
        .to_owned();
    let left = fields.next().unwrap().trim_start_matches("deadline_in_ms=");
    let left = left
        .parse()
        .unwrap_or_else(|_| panic!("no deadline in {text}"));
    (peer, left)
}

// ---------------------------------------------------------------------------
// The handler's context.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_handler_sees_the_peer_and_the_deadline_over_json_rpc_rest_and_xml_rpc() {
    let gateway = start(config()).await;
    let mut from_2 = Connection::open_from(&gateway.http, "127.0.0.2").await;
    let requests = [
        (
            "JSON-RPC deadline_ms",
            json_rpc("Witness.context", r#","deadline_ms":1000"#),
            1000,
        ),
        (
            "JSON-RPC header",
            with_headers(json_rpc("Witness.context", ""), "x-rpc-timeout-ms: 900\r\n"),
            900,
        ),
        (
            "REST GET",
            with_headers(
                get("/Witness/context", PASSWORD),
                "X-RPC-Timeout-Ms: 800\r\n",
            ),
            800,
        ),
        (
            "REST POST",
            with_headers(
                post_json("/Witness/context", PASSWORD, b""),
                "x-rpc-timeout-ms: 700\r\n",
            ),
            700,
        ),
        (
            "XML-RPC",
            with_headers(xml_rpc("Witness.context"), "x-rpc-timeout-ms: 600\r\n"),
            600,
        ),
    ];
    for (what, request, timeout_ms) in requests {
        let answer = exchange(&mut from_2, &request).await;
        assert_eq!(answer.status, 200, "{what}: {}", answer.text());
        let (peer, left) = seen(&answer);
        assert!(peer.starts_with("127.0.0.2:"), "{what}: peer {peer}");
        assert!(
            left <= timeout_ms && left + 500 > timeout_ms,
            "{what}: {left} ms left of {timeout_ms}"
        );
    }
    // With no deadline of its own, a call still ends at request_timeout_ms.
    let answer = exchange(&mut from_2, &get("/Witness/context", PASSWORD)).await;
    let (_, left) = seen(&answer);
    assert!(
        left <= 5000 && left > 4000,
        "{left} ms left of the request timeout"
    );
}

#[tokio::test]
async fn a_slow_handler_times_out_at_the_deadline_in_the_header() {
    let gateway = start(config()).await;
    let mut connection = gateway.open().await;
    let request = with_headers(
        post_json("/Witness/nap", PASSWORD, b"[3000]"),
        "x-rpc-timeout-ms: 200\r\n",
    );
    let began = Instant::now();
    let answer = exchange(&mut connection, &request).await;
    assert_eq!(answer.status, 504, "{}", answer.text());
    assert!(
        answer
            .text()
            .contains("`Witness.nap` did not finish within 200ms"),
        "{}",
        answer.text()
    );
    assert!(
        began.elapsed() < Duration::from_millis(1500),
        "{:?}",
        began.elapsed()
    );
    let bad = with_headers(
        get("/Witness/context", PASSWORD),
        "x-rpc-timeout-ms: soon\r\n",
    );
    let answer = exchange(&mut connection, &bad).await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(
        answer.text().contains("x-rpc-timeout-ms"),
        "{}",
        answer.text()
    );
    assert_eq!(gateway.calls(), 1, "refused before the call");
}

// ---------------------------------------------------------------------------
// Browsers on other origins.
// ---------------------------------------------------------------------------

fn preflight(origin: &str) -> Vec<u8> {
    format!(
        "OPTIONS /rpc HTTP/1.1\r\nHost: test\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: POST\r\n\
         Access-Control-Request-Headers: authorization, content-type\r\n\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn a_preflight_from_an_allowed_origin_is_answered_without_credentials() {
    let gateway = start(with_cors()).await;
    let answer = exchange(&mut gateway.open().await, &preflight(APP)).await;
    assert!(
        matches!(answer.status, 200 | 204),
        "{} {}",
        answer.status,
        answer.text()
    );
    assert_eq!(answer.header("access-control-allow-origin"), Some(APP));
    let methods = answer.header("access-control-allow-methods").unwrap_or("");
    assert!(
        methods.contains("POST") && methods.contains("GET"),
        "{methods}"
    );
    let headers = answer.header("access-control-allow-headers").unwrap_or("");
    assert!(
        headers.contains("authorization") && headers.contains("content-type"),
        "{headers}"
    );
    assert_eq!(gateway.calls(), 0);
}

#[tokio::test]
async fn an_options_that_is_not_a_preflight_still_needs_credentials() {
    let gateway = start(with_cors()).await;
    let mut connection = gateway.open().await;
    let no_request_method =
        format!("OPTIONS /rpc HTTP/1.1\r\nHost: test\r\nOrigin: {APP}\r\n\r\n").into_bytes();
    let no_origin =
        b"OPTIONS /rpc HTTP/1.1\r\nHost: test\r\nAccess-Control-Request-Method: POST\r\n\r\n";
    for request in [&no_request_method[..], no_origin] {
        let answer = exchange(&mut connection, request).await;
        assert_eq!(answer.status, 401, "{}", String::from_utf8_lossy(request));
    }
}

#[tokio::test]
async fn a_foreign_origin_gets_403_before_anything_runs() {
    let gateway = start(with_cors()).await;
    let mut connection = gateway.open().await;
    let origin = format!("Origin: {EVIL}\r\n");
    // What a page can send another origin without a preflight.
    let text_plain = String::from_utf8(json_rpc("Witness.nap", ""))
        .unwrap()
        .replace("application/json", "text/plain");
    let websocket = format!(
        "GET /rpc HTTP/1.1\r\nHost: test\r\nAuthorization: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        basic(PASSWORD)
    );
    let requests = [
        (
            "text/plain POST",
            with_headers(text_plain.into_bytes(), &origin),
        ),
        (
            "REST POST",
            with_headers(post_json("/Witness/nap", PASSWORD, b"[1]"), &origin),
        ),
        (
            "REST GET",
            with_headers(get("/Witness/context", PASSWORD), &origin),
        ),
        ("XML-RPC", with_headers(xml_rpc("Witness.context"), &origin)),
        (
            "WebSocket upgrade",
            with_headers(websocket.into_bytes(), &origin),
        ),
        ("preflight", preflight(EVIL)),
        (
            "health check",
            with_headers(
                b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n".to_vec(),
                &origin,
            ),
        ),
    ];
    for (what, request) in requests {
        let answer = exchange(&mut connection, &request).await;
        assert_eq!(answer.status, 403, "{what}: {}", answer.text());
        assert!(answer.text().contains(EVIL), "{what}: {}", answer.text());
        assert_eq!(answer.header("access-control-allow-origin"), None, "{what}");
    }
    assert_eq!(gateway.calls(), 0, "no handler ran");
    // At /rpc the refusal is a JSON-RPC error object.
    let answer = exchange(
        &mut connection,
        &with_headers(json_rpc("Witness.context", ""), &origin),
    )
    .await;
    assert!(
        answer
            .text()
            .starts_with(r#"{"jsonrpc":"2.0","id":null,"error":"#),
        "{}",
        answer.text()
    );
}

#[tokio::test]
async fn answers_to_an_allowed_origin_carry_the_allow_headers_and_others_none() {
    let gateway = start(with_cors()).await;
    let mut connection = gateway.open().await;
    let from_app = with_headers(
        json_rpc("Witness.context", ""),
        &format!("Origin: {APP}\r\n"),
    );
    let answer = exchange(&mut connection, &from_app).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("access-control-allow-origin"), Some(APP));
    assert!(answer.header("access-control-allow-methods").is_some());
    assert!(answer.header("access-control-allow-headers").is_some());
    // A wrong password is still refused, in a way the page can read.
    let wrong = String::from_utf8(json_rpc("Witness.context", ""))
        .unwrap()
        .replace(&basic(PASSWORD), &basic("guess"));
    let wrong = with_headers(wrong.into_bytes(), &format!("Origin: {APP}\r\n"));
    let answer = exchange(&mut connection, &wrong).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.header("access-control-allow-origin"), Some(APP));
    // Without an Origin (curl, Python, a server): no CORS headers at all.
    let answer = exchange(&mut connection, &json_rpc("Witness.context", "")).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(
        answer
            .headers
            .iter()
            .all(|(name, _)| !name.starts_with("access-control-")),
        "{:?}",
        answer.headers
    );
    assert_eq!(gateway.calls(), 2);
}

// ---------------------------------------------------------------------------
// Bodies over max_body_bytes.
// ---------------------------------------------------------------------------

fn chunked_post(path: &str, body: &[u8], chunk: usize) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nAuthorization: {}\r\nTransfer-Encoding: chunked\r\n\r\n",
        basic(PASSWORD)
    )
    .into_bytes();
    for piece in body.chunks(chunk) {
        request.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        request.extend_from_slice(piece);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    request
}

fn assert_json_rpc_413(what: &str, answer: &Answer) {
    assert_eq!(answer.status, 413, "{what}: {}", answer.text());
    let text = answer.text();
    assert!(
        text.starts_with(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32005,"#),
        "{what}: {text}"
    );
    assert!(text.contains("max_body_bytes"), "{what}: {text}");
}

#[tokio::test]
async fn a_body_over_the_limit_at_rpc_gets_a_json_rpc_413_with_content_length_or_chunked() {
    let gateway = start(config().max_body_bytes(16 * 1024)).await;
    let body = vec![b' '; 16 * 1024 + 1];
    let requests = [
        ("Content-Length", post_json("/rpc", PASSWORD, &body)),
        ("chunked", chunked_post("/rpc", &body, 4096)),
    ];
    for (what, request) in requests {
        let answer = exchange(&mut gateway.open().await, &request).await;
        assert_json_rpc_413(what, &answer);
        assert_eq!(answer.header("connection"), Some("close"), "{what}");
    }
    // At the limit, the body is read and the call made.
    let mut at_limit =
        br#"{"jsonrpc":"2.0","id":1,"method":"Witness.context","params":[]}"#.to_vec();
    at_limit.resize(16 * 1024, b' ');
    let answer = exchange(
        &mut gateway.open().await,
        &post_json("/rpc", PASSWORD, &at_limit),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(gateway.calls(), 1);
}

#[tokio::test]
async fn a_client_that_sends_17_mib_before_reading_gets_the_413() {
    let gateway = start(config().max_body_bytes(16 * MIB)).await;
    let body = vec![b'['; 17 * MIB];
    let requests = [
        ("Content-Length", post_json("/rpc", PASSWORD, &body)),
        ("chunked", chunked_post("/rpc", &body, 64 * 1024)),
    ];
    for (what, request) in requests {
        let mut connection = gateway.open().await;
        connection.send(&request).await;
        let answer = connection.answer(ANSWER).await;
        let answer = answer.unwrap_or_else(|| panic!("{what}: no answer after sending 17 MiB"));
        assert_json_rpc_413(what, &answer);
    }
    assert_eq!(gateway.calls(), 0);
}

/// Python's `http.client` sends the whole body, then reads: 20 of 20 tries
/// got `BrokenPipeError` when the gateway closed without reading.
const PYTHON_POSTS_17_MIB: &str = r#"
import base64, http.client, sys
host, port, password = sys.argv[1], int(sys.argv[2]), sys.argv[3]
body = b"[" * (17 * 1024 * 1024)
auth = "Basic " + base64.b64encode(("rpc:" + password).encode()).decode()
for _ in range(3):
    connection = http.client.HTTPConnection(host, port, timeout=30)
    connection.request("POST", "/rpc", body=body, headers={"Authorization": auth, "Content-Type": "application/json"})
    response = connection.getresponse()
    print(response.status, response.read().decode())
    connection.close()
"#;

#[tokio::test]
async fn python_http_client_posting_17_mib_gets_the_413() {
    let gateway = start(config().max_body_bytes(16 * MIB)).await;
    let (host, port) = gateway.http.rsplit_once(':').expect("host:port");
    let child = Command::new("python3")
        .args(["-c", PYTHON_POSTS_17_MIB, host, port, PASSWORD])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs; is it installed?");
    let out = within_for(Duration::from_secs(60), "python3", child.wait_with_output())
        .await
        .expect("python3 ends");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "python3 failed:\n{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    for line in lines {
        assert!(
            line.starts_with(r#"413 {"jsonrpc":"2.0","id":null,"error":{"code":-32005"#),
            "{line}"
        );
    }
}

#[tokio::test]
async fn curl_waiting_for_100_continue_gets_the_413_for_17_mib() {
    let gateway = start(config().max_body_bytes(16 * MIB)).await;
    let file = std::env::temp_dir().join(format!("http-context-17mib-{}", std::process::id()));
    std::fs::write(&file, vec![b'['; 17 * MIB]).expect("a temporary file");
    let data = format!("@{}", file.display());
    let url = format!("http://{}/rpc", gateway.http);
    let credentials = format!("rpc:{PASSWORD}");
    let out = Command::new("curl")
        .args([
            "-s",
            "-S",
            "-u",
            &credentials,
            "--data-binary",
            &data,
            "-w",
            "\n%{http_code}",
            &url,
        ])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = within_for(Duration::from_secs(60), "curl", out).await;
    let _ = std::fs::remove_file(&file);
    let out = out.expect("curl runs; is it installed?");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.ends_with("\n413"),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(r#""jsonrpc":"2.0""#), "{stdout}");
}
