//! `calc-server`'s middleware flags, as a process: `--limit-rps 100` refuses
//! what passes one window of 100 calls a second on every door (a JSON-RPC
//! batch, REST requests on new connections, a stock Python client, our TCP
//! client), and `--admin-token` keeps `div` for callers with the token, over
//! TCP and HTTP, while `add` stays open.
//!
//! Each test starts its own server, so its window starts full (100 calls)
//! and nothing else spends it. The window refills while a test runs (100
//! calls a second), so the counts are ranges: at least the 100 the window
//! holds, and what half a second of refill could add.

mod common;

use std::ops::RangeInclusive;
use std::process::Stdio;

use common::bins::{PROCESS_LIMIT, ServerProcess, TempConfig, command};
use common::http::{Connection, post_json};
use common::{KEY, connect, within_for};
use examples::calculator::CalculatorClient;
use rpc_core::{CallError, ErrorKind};
use tokio::process::Command;

const PASSWORD: &str = "middleware-http-password";

/// The admin token the authorization tests start the server with.
const TOKEN: &str = "s3cret-admin-token";

/// Calls each test makes at once against a window of 100.
const CALLS: usize = 300;

/// How many of [`CALLS`] may pass a window of 100 a second: the 100 it
/// holds at start, and up to half a second of refill while they arrive.
const PASSED: RangeInclusive<usize> = 100..=150;

/// A config with `[server]` (Python peers welcome, Python 3.11's handshake
/// too) and `[http]`, both on `127.0.0.1:0`.
fn config() -> TempConfig {
    TempConfig::new(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nauthkey = \"{KEY}\"\n\
         python_compat = true\nallow_legacy_auth = true\n\n\
         [http]\nlisten = \"127.0.0.1:0\"\npassword = \"{PASSWORD}\"\n"
    ))
}

/// Starts `calc-server --config FILE FLAGS…` and reads both address lines:
/// (process, http address). The process holds `config`'s path only while
/// starting, so the file may go when this returns.
async fn calc_server(flags: &[&str]) -> (ServerProcess, String) {
    let config = config();
    let mut command = command("calc-server");
    command.arg("--config").arg(&config.path).args(flags);
    let mut server = ServerProcess::spawn("calc-server", command).await;
    let line = server.next_line("HTTP line").await;
    let http = line
        .strip_prefix("http listening ")
        .unwrap_or_else(|| panic!("calc-server's second line is {line:?}"))
        .to_owned();
    (server, http)
}

/// `POST path` of `body` on a new connection: (status, body).
async fn post(http: &str, path: &str, body: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut request = post_json(path, PASSWORD, body.as_bytes());
    let extra: String = headers
        .iter()
        .map(|(n, v)| format!("{n}: {v}\r\n"))
        .collect();
    let head_end = request
        .windows(2)
        .position(|w| w == b"\r\n")
        .expect("a request line")
        + 2;
    request.splice(head_end..head_end, extra.into_bytes());
    let mut connection = Connection::open(http).await;
    let answer = connection
        .exchange(&request, PROCESS_LIMIT)
        .await
        .unwrap_or_else(|| panic!("an answer to POST {path}"));
    (answer.status, answer.text())
}

// ---------------------------------------------------------------------------
// --limit-rps
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_jsonrpc_batch_of_300_adds_gets_about_100_results_and_the_rest_rate_limited() {
    let (_server, http) = calc_server(&["--limit-rps", "100"]).await;
    let batch: Vec<serde_json::Value> = (0..CALLS)
        .map(|id| serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "Calculator.add", "params": [id, 1]}))
        .collect();
    let (status, body) = post(
        http.as_str(),
        "/rpc",
        &serde_json::to_string(&batch).unwrap(),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let answers: Vec<serde_json::Value> = serde_json::from_str(&body).expect("a JSON array");
    assert_eq!(answers.len(), CALLS, "one answer per member");
    let mut passed = 0;
    for answer in &answers {
        let id = answer["id"].as_u64().expect("an id");
        if let Some(result) = answer.get("result") {
            assert_eq!(result.as_u64(), Some(id + 1), "{answer}");
            passed += 1;
            continue;
        }
        let error = &answer["error"];
        assert_eq!(error["code"], -32013, "{answer}");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("rate limited") && message.contains("100 calls per 1s"),
            "{answer}"
        );
    }
    println!("{passed} of {CALLS} passed");
    assert!(
        PASSED.contains(&passed),
        "{passed} of {CALLS} passed a window of 100"
    );
}

