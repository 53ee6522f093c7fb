//! `conn-mem`: what an idle authenticated connection costs the server in
//! memory, and whether that memory comes back when the connections close.
//!
//! ```sh
//! cargo build --release -p examples --bin rpc-bench --bin conn-mem
//! target/release/conn-mem measure --conns 1000                    # bincode
//! target/release/conn-mem measure --conns 1000 --codec json
//! target/release/conn-mem measure --conns 1000 --server-bin target/release/rpc-bench
//! target/release/conn-mem measure --conns 1000 --rounds 6         # is memory reused, or does it creep?
//! target/release/conn-mem measure --conns 1000 --echo-bytes 65536 # idle after one large call
//! MALLOC_PERTURB_=165 target/release/conn-mem measure             # RSS = bytes allocated (see below)
//! ```
//!
//! `measure` starts a server as a child process (by default this binary's
//! own `server`, the same server as `rpc-bench server`: authkey `peerbench`,
//! only the chosen codec; `--server-bin` runs any binary with that command
//! line instead), then reads the child's `VmRSS` and `RssAnon` from
//! `/proc/PID/status` and counts its open descriptors:
//!
//! 1. baseline: the server listening, no connection yet;
//! 2. with N idle connections: N clients connected one after another with
//!    [`rpc_transport::connect`] (handshake and hello), each having made one
//!    `add` call (or `echo`, with `--echo-bytes`), then left idle; read after
//!    `--settle-ms`;
//! 3. after close: every client dropped, once the server has closed their
//!    sockets (its descriptor count is back to the baseline), plus
//!    `--settle-ms`;
//! 4. the same again, `--rounds` times in all (default 2): memory that is
//!    reused, not leaked, stops growing after a round or two.
//!
//! It prints a table and one JSON line with the same numbers. The cost per
//! connection is (with N − baseline) / N; the issue's budget is 32 KiB of RSS.
//! Socket buffers live in the kernel and are not in the process's RSS.
//!
//! Both processes need N descriptors and more: with a soft limit too low,
//! `measure` says so before starting (`ulimit -n 4096` for 2000 connections).
//!
//! Reading the numbers:
//!
//! - RSS counts the pages written, not the bytes allocated: a 16 KiB read
//!   buffer an idle connection never filled costs a page or two in round 1,
//!   and more in later rounds once the allocator hands its reused (already
//!   written) memory out. `MALLOC_PERTURB_=165` makes glibc write every byte
//!   it hands out, so round 1 then shows the bytes allocated, the level the
//!   later rounds converge to.
//! - glibc malloc keeps freed memory for reuse (it returns only a free top of
//!   the heap), so RSS after close stays near its peak even without a leak;
//!   `MALLOC_ARENA_MAX=2` and `MALLOC_TRIM_THRESHOLD_=0` do not change that;
//!   `MALLOC_MMAP_THRESHOLD_=8192` (buffers of 8 KiB and more in mappings of
//!   their own, unmapped when freed) gives most of it back. The server
//!   inherits `MALLOC_*`.
//! - Where the bytes go, by call site: run the server under heaptrack,
//!   `--server-bin` a script holding
//!   `exec heaptrack -o /tmp/ht /ABS/PATH/target/release/conn-mem "$@" --exit-with-stdin`
//!   (the RSS printed is then the wrapper's), and `heaptrack_print -f /tmp/ht.zst`:
//!   its peak is the N idle connections.

use std::error::Error;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use examples::bench::{AUTHKEY, BenchClient, MAX_FRAME_BYTES};
use rpc_core::Bytes;
use rpc_transport::ClientConfig;

/// The issue's budget: RSS per idle connection.
const BUDGET_KIB: f64 = 32.0;

/// Descriptors a process needs besides the connections.
const SPARE_FDS: u64 = 64;

/// How long the server may take to close the dropped connections.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

