//! The HTTP gateway on `127.0.0.1:0`, in-process, driven by the clients
//! people will use: Python's own `xmlrpc.client` and `urllib.request`
//! (`tests/python/http_*.py`, run unmodified), `curl`, and raw HTTP/1.1
//! bytes over a `TcpStream` for what those clients cannot send.
//!
//! Needs `python3` and `curl` on the `PATH`; a test that cannot find them
//! fails saying so (nothing is installed from here).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use common::{KEY, client_builder, server_builder, within, within_for};
use examples::calculator::{Calc, CalculatorClient, CalculatorServer};
use examples::kv::{KeyValueServer, MemoryStore};
use rpc_core::Registry;
use rpc_transport::Server;
use rpc_transport::config::Limits;
use rpc_transport::http::{HttpConfig, HttpGateway};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;
use tokio::task::JoinHandle;

/// The HTTP password of every test gateway (the TCP authkey is [`KEY`]).
const PASSWORD: &str = "http-test-password";

/// The body limit of test gateways: small, so "too large" is cheap to send.
const MAX_BODY: usize = 16 * 1024;

/// How long a Python script or curl may run.
const PROCESS_LIMIT: Duration = Duration::from_secs(60);

/// The test's own service: a call that outlives the request timeout, and
/// one that panics.
#[rpc_core::rpc_service]
pub trait Probe {
    /// Sleeps for `ms` milliseconds.
    #[rpc(idempotent)]
    async fn nap(&self, ms: u64) -> u64;

    /// Panics.
    async fn boom(&self) -> u64;
}

struct Prober;

impl Probe for Prober {
    async fn nap(&self, ms: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    }

    async fn boom(&self) -> u64 {
        panic!("boom on purpose")
    }
}

fn registry() -> Registry {
    Registry::new()
        .with(CalculatorServer::new(Calc))
        .and_then(|r| r.with(KeyValueServer::new(MemoryStore::default())))
        .and_then(|r| r.with(ProbeServer::new(Prober)))
        .expect("the services register")
}

