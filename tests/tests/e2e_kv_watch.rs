//! `kv-watch` against `kv-server`, both as processes, in both codecs: it
//! prints `watching a/`, then exactly the changes another client makes
//! under `a/` (nothing under `b/`), exits 0 on Ctrl-C, and exits non-zero
//! with the reason on stderr when the server goes away.

mod common;

use std::process::ExitStatus;
use std::sync::{Arc, Mutex};

use common::bins::{PROCESS_LIMIT, ServerProcess, TempConfig, command, text};
use common::{CODECS, KEY, within, within_for};
use examples::kv::KeyValueClient;
use rpc_core::Value;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

/// A `[server]` table on `127.0.0.1:0` with the test key.
fn server_config() -> TempConfig {
    TempConfig::new(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nauthkey = \"{KEY}\"\n"
    ))
}

/// A `[client]` table for `address` speaking `codec`.
fn client_config(address: &str, codec: &str) -> TempConfig {
    TempConfig::new(&format!(
        "[client]\nconnect = \"{address}\"\nauthkey = \"{KEY}\"\ncodec = \"{codec}\"\ncall_timeout_ms = 30000\n"
    ))
}

/// A running `kv-watch`, killed when dropped; stdout read line by line,
/// stderr collected in the background.
struct Watch {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Watch {
    fn start(config: &TempConfig, prefix: &str) -> Watch {
        let mut child = command("kv-watch")
            .arg("--config")
            .arg(&config.path)
            .args(["--prefix", prefix])
            .spawn()
            .expect("starting kv-watch");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (mut pipe, sink) = (child.stderr.take().expect("piped"), stderr.clone());
        tokio::spawn(async move {
            let mut all = Vec::new();
            let _ = pipe.read_to_end(&mut all).await;
            sink.lock().expect("stderr sink").extend(all);
        });
        let stdout = BufReader::new(child.stdout.take().expect("piped")).lines();
        Watch {
            child,
            stdout,
            stderr,
        }
    }

    /// The next stdout line, or `None` at its end.
    async fn next_line(&mut self, what: &str) -> Option<String> {
        within_for(PROCESS_LIMIT, what, self.stdout.next_line())
            .await
            .expect("reading kv-watch's stdout")
    }

    /// Sends SIGINT (Ctrl-C).
    async fn interrupt(&mut self) {
        let pid = self.child.id().expect("kv-watch is running").to_string();
        let kill = tokio::process::Command::new("kill")
            .args(["-INT", &pid])
            .status();
        let status = within("kill -INT", kill).await.expect("running kill");
        assert!(status.success(), "kill -INT {pid}: {status}");
    }

    /// Waits for the exit; returns its status and stderr.
    async fn exit(mut self) -> (ExitStatus, String) {
        let status = within_for(PROCESS_LIMIT, "kv-watch to exit", self.child.wait())
            .await
            .expect("waiting for kv-watch");
        // Give the collector a moment to see the pipe close.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let stderr = text(&self.stderr.lock().expect("stderr sink"));
        (status, stderr)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

#[tokio::test]
async fn kv_watch_prints_exactly_the_changes_under_its_prefix_in_both_codecs() {
    let config = server_config();
    let server = ServerProcess::start("kv-server", &config).await;
    for codec in CODECS {
        let client = client_config(&server.address, codec);
        let mut watch = Watch::start(&client, "a/");
        let first = watch.next_line("`watching a/`").await;
        assert_eq!(first.as_deref(), Some("watching a/"), "{codec}");

        let kv = KeyValueClient::new(common::connect(&server.address, codec).await);
        for (key, value) in [
            ("a/1", json!("x")),
            ("b/1", json!(1)),
            ("a/2", json!([1, 2])),
        ] {
            within("set", kv.set(key.into(), Value::from(value)))
                .await
                .unwrap();
        }
        within("delete", kv.delete("a/1".into())).await.unwrap();
        within("delete", kv.delete("b/1".into())).await.unwrap();

        let mut lines = vec![first.unwrap()];
        for _ in 0..3 {
            let line = watch.next_line("a change line").await;
            lines.push(line.unwrap_or_else(|| panic!("{codec}: stdout ended after {lines:?}")));
        }
        watch.interrupt().await;
        while let Some(line) = watch.next_line("the end of stdout").await {
            lines.push(line);
        }
        let expected = [
            "watching a/",
            "set a/1 = \"x\"",
            "set a/2 = [1,2]",
            "delete a/1",
        ];
        assert_eq!(lines, expected, "{codec}");
        let (status, stderr) = watch.exit().await;
        assert!(
            status.success(),
            "{codec}: Ctrl-C exits 0: {status}; {stderr}"
        );
        within("delete", kv.delete("a/2".into())).await.unwrap();
    }
}

#[tokio::test]
async fn kv_watch_exits_non_zero_naming_the_reason_when_the_server_goes_away() {
    let config = server_config();
    let mut server = ServerProcess::start("kv-server", &config).await;
    let client = client_config(&server.address, "bincode");
    let mut watch = Watch::start(&client, "a/");
    let first = watch.next_line("`watching a/`").await;
    assert_eq!(first.as_deref(), Some("watching a/"));

    server.child.start_kill().expect("killing kv-server");
    let rest = watch.next_line("the end of stdout").await;
    assert_eq!(rest, None, "nothing more on stdout");
    let (status, stderr) = watch.exit().await;
    assert!(!status.success(), "{status}; stderr: {stderr}");
    assert!(stderr.contains("the watch ended"), "{stderr}");
    assert!(stderr.to_lowercase().contains("connection"), "{stderr}");
}

#[tokio::test]
async fn kv_watch_against_a_port_nobody_listens_on_prints_nothing_and_fails() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.local_addr().expect("its address").port()
    };
    let client = client_config(&format!("127.0.0.1:{port}"), "json");
    let mut watch = Watch::start(&client, "a/");
    assert_eq!(watch.next_line("the end of stdout").await, None);
    let (status, stderr) = watch.exit().await;
    assert!(!status.success(), "{status}");
    assert!(stderr.contains("error"), "{stderr}");
}
