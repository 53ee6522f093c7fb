//! The example binaries as processes: `calc-server`, `calc-client`,
//! `kv-server` and `demo`, with temporary config files on `127.0.0.1:0`.
//!
//! Finding the binaries (building them once per test process) and running
//! them is `common::bins`, shared with `http_binaries.rs`.

mod common;

use std::process::{ExitStatus, Stdio};

use common::bins::{PROCESS_LIMIT, ServerProcess, TempConfig, command, run, text};
use common::{CODECS, KEY, client_builder, within, within_for};
use examples::calculator::CalculatorClient;
use examples::kv::{KeyValueClient, KvError};
use rpc_core::{CallError, Value};
use serde_json::json;
use tokio::process::Command;

/// A `[server]` table on `127.0.0.1:0` with the test key, plus `extra` lines.
fn server_config(extra: &str) -> TempConfig {
    TempConfig::new(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nauthkey = \"{KEY}\"\n{extra}"
    ))
}

/// A `[client]` table for `address` with `codec` and `authkey`.
fn client_config(address: &str, codec: &str, authkey: &str) -> TempConfig {
    TempConfig::new(&format!(
        "[client]\nconnect = \"{address}\"\nauthkey = \"{authkey}\"\ncodec = \"{codec}\"\ncall_timeout_ms = 30000\n"
    ))
}

// ---------------------------------------------------------------------------
// calc-server and calc-client.
// ---------------------------------------------------------------------------

const CLIENT_OUTPUT: &str = "add(2, 3) = 5\nsub(2, 3) = -1\n";

#[tokio::test]
async fn calc_client_prints_exactly_add_and_sub_against_calc_server_in_both_codecs() {
    let config = server_config("");
    let server = ServerProcess::start("calc-server", &config).await;
    for codec in CODECS {
        let client = client_config(&server.address, codec, KEY);
        let mut calc_client = command("calc-client");
        calc_client.arg("--config").arg(&client.path);
        let out = run(calc_client, "calc-client").await;
        assert!(
            out.status.success(),
            "{codec}: {}; stderr: {}",
            out.status,
            text(&out.stderr)
        );
        assert_eq!(text(&out.stdout), CLIENT_OUTPUT, "{codec}");
    }
}

#[tokio::test]
async fn rpc_codec_in_the_environment_overrides_the_codec_in_the_file() {
    // A server that accepts only json: a client speaking the file's bincode fails.
    let config = server_config("codecs = [\"json\"]\n");
    let server = ServerProcess::start("calc-server", &config).await;
    let client = client_config(&server.address, "bincode", KEY);

    let mut from_file = command("calc-client");
    from_file.arg("--config").arg(&client.path);
    let out = run(from_file, "calc-client speaking bincode").await;
    assert!(!out.status.success(), "the server accepts only json");
    assert!(
        text(&out.stderr).contains("bincode"),
        "{}",
        text(&out.stderr)
    );

    let mut from_env = command("calc-client");
    from_env
        .arg("--config")
        .arg(&client.path)
        .env("RPC_CODEC", "json");
    let out = run(from_env, "calc-client with RPC_CODEC=json").await;
    assert!(
        out.status.success(),
        "{}; stderr: {}",
        out.status,
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), CLIENT_OUTPUT);
}

#[tokio::test]
async fn calc_client_against_a_port_nobody_listens_on_fails_with_an_error_on_stderr() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a free port");
        listener.local_addr().expect("its address").port()
    };
    let client = client_config(&format!("127.0.0.1:{port}"), "bincode", KEY);
    let mut calc_client = command("calc-client");
    calc_client.arg("--config").arg(&client.path);
    let out = run(calc_client, "calc-client without a server").await;
    assert!(!out.status.success(), "{}", out.status);
    assert_eq!(text(&out.stdout), "", "nothing is printed on stdout");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("error"), "{stderr}");
    assert!(
        stderr.contains(&port.to_string()),
        "the address is named: {stderr}"
    );
}