/// A TCP server and its HTTP gateway, both stopped when dropped.
struct Gateways {
    tcp: String,
    http: String,
    server: Server,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Gateways {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

fn http_config() -> HttpConfig {
    HttpConfig::builder()
        .listen("127.0.0.1:0")
        .password(PASSWORD)
        .max_body_bytes(MAX_BODY)
        .request_timeout(Duration::from_millis(500))
        .build()
        .expect("a valid [http] config")
}

async fn start() -> Gateways {
    start_with(Limits::default()).await
}

async fn start_with(limits: Limits) -> Gateways {
    let config = server_builder()
        .limits(limits)
        .build()
        .expect("a valid server config");
    let server = Server::new(config, registry());
    let gateway = HttpGateway::new(http_config(), &server).expect("the gateway builds");
    let http = within("the gateway to bind", gateway.bind())
        .await
        .expect("binds");
    let tcp = within("the server to bind", server.clone().bind())
        .await
        .expect("binds");
    let (tcp_addr, http_addr) = (tcp.local_addr().to_owned(), http.local_addr().to_owned());
    Gateways {
        tcp: tcp_addr,
        http: http_addr,
        server,
        tasks: vec![tokio::spawn(tcp.serve()), tokio::spawn(http.serve())],
    }
}

// ---------------------------------------------------------------------------
// Clients: Python scripts, curl, raw HTTP.
// ---------------------------------------------------------------------------

fn python_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(name)
}

/// Runs `program args…` to its end (bounded, killed if the test gives up).
async fn run(program: &str, args: &[&str]) -> Output {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `{program}` ({e}); is it installed?"));
    within_for(PROCESS_LIMIT, program, child.wait_with_output())
        .await
        .unwrap_or_else(|e| panic!("running {program}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn run_python(script: &str, args: &[&str]) -> String {
    let path = python_script(script);
    let mut all = vec![path.to_str().expect("a UTF-8 path")];
    all.extend_from_slice(args);
    let out = run("python3", &all).await;
    assert!(
        out.status.success(),
        "{script} failed ({}):\n--- stdout\n{}--- stderr\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// `curl -s -u rpc:PASSWORD -w '\n%{http_code}' args…`: (status, body).
async fn curl(args: &[&str]) -> (u16, String) {
    let credentials = format!("rpc:{PASSWORD}");
    let mut all = vec!["-s", "-S", "-u", &credentials, "-w", "\n%{http_code}"];
    all.extend_from_slice(args);
    let out = run("curl", &all).await;
    assert!(out.status.success(), "curl failed: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let (body, status) = stdout.rsplit_once('\n').expect("curl printed the status");
    (status.parse().expect("a status code"), body.to_owned())
}

/// One raw HTTP/1.1 exchange with `Connection: close`: (status, head, body).
async fn raw_http(address: &str, request: &[u8]) -> (u16, String, String) {
    match exchange(address, request).await {
        Some(answer) => answer,
        None => panic!("the gateway closed the connection without an answer"),
    }
}

/// [`raw_http`], or `None` if the connection closed with no answer.
async fn exchange(address: &str, request: &[u8]) -> Option<(u16, String, String)> {
    let mut stream = within("connecting", TcpStream::connect(address))
        .await
        .expect("connects");
    // A refused connection may be reset while the request is written.
    let _ = within("writing the request", stream.write_all(request)).await;
    let mut answer = Vec::new();
    let _ = within("the answer", stream.read_to_end(&mut answer)).await;
    if answer.is_empty() {
        return None;
    }
    let answer = text(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"));
    Some((status, head.to_owned(), body.to_owned()))
}

fn authorization() -> String {
    // base64("rpc:http-test-password"), spelled out so the test needs no encoder.
    "Authorization: Basic cnBjOmh0dHAtdGVzdC1wYXNzd29yZA==".to_owned()
}

/// A POST with the password and `Connection: close`.
fn post(path: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\n{}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        authorization(),
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

fn get(path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: test\r\n{}\r\nConnection: close\r\n\r\n",
        authorization()
    )
    .into_bytes()
}

// ---------------------------------------------------------------------------
// Python and curl.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn python_xmlrpc_client_runs_the_kv_recipe_unchanged() {
    let gateways = start().await;
    let out = run_python("http_xmlrpc.py", &[&gateways.http, PASSWORD]).await;
    assert!(out.contains("s.exists('spam') -> False"), "{out}");
    assert!(out.ends_with("ok\n"), "{out}");
}

#[tokio::test]
async fn python_urllib_speaks_json_rpc_and_rest() {
    let gateways = start().await;
    let max = MAX_BODY.to_string();
    let out = run_python("http_jsonrpc.py", &[&gateways.http, PASSWORD, &max]).await;
    assert!(out.ends_with("ok\n"), "{out}");
}

#[tokio::test]
async fn curl_gets_and_posts() {
    let gateways = start().await;
    let base = format!("http://{}", gateways.http);
    let (status, body) = curl(&[&format!("{base}/Calculator/add?x=2&y=3")]).await;
    assert_eq!((status, body.as_str()), (200, "5"));
    let (status, body) = curl(&["-d", "[2, 3]", &format!("{base}/Calculator/sub")]).await;
    assert_eq!((status, body.as_str()), (200, "-1"));
    let request = r#"{"jsonrpc":"2.0","id":7,"method":"Calculator.div","params":{"x":1,"y":0}}"#;
    let (status, body) = curl(&["-d", request, &format!("{base}/rpc")]).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        r#"{"jsonrpc":"2.0","id":7,"error":{"code":-32000,"message":"division by zero","data":"DivideByZero"}}"#
    );
    let (status, _) = curl(&["-u", "rpc:wrong", &format!("{base}/Calculator/add?x=2&y=3")]).await;
    assert_eq!(status, 401);
}

// ---------------------------------------------------------------------------
// Statuses the Python clients cannot provoke.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_call_past_the_request_timeout_is_504_and_a_panic_is_500() {
    let gateways = start().await;
    let (status, _, body) = raw_http(&gateways.http, &get("/Probe/nap?ms=5000")).await;
    assert_eq!(status, 504, "{body}");
    assert!(body.contains("did not finish within 500ms"), "{body}");
    let (status, _, body) = raw_http(
        &gateways.http,
        &post("/Probe/boom", "application/json", b""),
    )
    .await;
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("boom on purpose"), "{body}");
    // The gateway is still serving.
    let (status, _, body) = raw_http(&gateways.http, &get("/Probe/nap?ms=1")).await;
    assert_eq!((status, body.as_str()), (200, "1"));
}

#[tokio::test]
async fn malformed_and_oversized_xml_get_400_and_413_with_a_fault() {
    let gateways = start().await;
    for bad in [
        &b"<methodCall><methodName>keys</methodName>"[..],
        b"<?xml version=\"1.0\"?><!DOCTYPE d [<!ENTITY a \"aaaaaaaa\">]><methodCall><methodName>&a;</methodName></methodCall>",
        b"\xff\xfe not even text",
    ] {
        let (status, _, body) = raw_http(&gateways.http, &post("/RPC2", "text/xml", bad)).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("<name>faultCode</name><value><int>-32700</int>"), "{body}");
    }
    let deep = format!(
        "<methodCall><methodName>set</methodName><params><param><value><string>k</string></value></param>\
         <param><value>{}{}</value></param></params></methodCall>",
        "<array><data><value>".repeat(100),
        "</value></data></array>".repeat(100)
    );
    let (status, _, body) =
        raw_http(&gateways.http, &post("/RPC2", "text/xml", deep.as_bytes())).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("deeper than 64 levels"), "{body}");
    let huge = vec![b' '; MAX_BODY + 1];
    let (status, _, body) = raw_http(&gateways.http, &post("/RPC2", "text/xml", &huge)).await;
    assert_eq!(status, 413, "{body}");
    // Without the password, the password is what is wrong.
    let anonymous = String::from_utf8_lossy(&post("/RPC2", "text/xml", &huge))
        .replace(&authorization(), "X-Nothing: 1")
        .into_bytes();
    let (status, _, _) = raw_http(&gateways.http, &anonymous).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_413_too() {
    let gateways = start().await;
    let chunk = vec![b'['; 8 * 1024];
    let mut request = format!(
        "POST /rpc HTTP/1.1\r\nHost: test\r\n{}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        authorization()
    )
    .into_bytes();
    for _ in 0..3 {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(&chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let (status, _, body) = raw_http(&gateways.http, &request).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("-32005"), "{body}");
}

#[tokio::test]
async fn healthz_needs_no_password_and_the_metrics_do() {
    let gateways = start().await;
    let plain = b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
    let (status, _, body) = raw_http(&gateways.http, plain).await;
    assert_eq!((status, body.as_str()), (200, "serving\n"));
    let (status, head, _) = raw_http(
        &gateways.http,
        b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 401);
    let head = head.to_ascii_lowercase();
    assert!(
        head.contains("www-authenticate: basic realm=\"rpc\""),
        "{head}"
    );
}

/// `POST /rpc` is answered past the router (`rpc_transport/src/http/post_rpc.rs`),
/// with the headers the router gave it: its type and length, and none on a 204.
#[tokio::test]
async fn json_rpc_answers_carry_their_length_and_type() {
    let gateways = start().await;
    let call = br#"{"jsonrpc":"2.0","id":1,"method":"Calculator.add","params":[2,3]}"#;
    let (status, head, body) =
        raw_http(&gateways.http, &post("/rpc", "application/json", call)).await;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"jsonrpc":"2.0","id":1,"result":5}"#)
    );
    let head = head.to_ascii_lowercase();
    assert!(
        head.contains("\r\ncontent-type: application/json\r\n"),
        "{head}"
    );
    let length = format!("\r\ncontent-length: {}\r\n", body.len());
    assert!(head.contains(&length), "{head}");

    let notification = br#"{"jsonrpc":"2.0","method":"Calculator.add","params":[2,3]}"#;
    let (status, head, body) = raw_http(
        &gateways.http,
        &post("/rpc", "application/json", notification),
    )
    .await;
    assert_eq!((status, body.as_str()), (204, ""));
    let head = head.to_ascii_lowercase();
    assert!(!head.contains("content-"), "{head}");
}

#[tokio::test]
async fn while_draining_healthz_is_503_new_calls_are_refused_and_running_ones_finish() {
    let gateways = start().await;
    let address = gateways.http.clone();
    let running = tokio::spawn(async move { raw_http(&address, &get("/Probe/nap?ms=400")).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    gateways.server.shut_down();
    tokio::time::sleep(Duration::from_millis(50)).await;

    let plain = b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
    let (status, _, body) = raw_http(&gateways.http, plain).await;
    assert_eq!((status, body.as_str()), (503, "draining\n"));
    let (status, _, body) = raw_http(&gateways.http, &get("/Calculator/add?x=1&y=1")).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("shutting down"), "{body}");
    // `POST /rpc`, answered on its own path, is refused as a JSON-RPC error.
    let call = br#"{"jsonrpc":"2.0","id":7,"method":"Calculator.add","params":[1,1]}"#;
    let (status, _, body) = raw_http(&gateways.http, &post("/rpc", "application/json", call)).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.starts_with(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32003"#),
        "{body}"
    );

    let (status, _, body) = within("the running call", running).await.expect("no panic");
    assert_eq!((status, body.as_str()), (200, "400"));
    // Drained: the listener closes.
    within("the listener to close", async {
        while TcpStream::connect(&gateways.http).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn while_tcp_calls_drain_healthz_answers_503_instead_of_closing_the_gateway() {
    let gateways = start().await;
    let config = client_builder(&gateways.tcp, "bincode").build().unwrap();
    let probe = ProbeClient::new(
        within("connect", rpc_transport::connect(&config))
            .await
            .unwrap(),
    );
    let running = tokio::spawn(async move { probe.nap(600).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    gateways.server.shut_down();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // No HTTP call runs, but a TCP one does: a load balancer checking the
    // gateway must read "draining", not find the port closed.
    let plain = b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
    let (status, _, body) = raw_http(&gateways.http, plain).await;
    assert_eq!((status, body.as_str()), (503, "draining\n"));
    assert_eq!(within("the TCP call", running).await.unwrap().unwrap(), 600);
    within("the listener to close once the calls are done", async {
        while TcpStream::connect(&gateways.http).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn serve_until_shuts_the_server_down_and_stops() {
    let config = server_builder().build().expect("a valid server config");
    let server = Server::new(config, registry());
    let gateway = HttpGateway::new(http_config(), &server).expect("builds");
    let listening = gateway.bind().await.expect("binds");
    let address = listening.local_addr().to_owned();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(listening.serve_until(async {
        let _ = stopped.await;
    }));
    let (status, _, _) = raw_http(&address, &get("/Calculator/add?x=1&y=1")).await;
    assert_eq!(status, 200);
    stop.send(()).expect("the gateway is waiting");
    within("the gateway to stop", task).await.expect("no panic");
    assert!(server.is_draining());
    assert!(
        TcpStream::connect(&address).await.is_err(),
        "still accepting"
    );
}

// ---------------------------------------------------------------------------
// The TCP listener, and the two secrets.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_tcp_listener_is_unaffected_and_counted() {
    let gateways = start().await;
    // Garbage, a half request left open, and a too-deep body on the HTTP port.
    let _ = raw_http(&gateways.http, b"\x00\x01\x02 not http at all\r\n\r\n").await;
    let mut half_open = TcpStream::connect(&gateways.http).await.expect("connects");
    half_open
        .write_all(b"POST /rpc HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
        .await
        .expect("writes");
    let config = client_builder(&gateways.tcp, "json")
        .build()
        .expect("valid");
    let client = within("a TCP client", rpc_transport::connect(&config))
        .await
        .expect("connects over TCP");
    let calc = CalculatorClient::new(client);
    assert_eq!(within("a TCP call", calc.add(2, 3)).await.expect("adds"), 5);
    let (status, _, metrics) = raw_http(&gateways.http, &get("/metrics")).await;
    assert_eq!(status, 200);
    let tcp_calls =
        r#"rpc_calls_total{service="Calculator",method="add",transport="tcp",outcome="ok"} 1"#;
    assert!(metrics.contains(tcp_calls), "{metrics}");
    assert!(
        metrics.contains(r#"rpc_connections_open{transport="http"}"#),
        "{metrics}"
    );
    drop(half_open);
}

#[tokio::test]
async fn the_http_password_must_differ_from_the_authkey() {
    let config = server_builder().build().expect("a valid server config");
    let server = Server::new(config, registry());
    let same = HttpConfig::builder()
        .password(KEY)
        .build()
        .expect("valid alone");
    let e = HttpGateway::new(same, &server).expect_err("the authkey as password");
    assert!(e.message().contains("different password"), "{e}");

    let e = HttpConfig::builder()
        .load_toml("[http]\nlisten = \"127.0.0.1:0\"\n")
        .and_then(|b| b.build())
        .expect_err("no password");
    assert!(e.to_string().contains("http.password"), "{e}");

    // Nor is the authkey accepted as the HTTP password.
    let gateways = start().await;
    let key = format!("rpc:{KEY}");
    let out = run(
        "curl",
        &[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-u",
            &key,
            &format!("http://{}/", gateways.http),
        ],
    )
    .await;
    assert_eq!(text(&out.stdout), "401");
}

#[tokio::test]
async fn http_connections_past_max_connections_are_closed_and_batches_are_bounded() {
    let limits = Limits {
        max_connections: 2,
        max_batch: 2,
        ..Limits::default()
    };
    let gateways = start_with(limits).await;
    // Two kept-alive connections, each past one request.
    let keep_alive = get("/Calculator/add?x=1&y=1");
    let keep_alive =
        String::from_utf8_lossy(&keep_alive).replace("Connection: close", "Connection: keep-alive");
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(&gateways.http).await.expect("connects");
        stream
            .write_all(keep_alive.as_bytes())
            .await
            .expect("writes");
        let mut buf = [0u8; 512];
        let n = within("an answer", stream.read(&mut buf))
            .await
            .expect("reads");
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        open.push(stream);
    }
    // A third is closed without an answer.
    let refused = exchange(&gateways.http, &get("/healthz")).await;
    assert_eq!(refused, None);
    drop(open);

    // Once they are gone, batches past max_batch get one error, 400.
    let batch = br#"[{"jsonrpc":"2.0","id":1,"method":"add","params":[1,1]},
                     {"jsonrpc":"2.0","id":2,"method":"add","params":[1,1]},
                     {"jsonrpc":"2.0","id":3,"method":"add","params":[1,1]}]"#;
    let request = post("/rpc", "application/json", batch);
    let answer = within("the gateway to take connections again", async {
        loop {
            match exchange(&gateways.http, &request).await {
                Some((status, _, body)) => return (status, body),
                None => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await;
    assert_eq!(answer.0, 400, "{}", answer.1);
    assert!(
        answer
            .1
            .contains("a batch of more than 2 calls exceeds the limit of 2 (max_batch)"),
        "{}",
        answer.1
    );
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off_at_the_request_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let gateways = start().await;
    let mut slow = tokio::net::TcpStream::connect(&gateways.http)
        .await
        .expect("connects");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("writes half a request");
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    // The request timeout is 500 ms: hyper closes the connection (perhaps
    // after a 408) instead of waiting for the rest of the headers.
    within(
        "the server to close the slow connection",
        slow.read_to_end(&mut rest),
    )
    .await
    .expect("reads until closed");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let (status, _, body) = raw_http(&gateways.http, &get("/healthz")).await;
    assert_eq!((status, body.trim()), (200, "serving"));
}

#[tokio::test]
async fn a_client_that_never_reads_its_responses_is_closed_after_write_timeout() {
    use tokio::io::AsyncWriteExt;
    let limits = Limits {
        write_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let gateways = start_with(limits).await;
    let metrics = gateways.server.metrics().clone();
    let mut greedy = tokio::net::TcpStream::connect(&gateways.http)
        .await
        .expect("connects");
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let flood = request.repeat(200_000);
    // The gateway stops reading once its responses back up; then its write
    // timer runs out and the connection is closed.
    let _ = tokio::time::timeout(Duration::from_secs(3), greedy.write_all(&flood)).await;
    within("the gateway to close the greedy connection", async {
        while metrics.connections_open(rpc_transport::metrics::Transport::Http) > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let (status, _, _) = raw_http(&gateways.http, &get("/healthz")).await;
    assert_eq!(status, 200);
}
