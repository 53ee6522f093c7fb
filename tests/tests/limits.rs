//! The server's limits, cancellation, graceful shutdown and the client's
//! reconnect, each checked just below, at and just above its limit, against
//! a real listener on `127.0.0.1:0`. Assertions read the server's own
//! counters (`Server::metrics`) rather than process memory.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::*;
use rpc_core::{ErrorKind, Registry};
use rpc_transport::config::{Limits, Reconnect};
use rpc_transport::metrics::{Refused, Transport};
use rpc_transport::{Server, ServerConfig};
use tokio::sync::{Notify, Semaphore, oneshot};
use tokio::task::JoinHandle;

#[rpc_core::rpc_service]
trait Gate {
    /// Waits for a permit, then returns 7.
    async fn hold(&self) -> u64;

    /// Returns `n` at once.
    async fn fast(&self, n: u64) -> u64;

    /// Never returns.
    async fn never(&self) -> u64;

    /// Returns its argument's length.
    async fn measure(&self, text: String) -> u64;

    /// Returns `n` bytes of text.
    async fn text(&self, n: u64) -> String;
}

/// Counts handlers entered and handlers dropped before finishing.
#[derive(Clone)]
struct GateImpl {
    permits: Arc<Semaphore>,
    entered: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
    changed: Arc<Notify>,
}

impl Default for GateImpl {
    fn default() -> GateImpl {
        GateImpl {
            permits: Arc::new(Semaphore::new(0)),
            entered: Arc::default(),
            dropped: Arc::default(),
            changed: Arc::default(),
        }
    }
}

/// Counts a handler dropped before it finished.
struct DropWatch(GateImpl, bool);

impl Drop for DropWatch {
    fn drop(&mut self) {
        if !self.1 {
            self.0.dropped.fetch_add(1, Ordering::SeqCst);
            self.0.changed.notify_waiters();
        }
    }
}

impl Gate for GateImpl {
    async fn hold(&self) -> u64 {
        let mut watch = DropWatch(self.clone(), false);
        self.entered.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_waiters();
        self.permits.acquire().await.expect("open").forget();
        watch.1 = true;
        7
    }

    async fn fast(&self, n: u64) -> u64 {
        n
    }

    async fn measure(&self, text: String) -> u64 {
        text.len() as u64
    }

    async fn text(&self, n: u64) -> String {
        "x".repeat(n as usize)
    }

    async fn never(&self) -> u64 {
        let _watch = DropWatch(self.clone(), false);
        self.entered.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_waiters();
        std::future::pending().await
    }
}

impl GateImpl {
    /// Waits until `counter` reaches `n`.
    async fn wait_for(&self, what: &str, counter: &AtomicU64, n: u64) {
        within(what, async {
            loop {
                let changed = self.changed.notified();
                if counter.load(Ordering::SeqCst) >= n {
                    return;
                }
                tokio::select! {
                    () = changed => {}
                    () = tokio::time::sleep(Duration::from_millis(20)) => {}
                }
            }
        })
        .await;
    }
}

