//! The many-servers tests' parts, for `many_haproxy.rs` and
//! `many_servers.rs` (each includes this file with `#[path]`):
//! `ledger-server` processes with a journal each, stopped by signal and
//! restarted on their old ports; a mixed load of idempotent `add` and
//! non-idempotent `record` through one client; and the check of every
//! outcome against the journals (at most once, and exactly once when the
//! call returned ok).
//!
//! Each file uses only part of it, hence the `dead_code` allowance.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rpc_core::{Error, ErrorKind};
use tests::ledger::{LedgerClient, tokens};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio::task::JoinHandle;

use crate::common::{KEY, WAIT, within, within_for};

/// How long a server may take to start, or to exit once told to.
pub(crate) const PROCESS_WAIT: Duration = Duration::from_secs(15);

/// The calls' own timeout: longer than any failover, shorter than the
/// bound on the load's end.
pub(crate) const CALL_TIMEOUT_MS: u64 = 15_000;

/// How long the load's tasks may take to return once told to stop.
const FINISH_WAIT: Duration = Duration::from_secs(25);

/// The gateway's password (`/healthz` needs none).
const HTTP_PASSWORD: &str = "ledger-http-password";

/// How `[client.reconnect]` reads in the tests: fast, and calls made while
/// the link is down wait for it.
pub(crate) const RECONNECT: &str =
    "[client.reconnect]\ninitial_backoff_ms = 20\nmax_backoff_ms = 200\nwait = true\n";

/// A directory under the temp directory for configs and journals, removed
/// when dropped.
pub(crate) struct Scratch {
    /// Where it is.
    pub(crate) dir: PathBuf,
}

impl Scratch {
    /// A fresh, empty directory.
    pub(crate) fn new(what: &str) -> Scratch {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("rpc-{what}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating a scratch directory");
        Scratch { dir }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------
// ledger-server processes.
// ---------------------------------------------------------------------------

/// A `ledger-server` process with its TCP and HTTP addresses and its
/// journal; killed when dropped. Its stderr is collected in the background.
pub(crate) struct LedgerServer {
    /// `s1`, `s2`, …: its name in the HAProxy config and in panics.
    pub(crate) name: String,
    /// `127.0.0.1:PORT` of its RPC listener.
    pub(crate) tcp: String,
    /// `127.0.0.1:PORT` of its HTTP gateway (`/healthz`).
    pub(crate) http: String,
    /// The journal file `record` appends to (kept across restarts).
    pub(crate) journal: PathBuf,
    config: PathBuf,
    delay_ms: u64,
    child: Child,
    _stdout: Lines<BufReader<ChildStdout>>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Drop for LedgerServer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// A `[server]` and `[http]` config on these ports (0: any), with a short
/// shutdown grace so that a drained server exits promptly.
fn server_config(tcp_port: u16, http_port: u16) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:{tcp_port}\"\nauthkey = \"{KEY}\"\n\n\
         [server.limits]\nshutdown_grace_ms = 3000\n\n\
         [http]\nlisten = \"127.0.0.1:{http_port}\"\npassword = \"{HTTP_PASSWORD}\"\n"
    )
}

/// The port of `127.0.0.1:PORT`.
fn port(address: &str) -> u16 {
    let (_, port) = address.rsplit_once(':').expect("HOST:PORT");
    port.parse().expect("a port number")
}

/// A started process and its two address lines, or why it did not start.
type Started = (
    Child,
    Lines<BufReader<ChildStdout>>,
    Arc<Mutex<Vec<u8>>>,
    String,
    String,
);

impl LedgerServer {
    /// Starts `ledger-server` named `name` on `127.0.0.1:0` (both ports),
    /// journaling to `scratch/name.journal`, its `add` slowed by `delay_ms`.
    pub(crate) async fn start(scratch: &Scratch, name: &str, delay_ms: u64) -> LedgerServer {
        let config = scratch.dir.join(format!("{name}.toml"));
        std::fs::write(&config, server_config(0, 0)).expect("writing a server config");
        let journal = scratch.dir.join(format!("{name}.journal"));
        let (child, stdout, stderr, tcp, http) =
            match Self::spawn(name, &config, &journal, delay_ms).await {
                Ok(started) => started,
                Err(e) => panic!("{name} did not start: {e}"),
            };
        LedgerServer {
            name: name.to_owned(),
            tcp,
            http,
            journal,
            config,
            delay_ms,
            child,
            _stdout: stdout,
            stderr,
        }
    }