type BoxError = Box<dyn Error>;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand)]
enum Role {
    /// Serves the benchmark service (as `rpc-bench server`); prints
    /// `listening HOST:PORT` first.
    Server {
        #[arg(long, default_value = "127.0.0.1:0")]
        addr: String,
        #[arg(long, default_value = "bincode")]
        codec: String,
        /// Exit when stdin reaches end of file (when `measure`, the parent,
        /// ends, however it ends).
        #[arg(long, hide = true)]
        exit_with_stdin: bool,
    },
    /// Starts a server, measures its RSS with N idle connections and after
    /// they close; prints a table and one JSON line.
    Measure(MeasureArgs),
}

#[derive(clap::Args)]
struct MeasureArgs {
    /// Idle connections to open.
    #[arg(long, default_value_t = 1000)]
    conns: usize,
    /// The codec the connections say hello with (and the only one served).
    #[arg(long, default_value = "bincode")]
    codec: String,
    /// A server binary with `rpc-bench server`'s command line (default: this
    /// binary's own `server`).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// How long to let the server settle before each reading.
    #[arg(long = "settle-ms", default_value_t = 500)]
    settle_ms: u64,
    /// Make each connection's one call `echo` of this many bytes instead of
    /// `add`: what an idle connection keeps after a large call.
    #[arg(long = "echo-bytes", default_value_t = 0)]
    echo_bytes: usize,
    /// Times to open and close the N connections (at least 2).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(2..))]
    rounds: u64,
}

#[tokio::main]
async fn main() {
    let result = match Cli::parse().role {
        Role::Server {
            addr,
            codec,
            exit_with_stdin,
        } => serve(addr, codec, exit_with_stdin).await,
        Role::Measure(args) => measure(args).await,
    };
    examples::cli::exit_on_error(result);
}

async fn serve(addr: String, codec: String, exit_with_stdin: bool) -> Result<(), BoxError> {
    if exit_with_stdin {
        std::thread::spawn(|| {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            std::process::exit(0);
        });
    }
    examples::bench::serve(addr, codec, false).await
}

async fn measure(a: MeasureArgs) -> Result<(), BoxError> {
    if a.conns == 0 {
        return Err("--conns must be at least 1".into());
    }
    check_fd_limit(a.conns)?;
    let settle = Duration::from_millis(a.settle_ms);
    let server = match &a.server_bin {
        Some(bin) => ServerProcess::start(bin, &a.codec, &[])?,
        None => ServerProcess::start(&std::env::current_exe()?, &a.codec, &["--exit-with-stdin"])?,
    };
    let config = ClientConfig::builder()
        .connect(&server.addr)
        .authkey(AUTHKEY)
        .codec(&a.codec)
        .max_frame_bytes(MAX_FRAME_BYTES)
        .call_timeout(Duration::from_secs(30))
        .no_env()
        .build()?;

    tokio::time::sleep(settle).await;
    let baseline = server.sample()?;
    let mut rounds = Vec::new();
    for _ in 0..a.rounds {
        let started = Instant::now();
        let clients = open(&config, a.conns, a.echo_bytes).await?;
        let open_s = started.elapsed().as_secs_f64();
        tokio::time::sleep(settle).await;
        let idle = server.sample()?;
        if idle.fds < baseline.fds + a.conns as u64 {
            eprintln!(
                "warning: the measured process (pid {}) holds {} descriptors more than at the \
                 baseline, not {}: if --server-bin is a wrapper, these are the wrapper's numbers",
                server.pid,
                idle.fds.saturating_sub(baseline.fds),
                a.conns
            );
        }
        drop(clients);
        let close_s = server.wait_closed(baseline.fds).await?;
        tokio::time::sleep(settle).await;
        let closed = server.sample()?;
        rounds.push(Round {
            idle,
            closed,
            open_s,
            close_s,
        });
    }
    let server_name = a
        .server_bin
        .as_deref()
        .map_or_else(|| "conn-mem server".to_owned(), |p| p.display().to_string());
    report(&a, &server_name, server.pid, baseline, &rounds);
    Ok(())
}