#[tokio::test]
async fn calc_client_with_the_wrong_authkey_fails_and_says_authentication() {
    let config = server_config("");
    let server = ServerProcess::start("calc-server", &config).await;
    let client = client_config(&server.address, "bincode", "not-the-key");
    let mut calc_client = command("calc-client");
    calc_client.arg("--config").arg(&client.path);
    let out = run(calc_client, "calc-client with the wrong key").await;
    assert!(!out.status.success(), "{}", out.status);
    assert_eq!(text(&out.stdout), "");
    let stderr = text(&out.stderr);
    assert!(stderr.to_lowercase().contains("authentication"), "{stderr}");

    // The server logs the refusal, as plain text: its stderr is a pipe, and
    // colour codes would litter a log file.
    let logged = within("the server to log the refusal", async {
        loop {
            let logged = server.stderr_text();
            if logged.contains("refused a connection") {
                return logged;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        !logged.contains('\u{1b}'),
        "colour codes in a pipe: {logged:?}"
    );

    // The server is still serving good clients.
    let client = client_config(&server.address, "json", KEY);
    let mut calc_client = command("calc-client");
    calc_client.arg("--config").arg(&client.path);
    let out = run(calc_client, "calc-client with the right key").await;
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), CLIENT_OUTPUT);
}

#[tokio::test]
async fn calc_server_with_an_unknown_key_in_its_config_fails_naming_the_key() {
    let config = server_config("listen_backlog = 5\n");
    let mut calc_server = command("calc-server");
    calc_server.arg("--config").arg(&config.path);
    let out = run(calc_server, "calc-server with a bad config").await;
    assert!(!out.status.success(), "{}", out.status);
    assert!(
        !text(&out.stdout).contains("listening"),
        "{}",
        text(&out.stdout)
    );
    let stderr = text(&out.stderr);
    assert!(stderr.contains("listen_backlog"), "{stderr}");
}

#[tokio::test]
async fn calc_server_exits_cleanly_on_sigint() {
    let config = server_config("");
    let mut server = ServerProcess::start("calc-server", &config).await;
    // A served call shows the server is in its serving loop, Ctrl-C handler installed.
    let config = client_builder(&server.address, "bincode").build().unwrap();
    let client = within("connecting to calc-server", rpc_transport::connect(&config))
        .await
        .expect("connecting to calc-server");
    let calc = CalculatorClient::new(client);
    assert_eq!(within("add", calc.add(2, 3)).await.unwrap(), 5);

    let pid = server.child.id().expect("the server is running");
    let kill = run_status(
        Command::new("kill").args(["-INT", &pid.to_string()]),
        "kill -INT",
    )
    .await;
    assert!(kill.success(), "kill -INT {pid}: {kill}");
    let status = within_for(PROCESS_LIMIT, "calc-server to exit", server.child.wait())
        .await
        .expect("waiting for calc-server");
    assert!(
        status.success(),
        "calc-server exits 0 on SIGINT, got {status}; stderr: {}",
        server.stderr_text()
    );
}

async fn run_status(command: &mut Command, what: &str) -> ExitStatus {
    command.stdin(Stdio::null()).kill_on_drop(true);
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("starting {what}: {e}"));
    within_for(PROCESS_LIMIT, what, child.wait())
        .await
        .unwrap_or_else(|e| panic!("running {what}: {e}"))
}

// ---------------------------------------------------------------------------
// kv-server and demo.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn kv_server_serves_the_typed_key_value_client_in_both_codecs() {
    let config = server_config("");
    let server = ServerProcess::start("kv-server", &config).await;
    for codec in CODECS {
        let kv = KeyValueClient::new(common::connect(&server.address, codec).await);
        let spam = Value::from(json!([1, 2, 3]));
        within("set", kv.set("spam".into(), spam.clone()))
            .await
            .unwrap_or_else(|e| panic!("{codec}: set: {e}"));
        match within("get", kv.get("spam".into())).await {
            Ok(v) => assert_eq!(v, spam, "{codec}"),
            Err(e) => panic!("{codec}: get: {e:?}"),
        }
        assert_eq!(
            within("keys", kv.keys()).await.unwrap(),
            ["spam"],
            "{codec}"
        );
        within("delete", kv.delete("spam".into()))
            .await
            .unwrap_or_else(|e| panic!("{codec}: delete: {e:?}"));
        assert!(
            !within("exists", kv.exists("spam".into())).await.unwrap(),
            "{codec}"
        );
        match within("get", kv.get("nope".into())).await {
            Err(CallError::Application(KvError::NotFound { key })) => assert_eq!(key, "nope"),
            other => panic!("{codec}: get(\"nope\") should be NotFound, got {other:?}"),
        }
    }
    drop(server);
}

#[tokio::test]
async fn the_demo_runs_every_step_and_exits_zero() {
    let out = run(command("demo"), "demo").await;
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "{}; stdout: {stdout}; stderr: {}",
        out.status,
        text(&out.stderr)
    );
    for line in [
        "[bincode] add(2, 3) = 5",
        "[bincode] sub(2, 3) = -1",
        "[json] add(2, 3) = 5",
        "[json] sub(2, 3) = -1",
        "div(1, 0) failed with the typed error MathError::DivideByZero",
        "a client with the wrong key was refused",
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(line)),
            "missing {line:?} in:\n{stdout}"
        );
    }
}

