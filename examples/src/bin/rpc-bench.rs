//! `rpc-bench`: the framework end to end under `../shared/peerbench`'s
//! workload and command line, so it can be measured beside the peers:
//!
//! ```sh
//! cargo build --release -p examples --bin rpc-bench
//! target/release/rpc-bench server --addr 127.0.0.1:0 --codec bincode
//! target/release/rpc-bench client --addr HOST:PORT --scenario pipe --codec bincode --duration-s 5 --warmup-s 1
//! ../shared/peerbench/run.sh --systems-file "$PWD/peerbench.toml"
//! ```
//!
//! Codec `bincode-tls` (or `--tls` with any codec, as the harness passes it)
//! runs the same over TLS 1.3: the server writes a fresh self-signed
//! certificate for `localhost` to `$PEERBENCH_TLS_CA` (else
//! `$TMPDIR/peerbench-tls-ca.pem`) before it prints its address, and the
//! client trusts exactly that file (`examples::bench::tls`).
//!
//! Codec `http` serves the benchmark service through the HTTP gateway
//! (`examples::bench::gateway`: JSON-RPC 2.0 at `POST /rpc`, Basic password
//! `peerbench-http`), and the client calls it with hyper over one
//! keep-alive HTTP/1.1 connection per caller (connections × calls in
//! flight), `stream` over Server-Sent Events (`examples::bench::http`).
//!
//! Scenario `many` opens 2,000 connections (`--conns` overrides) before
//! the window, 64 at a time (`examples::bench::open`), each with one call
//! in flight. The process must be allowed that many descriptors (`ulimit
//! -n`, checked at start; both ends need it): the client says so and
//! stops otherwise. `examples/bench/many-rss.sh` measures the server's
//! resident memory per connection under that load.
//!
//! Every TCP connection runs the authkey handshake (key `peerbench`) and the
//! calls go through the generated `BenchClient`. The client prints one JSON
//! line: calls completed inside the measured window, calls per second,
//! latency percentiles, and MB/s (payload bytes both ways) for `payload`.
//! In `stream`, one call asks for an endless stream of u64 items; `calls`
//! is the items that arrived inside the window (the clock read once per 64
//! items, every item's counter checked), `calls_per_s` items per second,
//! and the latencies are null.
//!
//! To price the middleware, `server --layer noop` runs every call through
//! one pass-through `from_fn` layer (give it n times for n layers), and
//! `client --calls N` stops after N calls in all instead of at the end of
//! the window, so a run does a fixed amount of work whatever its speed, as
//! instruction counts under `valgrind --tool=callgrind` need
//! (`examples/bench/callgrind.sh` runs them).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use examples::bench::http::{self, HttpCaller};
use examples::bench::layer::BenchLayer;
use examples::bench::{AUTHKEY, BenchClient, MAX_FRAME_BYTES, open, tls};
use rpc_core::Bytes;
use rpc_transport::ClientConfig;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand)]
enum Role {
    /// Serves the benchmark service; prints `listening HOST:PORT` first.
    Server {
        #[arg(long, default_value = "127.0.0.1:0")]
        addr: String,
        #[arg(long, default_value = "bincode")]
        codec: String,
        /// TLS 1.3 with a fresh self-signed certificate (implied by a `-tls` codec).
        #[arg(long)]
        tls: bool,
        /// Runs every call through a server layer that does nothing
        /// (`noop`: `from_fn(|call, next| next.run(call))`), to price the
        /// middleware stack; repeat it to stack several. None by default:
        /// calls go straight to their handler.
        #[arg(long = "layer", value_enum, value_name = "KIND")]
        layers: Vec<BenchLayer>,
    },
    /// Runs one scenario and prints one JSON line.
    Client(ClientArgs),
}

#[derive(Clone, clap::Args)]
struct ClientArgs {
    #[arg(long)]
    addr: String,
    #[arg(long, value_enum)]
    scenario: Scenario,
    #[arg(long, default_value = "bincode")]
    codec: String,
    #[arg(long = "duration-s", default_value_t = 5.0)]
    duration_s: f64,
    #[arg(long = "warmup-s", default_value_t = 1.0)]
    warmup_s: f64,
    /// Connections (default: by scenario).
    #[arg(long)]
    conns: Option<usize>,
    /// Calls in flight per connection (default: by scenario).
    #[arg(long)]
    inflight: Option<usize>,
    #[arg(long = "payload-bytes", default_value_t = 1 << 20)]
    payload_bytes: usize,
    /// TLS 1.3, trusting only the server's certificate (implied by a `-tls` codec).
    #[arg(long)]
    tls: bool,
    /// Stops after N calls in all (across every connection and call in
    /// flight) rather than when the window closes, for instruction counts
    /// (callgrind) that need the same work in every run; pass a long
    /// `--duration-s` and `--warmup-s 0` with it. Not for `stream`.
    #[arg(long, value_name = "N")]
    calls: Option<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Seq,
    Pipe,
    Fanin,
    Payload,
    Stream,
    Many,
}