/// One round: N connections opened, read, closed, read.
struct Round {
    idle: Sample,
    closed: Sample,
    open_s: f64,
    close_s: f64,
}

/// Opens `n` connections, each making one call (`add`, or `echo` of
/// `echo_bytes` bytes), and keeps them.
async fn open(
    config: &ClientConfig,
    n: usize,
    echo_bytes: usize,
) -> Result<Vec<BenchClient>, BoxError> {
    let payload = Bytes::from(vec![0x5a; echo_bytes]);
    let mut clients = Vec::with_capacity(n);
    for i in 0..n {
        let client = rpc_transport::connect(config)
            .await
            .map_err(|e| open_error(&e, i, n))?;
        let client = BenchClient::new(client);
        if echo_bytes > 0 {
            let back = client.echo(payload.clone()).await?;
            if back.len() != echo_bytes {
                return Err(format!("echo returned {} of {echo_bytes} bytes", back.len()).into());
            }
        } else {
            let x = i as i64;
            let sum = client.add(x, 3).await?;
            if sum != x + 3 {
                return Err(format!("add({x}, 3) returned {sum}").into());
            }
        }
        clients.push(client);
    }
    Ok(clients)
}

/// Says plainly when a connection failed for want of file descriptors.
fn open_error(e: &rpc_core::Error, opened: usize, n: usize) -> BoxError {
    let mut source: Option<&(dyn Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && matches!(io.raw_os_error(), Some(23 | 24))
        {
            return format!(
                "out of file descriptors after {opened} of {n} connections ({io}); \
                 raise the limit first, e.g. `ulimit -n {}`",
                needed_fds(n)
            )
            .into();
        }
        source = s.source();
    }
    format!("connection {} of {n} failed: {e}", opened + 1).into()
}

fn needed_fds(conns: usize) -> u64 {
    conns as u64 + SPARE_FDS
}

/// Fails early if this process (and so the server it starts, which inherits
/// the limit) cannot open `conns` sockets.
fn check_fd_limit(conns: usize) -> Result<(), BoxError> {
    let limits = std::fs::read_to_string("/proc/self/limits")?;
    let Some(line) = limits.lines().find(|l| l.starts_with("Max open files")) else {
        return Ok(());
    };
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (Some(soft), Some(hard)) = (fields.get(3), fields.get(4)) else {
        return Ok(());
    };
    let Ok(soft) = soft.parse::<u64>() else {
        return Ok(()); // unlimited
    };
    let needed = needed_fds(conns);
    if soft >= needed {
        return Ok(());
    }
    let hint = match hard.parse::<u64>() {
        Ok(hard) if hard < needed => {
            format!("the hard limit is {hard} too: lower --conns, or raise it as root")
        }
        _ => format!("run `ulimit -n {needed}` in this shell first"),
    };
    Err(format!(
        "{conns} connections need about {needed} file descriptors in this process and in \
         the server, but the soft limit is {soft}; {hint}"
    )
    .into())
}

/// The server child; killed when dropped.
struct ServerProcess {
    child: Child,
    pid: u32,
    addr: String,
    /// Kept open so the server never writes into a closed pipe.
    stdout: BufReader<ChildStdout>,
}

