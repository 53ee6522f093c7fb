//! `kv-server` and `calc-server` with an `[http]` table, as processes: they
//! print `http listening HOST:PORT` after `listening HOST:PORT`, Python's
//! `xmlrpc.client` runs the recipe against `kv-server`, and a file whose
//! HTTP password is the authkey is refused at start.
//!
//! Like `e2e_binaries.rs`, this finds the binaries (building them once per
//! test process) and runs them with `common::bins`.

mod common;

use std::path::Path;
use std::process::Stdio;

use common::bins::{PROCESS_LIMIT, ServerProcess, TempConfig, command, run};
use common::{KEY, within_for};
use tokio::process::Command;

const PASSWORD: &str = "binary-http-password";

/// A config with a `[server]` table and an `[http]` table on `127.0.0.1:0`,
/// the test key, and `http_password`.
fn http_config(http_password: &str) -> TempConfig {
    TempConfig::new(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nauthkey = \"{KEY}\"\n\n\
         [http]\nlisten = \"127.0.0.1:0\"\npassword = \"{http_password}\"\n"
    ))
}

/// Starts `name` and reads its two address lines, `listening HOST:PORT` then
/// `http listening HOST:PORT`: (process, http address).
async fn start(name: &str, config: &TempConfig) -> (ServerProcess, String) {
    let mut server = ServerProcess::start(name, config).await;
    let line = server.next_line("HTTP line").await;
    let http = line
        .strip_prefix("http listening ")
        .unwrap_or_else(|| panic!("{name}'s second line is {line:?}"))
        .to_owned();
    assert!(
        http.starts_with("127.0.0.1:") && !http.ends_with(":0"),
        "{http}"
    );
    (server, http)
}

#[tokio::test]
async fn python_xmlrpc_client_runs_the_recipe_against_kv_server() {
    let config = http_config(PASSWORD);
    let (_server, http) = start("kv-server", &config).await;
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
    let config = http_config(PASSWORD);
    let (_server, http) = start("calc-server", &config).await;
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
    let config = http_config(KEY);
    let mut kv_server = command("kv-server");
    kv_server.arg("--config").arg(&config.path);
    let out = run(kv_server, "kv-server").await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the [http] password is the [server] authkey"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "it listened anyway");
}