#[tokio::test]
async fn rest_requests_on_new_connections_past_the_window_get_429() {
    let (_server, http) = calc_server(&["--limit-rps", "100"]).await;
    // Connect first, then send every request, then read: the requests
    // arrive together instead of one connection setup apart.
    let opening = (0..CALLS).map(|_| Connection::open(http.as_str()));
    let mut connections = futures::future::join_all(opening).await;
    let request = post_json("/Calculator/add", PASSWORD, b"[2, 3]");
    let sending = connections.iter_mut().map(|c| c.send(&request));
    futures::future::join_all(sending).await;
    let reading = connections.iter_mut().map(|c| c.answer(PROCESS_LIMIT));
    let mut passed = 0;
    for answer in futures::future::join_all(reading).await {
        let answer = answer.expect("an answer to each request");
        match answer.status {
            200 => {
                assert_eq!(answer.text().trim(), "5");
                passed += 1;
            }
            429 => {
                assert!(answer.text().contains("rate limited"), "{}", answer.text());
                assert_eq!(answer.header("retry-after"), Some("1"));
            }
            status => panic!("status {status}: {}", answer.text()),
        }
    }
    println!("{passed} of {CALLS} passed");
    assert!(PASSED.contains(&passed), "{passed} of {CALLS} got 200");
}

/// A stock Python client in the Cookbook pattern: `add` `N` times over one
/// connection, printing how many passed, how many raised
/// `ConnectionRefusedError`, and the first refusal's text.
const PYTHON_CLIENT: &str = r#"
import pickle, sys
from multiprocessing.connection import Client

class RPCProxy:
    def __init__(self, connection):
        self._connection = connection
    def __getattr__(self, name):
        def do_rpc(*args, **kwargs):
            self._connection.send(pickle.dumps((name, args, kwargs)))
            result = pickle.loads(self._connection.recv())
            if isinstance(result, Exception):
                raise result
            return result
        return do_rpc

port, key, n = int(sys.argv[1]), sys.argv[2].encode(), int(sys.argv[3])
calc = RPCProxy(Client(("127.0.0.1", port), authkey=key))
passed, refused = 0, []
for i in range(n):
    try:
        assert calc.add(i, 1) == i + 1
        passed += 1
    except ConnectionRefusedError as e:
        refused.append(str(e))
print("passed", passed)
print("refused", len(refused))
print("first refusal:", refused[0] if refused else None)
"#;

#[tokio::test]
async fn a_stock_python_client_past_the_window_gets_connection_refused_error() {
    let (server, _http) = calc_server(&["--limit-rps", "100"]).await;
    let port = server.address.rsplit(':').next().expect("a port");
    let run = Command::new("python3")
        .args(["-c", PYTHON_CLIENT, port, KEY, &CALLS.to_string()])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = within_for(PROCESS_LIMIT, "the Python client", run)
        .await
        .expect("python3 runs; is it installed?");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let count = |label: &str| -> usize {
        let line = stdout.lines().find_map(|l| l.strip_prefix(label));
        line.and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {label:?} line in {stdout}"))
    };
    let passed = count("passed ");
    println!("{stdout}");
    assert!(
        PASSED.contains(&passed),
        "{passed} of {CALLS} passed\n{stdout}"
    );
    assert_eq!(
        passed + count("refused "),
        CALLS,
        "every other call refused\n{stdout}"
    );
    let first = stdout
        .lines()
        .find_map(|l| l.strip_prefix("first refusal: "));
    assert!(
        first
            .is_some_and(|e| e.contains("rate limited: the server takes at most 100 calls per 1s")),
        "{stdout}"
    );
}

