//! Floods before credentials: silent connections from another address and
//! from the client's own, a reconnect storm of honest clients, silent HTTP
//! connections in a process short of descriptors, and hellos meant to forge
//! log lines or not parse at all. An honest client gets in, and is answered
//! within a second once in; every refusal is a frame; logs stay short.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::bins::{ServerProcess, TempConfig, bin};
use common::hostile::{ObservedServer, probe};
use common::{
    KEY, TaskGuard, client_handshake, expect_closed, expect_frame, expect_json, json_round_trip,
    raw_connect, server_builder, within, within_for, write_frame,
};
use rpc_transport::handshake::{
    CHALLENGE, WELCOME, answer_challenge, make_challenge, verify_answer,
};
use rpc_transport::http::{HttpConfig, HttpGateway};
use rpc_transport::limits::Limits;
use rpc_transport::metrics::{Metrics, Refused};
use rpc_transport::{Server, ServerConfig};
use tokio::net::{TcpSocket, TcpStream};

/// An honest call, once logged in, is answered within this, flood or not.
const ANSWERED_WITHIN: Duration = Duration::from_secs(1);

/// A probe server serving on a task, and its metrics.
struct Running {
    address: SocketAddr,
    metrics: Arc<Metrics>,
    _task: TaskGuard<()>,
}

async fn serve(config: ServerConfig) -> Running {
    let server = Server::new(config, probe().0);
    let metrics = server.metrics().clone();
    let listening = within("the server to bind", server.bind()).await.unwrap();
    let address = listening.local_addr().parse().unwrap();
    Running {
        address,
        metrics,
        _task: TaskGuard(tokio::spawn(listening.serve())),
    }
}

/// A connection to `to` from `127.0.0.<from>`.
async fn connect_from(from: u8, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(IpAddr::from([127, 0, 0, from]), 0))
        .unwrap();
    let stream = within("a TCP connection", socket.connect(to))
        .await
        .unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// `n` connections from `127.0.0.<from>` that say nothing.
async fn silent(n: usize, from: u8, to: SocketAddr) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        held.push(connect_from(from, to).await);
    }
    held
}

