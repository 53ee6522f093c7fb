//! Helpers for the hostile-input and fault tests (`hostile_*.rs`): a probe
//! service whose calls panic, hang or count themselves; a server whose
//! connections' outcomes can be read back; the server side of the wire for
//! fake servers; and raw bytes for headers and envelopes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rpc_core::codec::{Bincode, Codec, Inbound, OutRequest};
use rpc_core::{Error, Registry, Value};
use rpc_transport::handshake::{
    CHALLENGE, WELCOME, answer_challenge, make_challenge, verify_answer,
};
use rpc_transport::{Server, ServerConfig};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use super::{
    KEY, ServerGuard, TaskGuard, connect, expect_frame, expect_json, raw_connect, serve_with,
    server_builder, within, write_frame,
};

// ---------------------------------------------------------------------------
// The probe service.
// ---------------------------------------------------------------------------

/// A service for hostile tests: ordinary calls, and calls that hold, panic,
/// never return or answer big, all counted in a [`ProbeState`].
#[rpc_core::rpc_service]
pub(crate) trait Probe {
    /// Returns `x + y`.
    async fn add(&self, x: i64, y: i64) -> i64;

    /// Returns `text`.
    async fn echo(&self, text: String) -> String;

    /// Returns `x / 2`.
    async fn half(&self, x: f64) -> f64;

    /// Returns `value`.
    async fn reflect(&self, value: Value) -> Value;

    /// Returns how many items there are.
    async fn count(&self, items: Vec<u64>) -> u64;

    /// Waits until the state's release, then returns `n`.
    async fn hold(&self, n: u64) -> u64;

    /// Panics with "probe panicked at once" on its first poll.
    async fn panic_now(&self) -> u64;

    /// Yields once, then panics with "probe panicked later".
    async fn panic_later(&self) -> u64;

    /// Never returns.
    async fn never(&self) -> u64;

    /// Sleeps `delay_ms` (if not 0), then returns `len` bytes.
    async fn blob(&self, len: u64, delay_ms: u64) -> Vec<u8>;
}

/// What the probe's handlers have seen.
#[derive(Debug)]
pub(crate) struct ProbeState {
    /// Handlers started.
    pub(crate) entered: AtomicU64,
    /// Handlers dropped before they returned (cancelled).
    pub(crate) cancelled: AtomicU64,
    /// Handlers running now.
    pub(crate) in_flight: AtomicU64,
    /// The most handlers ever running at once.
    pub(crate) peak_in_flight: AtomicU64,
    release: watch::Sender<bool>,
}

impl Default for ProbeState {
    fn default() -> Self {
        Self {
            entered: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            peak_in_flight: AtomicU64::new(0),
            release: watch::Sender::new(false),
        }
    }
}

impl ProbeState {
    /// Lets every `hold` call, present and future, return.
    pub(crate) fn release(&self) {
        self.release.send_replace(true);
    }

    /// Waits until `at_least` handlers have started.
    pub(crate) async fn wait_entered(&self, at_least: u64) {
        self.wait_for(&self.entered, at_least, "handlers to start")
            .await;
    }

    /// Waits until `at_least` handlers have been cancelled.
    pub(crate) async fn wait_cancelled(&self, at_least: u64) {
        self.wait_for(&self.cancelled, at_least, "handlers to be cancelled")
            .await;
    }