/// A server on `127.0.0.1:0` with `limits`, and the way to shut it down.
struct Running {
    server: Server,
    address: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Running {
    async fn start(limits: Limits, gate: &GateImpl) -> Running {
        let config = server_builder().limits(limits).build().expect("valid");
        Running::on(config, gate).await
    }

    async fn on(config: ServerConfig, gate: &GateImpl) -> Running {
        let registry = Registry::new()
            .with(GateServer::new(gate.clone()))
            .expect("registers");
        let server = Server::new(config, registry);
        let listening = within("bind", server.clone().bind()).await.expect("binds");
        let address = listening.local_addr().to_owned();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(listening.serve_until(async {
            let _ = stopped.await;
        }));
        Running {
            server,
            address,
            stop: Some(stop),
            task,
        }
    }

    /// Signals shutdown; the serving task ends once connections drain.
    fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    async fn stopped(mut self) {
        self.shut_down();
        within("the server to finish shutting down", &mut self.task)
            .await
            .expect("serve_until returns");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn gate_client(address: &str, codec: &str) -> GateClient {
    GateClient::new(connect(address, codec).await)
}

/// Waits until `done()` holds, checking every 10 ms.
async fn until(what: &str, done: impl Fn() -> bool) {
    within(what, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(150)).await;
}

#[tokio::test]
async fn reading_pauses_at_max_in_flight_and_resumes_when_a_call_ends() {
    let gate = GateImpl::default();
    let limits = Limits {
        max_in_flight: 2,
        ..Limits::default()
    };
    let running = Running::start(limits, &gate).await;
    let metrics = running.server.metrics().clone();
    for codec in CODECS {
        let entered = gate.entered.load(Ordering::SeqCst);
        let client = gate_client(&running.address, codec).await;
        // Below the limit: one call held, another still answered.
        let first = tokio::spawn({
            let client = client.clone();
            async move { client.hold().await }
        });
        gate.wait_for("the first hold", &gate.entered, entered + 1)
            .await;
        assert_eq!(within("fast", client.fast(1)).await.unwrap(), 1, "{codec}");
        // At the limit: nothing more is read from this connection.
        let second = tokio::spawn({
            let client = client.clone();
            async move { client.hold().await }
        });
        gate.wait_for("the second hold", &gate.entered, entered + 2)
            .await;
        assert_eq!(metrics.calls_in_flight(), 2, "{codec}");
        let blocked = tokio::spawn({
            let client = client.clone();
            async move { client.fast(2).await }
        });
        settle().await;
        assert!(
            !blocked.is_finished(),
            "{codec}: a call past the limit was read"
        );
        // Another connection is not held back.
        let other = gate_client(&running.address, codec).await;
        assert_eq!(within("other", other.fast(3)).await.unwrap(), 3, "{codec}");
        gate.permits.add_permits(1);
        assert_eq!(within("blocked call", blocked).await.unwrap().unwrap(), 2);
        gate.permits.add_permits(1);
        assert_eq!(within("first", first).await.unwrap().unwrap(), 7);
        assert_eq!(within("second", second).await.unwrap().unwrap(), 7);
    }
    assert_eq!(metrics.calls_in_flight(), 0);
}

#[tokio::test]
async fn a_batch_at_max_batch_runs_and_one_over_it_gets_one_error() {
    let gate = GateImpl::default();
    let limits = Limits {
        max_batch: 3,
        ..Limits::default()
    };
    let running = Running::start(limits, &gate).await;
    let mut stream = raw_json_session(&running.address).await;
    let call =
        |id: u32| format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"fast","params":[{id}]}}"#);
    let batch = |n: u32| format!("[{}]", (1..=n).map(call).collect::<Vec<_>>().join(","));
    for n in [2, 3] {
        write_frame(&mut stream, batch(n).as_bytes()).await;
        let answer = expect_json(&mut stream, "a batch answer").await;
        assert_eq!(
            answer.as_array().map(Vec::len),
            Some(n as usize),
            "{answer}"
        );
    }
    write_frame(&mut stream, batch(4).as_bytes()).await;
    let answer = expect_json(&mut stream, "the refusal").await;
    assert_eq!(answer["error"]["code"], -32600, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("a batch of more than 3 calls exceeds the limit of 3"),
        "{message}"
    );
    // The connection is still usable.
    write_frame(&mut stream, call(9).as_bytes()).await;
    assert_eq!(expect_json(&mut stream, "an answer").await["result"], 9);
}

#[tokio::test]
async fn invalid_messages_are_answered_until_the_limit_closes_the_connection() {
    let gate = GateImpl::default();
    let limits = Limits {
        max_invalid_messages: 3,
        ..Limits::default()
    };
    let running = Running::start(limits, &gate).await;
    let mut stream = raw_json_session(&running.address).await;
    for _ in 0..2 {
        write_frame(&mut stream, b"").await;
        let answer = expect_json(&mut stream, "a parse error").await;
        assert_eq!(answer["error"]["code"], -32700, "{answer}");
    }
    let call = br#"{"jsonrpc":"2.0","id":1,"method":"fast","params":[5]}"#;
    write_frame(&mut stream, call).await;
    assert_eq!(expect_json(&mut stream, "an answer").await["result"], 5);
    write_frame(&mut stream, b"{not json").await;
    let answer = expect_json(&mut stream, "the last parse error").await;
    assert_eq!(answer["error"]["code"], -32700, "{answer}");
    expect_closed(&mut stream).await;
    // Others are served.
    let client = gate_client(&running.address, "bincode").await;
    assert_eq!(within("fast", client.fast(1)).await.unwrap(), 1);
}

#[tokio::test]
async fn a_flood_of_empty_frames_is_cut_off_by_the_invalid_message_limit() {
    let gate = GateImpl::default();
    let running = Running::start(Limits::default(), &gate).await;
    let mut stream = raw_json_session(&running.address).await;
    let flood: Vec<u8> = std::iter::repeat_n([0u8; 4], 100_000).flatten().collect();
    // The server may close before reading it all; that is the point.
    let _ = tokio::io::AsyncWriteExt::write_all(&mut stream, &flood).await;
    let answers = expect_closed(&mut stream).await;
    let limit = Limits::default().max_invalid_messages as usize;
    let frames = answers
        .windows(8)
        .filter(|w| w.starts_with(b"{\"jsonrpc"))
        .count();
    assert!(frames <= limit, "{frames} answers for a limit of {limit}");
}

#[tokio::test]
async fn an_idle_connection_is_closed_and_a_busy_one_is_not() {
    let gate = GateImpl::default();
    let limits = Limits {
        idle_timeout: Some(Duration::from_millis(300)),
        ..Limits::default()
    };
    let running = Running::start(limits, &gate).await;
    let mut idle = raw_json_session(&running.address).await;
    let busy = gate_client(&running.address, "json").await;
    let held = tokio::spawn({
        let busy = busy.clone();
        async move { busy.hold().await }
    });
    gate.wait_for("the hold", &gate.entered, 1).await;
    let started = std::time::Instant::now();
    expect_closed(&mut idle).await;
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A connection with a call running is not idle.
    gate.permits.add_permits(1);
    assert_eq!(within("held", held).await.unwrap().unwrap(), 7);
    assert_eq!(within("fast", busy.fast(4)).await.unwrap(), 4);
}

#[tokio::test]
async fn connections_past_max_connections_are_refused_and_the_others_unaffected() {
    let gate = GateImpl::default();
    let limits = Limits {
        max_connections: 2,
        ..Limits::default()
    };
    let running = Running::start(limits, &gate).await;
    let metrics = running.server.metrics().clone();
    let first = gate_client(&running.address, "bincode").await;
    let second = gate_client(&running.address, "json").await;
    let config = client_builder(&running.address, "bincode").build().unwrap();
    let third = within("the third connect", rpc_transport::connect(&config)).await;
    let error = third.expect_err("a third connection is refused");
    // Closed before the challenge: the client names what that can mean
    // (a TLS server, or one that shed it under load); the server logs which.
    assert!(
        error
            .to_string()
            .contains("closed the connection without a challenge")
            && error.to_string().contains("shed the connection under load"),
        "{error}"
    );
    assert_eq!(metrics.refused_count(Refused::MaxConnections), 1);
    assert_eq!(within("first", first.fast(1)).await.unwrap(), 1);
    assert_eq!(within("second", second.fast(2)).await.unwrap(), 2);
    drop(first);
    until("the first connection to close", || {
        metrics.connections_open(Transport::Tcp) <= 1
    })
    .await;
    let again = gate_client(&running.address, "bincode").await;
    assert_eq!(within("again", again.fast(3)).await.unwrap(), 3);
}

#[tokio::test]
async fn the_oldest_pending_handshake_makes_way_for_a_new_connection() {
    let gate = GateImpl::default();
    let limits = Limits {
        max_pending_handshakes: 2,
        ..Limits::default()
    };
    let config = server_builder()
        .limits(limits)
        .handshake_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let running = Running::on(config, &gate).await;
    let metrics = running.server.metrics().clone();
    let mut silent = Vec::new();
    for _ in 0..2 {
        let mut stream = raw_connect(&running.address).await;
        expect_frame(&mut stream, "the challenge").await;
        silent.push(stream);
    }
    assert_eq!(metrics.handshakes_pending(), 2);
    // A real client still gets in, at the oldest silent peer's expense.
    let client = gate_client(&running.address, "bincode").await;
    assert_eq!(within("fast", client.fast(1)).await.unwrap(), 1);
    expect_closed(&mut silent[0]).await;
    assert_eq!(metrics.refused_count(Refused::HandshakeShed), 1);
    // Counted once, as shed, not also as a failed handshake.
    until("the shed connection's task to end", || {
        metrics.connections_open(Transport::Tcp) == 2
    })
    .await;
    assert_eq!(metrics.refused_count(Refused::Handshake), 0);
    assert_eq!(metrics.handshakes_pending(), 1);
}

#[tokio::test]
async fn a_call_its_caller_dropped_is_cancelled_on_the_server() {
    for codec in CODECS {
        let gate = GateImpl::default();
        let running = Running::start(Limits::default(), &gate).await;
        let metrics = running.server.metrics().clone();
        let client = gate_client(&running.address, codec).await;
        let call = client.hold();
        let gave_up = tokio::time::timeout(Duration::from_millis(200), call).await;
        assert!(gave_up.is_err(), "{codec}: the hold returned");
        gate.wait_for("the handler to be dropped", &gate.dropped, 1)
            .await;
        until("calls in flight to reach zero", || {
            metrics.calls_in_flight() == 0
        })
        .await;
        assert_eq!(metrics.calls(Transport::Tcp, Err(ErrorKind::Cancelled)), 1);
        assert_eq!(within("fast", client.fast(1)).await.unwrap(), 1, "{codec}");
    }
}

#[tokio::test]
async fn shutdown_lets_calls_in_flight_finish_and_refuses_new_ones() {
    for codec in CODECS {
        let gate = GateImpl::default();
        let mut running = Running::start(Limits::default(), &gate).await;
        assert!(!running.server.is_draining());
        let client = gate_client(&running.address, codec).await;
        let held = tokio::spawn({
            let client = client.clone();
            async move { client.hold().await }
        });
        gate.wait_for("the hold", &gate.entered, 1).await;
        running.shut_down();
        within("draining to start", async {
            while !running.server.is_draining() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        // The going-away notice reaches the client; a new call fails at once.
        let error = within("a call after going-away", async {
            loop {
                match client.fast(1).await {
                    Err(e) => break e,
                    Ok(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
        })
        .await;
        assert_eq!(error.kind(), ErrorKind::ShuttingDown, "{codec}: {error}");
        gate.permits.add_permits(1);
        assert_eq!(within("held", held).await.unwrap().unwrap(), 7, "{codec}");
        running.stopped().await;
    }
}

#[tokio::test]
async fn calls_still_running_after_the_grace_period_get_a_shutting_down_error() {
    for codec in CODECS {
        let gate = GateImpl::default();
        let limits = Limits {
            shutdown_grace: Duration::from_millis(200),
            ..Limits::default()
        };
        let mut running = Running::start(limits, &gate).await;
        let client = gate_client(&running.address, codec).await;
        let stuck = tokio::spawn({
            let client = client.clone();
            async move { client.never().await }
        });
        gate.wait_for("the never call", &gate.entered, 1).await;
        running.shut_down();
        let error = within("the stuck call", stuck).await.unwrap().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ShuttingDown, "{codec}: {error}");
        assert!(error.to_string().contains("shutting down"), "{error}");
        gate.wait_for("the handler to be dropped", &gate.dropped, 1)
            .await;
        running.stopped().await;
    }
}

/// Restarts a server on the same address until the port is free again.
async fn restart_on(address: &str, gate: &GateImpl) -> Running {
    let config = server_builder().listen(address).build().unwrap();
    within("the server to bind its old address", async {
        loop {
            let registry = Registry::new().with(GateServer::new(gate.clone())).unwrap();
            if let Ok(listening) = Server::new(config.clone(), registry).bind().await {
                let server = listening.server().clone();
                let (stop, stopped) = oneshot::channel();
                let task = tokio::spawn(listening.serve_until(async {
                    let _ = stopped.await;
                }));
                break Running {
                    server,
                    address: address.to_owned(),
                    stop: Some(stop),
                    task,
                };
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

/// A client that reconnects quickly; `wait`: calls wait while it is down.
async fn reconnecting_client(address: &str, codec: &str, wait: bool) -> GateClient {
    let policy = Reconnect {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        wait,
    };
    let config = client_builder(address, codec)
        .reconnect(policy)
        .build()
        .unwrap();
    GateClient::new(
        within("connect", rpc_transport::connect(&config))
            .await
            .unwrap(),
    )
}

#[tokio::test]
async fn a_reconnecting_client_fails_fast_while_down_and_recovers() {
    let gate = GateImpl::default();
    let running = Running::start(Limits::default(), &gate).await;
    let address = running.address.clone();
    let client = reconnecting_client(&address, "bincode", false).await;
    assert_eq!(within("fast", client.fast(1)).await.unwrap(), 1);
    running.stopped().await;
    let error = within("a call while down", async {
        loop {
            match client.fast(2).await {
                Err(e) if e.to_string().contains("reconnecting") => break e,
                _ => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    })
    .await;
    assert_eq!(error.kind(), ErrorKind::ConnectionLost, "{error}");
    let _again = restart_on(&address, &gate).await;
    within("the client to reconnect", async {
        while client.fast(3).await.ok() != Some(3) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_reconnecting_client_set_to_wait_holds_calls_until_it_is_back() {
    let gate = GateImpl::default();
    let running = Running::start(Limits::default(), &gate).await;
    let address = running.address.clone();
    let client = reconnecting_client(&address, "json", true).await;
    assert_eq!(within("fast", client.fast(1)).await.unwrap(), 1);
    running.stopped().await;
    // Give the client a moment to notice the connection is gone.
    settle().await;
    let waiting = tokio::spawn({
        let client = client.clone();
        async move { client.fast(4).await }
    });
    settle().await;
    assert!(
        !waiting.is_finished(),
        "the call did not wait for the connection"
    );
    let _again = restart_on(&address, &gate).await;
    assert_eq!(
        within("the waiting call", waiting).await.unwrap().unwrap(),
        4
    );
}

#[tokio::test]
async fn a_request_over_the_servers_frame_limit_fails_at_once_naming_size_and_limit() {
    let gate = GateImpl::default();
    let config = server_builder().max_frame_bytes(64 * 1024).build().unwrap();
    let running = Running::on(config, &gate).await;
    for codec in CODECS {
        let client = gate_client(&running.address, codec).await;
        // Just under the limit (the envelope takes the rest) passes.
        let fits = "y".repeat(60 * 1024);
        assert_eq!(
            within("fits", client.measure(fits)).await.unwrap(),
            60 * 1024
        );
        let error = within("too large", client.measure("y".repeat(70 * 1024)))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::FrameTooLarge, "{codec}: {error}");
        let message = error.to_string();
        assert!(message.contains("65536 bytes"), "{message}");
        assert!(
            message.contains("bytes, over the server's frame limit"),
            "{message}"
        );
        assert_eq!(within("fast", client.fast(1)).await.unwrap(), 1, "{codec}");
    }
}

#[tokio::test]
async fn a_reply_over_the_clients_frame_limit_reaches_the_caller_as_an_error() {
    let gate = GateImpl::default();
    let running = Running::start(Limits::default(), &gate).await;
    for codec in CODECS {
        let config = client_builder(&running.address, codec)
            .max_frame_bytes(64 * 1024)
            .build()
            .unwrap();
        let client = GateClient::new(
            within("connect", rpc_transport::connect(&config))
                .await
                .unwrap(),
        );
        assert_eq!(
            within("fits", client.text(60 * 1024)).await.unwrap().len(),
            60 * 1024
        );
        let error = within("too large", client.text(70 * 1024))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::FrameTooLarge, "{codec}: {error}");
        let message = error.to_string();
        assert!(
            message.contains("exceeds the client's frame limit of 65536 bytes"),
            "{message}"
        );
        assert_eq!(within("fast", client.fast(2)).await.unwrap(), 2, "{codec}");
    }
}

#[tokio::test]
async fn a_peer_that_never_reads_its_replies_is_closed_after_write_timeout() {
    let gate = GateImpl::default();
    let limits = Limits {
        write_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let running = Running::start(limits, &gate).await;
    let metrics = running.server.metrics().clone();
    let mut stream = raw_json_session(&running.address).await;
    let request = br#"{"jsonrpc":"2.0","id":1,"method":"text","params":[60000]}"#;
    let mut flood = Vec::new();
    for _ in 0..400 {
        flood.extend_from_slice(&(request.len() as u32).to_be_bytes());
        flood.extend_from_slice(request);
    }
    // Write what the server takes; it stops reading once its replies back up.
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::io::AsyncWriteExt::write_all(&mut stream, &flood),
    )
    .await;
    until("the server to close the connection", || {
        metrics.connections_open(Transport::Tcp) == 0
    })
    .await;
    let client = gate_client(&running.address, "bincode").await;
    assert_eq!(within("fast", client.fast(1)).await.unwrap(), 1);
    drop(stream);
}

#[tokio::test]
async fn members_of_a_running_batch_count_against_max_in_flight() {
    let gate = GateImpl::default();
    let limits = Limits {
        max_in_flight: 2,
        ..Limits::default()
    };
    let running = Running::start(limits, &gate).await;
    let mut stream = raw_json_session(&running.address).await;
    let hold = |id: u32| format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"hold"}}"#);
    write_frame(&mut stream, format!("[{},{}]", hold(1), hold(2)).as_bytes()).await;
    gate.wait_for("both members", &gate.entered, 2).await;
    // Two members hold both slots: the next request is not read.
    write_frame(
        &mut stream,
        br#"{"jsonrpc":"2.0","id":3,"method":"fast","params":[3]}"#,
    )
    .await;
    let early = tokio::time::timeout(Duration::from_millis(200), read_frame(&mut stream)).await;
    assert!(early.is_err(), "a request past the limit was answered");
    gate.permits.add_permits(2);
    let batch = expect_json(&mut stream, "the batch answer").await;
    assert_eq!(batch.as_array().map(Vec::len), Some(2), "{batch}");
    assert_eq!(
        expect_json(&mut stream, "the fast answer").await["result"],
        3
    );
}
