//! Hostile peers after authentication, on a TLS port: the post-handshake
//! cases of the plaintext hostile suites, run through a raw TLS session
//! (`common/tls_raw.rs`) against the real accept loop, so the connection
//! goes through the TLS acceptor and the bound authkey handshake.
//!
//! Each case asserts the server ends (or keeps) the hostile connection as in
//! plaintext, logs why, frees what it held, and still serves typed TLS
//! clients in both codecs. A connection's end is read from the server's log:
//! the accept loop logs it in a `connection{peer=…}` span, and the peer's
//! port is our session's local port.
//!
//! Two tests, each beside a plaintext twin, check that TLS ends as
//! plaintext does: a client that goes away (no `close_notify`, between
//! frames) is a quiet end, not a warning; and the server shuts its side
//! down (a `close_notify`) on every close it makes, so a client whose idle
//! connection was closed is told the server closed it.

mod common;
#[path = "common/tls.rs"]
mod tls;
#[path = "common/tls_raw.rs"]
mod tls_raw;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::hostile::{
    ProbeClient, ProbeState, bincode_request, bincode_value, frame, long_header, probe,
    read_bincode_response,
};
use common::{CODECS, TaskGuard, WAIT, resident_bytes, within};
use rpc_core::ErrorKind;
use rpc_transport::config::Limits;
use rpc_transport::metrics::Transport;
use rpc_transport::{Server, ServerConfig};
use serde_json::{Value, json};
use tls::Setup;
use tls_raw::{
    Tls, expect_closed, expect_closed_within, expect_frame, json_round_trip, local_port,
    tls_session, write_raw,
};
use tokio::io::AsyncWriteExt;

const ADD: &str = r#"{"jsonrpc":"2.0","id":1,"method":"Probe.add","params":[2,3]}"#;

/// Held by the tests that measure this process's memory, and by those that
/// allocate much, so that the one does not meet the other.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ---------------------------------------------------------------------------
// The server's log.
// ---------------------------------------------------------------------------