impl Scenario {
    /// (connections, calls in flight per connection).
    fn shape(self) -> (usize, usize) {
        match self {
            Scenario::Pipe => (1, 64),
            Scenario::Fanin => (32, 1),
            Scenario::Many => (2000, 1),
            Scenario::Seq | Scenario::Payload | Scenario::Stream => (1, 1),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Scenario::Seq => "seq",
            Scenario::Pipe => "pipe",
            Scenario::Fanin => "fanin",
            Scenario::Payload => "payload",
            Scenario::Stream => "stream",
            Scenario::Many => "many",
        }
    }
}

#[tokio::main]
async fn main() {
    let result = match Cli::parse().role {
        Role::Server {
            addr,
            codec,
            tls,
            layers,
        } => examples::bench::serve_layered(addr, codec, tls, &layers).await,
        Role::Client(mut args) => {
            // As peerbench names it: `--tls` adds the suffix where it is missing.
            if args.tls && !args.codec.ends_with("-tls") {
                args.codec += "-tls";
            }
            run_client(args).await
        }
    };
    examples::cli::exit_on_error(result);
}

/// The measured interval: calls that complete inside it count.
#[derive(Clone, Copy)]
struct Window {
    start: Instant,
    end: Instant,
}

/// One caller's way to the server: a clone of its connection's client
/// (TCP, calls multiplexed), or a keep-alive HTTP connection of its own.
enum Caller {
    Tcp(BenchClient),
    Http(HttpCaller),
}

/// Opens the callers' connections before the window, [`open::AT_ONCE`]
/// at a time: `conns` TCP connections shared by `inflight` callers each,
/// or one HTTP connection per caller.
async fn open_callers(
    a: &ClientArgs,
    conns: usize,
    inflight: usize,
) -> Result<Vec<Caller>, Box<dyn std::error::Error>> {
    if a.codec == "http" {
        open::check_fd_limit(conns * inflight)?;
        let callers = open::all(conns * inflight, |_| HttpCaller::connect(&a.addr)).await?;
        return Ok(callers.into_iter().map(Caller::Http).collect());
    }
    open::check_fd_limit(conns)?;
    let mut config = ClientConfig::builder()
        .connect(&a.addr)
        .authkey(AUTHKEY)
        .codec(tls::wire_codec(&a.codec))
        .max_frame_bytes(MAX_FRAME_BYTES)
        .call_timeout(Duration::from_secs(60))
        .no_env();
    if a.codec.ends_with("-tls") {
        config = config.tls(tls::client_tls());
    }
    let config = config.build()?;
    let clients = open::all(conns, |_| rpc_transport::connect(&config)).await?;
    Ok((0..conns * inflight)
        .map(|i| Caller::Tcp(BenchClient::new(clients[i / inflight].clone())))
        .collect())
}

async fn run_client(a: ClientArgs) -> Result<(), Box<dyn std::error::Error>> {
    let (conns, inflight) = a.scenario.shape();
    let (conns, inflight) = (a.conns.unwrap_or(conns), a.inflight.unwrap_or(inflight));
    let mut callers = open_callers(&a, conns, inflight).await?;
    let start = Instant::now() + Duration::from_secs_f64(a.warmup_s);
    let mut window = Window {
        start,
        end: start + Duration::from_secs_f64(a.duration_s),
    };
    if a.scenario == Scenario::Stream {
        let items = tokio::spawn(stream(callers.swap_remove(0), window)).await??;
        report(&a, conns, inflight, items as usize, None, window);
        return Ok(());
    }
    let payload = Bytes::from(vec![
        0x5a;
        if a.scenario == Scenario::Payload {
            a.payload_bytes
        } else {
            0
        }
    ]);
    let budget = a.calls.map(|n| Arc::new(AtomicUsize::new(n)));
    let mut workers = tokio::task::JoinSet::new();
    for (i, caller) in callers.into_iter().enumerate() {
        workers.spawn(worker(
            caller,
            window,
            a.scenario,
            payload.clone(),
            i as i64,
            budget.clone(),
        ));
    }
    let mut latencies = Vec::new();
    while let Some(done) = workers.join_next().await {
        latencies.extend(done??);
    }
    if budget.is_some() {
        // The budget, not the clock, ended the run: report its real length.
        window.end = window.end.min(Instant::now());
    }
    latencies.sort_unstable();
    let calls = latencies.len();
    report(&a, conns, inflight, calls, Some(&latencies), window);
    Ok(())
}

