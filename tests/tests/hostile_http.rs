//! The HTTP gateway after a request is accepted, under hostile load (issue
//! 20): batch replies within `max_frame_bytes`, junk batches refused while
//! scanning, failed passwords slowed per address, and the drain answering
//! every request. In-process gateways on `127.0.0.1:0`, raw HTTP/1.1 over
//! `TcpStream` (from 127.0.0.x source addresses), and `kv-server`
//! processes: one whose memory is read from `/proc`, one with a single
//! runtime worker that a junk batch must not stall.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::bins::{ServerProcess, TempConfig, command};
use common::hostile::{ProbeState, probe};
use common::http::{Answer, Connection, get, post_json};
use common::{TaskGuard, server_builder, within};
use examples::kv::{KeyValueServer, MemoryStore};
use rpc_transport::Server;
use rpc_transport::config::Limits;
use rpc_transport::http::{HttpConfig, HttpGateway};
use serde_json::{Value, json};

const PASSWORD: &str = "hostile-http-password";

/// The reply limit of every test server but one: the default `max_frame_bytes`.
const MAX_FRAME: usize = 16 * 1024 * 1024;

/// A bound on one exchange that should end at once.
const ANSWER: Duration = Duration::from_secs(10);

/// An HTTP gateway (probe and key-value services), served until dropped.
struct Gateway {
    http: String,
    server: Server,
    probe: Arc<ProbeState>,
    _serving: TaskGuard<()>,
}

/// A gateway whose replies are bounded by `max_frame` (its bodies by [`MAX_FRAME`]).
async fn start(limits: Limits, max_frame: usize) -> Gateway {
    let (registry, probe) = probe();
    let registry = registry
        .with(KeyValueServer::new(MemoryStore::default()))
        .expect("the store registers");
    let config = server_builder()
        .limits(limits)
        .max_frame_bytes(max_frame)
        .build()
        .expect("a valid server config");
    let server = Server::new(config, registry);
    let http = HttpConfig::builder()
        .listen("127.0.0.1:0")
        .password(PASSWORD)
        .max_body_bytes(MAX_FRAME)
        .request_timeout(Duration::from_secs(10))
        .build()
        .expect("a valid [http] config");
    let gateway = HttpGateway::new(http, &server).expect("the gateway builds");
    let listening = within("the gateway to bind", gateway.bind())
        .await
        .expect("binds");
    Gateway {
        http: listening.local_addr().to_owned(),
        server,
        probe,
        _serving: TaskGuard(tokio::spawn(listening.serve())),
    }
}

