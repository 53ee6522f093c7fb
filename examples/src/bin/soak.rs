//! Soak: many clients make mixed calls against one server for a bounded time,
//! dropping calls, missing deadlines and disconnecting at random; at the end
//! every call must be accounted for and the server back at its baseline.
//!
//! ```text
//! cargo run --release -p examples --bin soak -- --duration-s 30 --clients 32
//! ```
//!
//! Each call ends in exactly one outcome, checked against what was asked
//! (`add` must return the sum, `fail` its typed error, `boom` a panic error,
//! a deadline shorter than `sleep` a timeout). The report is one JSON object
//! on stdout; the exit status is 1 if any call was lost, answered wrongly, or
//! the server's connections, calls in flight, tasks or memory did not come
//! back down.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use clap::Parser;
use rpc_core::{CallError, ErrorKind, Registry};
use rpc_transport::{ClientConfig, Server, ServerConfig};
use serde::{Deserialize, Serialize};

#[rpc_core::rpc_service]
trait Soak {
    /// `x + y`.
    async fn add(&self, x: u64, y: u64) -> u64;
    /// Sleeps `ms` milliseconds, then returns it.
    async fn sleep(&self, ms: u64) -> u64;
    /// Always fails with `Odd(n)`.
    async fn fail(&self, n: u64) -> Result<u64, SoakError>;
    /// Panics.
    async fn boom(&self) -> u64;
}

/// The typed error of `fail`.
#[derive(Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
enum SoakError {
    #[error("odd {0}")]
    Odd(u64),
}

struct SoakImpl;

impl Soak for SoakImpl {
    async fn add(&self, x: u64, y: u64) -> u64 {
        x.wrapping_add(y)
    }
    async fn sleep(&self, ms: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    }
    async fn fail(&self, n: u64) -> Result<u64, SoakError> {
        Err(SoakError::Odd(n))
    }
    async fn boom(&self) -> u64 {
        panic!("soak boom")
    }
}

#[derive(Debug, Parser)]
struct Args {
    /// How long the clients run.
    #[arg(long, default_value_t = 10)]
    duration_s: u64,
    /// Clients running at once; each reconnects after it drops its connection.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Calls each client keeps in flight.
    #[arg(long, default_value_t = 8)]
    in_flight: usize,
}

/// Every outcome, counted once per call.
#[derive(Default, Debug)]
struct Tally {
    started: AtomicU64,
    ok: AtomicU64,
    app_error: AtomicU64,
    panic_error: AtomicU64,
    timeout: AtomicU64,
    dropped: AtomicU64,
    connection_lost: AtomicU64,
    wrong: AtomicU64,
}

impl Tally {
    fn ended(&self) -> u64 {
        [
            &self.ok,
            &self.app_error,
            &self.panic_error,
            &self.timeout,
            &self.dropped,
            &self.connection_lost,
            &self.wrong,
        ]
        .iter()
        .map(|c| c.load(Relaxed))
        .sum()
    }
}

