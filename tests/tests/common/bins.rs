//! The example binaries as processes, for `e2e_binaries.rs` and
//! `http_binaries.rs`: finding them (building them first), temporary config
//! files, commands isolated from this process's `RPC_*` environment, bounded
//! runs, and server processes that print `listening HOST:PORT` and are killed
//! when dropped.
//!
//! The binaries belong to the `examples` package, so Cargo does not build
//! them for the test crate: the first call to [`bin`] (or [`command`]) in a
//! test process runs `cargo build -p examples --bins` into the target
//! directory the test itself runs from — a no-op when they are up to date —
//! bounded by [`BUILD_LIMIT`]. If the build fails or times out, every test
//! that needs a binary panics with the end of the build log.
//!
//! Test files that include `common` but run no binaries leave all of this
//! unused; the `#![allow(dead_code)]` at the top of `common/mod.rs` covers
//! this module too.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use super::within_for;

/// How long building the example binaries may take.
pub(crate) const BUILD_LIMIT: Duration = Duration::from_secs(20 * 60);

/// How long a process may take to start, or to run to its end.
pub(crate) const PROCESS_LIMIT: Duration = Duration::from_secs(60);

/// How many lines of the build log a failure shows.
const LOG_TAIL_LINES: usize = 40;

// ---------------------------------------------------------------------------
// Finding (and building) the binaries.
// ---------------------------------------------------------------------------

/// The directory holding the example binaries, built once per test process.
///
/// Panics, with the reason, if they could not be built.
pub(crate) fn bin_dir() -> &'static Path {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match DIR.get_or_init(build_binaries) {
        Ok(dir) => dir,
        Err(e) => panic!("the example binaries are not available: {e}"),
    }
}

/// The path of the example binary `name`.
pub(crate) fn bin(name: &str) -> PathBuf {
    bin_dir().join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// Runs `cargo build -p examples --bins` into the target directory this test
/// runs from (`target/<profile>/deps/<this test>`), with `--release` when the
/// test was built so, bounded by [`BUILD_LIMIT`]. Cargo's output goes to a log
/// file in the temp directory, removed afterwards; on failure the error ends
/// with the log's tail.
fn build_binaries() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let deps = exe.parent().ok_or("the test binary has no directory")?;
    let profile_dir = deps
        .parent()
        .ok_or("the test binary's directory has no parent")?;
    let target_dir = profile_dir
        .parent()
        .ok_or("the profile directory has no parent")?;
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("the tests package has no parent directory")?;
    let cargo = std::env::var_os("CARGO")
        .or_else(|| option_env!("CARGO").map(Into::into))
        .unwrap_or_else(|| "cargo".into());

    let log_path = std::env::temp_dir().join(format!(
        "rpc-e2e-build-{}-{}.log",
        std::process::id(),
        unique()
    ));
    let log =
        std::fs::File::create(&log_path).map_err(|e| format!("creating the build log: {e}"))?;
    let log_err = log
        .try_clone()
        .map_err(|e| format!("cloning the build log: {e}"))?;
    let mut command = std::process::Command::new(&cargo);
    command
        .args(["build", "-p", "examples", "--bins", "--target-dir"])
        .arg(target_dir)
        .current_dir(workspace)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        command.arg("--release");
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("running {cargo:?}: {e}"))?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > BUILD_LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(with_log(
                    &log_path,
                    "building the example binaries timed out",
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(with_log(&log_path, &format!("waiting for cargo: {e}")));
            }
        }
    };
    if !status.success() {
        return Err(with_log(
            &log_path,
            &format!("cargo build failed ({status})"),
        ));
    }
    let _ = std::fs::remove_file(&log_path);
    Ok(profile_dir.to_owned())
}

/// `what`, followed by the last [`LOG_TAIL_LINES`] lines of the build log
/// (which is removed).
fn with_log(log_path: &Path, what: &str) -> String {
    let log = std::fs::read_to_string(log_path).unwrap_or_default();
    let _ = std::fs::remove_file(log_path);
    let tail: Vec<&str> = log.lines().rev().take(LOG_TAIL_LINES).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    format!("{what}:\n{}", tail.join("\n"))
}