    async fn wait_for(&self, counter: &AtomicU64, at_least: u64, what: &str) {
        let what = format!("{at_least} {what}");
        within(&what, async {
            while counter.load(Ordering::SeqCst) < at_least {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
    }

    fn enter(&self) -> Running<'_> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak_in_flight.fetch_max(now, Ordering::SeqCst);
        Running {
            state: self,
            returned: false,
        }
    }
}

/// One running handler; counts itself out when dropped.
struct Running<'a> {
    state: &'a ProbeState,
    returned: bool,
}

impl Running<'_> {
    fn returns<T>(mut self, value: T) -> T {
        self.returned = true;
        value
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.state.in_flight.fetch_sub(1, Ordering::SeqCst);
        if !self.returned && !std::thread::panicking() {
            self.state.cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// The probe's implementation.
#[derive(Clone, Debug, Default)]
pub(crate) struct ProbeImpl(pub(crate) Arc<ProbeState>);

impl Probe for ProbeImpl {
    async fn add(&self, x: i64, y: i64) -> i64 {
        self.0.enter().returns(x.wrapping_add(y))
    }

    async fn echo(&self, text: String) -> String {
        self.0.enter().returns(text)
    }

    async fn half(&self, x: f64) -> f64 {
        self.0.enter().returns(x / 2.0)
    }

    async fn reflect(&self, value: Value) -> Value {
        self.0.enter().returns(value)
    }

    async fn count(&self, items: Vec<u64>) -> u64 {
        self.0.enter().returns(items.len() as u64)
    }

    async fn hold(&self, n: u64) -> u64 {
        let running = self.0.enter();
        let mut released = self.0.release.subscribe();
        // The sender lives in the state, which outlives every handler.
        let _ = released.wait_for(|&released| released).await;
        running.returns(n)
    }

    async fn panic_now(&self) -> u64 {
        let _running = self.0.enter();
        panic!("probe panicked at once")
    }

    async fn panic_later(&self) -> u64 {
        let _running = self.0.enter();
        tokio::task::yield_now().await;
        panic!("probe panicked later")
    }

    async fn never(&self) -> u64 {
        let _running = self.0.enter();
        std::future::pending().await
    }

    async fn blob(&self, len: u64, delay_ms: u64) -> Vec<u8> {
        let running = self.0.enter();
        if delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        }
        let len = usize::try_from(len).expect("a test blob fits in memory");
        running.returns(vec![0xa5; len])
    }
}

/// A registry holding a fresh probe, and the probe's state.
pub(crate) fn probe() -> (Registry, Arc<ProbeState>) {
    let state = Arc::new(ProbeState::default());
    let registry = Registry::new()
        .with(ProbeServer::new(ProbeImpl(state.clone())))
        .expect("the probe registers");
    (registry, state)
}

/// A real server (the accept loop of [`rpc_transport::Listening`]) offering
/// a fresh probe with `config`.
pub(crate) async fn serve_probe_with(config: ServerConfig) -> (ServerGuard, Arc<ProbeState>) {
    let (registry, state) = probe();
    (serve_with(config, registry).await, state)
}

/// [`serve_probe_with`] the default test configuration.
pub(crate) async fn serve_probe() -> (ServerGuard, Arc<ProbeState>) {
    serve_probe_with(server_builder().build().expect("a valid server config")).await
}

/// A well-behaved typed client, in each codec, is served at `address`.
pub(crate) async fn assert_still_serves(address: &str) {
    for codec in super::CODECS {
        let probe = ProbeClient::new(connect(address, codec).await);
        let sum = within("add on a fresh connection", probe.add(40, 2)).await;
        assert_eq!(sum.expect("add succeeds"), 42, "{codec}");
    }
}

// ---------------------------------------------------------------------------
// A server whose connections' outcomes can be read.
// ---------------------------------------------------------------------------

/// A listener on `127.0.0.1:0` serving each connection with
/// [`Server::serve_stream`] and reporting how it ended, so a test can assert
/// the exact error a hostile peer's connection ended with. Dropping it stops
/// the listener and every connection.
pub(crate) struct ObservedServer {
    pub(crate) address: String,
    outcomes: mpsc::UnboundedReceiver<Result<(), Error>>,
    _task: TaskGuard<()>,
}

impl ObservedServer {
    /// Serves `registry` under `config` (whose `listen` is ignored).
    pub(crate) async fn start(config: ServerConfig, registry: Registry) -> ObservedServer {
        let listener = within("a listener", TcpListener::bind("127.0.0.1:0"))
            .await
            .expect("binding 127.0.0.1:0");
        let address = listener.local_addr().expect("a bound address").to_string();
        let server = Server::new(config, registry);
        let (report, outcomes) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, peer)) = accepted else { continue };
                        let (server, report) = (server.clone(), report.clone());
                        connections.spawn(async move {
                            let _ = report.send(server.serve_stream(stream, Some(peer)).await);
                        });
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        ObservedServer {
            address,
            outcomes,
            _task: TaskGuard(task),
        }
    }