async fn until(what: &str, done: impl Fn() -> bool) {
    within(what, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

/// The rest of an honest login whose challenge arrived already, each
/// message sent `rtt` after the last one came, then one call, which must
/// be answered within [`ANSWERED_WITHIN`].
async fn finish_login(stream: &mut TcpStream, challenge: &[u8], rtt: Duration) {
    finish_login_then_call_within(stream, challenge, rtt, ANSWERED_WITHIN).await;
}

/// [`finish_login`], the call answered within `limit`.
async fn finish_login_then_call_within(
    stream: &mut TcpStream,
    challenge: &[u8],
    rtt: Duration,
    limit: Duration,
) {
    let answer = answer_challenge(KEY.as_bytes(), challenge, false).unwrap();
    tokio::time::sleep(rtt).await;
    write_frame(stream, &answer).await;
    let verdict = expect_frame(stream, "the verdict on our answer").await;
    assert_eq!(verdict, WELCOME, "{:?}", String::from_utf8_lossy(&verdict));
    let ours = make_challenge(&[7; 40]);
    tokio::time::sleep(rtt).await;
    write_frame(stream, &ours).await;
    let theirs = expect_frame(stream, "the server's answer").await;
    verify_answer(KEY.as_bytes(), &ours[CHALLENGE.len()..], &theirs, false).unwrap();
    tokio::time::sleep(rtt).await;
    write_frame(stream, WELCOME).await;
    let hello = r#"{"protocol":1,"codec":"json","max_frame_bytes":1048576}"#;
    write_frame(stream, hello.as_bytes()).await;
    let answer = expect_json(stream, "the answer to the hello").await;
    assert_eq!(answer["codec"], "json", "{answer}");
    let started = Instant::now();
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"Probe.add","params":[40,2]}"#;
    let reply = within_for(limit, "the call", json_round_trip(stream, call)).await;
    assert_eq!(reply["result"], 42, "{reply}");
    assert!(started.elapsed() < limit);
}

/// Waits until the server has seen `n` connections, pending or shed.
async fn seen(metrics: &Metrics, n: u64) {
    until("the server to take the connections", || {
        let shed = [Refused::HandshakeShed, Refused::PerAddressShed]
            .map(|why| metrics.refused_count(why))
            .iter()
            .sum::<u64>();
        metrics.handshakes_pending() + shed >= n
    })
    .await;
}

#[tokio::test]
async fn a_slow_client_gets_in_while_silent_sockets_pour_in_from_another_address() {
    let limits = Limits {
        max_pending_handshakes: 64,
        ..Limits::default()
    };
    let running = serve(server_builder().limits(limits).build().unwrap()).await;
    let mut honest = connect_from(1, running.address).await;
    let challenge = expect_frame(&mut honest, "the challenge").await;
    // Five times the cap arrive while the client thinks: each sheds one.
    let _junk = silent(320, 2, running.address).await;
    seen(&running.metrics, 321).await;
    finish_login(&mut honest, &challenge, Duration::from_millis(20)).await;
    assert!(running.metrics.refused_count(Refused::HandshakeShed) >= 256);
}

#[tokio::test]
async fn a_client_with_a_100_ms_round_trip_outlasts_1500_silent_sockets_from_its_own_address() {
    let running = serve(server_builder().build().unwrap()).await;
    let mut honest = connect_from(1, running.address).await;
    let challenge = expect_frame(&mut honest, "the challenge").await;
    let started = Instant::now();
    let _junk = silent(1500, 1, running.address).await;
    seen(&running.metrics, 1501).await;
    let rtt = Duration::from_millis(100).saturating_sub(started.elapsed());
    finish_login(&mut honest, &challenge, rtt).await;
}

#[tokio::test]
async fn silent_sockets_that_never_answer_are_dropped_at_the_first_answer_timeout() {
    let limits = Limits {
        first_answer_timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let config = server_builder()
        .limits(limits)
        .handshake_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let (mut server, _) = ObservedServer::probe_with(config).await;
    let mut stream = raw_connect(&server.address).await;
    expect_frame(&mut stream, "the challenge").await;
    within_for(
        Duration::from_secs(5),
        "the drop",
        expect_closed(&mut stream),
    )
    .await;
    let e = server.next_error().await;
    assert_eq!(
        e.message(),
        "no answer to the challenge within 200ms (first_answer_timeout)"
    );
}

/// A reconnect storm (peerbench's `many`): 2,000 clients of one address
/// all in the handshake at once — each has its challenge before any
/// answers — and all get in under the default limits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_honest_clients_handshaking_at_once_from_one_address_all_get_in() {
    let running = serve(server_builder().build().unwrap()).await;
    let mut waiting = Vec::new();
    for _ in 0..2000 {
        let mut stream = connect_from(1, running.address).await;
        let challenge = expect_frame(&mut stream, "the challenge").await;
        waiting.push((stream, challenge));
    }
    assert_eq!(running.metrics.handshakes_pending(), 2000);
    let logins: Vec<_> = waiting
        .into_iter()
        .map(|(mut stream, challenge)| {
            tokio::spawn(async move {
                // 2,000 first calls at once share two cores: no 1 s bound here.
                let limit = common::WAIT;
                finish_login_then_call_within(&mut stream, &challenge, Duration::ZERO, limit).await;
                stream
            })
        })
        .collect();
    let mut streams = Vec::new();
    for login in logins {
        streams.push(
            within("a login", login)
                .await
                .expect("every login succeeds"),
        );
    }
    let shed = [Refused::HandshakeShed, Refused::PerAddressShed]
        .map(|why| running.metrics.refused_count(why));
    assert_eq!(shed, [0, 0]);
}

#[tokio::test]
async fn a_hello_cannot_forge_a_log_line_or_make_a_long_one() {
    let (mut server, _) = ObservedServer::probe().await;
    for codec in [
        "json\n2030-01-01T00:00:00Z  INFO rpc_transport: FORGED".to_owned(),
        "x".repeat(1_000_000),
    ] {
        let mut stream = raw_connect(&server.address).await;
        client_handshake(&mut stream, KEY).await;
        let hello =
            serde_json::json!({"protocol": 1, "codec": codec, "max_frame_bytes": 1_048_576});
        write_frame(&mut stream, hello.to_string().as_bytes()).await;
        let answer = expect_json(&mut stream, "the refusal").await;
        let error = answer["error"].as_str().expect("a refusal");
        assert!(!error.contains('\n'), "{error}");
        assert!(error.len() < 400, "a refusal of {} bytes", error.len());
        let logged = server.next_error().await;
        assert!(!logged.message().contains('\n'), "{logged}");
        assert!(
            logged.to_string().len() < 400,
            "{} bytes",
            logged.to_string().len()
        );
    }
}

#[tokio::test]
async fn a_hello_that_does_not_parse_is_answered_with_an_error_frame() {
    let (mut server, _) = ObservedServer::probe().await;
    for bad in [
        r#"{"protocol":1,"codec":"json","max_frame_bytes":-1}"#,
        r#"{"protocol":1,"codec":"json","max_frame_bytes":1e20}"#,
        r#"{"protocol":1,"codec":"json","max_frame_bytes":"1048576"}"#,
        r#"{"protocol":1,"codec":"json","codec":"bincode","max_frame_bytes":1048576}"#,
        "{not json at all",
    ] {
        let mut stream = raw_connect(&server.address).await;
        client_handshake(&mut stream, KEY).await;
        write_frame(&mut stream, bad.as_bytes()).await;
        let answer = expect_json(&mut stream, "the refusal").await;
        let error = answer["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{bad}: {answer}"));
        assert!(
            error.starts_with("the first frame after authentication is not a hello: "),
            "{bad}: {error}"
        );
        expect_closed(&mut stream).await;
        let logged = server.next_error().await;
        assert_eq!(logged.message(), error);
    }
}