/// A number not returned before in this process, for temp file names.
fn unique() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

// ---------------------------------------------------------------------------
// Temporary config files and commands.
// ---------------------------------------------------------------------------

/// A config file under the temp directory, removed when dropped.
pub(crate) struct TempConfig {
    /// Where the file is; pass it as `--config`.
    pub(crate) path: PathBuf,
}

impl TempConfig {
    /// Writes `text` to a fresh file.
    pub(crate) fn new(text: &str) -> TempConfig {
        let path =
            std::env::temp_dir().join(format!("rpc-e2e-{}-{}.toml", std::process::id(), unique()));
        std::fs::write(&path, text).expect("writing a temp config");
        TempConfig { path }
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A command for the example binary `name` (built if need be), isolated from
/// this process's `RPC_AUTHKEY`, `RPC_CODEC` and `NO_COLOR`, with `RUST_LOG=warn`, no
/// stdin, stdout and stderr piped, and killed when dropped.
pub(crate) fn command(name: &str) -> Command {
    let mut command = Command::new(bin(name));
    command
        .env_remove("RPC_AUTHKEY")
        .env_remove("RPC_CODEC")
        .env_remove("NO_COLOR")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs `command` to its end, bounded by [`PROCESS_LIMIT`]; `what` names it
/// in panics.
pub(crate) async fn run(mut command: Command, what: &str) -> Output {
    let child = command
        .spawn()
        .unwrap_or_else(|e| panic!("starting {what}: {e}"));
    within_for(PROCESS_LIMIT, what, child.wait_with_output())
        .await
        .unwrap_or_else(|e| panic!("running {what}: {e}"))
}

/// Output bytes as text, lossily.
pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// ---------------------------------------------------------------------------
// Server processes.
// ---------------------------------------------------------------------------

/// A running server process, killed when dropped. Its stderr is collected in
/// the background (see [`ServerProcess::stderr_text`]); its stdout is kept
/// open, so the server's later writes do not fail, and can be read further
/// with [`ServerProcess::next_line`].
pub(crate) struct ServerProcess {
    /// The process.
    pub(crate) child: Child,
    /// The address from its `listening HOST:PORT` line.
    pub(crate) address: String,
    name: String,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

impl ServerProcess {
    /// Starts `name --config <config>` and reads its `listening HOST:PORT` line.
    pub(crate) async fn start(name: &str, config: &TempConfig) -> ServerProcess {
        let mut command = command(name);
        command.arg("--config").arg(&config.path);
        ServerProcess::spawn(name, command).await
    }

    /// Starts `command` (stdout and stderr piped, as [`command`] makes them)
    /// and reads its `listening HOST:PORT` line, which must name `127.0.0.1`
    /// and a real port.
    pub(crate) async fn spawn(name: &str, mut command: Command) -> ServerProcess {
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut pipe = child.stderr.take().expect("stderr is piped");
        let sink = stderr.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            while let Ok(n) = pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .expect("stderr sink")
                    .extend_from_slice(&buf[..n]);
            }
        });
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
        let mut server = ServerProcess {
            child,
            address: String::new(),
            name: name.to_owned(),
            stdout,
            stderr,
        };
        let first = server.next_line("first line").await;
        let address = first
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("{name}'s first line is {first:?}"))
            .to_owned();
        assert!(address.starts_with("127.0.0.1:"), "{first}");
        assert_ne!(address, "127.0.0.1:0", "the real port is printed");
        server.address = address;
        server
    }

    /// The next line the server prints on stdout, bounded by
    /// [`PROCESS_LIMIT`]; panics, showing its stderr, if there is none.
    pub(crate) async fn next_line(&mut self, what: &str) -> String {
        let line = within_for(PROCESS_LIMIT, what, self.stdout.next_line()).await;
        match line {
            Ok(Some(line)) => line,
            other => panic!(
                "{} printed no {what} ({other:?}); stderr: {}",
                self.name,
                self.stderr_text()
            ),
        }
    }

    /// What the server has written on stderr so far.
    pub(crate) fn stderr_text(&self) -> String {
        text(&self.stderr.lock().expect("stderr sink"))
    }
}