    /// An observed server offering a fresh probe with `config`.
    pub(crate) async fn probe_with(config: ServerConfig) -> (ObservedServer, Arc<ProbeState>) {
        let (registry, state) = probe();
        (ObservedServer::start(config, registry).await, state)
    }

    /// An observed server offering a fresh probe with the default test configuration.
    pub(crate) async fn probe() -> (ObservedServer, Arc<ProbeState>) {
        Self::probe_with(server_builder().build().expect("a valid server config")).await
    }

    /// How the next connection to end ended.
    pub(crate) async fn next_outcome(&mut self) -> Result<(), Error> {
        within("a connection to end", self.outcomes.recv())
            .await
            .expect("the accept loop runs as long as the server")
    }

    /// The error the next connection to end ended with.
    pub(crate) async fn next_error(&mut self) -> Error {
        match self.next_outcome().await {
            Ok(()) => panic!("a connection ended cleanly where an error was expected"),
            Err(e) => e,
        }
    }
}

// ---------------------------------------------------------------------------
// Raw bytes.
// ---------------------------------------------------------------------------

/// Writes `bytes` as they are, with no framing.
pub(crate) async fn write_raw(stream: &mut TcpStream, bytes: &[u8]) {
    within("raw bytes to be written", stream.write_all(bytes))
        .await
        .expect("writing raw bytes");
}

/// The 12-byte long-form header: `-1`, then `len` as a big-endian `u64`.
pub(crate) fn long_header(len: u64) -> Vec<u8> {
    [(-1i32).to_be_bytes().as_slice(), &len.to_be_bytes()].concat()
}

/// A short-form frame of `payload`.
pub(crate) fn frame(payload: &[u8]) -> Vec<u8> {
    let len = i32::try_from(payload.len()).expect("a test frame fits the short header");
    [len.to_be_bytes().as_slice(), payload].concat()
}

/// The payloads of the whole short-form frames `bytes` holds, in order.
pub(crate) fn frames_in(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    while let Some((header, rest)) = bytes.split_first_chunk::<4>() {
        let len = usize::try_from(i32::from_be_bytes(*header)).expect("a short-form length");
        assert!(rest.len() >= len, "a partial frame: {bytes:?}");
        frames.push(rest[..len].to_vec());
        bytes = &rest[len..];
    }
    assert!(bytes.is_empty(), "a partial header: {bytes:?}");
    frames
}

/// The payload of a bincode request.
pub(crate) fn bincode_request(
    id: u64,
    method: &str,
    deadline: Option<Duration>,
    args: &impl serde::Serialize,
) -> Vec<u8> {
    let mut buf = bytes::BytesMut::new();
    let request = OutRequest {
        id,
        method,
        deadline,
        args,
        metadata: None,
    };
    Bincode
        .encode_request(&mut buf, &request)
        .expect("a test request encodes");
    buf.to_vec()
}

/// A bincode response frame read as the client would: its id, and the
/// result's bytes or the error's code and message.
pub(crate) fn read_bincode_response(payload: &[u8]) -> (u64, Result<Vec<u8>, (i32, String)>) {
    let inbound = Bincode
        .decode_response(payload)
        .unwrap_or_else(|e| panic!("not a bincode response ({e}): {payload:?}"));
    let Inbound::Response { id, outcome, .. } = inbound else {
        panic!("not a response: {inbound:?}")
    };
    let outcome = outcome
        .map(|range| payload[range].to_vec())
        .map_err(|fault| (fault.code, fault.message));
    (id, outcome)
}

