//! Helpers shared by the end-to-end tests: servers on `127.0.0.1:0` that stop
//! when dropped, client configurations that ignore the process environment,
//! bounded waits, and the client side of the wire (frames, the authkey
//! handshake, the hello) written by hand over a raw `TcpStream`.
//!
//! Each test file includes this module with `mod common;` and uses only part
//! of it, hence the `dead_code` allowance.

#![allow(dead_code)]

pub(crate) mod bins;
pub(crate) mod hostile;
pub(crate) mod http;
pub(crate) mod middleware;

use std::future::Future;
use std::io::ErrorKind as IoErrorKind;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rpc_core::Registry;
use rpc_transport::config::{ClientConfigBuilder, ServerConfigBuilder};
use rpc_transport::handshake::{
    CHALLENGE, WELCOME, answer_challenge, make_challenge, verify_answer,
};
use rpc_transport::{ClientConfig, Server, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// The authkey of every test server and good client.
pub(crate) const KEY: &str = "e2e-test-key";

/// The codecs whose behaviour should not differ.
pub(crate) const CODECS: [&str; 2] = ["bincode", "json"];

/// The bound on any single wait that should end at once on a healthy run.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// A call timeout far longer than any wait in a test, so a test that sees a
/// failure promptly knows it was not the call timeout that produced it.
pub(crate) const LONG_CALL: Duration = Duration::from_secs(120);

/// Awaits `future` for at most [`WAIT`], panicking with `what` if it takes longer.
pub(crate) async fn within<F: Future>(what: &str, future: F) -> F::Output {
    within_for(WAIT, what, future).await
}

/// Awaits `future` for at most `limit`, panicking with `what` if it takes longer.
pub(crate) async fn within_for<F: Future>(limit: Duration, what: &str, future: F) -> F::Output {
    match tokio::time::timeout(limit, future).await {
        Ok(out) => out,
        Err(_) => panic!("timed out after {limit:?} waiting for {what}"),
    }
}

/// The resident set size of this process, in bytes.
pub(crate) fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line");
    kib * 1024
}

/// A server configuration on `127.0.0.1:0` with [`KEY`], ignoring the environment.
pub(crate) fn server_builder() -> ServerConfigBuilder {
    ServerConfig::builder()
        .no_env()
        .listen("127.0.0.1:0")
        .authkey(KEY)
}

/// A client configuration for `address` with [`KEY`] and `codec`, ignoring the environment.
pub(crate) fn client_builder(address: &str, codec: &str) -> ClientConfigBuilder {
    ClientConfig::builder()
        .no_env()
        .connect(address)
        .authkey(KEY)
        .codec(codec)
        .call_timeout(LONG_CALL)
}

/// A server serving on a task; aborting the task (on drop, or with
/// [`ServerGuard::stop`]) closes the listener and every connection.
pub(crate) struct ServerGuard {
    pub(crate) address: String,
    task: Option<JoinHandle<()>>,
}

impl ServerGuard {
    /// Stops the server and waits until its task has ended.
    pub(crate) async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = within("the server task to end", task).await;
        }
    }
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Aborts a spawned task when dropped.
pub(crate) struct TaskGuard<T>(pub(crate) JoinHandle<T>);

impl<T> Drop for TaskGuard<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Binds and serves `registry` with `config`.
pub(crate) async fn serve_with(config: ServerConfig, registry: Registry) -> ServerGuard {
    let listening = within("the server to bind", Server::new(config, registry).bind())
        .await
        .expect("the server binds 127.0.0.1:0");
    let address = listening.local_addr().to_owned();
    assert!(address.starts_with("127.0.0.1:"), "{address}");
    ServerGuard {
        address,
        task: Some(tokio::spawn(listening.serve())),
    }
}

/// Binds and serves `registry` with the default test configuration.
pub(crate) async fn serve(registry: Registry) -> ServerGuard {
    serve_with(
        server_builder().build().expect("a valid server config"),
        registry,
    )
    .await
}

/// A connected, authenticated client speaking `codec`.
pub(crate) async fn connect(address: &str, codec: &str) -> rpc_core::Client {
    let config = client_builder(address, codec)
        .build()
        .expect("a valid client config");
    within("the client to connect", rpc_transport::connect(&config))
        .await
        .unwrap_or_else(|e| panic!("a {codec} client connects to {address}: {e}"))
}

// ---------------------------------------------------------------------------
// The wire, by hand.
// ---------------------------------------------------------------------------

/// Writes one frame: a 4-byte big-endian length, then `payload`.
pub(crate) async fn write_frame(stream: &mut TcpStream, payload: &[u8]) {
    let len = i32::try_from(payload.len()).expect("a test frame fits the short header");
    let mut frame = len.to_be_bytes().to_vec();
    frame.extend_from_slice(payload);
    within("a frame to be written", stream.write_all(&frame))
        .await
        .expect("writing a frame");
}

/// Reads one frame's payload; `None` if the peer closed the connection
/// (cleanly or with a reset) before a whole frame arrived.
pub(crate) async fn read_frame(stream: &mut TcpStream) -> Option<Vec<u8>> {
    within("a frame (or EOF) from the server", async {
        let mut header = [0u8; 4];
        if !read_exact_or_closed(stream, &mut header).await {
            return None;
        }
        let len = i32::from_be_bytes(header);
        let len = usize::try_from(len).unwrap_or_else(|_| panic!("unexpected frame length {len}"));
        let mut payload = vec![0u8; len];
        if !read_exact_or_closed(stream, &mut payload).await {
            return None;
        }
        Some(payload)
    })
    .await
}