/// A small xorshift generator: the soak needs variety, not quality.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let mut seed = [0u8; 8];
        let _ = getrandom::fill(&mut seed);
        Rng(u64::from_le_bytes(seed) | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

const AUTHKEY: &str = "soak";

#[tokio::main]
async fn main() {
    let args = Args::parse();
    // `boom` panics on purpose, thousands of times: keep those quiet.
    let report_panic = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&"soak boom") {
            report_panic(info);
        }
    }));
    let config = ServerConfig::builder()
        .no_env()
        .listen("127.0.0.1:0")
        .authkey(AUTHKEY)
        .build()
        .expect("a valid server config");
    let registry = Registry::new()
        .with(SoakServer::new(SoakImpl))
        .expect("registers");
    let listening = Server::new(config, registry)
        .bind()
        .await
        .expect("binds 127.0.0.1:0");
    let server = listening.server().clone();
    let address = listening.local_addr().to_owned();
    let serving = tokio::spawn(listening.serve());
    let runtime = tokio::runtime::Handle::current().metrics();
    let base_tasks = runtime.num_alive_tasks();
    let base_rss = rss_kib();

    let tally = Arc::new(Tally::default());
    let until = Instant::now() + Duration::from_secs(args.duration_s);
    let clients: Vec<_> = (0..args.clients)
        .map(|i| {
            let codec = ["bincode", "json"][i % 2];
            let client = ClientConfig::builder()
                .no_env()
                .connect(&address)
                .authkey(AUTHKEY)
                .codec(codec)
                .call_timeout(Duration::from_secs(5))
                .build()
                .expect("a valid client config");
            tokio::spawn(run_client(client, args.in_flight, until, tally.clone()))
        })
        .collect();
    for client in clients {
        client.await.expect("a client task does not panic");
    }
    let peak_rss = rss_kib();

    // Every client is gone: the server must come back to its baseline.
    let metrics = server.metrics().clone();
    let settled = tokio::time::timeout(Duration::from_secs(10), async {
        while metrics.connections_open(rpc_transport::metrics::Transport::Tcp) > 0
            || metrics.calls_in_flight() > 0
            || runtime.num_alive_tasks() > base_tasks
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .is_ok();
    let end_rss = rss_kib();
    let end_tasks = runtime.num_alive_tasks();
    serving.abort();

    let started = tally.started.load(Relaxed);
    let ended = tally.ended();
    let report = serde_json::json!({
        "duration_s": args.duration_s,
        "clients": args.clients,
        "calls": started,
        "accounted": ended,
        "ok": tally.ok.load(Relaxed),
        "app_error": tally.app_error.load(Relaxed),
        "panic_error": tally.panic_error.load(Relaxed),
        "timeout": tally.timeout.load(Relaxed),
        "dropped_by_caller": tally.dropped.load(Relaxed),
        "connection_lost": tally.connection_lost.load(Relaxed),
        "wrong": tally.wrong.load(Relaxed),
        "server_settled": settled,
        "connections_open_end": metrics.connections_open(rpc_transport::metrics::Transport::Tcp),
        "calls_in_flight_end": metrics.calls_in_flight(),
        "tasks_start": base_tasks,
        "tasks_end": end_tasks,
        "rss_kib_start": base_rss,
        "rss_kib_peak": peak_rss,
        "rss_kib_end": end_rss,
    });
    println!("{report}");
    let healthy = started == ended && tally.wrong.load(Relaxed) == 0 && settled;
    if !healthy {
        eprintln!("soak failed: calls lost or answered wrongly, or the server did not settle");
        std::process::exit(1);
    }
}

/// Connects, keeps `in_flight` calls going, and now and then drops the
/// connection with calls in flight, until `until`.
async fn run_client(config: ClientConfig, in_flight: usize, until: Instant, tally: Arc<Tally>) {
    let mut rng = Rng::new();
    while Instant::now() < until {
        let Ok(client) = rpc_transport::connect(&config).await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let client = SoakClient::new(client);
        // This connection lives for a random number of rounds.
        let rounds = 1 + rng.below(50);
        for _ in 0..rounds {
            if Instant::now() >= until {
                break;
            }
            let calls: Vec<_> = (0..in_flight)
                .map(|_| one_call(client.clone(), rng.below(1 << 20), tally.clone()))
                .collect();
            if rng.below(20) == 0 {
                // Disconnect mid-call: whatever is in flight is dropped.
                let all = futures_join(calls);
                let _ = tokio::time::timeout(Duration::from_millis(rng.below(5)), all).await;
                break;
            }
            futures_join(calls).await;
        }
    }
}

async fn futures_join(calls: Vec<impl std::future::Future<Output = ()>>) {
    futures::future::join_all(calls).await;
}

/// One random call, its outcome checked and counted exactly once — also
/// when the future is dropped before it ends.
async fn one_call(client: SoakClient, r: u64, tally: Arc<Tally>) {
    tally.started.fetch_add(1, Relaxed);
    let mut guard = Outcome {
        tally: tally.clone(),
        counted: false,
    };
    let counter = match r % 8 {
        0..=3 => {
            let (x, y) = (r, r >> 3);
            match client.add(x, y).await {
                Ok(sum) if sum == x + y => &tally.ok,
                Ok(_) => &tally.wrong,
                Err(e) => classify(&tally, e.kind()),
            }
        }
        4 => match client.fail(r).await {
            Err(CallError::Application(SoakError::Odd(n))) if n == r => &tally.app_error,
            Err(CallError::Rpc(e)) => classify(&tally, e.kind()),
            _ => &tally.wrong,
        },
        5 => match client.boom().await {
            Err(e) if e.kind() == ErrorKind::HandlerPanic => &tally.panic_error,
            Err(e) => classify(&tally, e.kind()),
            Ok(_) => &tally.wrong,
        },
        _ => {
            // A deadline that some sleeps miss.
            let ms = r % 40;
            let timed = client.with_timeout(Duration::from_millis(20));
            match timed.sleep(ms).await {
                Ok(n) if n == ms => &tally.ok,
                Ok(_) => &tally.wrong,
                Err(e) => classify(&tally, e.kind()),
            }
        }
    };
    counter.fetch_add(1, Relaxed);
    guard.counted = true;
}

fn classify(tally: &Tally, kind: ErrorKind) -> &AtomicU64 {
    match kind {
        ErrorKind::Timeout => &tally.timeout,
        ErrorKind::ConnectionLost | ErrorKind::ShuttingDown => &tally.connection_lost,
        _ => &tally.wrong,
    }
}

/// Counts a call dropped by its caller before it ended.
struct Outcome {
    tally: Arc<Tally>,
    counted: bool,
}

impl Drop for Outcome {
    fn drop(&mut self) {
        if !self.counted {
            self.tally.dropped.fetch_add(1, Relaxed);
        }
    }
}

/// The process's resident memory, in KiB (0 where `/proc` is missing).
fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4
}