fn call(id: u64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

async fn rpc(connection: &mut Connection, body: &Value) -> Answer {
    let request = post_json("/rpc", PASSWORD, body.to_string().as_bytes());
    connection
        .exchange(&request, ANSWER)
        .await
        .expect("an answer to POST /rpc")
}

/// Stores a value of `len` bytes under `big`.
async fn store_big(connection: &mut Connection, len: usize) {
    let set = call(0, "KeyValue.set", json!(["big", "x".repeat(len)]));
    let answer = rpc(connection, &set).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
}

fn batch_of_gets(n: u64) -> Value {
    Value::Array(
        (0..n)
            .map(|id| call(id, "KeyValue.get", json!(["big"])))
            .collect(),
    )
}

// ---------------------------------------------------------------------------
// Reply amplification (case 1).
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_batch_of_256_gets_of_1_mib_is_answered_within_max_frame_bytes() {
    let gateway = start(Limits::default(), MAX_FRAME).await;
    let mut connection = Connection::open(&gateway.http).await;
    store_big(&mut connection, 1 << 20).await;

    let answer = rpc(&mut connection, &batch_of_gets(256)).await;
    assert_eq!(answer.status, 200);
    assert!(
        answer.body.len() <= MAX_FRAME,
        "{} bytes",
        answer.body.len()
    );
    let members: Vec<Value> = serde_json::from_slice(&answer.body).expect("a JSON array");
    assert_eq!(members.len(), 256);
    let prefix = "the batch reply would exceed 16777216 bytes (max_frame_bytes); this call ";
    let (mut results, mut not_sent, mut not_run) = (0, 0, 0);
    for (i, member) in members.iter().enumerate() {
        assert_eq!(member["id"], json!(i), "the batch's order is kept");
        if member.get("result").is_some() {
            assert_eq!(
                not_sent + not_run,
                0,
                "results come before the budget ran out"
            );
            results += 1;
            continue;
        }
        assert_eq!(member["error"]["code"], json!(-32012), "{member}");
        let message = member["error"]["message"].as_str().expect("a message");
        // The did-not-run mark is on exactly the members that did not run.
        let marked = member["error"]["not_run"] == json!(true);
        match message.strip_prefix(prefix) {
            Some("ran but its result was not sent") if !marked => not_sent += 1,
            Some("did not run") if marked => not_run += 1,
            _ => panic!("unexpected error: {member}"),
        }
    }
    assert!((10..16).contains(&results), "{results} results");
    assert!(not_sent >= 1, "the member that did not fit ran");
    assert!(not_run >= 200, "members after it were not run: {not_run}");

    // The connection and the store still serve.
    let one = rpc(&mut connection, &call(7, "Probe.add", json!([40, 2]))).await;
    assert_eq!(one.text(), r#"{"jsonrpc":"2.0","id":7,"result":42}"#);
}

#[tokio::test]
async fn a_single_reply_over_max_frame_bytes_is_an_over_budget_error() {
    let gateway = start(Limits::default(), 64 * 1024).await;
    let mut connection = Connection::open(&gateway.http).await;
    store_big(&mut connection, 60 * 1024).await;
    // Fits with 4 KiB to spare; 70 KiB does not.
    let fits = rpc(&mut connection, &call(1, "KeyValue.get", json!(["big"]))).await;
    assert!(
        fits.text()
            .starts_with(r#"{"jsonrpc":"2.0","id":1,"result":"xxx"#)
    );
    store_big(&mut connection, 70 * 1024).await;

    let over = rpc(&mut connection, &call(2, "KeyValue.get", json!(["big"]))).await;
    let over: Value = serde_json::from_slice(&over.body).expect("a JSON-RPC response");
    let expected = json!({"code": -32012, "message":
        "the reply would exceed 65536 bytes (max_frame_bytes); the call ran but its result was not sent"});
    assert_eq!(
        over["error"],
        expected,
        "a result of {} bytes",
        over.to_string().len()
    );
    assert_eq!(over["id"], json!(2));

    let rest = post_json("/KeyValue/get", PASSWORD, br#"["big"]"#);
    let over = connection.exchange(&rest, ANSWER).await.expect("an answer");
    assert_eq!(over.status, 413, "{} bytes", over.body.len());
    assert!(
        over.text().contains(r#""code":-32012"#),
        "{} bytes",
        over.body.len()
    );

    let xml = b"<?xml version=\"1.0\"?><methodCall><methodName>KeyValue.get</methodName>\
        <params><param><value><string>big</string></value></param></params></methodCall>";
    let over = connection
        .exchange(&post_json("/RPC2", PASSWORD, xml), ANSWER)
        .await
        .expect("an answer");
    assert!(
        over.text().contains("<fault>")
            && over
                .text()
                .contains("over budget: the reply would exceed 65536 bytes (max_frame_bytes)"),
        "a response of {} bytes",
        over.body.len()
    );
}

/// A `kv-server` process with an `[http]` table (and `workers` runtime
/// threads, if given): the process and its HTTP address.
async fn kv_server(workers: Option<usize>) -> (ServerProcess, String) {
    let config = TempConfig::new(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nauthkey = \"{}\"\n\n\
         [http]\nlisten = \"127.0.0.1:0\"\npassword = \"{PASSWORD}\"\n",
        common::KEY
    ));
    let mut command = command("kv-server");
    command.arg("--config").arg(&config.path);
    if let Some(workers) = workers {
        command.env("TOKIO_WORKER_THREADS", workers.to_string());
    }
    let mut server = ServerProcess::spawn("kv-server", command).await;
    let line = server.next_line("the http listening line").await;
    let http = line
        .strip_prefix("http listening ")
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned();
    (server, http)
}

/// The peak resident memory of `pid` (`VmHWM`) and now (`VmRSS`), in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {status}"))
    };
    (field("VmHWM:"), field("VmRSS:"))
}

#[tokio::test]
async fn a_kv_server_process_answering_256_gets_of_1_mib_stays_within_its_budget() {
    let (server, http) = kv_server(None).await;
    let pid = server.child.id().expect("the server runs");
    let mut connection = Connection::open(&http).await;
    store_big(&mut connection, 1 << 20).await;
    let (_, before) = memory_kib(pid);

    let batch = batch_of_gets(256);
    let answer = rpc(&mut connection, &batch).await;
    assert_eq!(answer.status, 200);
    assert!(
        answer.body.len() <= MAX_FRAME,
        "{} bytes",
        answer.body.len()
    );
    let (peak, _) = memory_kib(pid);

    // Unbounded, the reply alone is 256 MiB and the peak was +514 MiB.
    let grown_mib = peak.saturating_sub(before) / 1024;
    assert!(
        grown_mib < 96,
        "a {} byte batch raised the peak by {grown_mib} MiB",
        batch.to_string().len()
    );
}

// ---------------------------------------------------------------------------
// Junk batches (case 2).
// ---------------------------------------------------------------------------

/// A `kv-server` with one runtime worker, so that a request holding it
/// would stall every other connection.
#[tokio::test]
async fn a_junk_batch_is_refused_at_max_batch_and_an_honest_call_is_answered_meanwhile() {
    let (_server, http) = kv_server(Some(1)).await;
    let mut junk = Vec::with_capacity(4 << 20);
    junk.push(b'[');
    while junk.len() < (4 << 20) - 2 {
        junk.extend_from_slice(b"0,");
    }
    junk.extend_from_slice(b"0]");
    let mut attacker = Connection::open(&http).await;
    attacker.send(&post_json("/rpc", PASSWORD, &junk)).await;
    // Time for the server to take the junk in and start on it.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut honest = Connection::open(&http).await;
    let began = Instant::now();
    let answer = rpc(&mut honest, &call(1, "KeyValue.set", json!(["a", 1]))).await;
    let waited = began.elapsed();
    assert_eq!(answer.text(), r#"{"jsonrpc":"2.0","id":1,"result":null}"#);
    assert!(
        waited < Duration::from_secs(1),
        "the honest call waited {waited:?}"
    );

    let refused = attacker
        .answer(ANSWER)
        .await
        .expect("an answer to the junk");
    assert_eq!(refused.status, 400);
    let expected = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600,
        "message": "a batch of more than 1024 calls exceeds the limit of 1024 (max_batch)"}});
    assert_eq!(
        serde_json::from_slice::<Value>(&refused.body).unwrap(),
        expected
    );
}