    /// Starts the process and reads `listening HOST:PORT` and
    /// `http listening HOST:PORT`; an error if it exits first (its port
    /// taken, say).
    async fn spawn(
        name: &str,
        config: &Path,
        journal: &Path,
        delay_ms: u64,
    ) -> Result<Started, String> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ledger-server"));
        command
            .arg("--config")
            .arg(config)
            .env("LEDGER_JOURNAL", journal)
            .env("LEDGER_DELAY_MS", delay_ms.to_string())
            .env_remove("RPC_AUTHKEY")
            .env_remove("RPC_CODEC")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|e| format!("starting ledger-server: {e}"))?;
        let stderr = collect(child.stderr.take().expect("stderr is piped"));
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
        let tcp = address_line(&mut stdout, "listening ").await;
        let http = match tcp {
            Some(_) => address_line(&mut stdout, "http listening ").await,
            None => None,
        };
        match (tcp, http) {
            (Some(tcp), Some(http)) => Ok((child, stdout, stderr, tcp, http)),
            _ => {
                let _ = child.start_kill();
                let _ = within("a failed ledger-server to exit", child.wait()).await;
                let said = String::from_utf8_lossy(&stderr.lock().expect("stderr")).into_owned();
                Err(format!("{name} printed no addresses; stderr: {said}"))
            }
        }
    }

    /// The process id (while it runs).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id().expect("the server is running")
    }

    /// Sends SIGINT (`kill -INT`): the server drains and exits 0.
    pub(crate) async fn interrupt(&self) {
        let pid = self.pid().to_string();
        let mut kill = Command::new("kill");
        kill.args(["-INT", &pid]).kill_on_drop(true);
        let status = within("kill -INT", kill.status())
            .await
            .expect("running kill");
        assert!(status.success(), "kill -INT {pid}: {status}");
    }

    /// Sends SIGKILL (`kill -9`): the process ends at once, its
    /// connections reset.
    pub(crate) fn kill(&mut self) {
        self.child.start_kill().expect("SIGKILL");
    }

    /// Kills the process if it runs, and waits (bounded) for it to exit.
    pub(crate) async fn stop(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.exited().await;
    }

    /// Waits (bounded) for the process to exit.
    pub(crate) async fn exited(&mut self) -> ExitStatus {
        within_for(PROCESS_WAIT, "a ledger-server to exit", self.child.wait())
            .await
            .expect("waiting for ledger-server")
    }

    /// Starts the server again (after it exited) on its old ports, with the
    /// same journal, retrying the start while the ports are not yet free
    /// (bounded by [`PROCESS_WAIT`]).
    pub(crate) async fn restart(&mut self) {
        assert!(
            self.child.try_wait().expect("try_wait").is_some(),
            "{} is still running",
            self.name
        );
        let text = server_config(port(&self.tcp), port(&self.http));
        std::fs::write(&self.config, text).expect("writing a server config");
        let started = within_for(PROCESS_WAIT, "a restart on the old ports", async {
            loop {
                match Self::spawn(&self.name, &self.config, &self.journal, self.delay_ms).await {
                    Ok(started) => return started,
                    Err(e) if e.contains("in use") => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => panic!("{} did not restart: {e}", self.name),
                }
            }
        })
        .await;
        let (child, stdout, stderr, tcp, http) = started;
        assert_eq!((&tcp, &http), (&self.tcp, &self.http), "the old ports");
        (self.child, self._stdout, self.stderr) = (child, stdout, stderr);
    }

    /// What the process has written on stderr since it last started.
    pub(crate) fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().expect("stderr")).into_owned()
    }

    /// How many lines its journal holds.
    pub(crate) fn journal_len(&self) -> usize {
        std::fs::read_to_string(&self.journal).map_or(0, |text| tokens(&text).len())
    }
}

/// The next line of a server's stdout without `prefix`, if it has one
/// (bounded by [`PROCESS_WAIT`]); `None` if the process printed something
/// else or exited.
async fn address_line(stdout: &mut Lines<BufReader<ChildStdout>>, prefix: &str) -> Option<String> {
    let line = within_for(
        PROCESS_WAIT,
        "a ledger-server's address line",
        stdout.next_line(),
    )
    .await;
    line.ok()
        .flatten()
        .and_then(|line| line.strip_prefix(prefix).map(str::to_owned))
}

/// Reads `pipe` to its end on a task, into the buffer returned.
pub(crate) fn collect(
    mut pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static,
) -> Arc<Mutex<Vec<u8>>> {
    let sink = Arc::new(Mutex::new(Vec::new()));
    let out = sink.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf).await {
            if n == 0 {
                break;
            }
            sink.lock().expect("sink").extend_from_slice(&buf[..n]);
        }
    });
    out
}

/// Three servers `s1`, `s2`, `s3`, each `add` slowed by its delay.
pub(crate) async fn three(scratch: &Scratch, delays_ms: [u64; 3]) -> Vec<LedgerServer> {
    let mut servers = Vec::new();
    for (i, delay) in delays_ms.into_iter().enumerate() {
        servers.push(LedgerServer::start(scratch, &format!("s{}", i + 1), delay).await);
    }
    servers
}