/// Reads one endless stream until the window closes, checking that item i
/// is i; returns the items that arrived inside the window, counted 64 at a
/// time (one clock read each).
async fn stream(caller: Caller, window: Window) -> Result<u64, rpc_core::Error> {
    use futures::StreamExt;
    let client = match caller {
        Caller::Tcp(client) => client,
        Caller::Http(mut caller) => {
            let mut counted = 0u64;
            caller
                .stream(|i| {
                    if (i + 1) % 64 != 0 {
                        return true;
                    }
                    let now = Instant::now();
                    if now >= window.start && now < window.end {
                        counted += 64;
                    }
                    now < window.end
                })
                .await?;
            return Ok(counted);
        }
    };
    let mut items = client.stream(u64::MAX).await?;
    let (mut next, mut counted) = (0u64, 0u64);
    while let Some(item) = items.next().await {
        assert_eq!(item, next, "stream item out of order");
        next += 1;
        if next % 64 == 0 {
            let now = Instant::now();
            if now >= window.end {
                return Ok(counted);
            }
            if now >= window.start {
                counted += 64;
            }
        }
    }
    match items.end() {
        Some(Err(e)) => Err(rpc_core::Error::new(e.kind(), e.message())),
        _ => Err(rpc_core::Error::new(
            rpc_core::ErrorKind::Internal,
            "the server finished an endless stream",
        )),
    }
}

/// Calls back to back until the window closes (or the calls shared by
/// every worker in `budget` run out); returns the latencies (ns) of the
/// calls that completed inside the window.
async fn worker(
    mut caller: Caller,
    window: Window,
    scenario: Scenario,
    payload: Bytes,
    i: i64,
    budget: Option<Arc<AtomicUsize>>,
) -> Result<Vec<u64>, rpc_core::Error> {
    let take_one = || {
        budget.as_ref().is_none_or(|left| {
            left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
        })
    };
    // The payload as JSON (a base64 string), encoded once, for `http`.
    let json_payload = match (&caller, scenario) {
        (Caller::Http(_), Scenario::Payload) => http::encoded(&payload),
        _ => String::new(),
    };
    let mut latencies = Vec::with_capacity(1 << 16);
    while Instant::now() < window.end && take_one() {
        let t0 = Instant::now();
        match (&mut caller, scenario) {
            (Caller::Tcp(client), Scenario::Payload) => {
                let back = client.echo(payload.clone()).await?;
                assert_eq!(back.len(), payload.len(), "echo returned another payload");
            }
            (Caller::Tcp(client), _) => {
                let sum = client.add(i, 3).await?;
                assert_eq!(sum, i + 3, "add returned a wrong sum");
            }
            // Checks that the same string came back.
            (Caller::Http(caller), Scenario::Payload) => drop(caller.echo(&json_payload).await?),
            (Caller::Http(caller), _) => {
                let sum = caller.add(i, 3).await?;
                assert_eq!(sum, i + 3, "add returned a wrong sum");
            }
        }
        let t1 = Instant::now();
        if t1 >= window.start && t1 < window.end {
            latencies.push((t1 - t0).as_nanos() as u64);
        }
    }
    Ok(latencies)
}

/// Prints the JSON line; `lat` holds the calls' sorted latencies (ns), or
/// is `None` for `stream`, whose latencies are null.
fn report(
    a: &ClientArgs,
    conns: usize,
    inflight: usize,
    calls: usize,
    lat: Option<&[u64]>,
    window: Window,
) {
    let secs = (window.end - window.start).as_secs_f64();
    let pct = |p: f64| {
        let lat = lat?;
        let rank = ((p * lat.len() as f64).ceil() as usize).clamp(1, lat.len().max(1));
        Some(
            lat.get(rank - 1)
                .map_or(0.0, |ns| round(*ns as f64 / 1000.0, 1)),
        )
    };
    let mb_per_s = (a.scenario == Scenario::Payload)
        .then(|| round((calls * 2 * a.payload_bytes) as f64 / secs / 1e6, 1));
    let line = serde_json::json!({
        "system": "rpc", "scenario": a.scenario.name(), "codec": a.codec,
        "conns": conns, "inflight": inflight, "calls": calls, "secs": round(secs, 3),
        "calls_per_s": round(calls as f64 / secs, 0),
        "p50_us": pct(0.50), "p99_us": pct(0.99), "p999_us": pct(0.999), "max_us": pct(1.0),
        "payload_bytes": a.payload_bytes, "mb_per_s": mb_per_s,
    });
    println!("{line}");
}

fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (x * m).round() / m
}