// ---------------------------------------------------------------------------
// Password guessing.
// ---------------------------------------------------------------------------

/// Sends a wrong password on `connection`: how long its 401 took.
async fn guess(connection: &mut Connection, n: usize) -> Duration {
    refused(connection, &get("/", &format!("guess-{n}"))).await
}

/// Sends `request`, with a wrong password: how long its 401 took.
async fn refused(connection: &mut Connection, request: &[u8]) -> Duration {
    let began = Instant::now();
    let answer = connection
        .exchange(request, ANSWER)
        .await
        .expect("an answer to a wrong password");
    assert_eq!(answer.status, 401, "{}", answer.text());
    began.elapsed()
}

#[tokio::test]
async fn failed_passwords_are_delayed_after_five_and_a_right_password_never_is() {
    let gateway = start(Limits::default(), MAX_FRAME).await;
    let mut guesser = Connection::open_from(&gateway.http, "127.0.0.2").await;
    for n in 0..5 {
        guess(&mut guesser, n).await;
    }
    // The 6th, 7th and 8th failures wait 100, 200 and 400 ms.
    for (n, at_least) in [(5, 100), (6, 200), (7, 400)] {
        let took = guess(&mut guesser, n).await;
        assert!(
            took >= Duration::from_millis(at_least),
            "failure {n}: {took:?}"
        );
    }
    // The next failure would wait 800 ms; the right password waits for nothing.
    let began = Instant::now();
    let right = guesser.exchange(&get("/", PASSWORD), ANSWER).await.unwrap();
    let took = began.elapsed();
    assert_eq!(right.status, 200);
    assert!(
        took < Duration::from_millis(400),
        "the right password waited {took:?}"
    );
    // Other addresses are not slowed.
    let mut other = Connection::open_from(&gateway.http, "127.0.0.3").await;
    let took = guess(&mut other, 0).await;
    assert!(took < Duration::from_millis(100), "{took:?}");
}

#[tokio::test]
async fn a_trusted_proxy_is_not_delayed_while_another_address_is() {
    let limits = Limits {
        trusted_proxies: vec!["127.0.0.4".parse().unwrap()],
        ..Limits::default()
    };
    let gateway = start(limits, MAX_FRAME).await;
    let mut proxy = Connection::open_from(&gateway.http, "127.0.0.4").await;
    let mut other = Connection::open_from(&gateway.http, "127.0.0.5").await;
    let began = Instant::now();
    for n in 0..10 {
        guess(&mut proxy, n).await;
    }
    // Not exempt, those ten would take 3.1 s.
    let took = began.elapsed();
    assert!(took < Duration::from_millis(1500), "{took:?}");
    for n in 0..5 {
        guess(&mut other, n).await;
    }
    let took = guess(&mut other, 5).await;
    assert!(took >= Duration::from_millis(100), "{took:?}");
}