impl ServerProcess {
    /// Starts `bin server --addr 127.0.0.1:0 --codec CODEC` and reads its
    /// `listening HOST:PORT` line.
    fn start(bin: &Path, codec: &str, extra: &[&str]) -> Result<ServerProcess, BoxError> {
        let mut child = Command::new(bin)
            .args(["server", "--addr", "127.0.0.1:0", "--codec", codec])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the server {}: {e}", bin.display()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut server = ServerProcess {
            pid: child.id(),
            child,
            addr: String::new(),
            stdout: BufReader::new(stdout),
        };
        // A wrapper (`heaptrack`, `valgrind`) may print lines of its own first.
        let mut line = String::new();
        for _ in 0..100 {
            line.clear();
            if server.stdout.read_line(&mut line)? == 0 {
                break;
            }
            if let Some(addr) = line.trim().strip_prefix("listening ") {
                server.addr = addr.to_owned();
                return Ok(server);
            }
            eprint!("server: {line}");
        }
        let status = server.child.try_wait()?;
        Err(format!(
            "the server {} did not print `listening HOST:PORT` (exit status {status:?})",
            bin.display()
        )
        .into())
    }

    /// The server's memory and descriptors now.
    fn sample(&self) -> Result<Sample, BoxError> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .map_err(|e| format!("cannot read the server's /proc/{}/status: {e}", self.pid))?;
        let field = |name: &str| -> Result<u64, BoxError> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .ok_or_else(|| format!("no {name} in /proc/{}/status", self.pid).into())
        };
        Ok(Sample {
            vm_rss: field("VmRSS")?,
            rss_anon: field("RssAnon")?,
            rss_file: field("RssFile")?,
            vm_hwm: field("VmHWM")?,
            fds: self.fds()?,
        })
    }

    fn fds(&self) -> Result<u64, BoxError> {
        Ok(std::fs::read_dir(format!("/proc/{}/fd", self.pid))?.count() as u64)
    }

    /// Waits until the server has closed the dropped connections: its
    /// descriptor count back to `baseline`. Returns how long it took (s).
    async fn wait_closed(&self, baseline: u64) -> Result<f64, BoxError> {
        let started = Instant::now();
        loop {
            let fds = self.fds()?;
            if fds <= baseline || started.elapsed() > CLOSE_TIMEOUT {
                if fds > baseline {
                    eprintln!(
                        "warning: the server still has {} more descriptors than at the baseline \
                         after {CLOSE_TIMEOUT:?}",
                        fds - baseline
                    );
                }
                return Ok(started.elapsed().as_secs_f64());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server's memory (KiB, from `/proc/PID/status`) and open descriptors.
#[derive(Clone, Copy, Debug)]
struct Sample {
    vm_rss: u64,
    rss_anon: u64,
    rss_file: u64,
    vm_hwm: u64,
    fds: u64,
}

impl Sample {
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "vm_rss_kib": self.vm_rss, "rss_anon_kib": self.rss_anon,
            "rss_file_kib": self.rss_file, "vm_hwm_kib": self.vm_hwm, "fds": self.fds,
        })
    }
}

/// `(to − from) / n` in KiB.
fn per(from: u64, to: u64, n: usize) -> f64 {
    round((to as f64 - from as f64) / n as f64, 2)
}