/// A value as bincode (standard configuration) writes it.
pub(crate) fn bincode_value(value: &impl serde::Serialize) -> Vec<u8> {
    bincode::serde::encode_to_vec(value, bincode::config::standard()).expect("a test value encodes")
}

// ---------------------------------------------------------------------------
// Sessions by hand.
// ---------------------------------------------------------------------------

/// Sends a hello for `codec` announcing `max_frame_bytes`; panics unless
/// the server accepts it.
pub(crate) async fn hello_with_limit(stream: &mut TcpStream, codec: &str, max_frame_bytes: usize) {
    let hello =
        serde_json::json!({"protocol": 1, "codec": codec, "max_frame_bytes": max_frame_bytes});
    write_frame(stream, hello.to_string().as_bytes()).await;
    let answer = expect_json(stream, "the answer to the hello").await;
    assert_eq!(answer["codec"], codec, "{answer}");
}

/// A raw connection to `address`, authenticated and past a hello for
/// `codec` announcing `max_frame_bytes`.
pub(crate) async fn raw_session(address: &str, codec: &str, max_frame_bytes: usize) -> TcpStream {
    let mut stream = raw_connect(address).await;
    super::client_handshake(&mut stream, KEY).await;
    hello_with_limit(&mut stream, codec, max_frame_bytes).await;
    stream
}

/// The server's challenge, read from a fresh raw connection.
pub(crate) async fn challenge_of(stream: &mut TcpStream) -> Vec<u8> {
    let challenge = expect_frame(stream, "the server's challenge").await;
    assert!(challenge.starts_with(CHALLENGE), "{challenge:?}");
    challenge
}

/// 40 bytes for a challenge a test server sends.
fn test_random() -> [u8; 40] {
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut out = [0x5a; 40];
    out[..8].copy_from_slice(&n.to_le_bytes());
    out
}

/// Accepts one connection on `listener` and plays a correct server up to and
/// including the answer to the hello, accepting whatever codec is asked for;
/// returns the stream and that codec.
pub(crate) async fn fake_server_session(listener: &TcpListener) -> (TcpStream, String) {
    let (mut stream, _) = within("a client to connect", listener.accept())
        .await
        .expect("accepting a client");
    stream.set_nodelay(true).expect("TCP_NODELAY");
    let ours = make_challenge(&test_random());
    write_frame(&mut stream, &ours).await;
    let answer = expect_frame(&mut stream, "the client's answer").await;
    verify_answer(KEY.as_bytes(), &ours[CHALLENGE.len()..], &answer, false)
        .expect("the client knows the key");
    write_frame(&mut stream, WELCOME).await;
    let theirs = expect_frame(&mut stream, "the client's challenge").await;
    let answer = answer_challenge(KEY.as_bytes(), &theirs, false).expect("a modern challenge");
    write_frame(&mut stream, &answer).await;
    let verdict = expect_frame(&mut stream, "the client's verdict").await;
    assert_eq!(verdict, WELCOME);
    let hello = expect_json(&mut stream, "the client's hello").await;
    let codec = hello["codec"].as_str().expect("a codec").to_owned();
    let answer = serde_json::json!({"protocol": 1, "codec": codec, "max_frame_bytes": 16_777_216});
    write_frame(&mut stream, answer.to_string().as_bytes()).await;
    (stream, codec)
}

/// A listener on `127.0.0.1:0` for a fake server, and its address.
pub(crate) async fn fake_listener() -> (TcpListener, String) {
    let listener = within("a listener", TcpListener::bind("127.0.0.1:0"))
        .await
        .expect("binding 127.0.0.1:0");
    let address = listener.local_addr().expect("a bound address").to_string();
    (listener, address)
}