// ---------------------------------------------------------------------------
// The load.
// ---------------------------------------------------------------------------

/// Which method a call was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    /// `add(token, 1)`: idempotent.
    Add,
    /// `record(token)`: not idempotent.
    Record,
}

/// How one call ended.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// The call's unique token.
    pub(crate) token: u64,
    /// Its method.
    pub(crate) method: Method,
    /// `None`: ok; else the error's kind, did-not-run mark and message.
    pub(crate) failed: Option<(ErrorKind, bool, String)>,
}

impl Outcome {
    fn of<T>(token: u64, method: Method, result: Result<T, Error>) -> Outcome {
        Outcome {
            token,
            method,
            failed: result
                .err()
                .map(|e| (e.kind(), e.not_run(), e.message().to_owned())),
        }
    }
}

/// Tasks calling through one client until told to stop: each takes a
/// fresh token per call, and every third token is a `record`, the others
/// an `add(token, 1)`.
pub(crate) struct Load {
    tasks: Vec<JoinHandle<Vec<Outcome>>>,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    tokens: Arc<AtomicU64>,
}

impl Load {
    /// Starts `tasks` tasks over `client`; `record_every`: every how many
    /// tokens is a `record` (0: never).
    pub(crate) fn start(client: &rpc_core::Client, tasks: usize, record_every: u64) -> Load {
        let mut load = Load {
            tasks: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            done: Arc::new(AtomicU64::new(0)),
            tokens: Arc::new(AtomicU64::new(1)),
        };
        for _ in 0..tasks {
            let ledger = LedgerClient::new(client.clone());
            let (stop, done, tokens) = (load.stop.clone(), load.done.clone(), load.tokens.clone());
            load.tasks.push(tokio::spawn(async move {
                let mut outcomes = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let token = tokens.fetch_add(1, Ordering::Relaxed);
                    let method = if record_every != 0 && token % record_every == 0 {
                        Method::Record
                    } else {
                        Method::Add
                    };
                    outcomes.push(call(&ledger, token, method).await);
                    done.fetch_add(1, Ordering::Relaxed);
                }
                outcomes
            }));
        }
        load
    }

    /// Calls that have returned so far.
    pub(crate) fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Waits (bounded by `limit`) until `more` calls have returned from now.
    pub(crate) async fn progress(&self, more: u64, limit: Duration, what: &str) {
        let target = self.done() + more;
        within_for(limit, what, async {
            while self.done() < target {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
    }

    /// One `record` through `client` (another connection, say) with a
    /// fresh token of this load's; check its outcome with the load's.
    pub(crate) async fn record_through(&self, client: &rpc_core::Client) -> Outcome {
        let token = self.tokens.fetch_add(1, Ordering::Relaxed);
        call(&LedgerClient::new(client.clone()), token, Method::Record).await
    }

    /// Stops the tasks and returns every outcome, with how many tokens were
    /// handed out (each must have an outcome).
    pub(crate) async fn finish(self) -> (Vec<Outcome>, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let mut outcomes = Vec::new();
        for task in self.tasks {
            let mine = within_for(FINISH_WAIT, "the load's tasks to return", task)
                .await
                .expect("a load task panicked");
            outcomes.extend(mine);
        }
        (outcomes, self.tokens.load(Ordering::Relaxed) - 1)
    }
}

/// Calls `record(token)` or `add(token, 1)` (checking the answer).
async fn call(ledger: &LedgerClient, token: u64, method: Method) -> Outcome {
    if method == Method::Record {
        let result = ledger.record(token).await;
        if let Ok(echo) = &result {
            assert_eq!(*echo, token, "record echoes its token");
        }
        Outcome::of(token, Method::Record, result)
    } else {
        let x = i64::try_from(token).expect("a small token");
        let result = ledger.add(x, 1).await;
        if let Ok(sum) = &result {
            assert_eq!(*sum, x + 1, "add({x}, 1)");
        }
        Outcome::of(token, Method::Add, result)
    }
}

// ---------------------------------------------------------------------------
// The check.
// ---------------------------------------------------------------------------

/// What a run came to; printed by the tests.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Calls made (tokens handed out).
    pub(crate) calls: u64,
    /// `add` calls that returned ok.
    pub(crate) add_ok: u64,
    /// `add` calls that failed, by error kind (`+not_run` when marked).
    pub(crate) add_failed: BTreeMap<String, u64>,
    /// `record` calls that returned ok.
    pub(crate) record_ok: u64,
    /// `record` calls that failed, by kind (`+not_run` when marked).
    pub(crate) record_failed: BTreeMap<String, u64>,
    /// Of the failed `record` calls, those that ran all the same (in a journal).
    pub(crate) record_failed_but_ran: u64,
    /// Lines in each journal.
    pub(crate) journals: Vec<usize>,
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "calls {} | add ok {} failed {:?} | record ok {} failed {:?} (of which ran: {}) | journal lines {:?}",
            self.calls,
            self.add_ok,
            self.add_failed,
            self.record_ok,
            self.record_failed,
            self.record_failed_but_ran,
            self.journals
        )
    }
}