/// Reads one frame's payload, which must arrive.
pub(crate) async fn expect_frame(stream: &mut TcpStream, what: &str) -> Vec<u8> {
    read_frame(stream)
        .await
        .unwrap_or_else(|| panic!("the server closed the connection instead of sending {what}"))
}

/// Reads one frame and parses it as JSON.
pub(crate) async fn expect_json(stream: &mut TcpStream, what: &str) -> serde_json::Value {
    let payload = expect_frame(stream, what).await;
    serde_json::from_slice(&payload).unwrap_or_else(|e| {
        panic!(
            "{what} is not JSON ({e}): {:?}",
            String::from_utf8_lossy(&payload)
        )
    })
}

/// Fills `buf`; false if the connection closed or was reset first.
async fn read_exact_or_closed(stream: &mut TcpStream, buf: &mut [u8]) -> bool {
    match stream.read_exact(buf).await {
        Ok(_) => true,
        Err(e) if is_closed(&e) => false,
        Err(e) => panic!("reading from the server failed: {e}"),
    }
}

fn is_closed(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        IoErrorKind::UnexpectedEof
            | IoErrorKind::ConnectionReset
            | IoErrorKind::ConnectionAborted
            | IoErrorKind::BrokenPipe
    )
}

/// Reads and discards whatever the server still sends until it closes the
/// connection, which must happen within `limit`; returns the bytes discarded.
pub(crate) async fn expect_closed_within(stream: &mut TcpStream, limit: Duration) -> Vec<u8> {
    within_for(limit, "the server to close the connection", async {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => return seen,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
                Err(e) if is_closed(&e) => return seen,
                Err(e) => panic!("reading from the server failed: {e}"),
            }
        }
    })
    .await
}

/// [`expect_closed_within`] with the default bound.
pub(crate) async fn expect_closed(stream: &mut TcpStream) -> Vec<u8> {
    expect_closed_within(stream, WAIT).await
}

/// A raw TCP connection to `address`.
pub(crate) async fn raw_connect(address: &str) -> TcpStream {
    let stream = within("a TCP connection", TcpStream::connect(address))
        .await
        .expect("connecting to the server");
    stream.set_nodelay(true).expect("TCP_NODELAY");
    stream
}

/// 40 bytes that differ from one call to the next (a challenge need not be
/// secret in a test, only fresh).
fn fresh_random() -> [u8; 40] {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut out = [0u8; 40];
    out[..16].copy_from_slice(&nanos.to_le_bytes());
    out[16..24].copy_from_slice(&n.to_le_bytes());
    out[24..28].copy_from_slice(&std::process::id().to_le_bytes());
    out
}

/// The client side of the authkey handshake, by hand: answers the server's
/// challenge, then challenges the server and checks its answer.
pub(crate) async fn client_handshake(stream: &mut TcpStream, key: &str) {
    let challenge = expect_frame(stream, "the server's challenge").await;
    assert!(
        challenge.starts_with(CHALLENGE),
        "{:?}",
        String::from_utf8_lossy(&challenge)
    );
    let answer = answer_challenge(key.as_bytes(), &challenge, false).expect("a modern challenge");
    write_frame(stream, &answer).await;
    let verdict = expect_frame(stream, "the verdict on our answer").await;
    assert_eq!(verdict, WELCOME, "{:?}", String::from_utf8_lossy(&verdict));

    let ours = make_challenge(&fresh_random());
    write_frame(stream, &ours).await;
    let answer = expect_frame(stream, "the server's answer to our challenge").await;
    verify_answer(key.as_bytes(), &ours[CHALLENGE.len()..], &answer, false)
        .expect("the server knows the key");
    write_frame(stream, WELCOME).await;
}

/// The server side of the handshake as an impostor that does not know the
/// key: it welcomes any answer, then answers the client's challenge with
/// `wrong_key`. Returns the client's verdict on that answer, if any.
pub(crate) async fn impostor_handshake(stream: &mut TcpStream, wrong_key: &str) -> Option<Vec<u8>> {
    write_frame(stream, &make_challenge(&fresh_random())).await;
    read_frame(stream).await?;
    write_frame(stream, WELCOME).await;
    let challenge = read_frame(stream).await?;
    let answer =
        answer_challenge(wrong_key.as_bytes(), &challenge, false).expect("a modern challenge");
    write_frame(stream, &answer).await;
    read_frame(stream).await
}

/// Sends the hello for `codec` with a 1 MiB frame limit and returns the
/// server's answer, parsed.
pub(crate) async fn say_hello(stream: &mut TcpStream, codec: &str) -> serde_json::Value {
    let hello = serde_json::json!({"protocol": 1, "codec": codec, "max_frame_bytes": 1_048_576});
    write_frame(stream, hello.to_string().as_bytes()).await;
    expect_json(stream, "the answer to the hello").await
}

/// A raw connection to `address`, authenticated with [`KEY`] and past a
/// JSON hello: ready for JSON-RPC frames.
pub(crate) async fn raw_json_session(address: &str) -> TcpStream {
    let mut stream = raw_connect(address).await;
    client_handshake(&mut stream, KEY).await;
    let answer = say_hello(&mut stream, "json").await;
    assert_eq!(answer["codec"], "json", "{answer}");
    stream
}

/// Sends one JSON frame and reads one JSON frame back.
pub(crate) async fn json_round_trip(stream: &mut TcpStream, request: &str) -> serde_json::Value {
    write_frame(stream, request.as_bytes()).await;
    expect_json(stream, &format!("the answer to {request}")).await
}