/// Sends a wrong password to `POST /rpc` on `connection`: how long its 401 took.
async fn guess_rpc(connection: &mut Connection, n: usize) -> Duration {
    let body = call(0, "KeyValue.get", json!(["big"])).to_string();
    let request = post_json("/rpc", &format!("guess-{n}"), body.as_bytes());
    refused(connection, &request).await
}

/// `POST /rpc` is answered past the router (`http::post_rpc`): its
/// password check must throttle like the router's.
#[tokio::test]
async fn failed_passwords_on_post_rpc_are_delayed_after_five() {
    let gateway = start(Limits::default(), MAX_FRAME).await;
    let mut guesser = Connection::open_from(&gateway.http, "127.0.0.6").await;
    for n in 0..5 {
        guess_rpc(&mut guesser, n).await;
    }
    for (n, at_least) in [(5, 100), (6, 200)] {
        let took = guess_rpc(&mut guesser, n).await;
        assert!(
            took >= Duration::from_millis(at_least),
            "failure {n}: {took:?}"
        );
    }
}

/// A caller without the password learns nothing, not even that its body
/// would be read: no `100 Continue` comes before the 401 on `POST /rpc`.
#[tokio::test]
async fn post_rpc_expecting_100_continue_without_a_password_gets_401_first() {
    let gateway = start(Limits::default(), MAX_FRAME).await;
    let mut connection = Connection::open_from(&gateway.http, "127.0.0.7").await;
    let request = "POST /rpc HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
                   Expect: 100-continue\r\nContent-Length: 1000000\r\n\r\n";
    let answer = connection
        .exchange(request.as_bytes(), ANSWER)
        .await
        .expect("an answer before the body");
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert!(answer.header("www-authenticate").is_some());
}

// ---------------------------------------------------------------------------
// Drain.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_request_on_a_kept_alive_connection_during_the_drain_gets_503_and_close() {
    let limits = Limits {
        shutdown_grace: Duration::from_secs(5),
        ..Limits::default()
    };
    let gateway = start(limits, MAX_FRAME).await;
    let mut kept = Connection::open(&gateway.http).await;
    let first = rpc(&mut kept, &call(1, "Probe.add", json!([1, 1]))).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("connection"), None);

    // A call in flight holds the drain open for its grace.
    let mut holder = Connection::open(&gateway.http).await;
    let hold = call(2, "Probe.hold", json!([7]));
    holder
        .send(&post_json("/rpc", PASSWORD, hold.to_string().as_bytes()))
        .await;
    within("the held call to start", async {
        while gateway
            .probe
            .entered
            .load(std::sync::atomic::Ordering::SeqCst)
            < 2
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    gateway.server.shut_down();

    let refused = rpc(&mut kept, &call(3, "Probe.add", json!([1, 1]))).await;
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.header("connection"), Some("close"));
    assert!(
        refused.text().contains(r#""code":-32003"#),
        "{}",
        refused.text()
    );
    assert!(
        kept.closed(ANSWER).await,
        "the connection is closed after the 503"
    );

    // The call in flight is still answered.
    gateway.probe.release();
    let held = holder.answer(ANSWER).await.expect("the held call's answer");
    assert_eq!(held.text(), r#"{"jsonrpc":"2.0","id":2,"result":7}"#);
    assert_eq!(held.header("connection"), Some("close"));
}

#[tokio::test]
async fn a_call_still_running_after_the_shutdown_grace_is_answered() {
    let limits = Limits {
        shutdown_grace: Duration::from_millis(300),
        ..Limits::default()
    };
    let gateway = start(limits, MAX_FRAME).await;
    let mut connection = Connection::open(&gateway.http).await;
    let never = call(1, "Probe.never", json!([]));
    connection
        .send(&post_json("/rpc", PASSWORD, never.to_string().as_bytes()))
        .await;
    within("the call to start", async {
        while gateway
            .probe
            .entered
            .load(std::sync::atomic::Ordering::SeqCst)
            < 1
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    gateway.server.shut_down();
    let answer = connection
        .answer(ANSWER)
        .await
        .expect("an answer before the connection closes");
    let expected = json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32003, "message":
        "the server is shutting down and `Probe.never` did not finish within shutdown_grace_ms"}});
    assert_eq!(
        serde_json::from_slice::<Value>(&answer.body).unwrap(),
        expected
    );
}