// ---------------------------------------------------------------------------
// rpc-bench, the peerbench system.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn rpc_bench_runs_every_scenario_and_prints_one_json_line() {
    // The -tls codec's server writes its certificate here; the client trusts only it.
    let ca = std::env::temp_dir().join(format!("rpc-bench-ca-{}.pem", std::process::id()));
    // `http`: the gateway's POST /rpc through a hyper connection per caller.
    for codec in ["bincode", "json", "bincode-tls", "http"] {
        let mut serve = command("rpc-bench");
        serve.args(["server", "--addr", "127.0.0.1:0", "--codec", codec]);
        serve.env("PEERBENCH_TLS_CA", &ca);
        let server = ServerProcess::spawn("rpc-bench server", serve).await;
        for scenario in ["seq", "pipe", "fanin", "payload", "stream", "many"] {
            let mut client = command("rpc-bench");
            client.args([
                "client",
                "--addr",
                &server.address,
                "--scenario",
                scenario,
                "--codec",
                codec,
            ]);
            client.env("PEERBENCH_TLS_CA", &ca);
            client.args([
                "--duration-s",
                "0.3",
                "--warmup-s",
                "0.05",
                "--payload-bytes",
                "65536",
            ]);
            if scenario == "many" {
                // 2,000 by default: 20 show that they are opened and used.
                client.args(["--conns", "20"]);
            }
            let out = run(client, "rpc-bench client").await;
            assert!(
                out.status.success(),
                "{scenario}/{codec}: {}",
                text(&out.stderr)
            );
            let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
                panic!(
                    "{scenario}/{codec}: not one JSON line ({e}): {}",
                    text(&out.stdout)
                )
            });
            assert_eq!(line["system"], "rpc");
            assert_eq!(line["scenario"], scenario);
            assert_eq!(line["codec"], codec);
            assert!(line["calls"].as_u64().unwrap() > 0, "{line}");
            if scenario == "many" {
                assert_eq!(line["conns"], 20, "{line}");
            }
            assert_eq!(line["mb_per_s"].is_null(), scenario != "payload", "{line}");
            // A stream's items come in batches: no per-item latency.
            assert_eq!(line["p50_us"].is_null(), scenario == "stream", "{line}");
        }
    }
    let _ = std::fs::remove_file(&ca);
}

#[tokio::test]
async fn rpc_bench_tls_server_refuses_a_plaintext_client() {
    let ca = std::env::temp_dir().join(format!("rpc-bench-ca-refuse-{}.pem", std::process::id()));
    let mut serve = command("rpc-bench");
    serve.args([
        "server",
        "--addr",
        "127.0.0.1:0",
        "--codec",
        "bincode",
        "--tls",
    ]);
    serve.env("PEERBENCH_TLS_CA", &ca);
    let server = ServerProcess::spawn("rpc-bench server", serve).await;
    assert!(ca.exists(), "the certificate is written before the address");
    let mut client = command("rpc-bench");
    client.args(["client", "--addr", &server.address, "--scenario", "seq"]);
    client.args([
        "--codec",
        "bincode",
        "--duration-s",
        "0.1",
        "--warmup-s",
        "0",
    ]);
    let out = run(client, "rpc-bench client").await;
    assert!(!out.status.success(), "{}", text(&out.stdout));
    // Both ends wait 5 s (the server for a ClientHello, the client for a
    // challenge): whichever gives up first, the client names the cause.
    let stderr = text(&out.stderr);
    assert!(stderr.contains("configure [client.tls]"), "{stderr}");
    let _ = std::fs::remove_file(&ca);
}

// ---------------------------------------------------------------------------
// soak, the reliability run.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_short_soak_accounts_for_every_call_and_the_server_settles() {
    let mut soak = command("soak");
    soak.args(["--duration-s", "2", "--clients", "8", "--in-flight", "4"]);
    let out = run(soak, "soak").await;
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not one JSON object ({e}): {}", text(&out.stdout)));
    assert!(report["calls"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["calls"], report["accounted"], "{report}");
    assert_eq!(report["wrong"], 0, "{report}");
    assert_eq!(report["server_settled"], true, "{report}");
    for outcome in ["ok", "app_error", "panic_error"] {
        assert!(
            report[outcome].as_u64().unwrap() > 0,
            "no {outcome}: {report}"
        );
    }
}