fn report(a: &MeasureArgs, server: &str, pid: u32, base: Sample, rounds: &[Round]) {
    let n = a.conns;
    let malloc_env: serde_json::Map<String, serde_json::Value> = std::env::vars()
        .filter(|(k, _)| k.starts_with("MALLOC_") || k.starts_with("GLIBC_TUNABLES"))
        .map(|(k, v)| (k, v.into()))
        .collect();
    let env_text = if malloc_env.is_empty() {
        "default malloc".to_owned()
    } else {
        malloc_env
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "conn-mem: {n} idle connections ({}), codec {}, server `{server}` (pid {pid}), {env_text}",
        first_call(a),
        a.codec
    );
    println!(
        "{:<24} {:>10} {:>9} {:>10} {:>9} {:>8} {:>6}",
        "", "VmRSS KiB", "Δ", "RssAnon", "Δ", "RssFile", "fds"
    );
    let row = |name: &str, s: &Sample| {
        println!(
            "{:<24} {:>10} {:>9} {:>10} {:>9} {:>8} {:>6}",
            name,
            s.vm_rss,
            format!("{:+}", delta(base.vm_rss, s.vm_rss)),
            s.rss_anon,
            format!("{:+}", delta(base.rss_anon, s.rss_anon)),
            s.rss_file,
            s.fds
        );
    };
    row("baseline", &base);
    for (i, r) in rounds.iter().enumerate() {
        row(&format!("{n} idle (round {})", i + 1), &r.idle);
        row(&format!("after close (round {})", i + 1), &r.closed);
    }

    // Each round's cost per connection, from the state before it opened.
    let before = |i: usize| if i == 0 { base } else { rounds[i - 1].closed };
    let costs: Vec<(f64, f64)> = (0..rounds.len())
        .map(|i| {
            let (from, to) = (before(i), rounds[i].idle);
            (
                per(from.vm_rss, to.vm_rss, n),
                per(from.rss_anon, to.rss_anon, n),
            )
        })
        .collect();
    let (cost_rss, cost_anon) = costs[0];
    let within = cost_rss <= BUDGET_KIB;
    println!(
        "per connection, round 1 (from the baseline): {cost_rss} KiB VmRSS, {cost_anon} KiB RssAnon; \
         budget {BUDGET_KIB} KiB: {}",
        if within { "within" } else { "OVER" }
    );
    let later: Vec<String> = costs[1..].iter().map(|(r, _)| format!("{r}")).collect();
    println!(
        "per connection, later rounds (from the previous close): {} KiB VmRSS",
        later.join(" / ")
    );
    let (first, last) = (&rounds[0], &rounds[rounds.len() - 1]);
    let growth = delta(base.vm_rss, first.idle.vm_rss);
    let kept: Vec<i64> = rounds
        .iter()
        .map(|r| delta(base.vm_rss, r.closed.vm_rss))
        .collect();
    let kept_pct = if growth > 0 {
        round(kept[0] as f64 * 100.0 / growth as f64, 0)
    } else {
        0.0
    };
    let creep = delta(first.closed.vm_rss, last.closed.vm_rss);
    let creep_per_conn_round = round(creep as f64 / (n as f64 * (rounds.len() - 1) as f64), 2);
    println!(
        "kept after close: {} KiB VmRSS ({kept_pct}% of round 1's growth); \
         from the first close to the last: {creep:+} KiB ({creep_per_conn_round} KiB per connection per round)",
        kept.iter()
            .map(|k| format!("{k:+}"))
            .collect::<Vec<_>>()
            .join(" / "),
    );
    let seconds = |f: fn(&Round) -> f64| {
        rounds
            .iter()
            .map(|r| format!("{:.2}", f(r)))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    println!(
        "timing: opened in {} s; the server closed them in {} s",
        seconds(|r| r.open_s),
        seconds(|r| r.close_s)
    );

    let rounds_json: Vec<serde_json::Value> = rounds
        .iter()
        .zip(&costs)
        .map(|(r, (c_rss, c_anon))| {
            serde_json::json!({
                "idle": r.idle.json(), "closed": r.closed.json(),
                "per_conn_kib": { "vm_rss": c_rss, "rss_anon": c_anon },
                "open_s": round(r.open_s, 3), "close_s": round(r.close_s, 3),
            })
        })
        .collect();
    let line = serde_json::json!({
        "tool": "conn-mem", "codec": a.codec, "conns": n, "echo_bytes": a.echo_bytes, "server": server,
        "malloc_env": malloc_env, "settle_ms": a.settle_ms,
        "baseline": base.json(), "rounds": rounds_json,
        "per_conn_kib": { "vm_rss": cost_rss, "rss_anon": cost_anon },
        "kept_after_close_kib": kept, "kept_pct": kept_pct,
        "creep_kib_per_conn_round": creep_per_conn_round,
        "budget_kib": BUDGET_KIB, "within_budget": within,
    });
    println!("{line}");
}

/// What each connection's one call was.
fn first_call(a: &MeasureArgs) -> String {
    match a.echo_bytes {
        0 => "one add call each".to_owned(),
        k => format!("one echo of {k} bytes each"),
    }
}

/// `to − from`.
fn delta(from: u64, to: u64) -> i64 {
    to as i64 - from as i64
}

fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (x * m).round() / m
}