/// A failure's key in a tally: its kind's label, `+not_run` when marked.
fn label(kind: ErrorKind, not_run: bool) -> String {
    format!("{}{}", kind.label(), if not_run { "+not_run" } else { "" })
}

/// Every token in `journals`, with how many times each appears.
fn journal_counts(journals: &[&Path]) -> (BTreeMap<u64, u32>, Vec<usize>) {
    let mut counts = BTreeMap::new();
    let mut lines = Vec::new();
    for journal in journals {
        let text = std::fs::read_to_string(journal).unwrap_or_default();
        let tokens = tokens(&text);
        lines.push(tokens.len());
        for token in tokens {
            *counts.entry(token).or_insert(0) += 1;
        }
    }
    (counts, lines)
}

/// Checks the run's invariants and returns its tally:
/// - every token handed out has exactly one outcome;
/// - every `add` succeeded;
/// - no token appears twice across the journals, and each journal token was
///   a `record`'s;
/// - a `record` that returned ok appears exactly once;
/// - a `record` that failed did so with the did-not-run mark (and is in no
///   journal) or with `ConnectionLost` saying it may or may not have run.
pub(crate) fn check(outcomes: &[Outcome], issued: u64, journals: &[&Path]) -> Tally {
    let (counts, lines) = journal_counts(journals);
    let mut tally = Tally {
        calls: issued,
        journals: lines,
        ..Tally::default()
    };
    let mut seen: BTreeMap<u64, (u32, Method)> = BTreeMap::new();
    let mut problems = Vec::new();
    for outcome in outcomes {
        seen.entry(outcome.token).or_insert((0, outcome.method)).0 += 1;
        let in_journals = counts.get(&outcome.token).copied().unwrap_or(0);
        match (outcome.method, &outcome.failed) {
            (Method::Add, None) => tally.add_ok += 1,
            (Method::Add, Some((kind, not_run, message))) => {
                *tally.add_failed.entry(label(*kind, *not_run)).or_insert(0) += 1;
                problems.push(format!(
                    "add token {} failed: {kind:?}: {message}",
                    outcome.token
                ));
            }
            (Method::Record, None) => {
                tally.record_ok += 1;
                if in_journals != 1 {
                    problems.push(format!(
                        "record {} returned ok but is in the journals {in_journals} times",
                        outcome.token
                    ));
                }
            }
            (Method::Record, Some((kind, not_run, message))) => {
                *tally
                    .record_failed
                    .entry(label(*kind, *not_run))
                    .or_insert(0) += 1;
                tally.record_failed_but_ran += u64::from(in_journals > 0);
                if *not_run && in_journals > 0 {
                    problems.push(format!(
                        "record {} failed marked did-not-run ({kind:?}: {message}) but ran",
                        outcome.token
                    ));
                }
                let says_maybe =
                    *kind == ErrorKind::ConnectionLost && message.contains("may or may not");
                if !*not_run && !says_maybe {
                    problems.push(format!(
                        "record {} failed with {kind:?} \"{message}\" (ran: {}): neither marked \
                         did-not-run nor a ConnectionLost saying it may or may not have run",
                        outcome.token,
                        in_journals > 0
                    ));
                }
            }
        }
    }
    for (&token, &n) in &counts {
        if n > 1 {
            problems.push(format!(
                "token {token} is in the journals {n} times: it ran twice"
            ));
        }
        let method = seen.get(&token).map(|&(_, method)| method);
        if method != Some(Method::Record) {
            problems.push(format!(
                "journal token {token} is not a record call's ({method:?})"
            ));
        }
    }
    let missing: Vec<u64> = (1..=issued).filter(|t| !seen.contains_key(t)).collect();
    let twice: Vec<u64> = seen
        .iter()
        .filter(|&(_, &(n, _))| n > 1)
        .map(|(&t, _)| t)
        .collect();
    if !missing.is_empty() || !twice.is_empty() {
        problems.push(format!(
            "not every call is accounted for: {} tokens without an outcome (first {:?}), {} with more than one",
            missing.len(),
            missing.first(),
            twice.len()
        ));
    }
    assert!(
        problems.is_empty(),
        "{} problems; tally: {tally}\n{}",
        problems.len(),
        problems
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    tally
}

/// Waits (bounded by [`WAIT`]) until `condition` holds, polling every 20 ms.
pub(crate) async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    within_for(WAIT, what, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}
