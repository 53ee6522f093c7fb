//! Loads the calculator through a config file's `[client]` table (one
//! address, a `connect` list with `[client.balance]`, or HAProxy's address)
//! and reports how every call ended.
//!
//! ```sh
//! cargo run --release -p examples --bin calc-load -- \
//!     --config examples/config/calc-many.toml --calls 20000 --concurrency 32 --method add
//! ```
//!
//! It prints one JSON line:
//! `{"ok":N, "failed":{"<kind>":n,…}, "by_endpoint":{"host:port":n,…}, "p50_us":…, "p99_us":…}`
//! (`by_endpoint` counts the calls each endpoint was sent, retries included),
//! and exits 0 only if every call succeeded with the right answer.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use clap::{Parser, ValueEnum};
use examples::calculator::CalculatorClient;
use rpc_transport::{Balancer, ClientConfig};

#[derive(Parser)]
#[command(about = "Calls the calculator N times, C at once, and reports how each call ended")]
struct Args {
    /// A TOML file with a `[client]` table.
    #[arg(long)]
    config: PathBuf,
    /// How many calls to make.
    #[arg(long, default_value_t = 10_000)]
    calls: u64,
    /// How many calls are in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: u64,
    /// The method to call.
    #[arg(long, value_enum, default_value_t = Method::Add)]
    method: Method,
}

#[derive(Clone, Copy, ValueEnum)]
enum Method {
    Add,
    Sub,
}

/// How the calls ended.
#[derive(Default)]
struct Tally {
    ok: u64,
    failed: BTreeMap<String, u64>,
    latencies_us: Vec<u64>,
}

#[tokio::main]
async fn main() {
    examples::cli::exit_on_error(run(Args::parse()).await);
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if args.concurrency == 0 {
        return Err("--concurrency must be at least 1".into());
    }
    let config = ClientConfig::from_file(&args.config)?;
    let balancer = Balancer::connect(&config).await?;
    let calc = CalculatorClient::new(balancer.client());
    let next = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| tokio::spawn(work(calc.clone(), next.clone(), args.calls, args.method)))
        .collect();
    let mut tally = Tally::default();
    for worker in workers {
        let part = worker.await?;
        tally.ok += part.ok;
        for (kind, n) in part.failed {
            *tally.failed.entry(kind).or_default() += n;
        }
        tally.latencies_us.extend(part.latencies_us);
    }
    tally.latencies_us.sort_unstable();
    let by_endpoint: BTreeMap<_, _> = balancer
        .endpoints()
        .into_iter()
        .map(|e| (e.address, e.calls))
        .collect();
    let report = serde_json::json!({
        "ok": tally.ok,
        "failed": tally.failed,
        "by_endpoint": by_endpoint,
        "p50_us": percentile(&tally.latencies_us, 50),
        "p99_us": percentile(&tally.latencies_us, 99),
    });
    println!("{report}");
    match tally.ok == args.calls {
        true => Ok(()),
        false => Err(format!("{} of {} calls failed", args.calls - tally.ok, args.calls).into()),
    }
}

/// Takes call numbers from `next` until `calls` are made.
async fn work(calc: CalculatorClient, next: Arc<AtomicU64>, calls: u64, method: Method) -> Tally {
    let mut tally = Tally::default();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= calls {
            return tally;
        }
        let (x, y) = (i as i64, 7);
        let started = Instant::now();
        let (outcome, expected) = match method {
            Method::Add => (calc.add(x, y).await, x + y),
            Method::Sub => (calc.sub(x, y).await, x - y),
        };
        tally
            .latencies_us
            .push(started.elapsed().as_micros() as u64);
        let kind = match outcome {
            Ok(n) if n == expected => {
                tally.ok += 1;
                continue;
            }
            Ok(_) => "WrongAnswer".to_owned(),
            Err(e) => format!("{:?}", e.kind()),
        };
        *tally.failed.entry(kind).or_default() += 1;
    }
}

/// The `p`th percentile of sorted `values`; 0 when there are none.
fn percentile(values: &[u64], p: usize) -> u64 {
    match values.len() {
        0 => 0,
        n => values[(n * p / 100).min(n - 1)],
    }
}