/// A config for `kv-server` with an `[http]` gateway, both on `127.0.0.1:0`.
fn kv_with_http() -> TempConfig {
    TempConfig::new(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nauthkey = \"{KEY}\"\n\n\
         [http]\nlisten = \"127.0.0.1:0\"\npassword = \"not-the-key\"\n"
    ))
}

/// `kv-server` under a limit of `descriptors` open files, and its HTTP address.
async fn kv_server_with(descriptors: u32, config: &TempConfig) -> (ServerProcess, SocketAddr) {
    let mut command = tokio::process::Command::new("prlimit");
    command
        .arg(format!("--nofile={descriptors}:{descriptors}"))
        .arg("--")
        .arg(bin("kv-server"))
        .arg("--config")
        .arg(&config.path)
        .env_remove("RPC_AUTHKEY")
        .env_remove("RPC_CODEC")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut server = ServerProcess::spawn("kv-server", command).await;
    let line = server.next_line("the HTTP line").await;
    let http = line
        .strip_prefix("http listening ")
        .expect(&line)
        .parse()
        .unwrap();
    (server, http)
}

#[tokio::test]
async fn silent_http_connections_cannot_shut_out_the_tcp_listener_of_a_process_short_of_descriptors()
 {
    let config = kv_with_http();
    let (server, http) = kv_server_with(256, &config).await;
    let tcp: SocketAddr = server.address.parse().unwrap();
    // More silent HTTP connections than the process has descriptors.
    let _silent = silent(400, 2, http).await;
    // A TCP client still logs in, well before the HTTP header timeout (5 s).
    let started = Instant::now();
    let mut stream = connect_from(1, tcp).await;
    let challenge = within_for(
        Duration::from_secs(3),
        "the challenge",
        expect_frame(&mut stream, "the challenge"),
    )
    .await;
    let answer = answer_challenge(KEY.as_bytes(), &challenge, false).unwrap();
    write_frame(&mut stream, &answer).await;
    assert_eq!(expect_frame(&mut stream, "the verdict").await, WELCOME);
    assert!(started.elapsed() < Duration::from_secs(3));
    // And so does an HTTP one.
    let mut probe = connect_from(1, http).await;
    tokio::io::AsyncWriteExt::write_all(&mut probe, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let reply = expect_closed_or_reply(&mut probe).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    // One warning a second about it, not one per connection.
    let stderr = server.stderr_text();
    let lines = stderr
        .lines()
        .filter(|l| l.contains("out of file descriptors"))
        .count();
    assert!((1..=5).contains(&lines), "{lines} lines:\n{stderr}");
}

/// The first bytes of an HTTP reply, as text.
async fn expect_closed_or_reply(stream: &mut TcpStream) -> String {
    let mut buf = vec![0u8; 1024];
    let n = within(
        "an HTTP reply",
        tokio::io::AsyncReadExt::read(stream, &mut buf),
    )
    .await
    .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn failed_connections_are_logged_once_a_second_with_a_count() {
    let config = kv_with_http();
    let (server, _) = kv_server_with(4096, &config).await;
    let tcp: SocketAddr = server.address.parse().unwrap();
    for _ in 0..200 {
        let mut stream = connect_from(1, tcp).await;
        let challenge = expect_frame(&mut stream, "the challenge").await;
        let wrong = answer_challenge(b"not-the-key", &challenge, false).unwrap();
        write_frame(&mut stream, &wrong).await;
        expect_closed(&mut stream).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stderr = server.stderr_text();
    let lines = stderr.lines().filter(|l| l.contains("WARN")).count();
    assert!((1..=10).contains(&lines), "{lines} lines:\n{stderr}");
}

/// A probe server with a TCP listener and an HTTP gateway, and its metrics.
struct Both {
    tcp: SocketAddr,
    http: SocketAddr,
    metrics: Arc<Metrics>,
    _tasks: [TaskGuard<()>; 2],
}

async fn serve_both(config: ServerConfig) -> Both {
    let server = Server::new(config, probe().0);
    let http_config = HttpConfig::builder()
        .listen("127.0.0.1:0")
        .password("not-the-key")
        .build()
        .unwrap();
    let gateway = HttpGateway::new(http_config, &server).unwrap();
    let http = within("the gateway to bind", gateway.bind()).await.unwrap();
    let tcp = within("the server to bind", server.clone().bind())
        .await
        .unwrap();
    Both {
        tcp: tcp.local_addr().parse().unwrap(),
        http: http.local_addr().parse().unwrap(),
        metrics: server.metrics().clone(),
        _tasks: [
            TaskGuard(tokio::spawn(tcp.serve())),
            TaskGuard(tokio::spawn(http.serve())),
        ],
    }
}

#[tokio::test]
async fn silent_http_connections_are_pending_with_the_tcp_ones_and_shed_alike() {
    let limits = Limits {
        max_pending_handshakes: 16,
        ..Limits::default()
    };
    let both = serve_both(server_builder().limits(limits).build().unwrap()).await;
    let mut first = connect_from(2, both.http).await;
    let _rest = silent(40, 2, both.http).await;
    seen(&both.metrics, 41).await;
    // The first made way for later ones, and was closed.
    expect_closed(&mut first).await;
    assert!(both.metrics.refused_count(Refused::HandshakeShed) >= 25);
    // A TCP client that takes its time still gets in.
    let mut honest = connect_from(1, both.tcp).await;
    let challenge = expect_frame(&mut honest, "the challenge").await;
    let _more = silent(40, 2, both.http).await;
    finish_login(&mut honest, &challenge, Duration::from_millis(20)).await;
}

#[tokio::test]
async fn an_http_client_cannot_pin_more_than_64_kib_of_unfinished_headers() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let both = serve_both(server_builder().build().unwrap()).await;
    let mut stream = connect_from(1, both.http).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let line = format!("X-Pad: {}\r\n", "a".repeat(1000));
    // 396 KB of headers that never end; the server stops taking them at 64 KiB.
    for _ in 0..396 {
        if stream.write_all(line.as_bytes()).await.is_err() {
            break;
        }
    }
    let mut reply = vec![0u8; 256];
    let n = within_for(
        Duration::from_secs(3),
        "the server to refuse",
        stream.read(&mut reply),
    )
    .await
    .unwrap_or(0);
    let reply = String::from_utf8_lossy(&reply[..n]);
    assert!(
        reply.is_empty() || reply.starts_with("HTTP/1.1 431"),
        "{reply}"
    );
}