#[tokio::test]
async fn the_tcp_client_past_the_window_gets_rate_limited() {
    let (server, _http) = calc_server(&["--limit-rps", "100"]).await;
    let calc = CalculatorClient::new(connect(&server.address, "bincode").await);
    let calls = (0..CALLS).map(|i| calc.add(i as i64, 1));
    let outcomes = within_for(PROCESS_LIMIT, "the calls", futures::future::join_all(calls)).await;
    let mut passed = 0;
    for (i, outcome) in outcomes.into_iter().enumerate() {
        match outcome {
            Ok(sum) => {
                assert_eq!(sum, i as i64 + 1);
                passed += 1;
            }
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
                assert!(e.message().contains("try again in"), "{e}");
            }
        }
    }
    println!("{passed} of {CALLS} passed");
    assert!(PASSED.contains(&passed), "{passed} of {CALLS} passed");
}

// ---------------------------------------------------------------------------
// --admin-token
// ---------------------------------------------------------------------------

#[tokio::test]
async fn over_tcp_div_needs_the_admin_token_and_add_does_not() {
    let (server, _http) = calc_server(&["--admin-token", TOKEN]).await;
    let client = connect(&server.address, "json").await;
    let anyone = CalculatorClient::new(client.clone());
    assert_eq!(anyone.add(2, 3).await.expect("add is open"), 5);
    let refused = |outcome: Result<i64, CallError<_>>| match outcome {
        Err(CallError::Rpc(e)) => e,
        other => panic!("refused, not {other:?}"),
    };

    let e = refused(anyone.div(6, 3).await);
    assert_eq!(e.kind(), ErrorKind::Authentication, "{e}");
    assert!(
        e.message().contains(
            "`Calculator.div` is for admins: send the metadata `authorization: Bearer TOKEN`"
        ),
        "{e}"
    );

    let wrong =
        CalculatorClient::new(client.with_metadata("authorization", "Bearer not-the-token"));
    let e = refused(wrong.div(6, 3).await);
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(e.message().contains("not an admin's"), "{e}");

    let admin =
        CalculatorClient::new(client.with_metadata("authorization", format!("Bearer {TOKEN}")));
    assert_eq!(admin.div(6, 3).await.expect("the admin may divide"), 2);
}

#[tokio::test]
async fn over_http_div_needs_the_admin_token_header_and_add_does_not() {
    let (_server, http) = calc_server(&["--admin-token", TOKEN]).await;
    let http = http.as_str();
    assert_eq!(
        post(http, "/Calculator/add", "[2, 3]", &[]).await,
        (200, "5".to_owned())
    );

    let (status, body) = post(http, "/Calculator/div", "[6, 3]", &[]).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("x-rpc-authorization"), "{body}");

    let wrong = [("x-rpc-authorization", "Bearer not-the-token")];
    let (status, body) = post(http, "/Calculator/div", "[6, 3]", &wrong).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("not an admin's"), "{body}");

    let bearer = format!("Bearer {TOKEN}");
    let right = [("x-rpc-authorization", bearer.as_str())];
    assert_eq!(
        post(http, "/Calculator/div", "[6, 3]", &right).await,
        (200, "2".to_owned())
    );
}

#[tokio::test]
async fn without_the_flags_every_call_runs() {
    let (_server, http) = calc_server(&[]).await;
    let answers = (0..CALLS).map(|_| post(http.as_str(), "/Calculator/div", "[6, 3]", &[]));
    for answer in futures::future::join_all(answers).await {
        assert_eq!(answer, (200, "2".to_owned()));
    }
}
