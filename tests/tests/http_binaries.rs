//! `kv-server` and `calc-server` with an `[http]` table, as processes: they
//! print `http listening HOST:PORT` after `listening HOST:PORT`, Python's
//! `xmlrpc.client` runs the recipe against `kv-server`, and a file whose
//! HTTP password is the authkey is refused at start.
//!
//! Like `e2e_binaries.rs`, the first test that needs the binaries runs
//! `cargo build -p examples --bins` into this test's target directory.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{KEY, within_for};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const PASSWORD: &str = "binary-http-password";

/// How long building the binaries, or running a process, may take.
const BUILD_LIMIT: Duration = Duration::from_secs(20 * 60);
const PROCESS_LIMIT: Duration = Duration::from_secs(60);

/// The directory of the example binaries, built once per test process.
fn bin(name: &str) -> PathBuf {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = DIR.get_or_init(build).as_ref();
    let dir = dir.unwrap_or_else(|e| panic!("the example binaries are not available: {e}"));
    dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

fn build() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("the test binary is not in target/<profile>/deps")?;
    let target_dir = profile_dir.parent().ok_or("no target directory")?;
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("no workspace directory")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = std::process::Command::new(&cargo);
    command
        .args(["build", "-q", "-p", "examples", "--bins", "--target-dir"])
        .arg(target_dir)
        .current_dir(workspace)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        command.arg("--release");
    }
    let mut child = command.spawn().map_err(|e| format!("running cargo: {e}"))?;
    let started = std::time::Instant::now();
    loop {
        match child
            .try_wait()
            .map_err(|e| format!("waiting for cargo: {e}"))?
        {
            Some(status) if status.success() => return Ok(profile_dir.to_owned()),
            Some(status) => {
                let out = child.wait_with_output().map_err(|e| e.to_string())?;
                let stderr = String::from_utf8_lossy(&out.stderr);
                return Err(format!("cargo build failed ({status}):\n{stderr}"));
            }
            None if started.elapsed() > BUILD_LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("building the example binaries timed out".into());
            }
            None => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// A config file in the temp directory, removed when dropped.
struct TempConfig(PathBuf);

impl TempConfig {
    fn new(http_password: &str) -> TempConfig {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("rpc-http-{}-{n}.toml", std::process::id()));
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nauthkey = \"{KEY}\"\n\n\
             [http]\nlisten = \"127.0.0.1:0\"\npassword = \"{http_password}\"\n"
        );
        std::fs::write(&path, text).expect("writing a temp config");
        TempConfig(path)
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn command(name: &str, config: &TempConfig) -> Command {
    let mut command = Command::new(bin(name));
    command
        .arg("--config")
        .arg(&config.0)
        .env_remove("RPC_AUTHKEY")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Starts `name` and reads its two address lines: (process, tcp, http).
async fn start(name: &str, config: &TempConfig) -> (Child, String, String) {
    let mut child = command(name, config)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {name}: {e}"));
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let mut addresses = Vec::new();
    for _ in 0..2 {
        let line = within_for(PROCESS_LIMIT, "an address line", lines.next_line()).await;
        match line {
            Ok(Some(line)) => addresses.push(line),
            other => panic!("{name} printed {addresses:?}, then {other:?}"),
        }
    }
    // Keep reading stdout so the server's later writes do not fail.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let [tcp, http] = <[String; 2]>::try_from(addresses).expect("two lines");
    let tcp = tcp
        .strip_prefix("listening ")
        .expect("the TCP line")
        .to_owned();
    let http = http
        .strip_prefix("http listening ")
        .expect("the HTTP line")
        .to_owned();
    assert!(
        http.starts_with("127.0.0.1:") && !http.ends_with(":0"),
        "{http}"
    );
    (child, tcp, http)
}

#[tokio::test]
async fn python_xmlrpc_client_runs_the_recipe_against_kv_server() {
    let config = TempConfig::new(PASSWORD);
    let (_child, _, http) = start("kv-server", &config).await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/http_xmlrpc.py");
    let run = Command::new("python3")
        .arg(&script)
        .args([&http, PASSWORD])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = within_for(PROCESS_LIMIT, "the Python session", run)
        .await
        .expect("python3 runs; is it installed?");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("s.get('spam') -> [1, 2, 3]"), "{stdout}");
}

#[tokio::test]
async fn curl_calls_calc_server_over_http() {
    let config = TempConfig::new(PASSWORD);
    let (_child, _, http) = start("calc-server", &config).await;
    let credentials = format!("rpc:{PASSWORD}");
    let run = Command::new("curl")
        .args(["-s", "-u", &credentials])
        .arg(format!("http://{http}/Calculator/add?x=2&y=3"))
        .kill_on_drop(true)
        .output();
    let out = within_for(PROCESS_LIMIT, "curl", run)
        .await
        .expect("curl runs; is it installed?");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "5");
}

#[tokio::test]
async fn a_server_whose_http_password_is_the_authkey_refuses_to_start() {
    let config = TempConfig::new(KEY);
    let out = within_for(
        PROCESS_LIMIT,
        "kv-server",
        command("kv-server", &config).output(),
    )
    .await
    .expect("kv-server runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the [http] password is the [server] authkey"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "it listened anyway");
}
