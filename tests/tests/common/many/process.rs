//! `ledger-server` processes: started on `127.0.0.1:0` with a journal
//! each, stopped with SIGINT or SIGKILL, restarted on their old ports.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tests::ledger::tokens;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use super::Scratch;
use crate::common::{KEY, within, within_for};

/// How long a server may take to start, or to exit once told to.
pub(crate) const PROCESS_WAIT: Duration = Duration::from_secs(15);

/// The gateway's password (`/healthz` needs none).
const HTTP_PASSWORD: &str = "ledger-http-password";

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
    process: Process,
}

/// The process behind a [`LedgerServer`] since it last started: killed when
/// dropped, its stdout kept open (so its writes do not fail), its stderr
/// collected in the background.
struct Process {
    child: Child,
    _stdout: Lines<BufReader<ChildStdout>>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// How a server is stopped mid-run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// `kill -INT`: it drains (`/healthz` 503, calls in flight finish, its
    /// clients are told it is going away) and exits 0.
    Interrupt,
    /// `kill -9`: its connections reset, calls in flight cut off.
    Kill,
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

impl LedgerServer {
    /// Starts `ledger-server` named `name` on `127.0.0.1:0` (both ports),
    /// journaling to `scratch/name.journal`, its `add` slowed by `delay_ms`.
    pub(crate) async fn start(scratch: &Scratch, name: &str, delay_ms: u64) -> LedgerServer {
        let config = scratch.dir.join(format!("{name}.toml"));
        std::fs::write(&config, server_config(0, 0)).expect("writing a server config");
        let journal = scratch.dir.join(format!("{name}.journal"));
        let (process, tcp, http) = match Self::spawn(name, &config, &journal, delay_ms).await {
            Ok(started) => started,
            Err(e) => panic!("{name} did not start: {e}"),
        };
        for address in [&tcp, &http] {
            assert!(
                address.starts_with("127.0.0.1:") && !address.ends_with(":0"),
                "{name} printed {address}"
            );
        }
        LedgerServer {
            name: name.to_owned(),
            tcp,
            http,
            journal,
            config,
            delay_ms,
            process,
        }
    }

    /// Starts the process and reads `listening HOST:PORT` and
    /// `http listening HOST:PORT`: (process, TCP address, HTTP address); an
    /// error if it exits first (its port taken, say).
    async fn spawn(
        name: &str,
        config: &Path,
        journal: &Path,
        delay_ms: u64,
    ) -> Result<(Process, String, String), String> {
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
        let mut process = Process {
            child,
            _stdout: stdout,
            stderr,
        };
        match (tcp, http) {
            (Some(tcp), Some(http)) => Ok((process, tcp, http)),
            _ => {
                let _ = process.child.start_kill();
                let _ = within("a failed ledger-server to exit", process.child.wait()).await;
                let said = process.stderr_text();
                Err(format!("{name} printed no addresses; stderr: {said}"))
            }
        }
    }

    /// The process id (while it runs).
    pub(crate) fn pid(&self) -> u32 {
        self.process.child.id().expect("the server is running")
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
        self.process.child.start_kill().expect("SIGKILL");
    }

    /// Stops the server as `how` says and waits (bounded) for it to exit;
    /// after SIGINT it must exit 0.
    pub(crate) async fn stop_with(&mut self, how: Stop) {
        match how {
            Stop::Interrupt => self.interrupt().await,
            Stop::Kill => self.kill(),
        }
        let status = self.exited().await;
        if how == Stop::Interrupt {
            assert!(
                status.success(),
                "{} exits 0 after draining, got {status}; stderr: {}",
                self.name,
                self.stderr_text()
            );
        }
    }

    /// Kills the process if it runs, and waits (bounded) for it to exit.
    pub(crate) async fn stop(&mut self) {
        let _ = self.process.child.start_kill();
        let _ = self.exited().await;
    }

    /// Waits (bounded) for the process to exit.
    pub(crate) async fn exited(&mut self) -> ExitStatus {
        within_for(
            PROCESS_WAIT,
            "a ledger-server to exit",
            self.process.child.wait(),
        )
        .await
        .expect("waiting for ledger-server")
    }

    /// Starts the server again (after it exited) on its old ports, with the
    /// same journal, retrying the start while the ports are not yet free
    /// (bounded by [`PROCESS_WAIT`]).
    pub(crate) async fn restart(&mut self) {
        assert!(
            self.process.child.try_wait().expect("try_wait").is_some(),
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
        let (process, tcp, http) = started;
        assert_eq!((&tcp, &http), (&self.tcp, &self.http), "the old ports");
        self.process = process;
    }

    /// What the process has written on stderr since it last started.
    pub(crate) fn stderr_text(&self) -> String {
        self.process.stderr_text()
    }

    /// How many lines its journal holds.
    pub(crate) fn journal_len(&self) -> usize {
        std::fs::read_to_string(&self.journal).map_or(0, |text| tokens(&text).len())
    }
}

impl Process {
    /// What it has written on stderr so far.
    fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().expect("stderr")).into_owned()
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