/// Every line `rpc_transport` logs at debug and up, in this process.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    /// The log, installed as the global subscriber on first use.
    fn get() -> &'static Lines {
        static LINES: OnceLock<Lines> = OnceLock::new();
        LINES.get_or_init(|| {
            let lines = Lines::default();
            let writer = lines.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new("rpc_transport=debug"))
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("the only global subscriber");
            lines
        })
    }

    /// The lines logged so far for the connection from `port`.
    fn of(&self, port: u16) -> Vec<String> {
        let peer = format!("peer=Some(127.0.0.1:{port})");
        let text = self.0.lock().unwrap();
        String::from_utf8_lossy(&text)
            .lines()
            .filter(|line| line.contains(&peer))
            .map(str::to_owned)
            .collect()
    }

    /// The first line logged for the connection from `port` that holds
    /// `needle`; panics with the port's lines if none comes within [`WAIT`].
    async fn wait_for(&self, port: u16, needle: &str) -> String {
        let found = tokio::time::timeout(WAIT, async {
            loop {
                if let Some(line) = self.of(port).into_iter().find(|l| l.contains(needle)) {
                    return line;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        found.unwrap_or_else(|_| {
            let lines = self.of(port).join("\n");
            panic!(
                "no line holding {needle:?} for port {port} within {WAIT:?}; its lines:\n{lines}"
            )
        })
    }
}

// ---------------------------------------------------------------------------
// A TLS server offering the probe.
// ---------------------------------------------------------------------------

/// The real accept loop on a TLS port, offering a fresh probe.
struct TlsProbe {
    address: String,
    server: Server,
    state: Arc<ProbeState>,
    _serving: TaskGuard<()>,
}

impl TlsProbe {
    async fn start(config: ServerConfig) -> TlsProbe {
        Lines::get();
        let (registry, state) = probe();
        let listening = within("the server to bind", Server::new(config, registry).bind())
            .await
            .expect("the TLS server binds 127.0.0.1:0");
        TlsProbe {
            address: listening.local_addr().to_owned(),
            server: listening.server().clone(),
            state,
            _serving: TaskGuard(tokio::spawn(listening.serve())),
        }
    }

    /// A typed TLS client, in each codec, is served.
    async fn assert_still_serves(&self, setup: &Setup) {
        for codec in CODECS {
            let config = setup.client(&self.address, codec).build().unwrap();
            let client = within("a TLS client to connect", rpc_transport::connect(&config)).await;
            let probe = ProbeClient::new(client.expect("a TLS client gets in"));
            let sum = within("add over TLS", probe.add(40, 2)).await;
            assert_eq!(sum.expect("add succeeds"), 42, "{codec}");
        }
    }

    /// Waits until `n` connections are open (the hostile ones cleaned up).
    async fn wait_open(&self, n: u64) {
        let metrics = self.server.metrics();
        within(&format!("{n} connections open"), async {
            while metrics.connections_open(Transport::Tcp) != n {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
    }
}

/// A TLS server configuration with `limits` and a frame limit of `max_frame`.
fn config(setup: &Setup, limits: Limits, max_frame: usize) -> ServerConfig {
    setup
        .server()
        .max_frame_bytes(max_frame)
        .limits(limits)
        .build()
        .expect("a valid server config")
}

/// Writes `bytes`, which the server may cut short by closing.
async fn write_cut_short(stream: &mut Tls, bytes: &[u8]) {
    let written = async {
        stream.write_all(bytes).await?;
        stream.flush().await
    };
    let _ = within("the write to end (done or cut short)", written).await;
}

// ---------------------------------------------------------------------------
// Frames over the limit.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn over_tls_a_frame_over_max_frame_bytes_is_refused_and_closed_and_others_are_served() {
    let setup = Setup::new();
    let limit = 1 << 20;
    let server = TlsProbe::start(config(&setup, Limits::default(), limit)).await;
    let (short, long) = (i32::MAX.to_be_bytes(), long_header(1 << 63));
    let whole = frame(&vec![0x5a; limit + 1]);
    let cases: [(&[u8], u64); 3] = [
        (&short, i32::MAX as u64),
        (&long, 1 << 63),
        (&whole, limit as u64 + 1),
    ];
    for codec in CODECS {
        for (bytes, len) in cases {
            let mut stream = tls_session(&setup, &server.address, codec, 16 << 20).await;
            let port = local_port(&stream);
            write_cut_short(&mut stream, bytes).await;
            let seen = expect_closed(&mut stream).await;
            assert!(seen.is_empty(), "nothing answers a bad frame: {seen:?}");
            let line = Lines::get().wait_for(port, "connection ended").await;
            let message = format!("frame of {len} bytes exceeds the limit of {limit} bytes");
            assert!(line.contains(&message), "{codec}, {len}: {line}");
            let kind = ErrorKind::FrameTooLarge.to_string();
            assert!(line.contains(&kind), "{codec}, {len}: {line}");
        }
    }
    server.wait_open(0).await;
    server.assert_still_serves(&setup).await;
}

#[tokio::test]
async fn over_tls_a_frame_announced_huge_then_left_unfinished_is_closed_at_frame_timeout() {
    let setup = Setup::new();
    let limits = Limits {
        frame_timeout: Duration::from_millis(800),
        ..Limits::default()
    };
    let frame_timeout = limits.frame_timeout;
    let server = TlsProbe::start(config(&setup, limits, 256 << 20)).await;
    let _alone = SERIAL.lock().await;
    let before = resident_bytes();
    let started = Instant::now();
    // 8 sessions each announce 200 MiB, send 64 KiB of it, then go silent.
    let mut held = Vec::new();
    for _ in 0..8 {
        let mut stream = tls_session(&setup, &server.address, "bincode", 1 << 20).await;
        let bytes = [&(200u32 << 20).to_be_bytes()[..], &[0u8; 64 * 1024]].concat();
        write_raw(&mut stream, &bytes).await;
        held.push(stream);
    }
    let grown = resident_bytes().saturating_sub(before);
    assert!(grown < 64 << 20, "the process grew by {grown} bytes");
    for stream in &mut held {
        let port = local_port(stream);
        let seen = expect_closed(stream).await;
        assert!(seen.is_empty(), "{seen:?}");
        let line = Lines::get().wait_for(port, "connection ended").await;
        assert!(line.contains("frame_timeout_ms"), "{line}");
    }
    let waited = started.elapsed();
    assert!(waited >= frame_timeout, "closed after {waited:?}");
    server.wait_open(0).await;
    server.assert_still_serves(&setup).await;
}

// ---------------------------------------------------------------------------
// Garbage after the hello.
// ---------------------------------------------------------------------------

/// `n` bytes from a fixed xorshift sequence seeded with `seed`.
fn garbage(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Sends a bincode request payload and reads the answer as the client would.
async fn bincode_round_trip(
    stream: &mut Tls,
    payload: &[u8],
) -> (u64, Result<Vec<u8>, (i32, String)>) {
    write_raw(stream, &frame(payload)).await;
    read_bincode_response(&expect_frame(stream, "a bincode answer").await)
}

#[tokio::test]
async fn over_tls_random_garbage_gets_one_error_answer_per_frame_and_the_session_keeps_serving() {
    let setup = Setup::new();
    let limits = Limits {
        max_invalid_messages: u32::MAX,
        ..Limits::default()
    };
    let server = TlsProbe::start(config(&setup, limits, 16 << 20)).await;
    let mut json = tls_session(&setup, &server.address, "json", 1 << 20).await;
    let mut bincode = tls_session(&setup, &server.address, "bincode", 1 << 20).await;
    for seed in 0..200u64 {
        let bytes = garbage(seed, 1 + (seed as usize * 7) % 700);
        let answer = json_round_trip(&mut json, &String::from_utf8_lossy(&bytes)).await;
        assert_eq!(answer["id"], Value::Null, "seed {seed}: {answer}");
        let code = answer["error"]["code"].as_i64().unwrap_or_default() as i32;
        assert!(
            [ErrorKind::Parse.code(), ErrorKind::InvalidRequest.code()].contains(&code),
            "seed {seed}: {answer}"
        );
        let (_, outcome) = bincode_round_trip(&mut bincode, &bytes).await;
        let (code, message) = outcome.expect_err("garbage is never a good call");
        let kind = ErrorKind::from_code(code);
        assert!(
            matches!(
                kind,
                ErrorKind::Parse | ErrorKind::InvalidRequest | ErrorKind::MethodNotFound
            ),
            "seed {seed}: {kind:?}: {message}"
        );
    }
    assert_eq!(server.state.entered.load(Ordering::SeqCst), 0);
    let answer = json_round_trip(&mut json, ADD).await;
    assert_eq!(answer, json!({"jsonrpc": "2.0", "id": 1, "result": 5}));
    let request = bincode_request(77, "Probe.add", None, &(2i64, 3i64));
    let answered = bincode_round_trip(&mut bincode, &request).await;
    assert_eq!(answered, (77, Ok(bincode_value(&5i64))));
    server.assert_still_serves(&setup).await;
}

#[tokio::test]
async fn over_tls_malformed_json_requests_are_invalid_requests_and_the_session_keeps_serving() {
    let setup = Setup::new();
    let server = TlsProbe::start(config(&setup, Limits::default(), 16 << 20)).await;
    let mut stream = tls_session(&setup, &server.address, "json", 1 << 20).await;
    for (request, id, needle) in [
        (
            r#"{"jsonrpc":"2.0","id":[1],"method":"Probe.add","params":[2,3]}"#,
            Value::Null,
            "`id` must be",
        ),
        (
            r#"{"jsonrpc":"2.0","id":-1,"method":"Probe.add","params":[2,3]}"#,
            Value::Null,
            "`id` must be",
        ),
        (
            r#"{"jsonrpc":"2.0","id":7,"method":5,"params":[2,3]}"#,
            json!(7),
            "not a JSON-RPC request",
        ),
        (
            r#"{"jsonrpc":2,"id":9,"method":"Probe.add"}"#,
            json!(9),
            "not a JSON-RPC request",
        ),
    ] {
        let answer = json_round_trip(&mut stream, request).await;
        assert_eq!(answer["id"], id, "{answer}");
        let code = ErrorKind::InvalidRequest.code();
        assert_eq!(answer["error"]["code"], code, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "expected {needle:?} in {answer}");
    }
    let answer = json_round_trip(&mut stream, "{not json").await;
    assert_eq!(answer["error"]["code"], ErrorKind::Parse.code(), "{answer}");
    assert_eq!(server.state.entered.load(Ordering::SeqCst), 0);
    let answer = json_round_trip(&mut stream, ADD).await;
    assert_eq!(answer, json!({"jsonrpc": "2.0", "id": 1, "result": 5}));
    server.assert_still_serves(&setup).await;
}

// ---------------------------------------------------------------------------
// Floods whose replies are never read.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn over_tls_a_client_that_reads_no_replies_makes_the_server_hold_at_most_max_queued_reply_bytes()
 {
    let setup = Setup::new();
    let limits = Limits {
        max_queued_reply_bytes: 2 << 20,
        ..Limits::default()
    };
    let server = TlsProbe::start(config(&setup, limits, 16 << 20)).await;
    let mut stream = tls_session(&setup, &server.address, "json", 16 << 20).await;
    // 100 calls in one write, each answered at once with 512 KiB (about
    // 1.8 MiB as JSON): 180 MiB of replies for a client that reads none.
    let mut requests = Vec::new();
    for id in 1..=100 {
        let call =
            json!({"jsonrpc": "2.0", "id": id, "method": "Probe.blob", "params": [512 * 1024, 0]});
        requests.extend(frame(call.to_string().as_bytes()));
    }
    let _alone = SERIAL.lock().await;
    let before = resident_bytes();
    write_raw(&mut stream, &requests).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Another client is served while the flood's replies sit unread.
    server.assert_still_serves(&setup).await;
    let ran = server.state.entered.load(Ordering::SeqCst) - 2;
    let grown = resident_bytes().saturating_sub(before);
    assert!(
        ran < 15,
        "{ran} calls ran for a client that reads no replies"
    );
    assert!(grown < 32 << 20, "the process grew by {grown} bytes");
    drop(stream);
    server.wait_open(0).await;
}

#[tokio::test]
async fn over_tls_a_flood_of_slow_calls_never_read_is_held_to_max_in_flight_and_others_are_served()
{
    let setup = Setup::new();
    let limits = Limits {
        max_in_flight: 64,
        ..Limits::default()
    };
    let server = TlsProbe::start(config(&setup, limits, 16 << 20)).await;
    let mut stream = tls_session(&setup, &server.address, "bincode", 1 << 20).await;
    let _alone = SERIAL.lock().await;
    let before = resident_bytes();
    // Slow calls (16 KiB each after 200 ms): without max_in_flight the
    // server would read all 8000 and queue 125 MiB for a client that reads none.
    // Each with its own id: a reused id is refused, not run.
    let flood: Vec<u8> = (1..=8_000u64)
        .flat_map(|id| {
            frame(&bincode_request(
                id,
                "Probe.blob",
                None,
                &(16_384u64, 200u64),
            ))
        })
        .collect();
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.write_all(&flood)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.assert_still_serves(&setup).await;
    let grown = resident_bytes().saturating_sub(before);
    let taken = server.state.entered.load(Ordering::SeqCst);
    let peak = server.state.peak_in_flight.load(Ordering::SeqCst);
    assert!(
        grown < 64 << 20,
        "the server grew by {} MiB, taking {taken} calls whose answers go unread",
        grown >> 20
    );
    // The flood's 64, and a typed client's call beside them.
    assert!(peak <= 64 + 1, "{peak} calls ran at once");
    assert!(
        peak >= 32,
        "the flood never filled max_in_flight: {peak} at most"
    );
    assert!(taken < 8_000, "the server took all {taken} calls");
    drop(stream);
    server.wait_open(0).await;
}

// ---------------------------------------------------------------------------
// A peer that stops reading.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn over_tls_a_peer_that_stops_reading_is_closed_at_write_timeout() {
    let setup = Setup::new();
    let limits = Limits {
        write_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let server = TlsProbe::start(config(&setup, limits, 64 << 20)).await;
    let mut stream = tls_session(&setup, &server.address, "bincode", 64 << 20).await;
    let port = local_port(&stream);
    // Its 24 MiB reply would upset the tests that measure memory.
    let _alone = SERIAL.lock().await;
    // One 24 MiB reply, more than the sockets' and TLS buffers hold, never read.
    let request = bincode_request(1, "Probe.blob", None, &(24u64 << 20, 0u64));
    write_raw(&mut stream, &frame(&request)).await;
    let line = Lines::get().wait_for(port, "connection ended").await;
    assert!(line.contains("write_timeout_ms"), "{line}");
    assert!(line.contains("65536 bytes"), "{line}");
    // What was in flight drains, then the close: never the whole reply.
    let seen = expect_closed_within(&mut stream, WAIT).await;
    assert!(seen.len() < 24 << 20, "{} bytes arrived", seen.len());
    server.wait_open(0).await;
    server.assert_still_serves(&setup).await;
}

// ---------------------------------------------------------------------------
// Closes mid-call.
// ---------------------------------------------------------------------------

/// A bincode session with `n` `hold` calls running on the server.
async fn session_holding(setup: &Setup, server: &TlsProbe, n: u64) -> Tls {
    let mut stream = tls_session(setup, &server.address, "bincode", 1 << 20).await;
    let calls: Vec<u8> = (1..=n)
        .flat_map(|id| frame(&bincode_request(id, "Probe.hold", None, &(id,))))
        .collect();
    write_raw(&mut stream, &calls).await;
    server.state.wait_entered(n).await;
    stream
}

#[tokio::test]
async fn over_tls_a_close_notify_mid_call_cancels_its_handlers_and_others_are_served() {
    let setup = Setup::new();
    let server = TlsProbe::start(config(&setup, Limits::default(), 16 << 20)).await;
    let mut stream = session_holding(&setup, &server, 10).await;
    let port = local_port(&stream);
    // close_notify, then our FIN: a clean end of the session.
    within("close_notify to be sent", stream.shutdown())
        .await
        .expect("sending close_notify");
    server.state.wait_cancelled(10).await;
    assert_eq!(server.state.in_flight.load(Ordering::SeqCst), 0);
    let seen = expect_closed(&mut stream).await;
    assert!(seen.is_empty(), "no answer to a cancelled call: {seen:?}");
    let line = Lines::get().wait_for(port, "connection closed").await;
    assert!(line.contains("tls=true"), "{line}");
    server.wait_open(0).await;
    server.assert_still_serves(&setup).await;
}

#[tokio::test]
async fn over_tls_a_reset_mid_call_cancels_its_handlers_and_others_are_served() {
    let setup = Setup::new();
    let server = TlsProbe::start(config(&setup, Limits::default(), 16 << 20)).await;
    let stream = session_holding(&setup, &server, 10).await;
    let port = local_port(&stream);
    // SO_LINGER 0: closing sends a TCP reset, with no close_notify first.
    let (tcp, _) = stream.into_inner();
    tcp.set_zero_linger().expect("SO_LINGER 0");
    drop(tcp);
    server.state.wait_cancelled(10).await;
    assert_eq!(server.state.in_flight.load(Ordering::SeqCst), 0);
    // A reset is a peer going away, as in plaintext: a quiet end.
    let line = Lines::get().wait_for(port, "connection closed").await;
    assert!(line.contains("tls=true"), "{line}");
    server.wait_open(0).await;
    server.assert_still_serves(&setup).await;
}

#[tokio::test]
async fn over_tls_a_close_without_close_notify_mid_call_cancels_its_handlers_and_ends_quietly() {
    let setup = Setup::new();
    let server = TlsProbe::start(config(&setup, Limits::default(), 16 << 20)).await;
    let stream = session_holding(&setup, &server, 10).await;
    let port = local_port(&stream);
    // A FIN under the TLS session, no close_notify: a truncated session.
    let (mut tcp, _) = stream.into_inner();
    within("our FIN", tcp.shutdown()).await.expect("a FIN");
    server.state.wait_cancelled(10).await;
    assert_eq!(server.state.in_flight.load(Ordering::SeqCst), 0);
    // Between frames nothing is lost (frames delimit themselves): the same
    // quiet end as a plaintext close, not a warning per departed client.
    let line = Lines::get().wait_for(port, "connection closed").await;
    assert!(line.contains("tls=true"), "{line}");
    server.wait_open(0).await;
    server.assert_still_serves(&setup).await;
}

/// Tells a caller the port it called from, as the server sees it.
#[rpc_core::rpc_service]
trait Port {
    /// The caller's port.
    async fn port(&self) -> u16;
}

struct PortImpl;

impl Port for PortImpl {
    async fn port(&self) -> u16 {
        let peer = rpc_core::Context::current().and_then(|c| c.peer());
        peer.expect("a TCP caller has a peer address").port()
    }
}

/// Serves [`Port`] with `server`; a typed client in each codec, built by
/// `client` for the address, calls once and goes away: its connection must
/// end quietly ("connection closed"), not as a failure.
async fn assert_a_client_going_away_is_quiet(
    server: ServerConfig,
    client: impl Fn(&str, &str) -> rpc_transport::ClientConfig,
) {
    Lines::get();
    let registry = rpc_core::Registry::new()
        .with(PortServer::new(PortImpl))
        .expect("the port service registers");
    let listening = within("the server to bind", Server::new(server, registry).bind())
        .await
        .expect("the server binds");
    let address = listening.local_addr().to_owned();
    let _serving = TaskGuard(tokio::spawn(listening.serve()));
    for codec in CODECS {
        let config = client(&address, codec);
        let connected = within("a client to connect", rpc_transport::connect(&config)).await;
        let caller = PortClient::new(connected.expect("a client gets in"));
        let port = within("port", caller.port()).await.expect("a port");
        drop(caller);
        let line = Lines::get().wait_for(port, "listening: connection").await;
        assert!(
            line.contains("connection closed"),
            "{codec}: a client that went away is not a failure: {line}"
        );
    }
}

#[tokio::test]
async fn in_plaintext_a_typed_client_that_goes_away_is_a_quiet_end() {
    let server = common::server_builder().build().unwrap();
    let client =
        |address: &str, codec: &str| common::client_builder(address, codec).build().unwrap();
    assert_a_client_going_away_is_quiet(server, client).await;
}

#[tokio::test]
async fn over_tls_a_typed_client_that_goes_away_is_a_quiet_end_as_in_plaintext() {
    let setup = Setup::new();
    let server = config(&setup, Limits::default(), 16 << 20);
    let client = |address: &str, codec: &str| setup.client(address, codec).build().unwrap();
    assert_a_client_going_away_is_quiet(server, client).await;
}

/// Serves the probe with `server` (an idle timeout of 300 ms); a typed
/// client in each codec, built by `client`, waits until the server closed
/// its idle connection: a call then fails saying the server closed it.
async fn assert_an_idle_close_is_reported_as_such(
    server: ServerConfig,
    client: impl Fn(&str, &str) -> rpc_transport::ClientConfig,
) {
    let server = TlsProbe::start(server).await;
    for codec in CODECS {
        let config = client(&server.address, codec);
        let connected = within("a client to connect", rpc_transport::connect(&config)).await;
        let connected = connected.expect("a client gets in");
        within(
            "the server to close the idle connection",
            connected.closed(),
        )
        .await;
        let e = within("a call", ProbeClient::new(connected).add(1, 2))
            .await
            .expect_err("the connection is closed");
        assert_eq!(e.kind(), ErrorKind::ConnectionLost, "{codec}: {e}");
        assert!(
            e.to_string().contains("the server closed the connection"),
            "{codec}: {e}"
        );
    }
}

/// `builder` with an idle timeout of 300 ms.
fn idle(builder: rpc_transport::config::ServerConfigBuilder) -> ServerConfig {
    let limits = Limits {
        idle_timeout: Some(Duration::from_millis(300)),
        ..Limits::default()
    };
    builder.limits(limits).build().unwrap()
}

#[tokio::test]
async fn in_plaintext_an_idle_close_is_reported_as_the_server_closing() {
    let client =
        |address: &str, codec: &str| common::client_builder(address, codec).build().unwrap();
    assert_an_idle_close_is_reported_as_such(idle(common::server_builder()), client).await;
}

#[tokio::test]
async fn over_tls_an_idle_close_is_reported_as_the_server_closing() {
    let setup = Setup::new();
    let client = |address: &str, codec: &str| setup.client(address, codec).build().unwrap();
    assert_an_idle_close_is_reported_as_such(idle(setup.server()), client).await;
}
