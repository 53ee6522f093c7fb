//! The bar for client-side balancing, with the example binaries:
//! three `calc-server`s behind one `[client]` listing their addresses, and
//! `calc-load --calls 20000 --concurrency 32 --method add` reporting every
//! call ok while one server is killed (`kill -9`) and restarted mid-run.

mod common;

use std::time::{Duration, Instant};

use common::bins::{PROCESS_LIMIT, ServerProcess, TempConfig, command, text};
use common::{KEY, within_for};

fn server_config(listen: &str) -> TempConfig {
    TempConfig::new(&format!(
        "[server]\nlisten = \"{listen}\"\nauthkey = \"{KEY}\"\n"
    ))
}

#[tokio::test]
async fn calc_load_reports_every_call_ok_while_one_of_three_servers_is_killed_and_restarted() {
    let configs: Vec<_> = (0..3).map(|_| server_config("127.0.0.1:0")).collect();
    let mut servers = Vec::new();
    for config in &configs {
        servers.push(ServerProcess::start("calc-server", config).await);
    }
    let addresses: Vec<String> = servers.iter().map(|s| s.address.clone()).collect();
    let list: Vec<_> = addresses.iter().map(|a| format!("{a:?}")).collect();
    let client = TempConfig::new(&format!(
        "[client]\nconnect = [{}]\nauthkey = \"{KEY}\"\ncall_timeout_ms = 20000\n\
         [client.reconnect]\ninitial_backoff_ms = 50\nmax_backoff_ms = 200\n\
         [client.balance]\nhealth_interval_ms = 200\n",
        list.join(", ")
    ));
    let mut load = command("calc-load");
    load.arg("--config").arg(&client.path);
    load.args(["--calls", "20000", "--concurrency", "32", "--method", "add"]);
    let started = Instant::now();
    let load = load.spawn().expect("starting calc-load");

    // Mid-run: kill -9 the second server, then start it again on its port.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let victim = servers.remove(1);
    let pid = victim.child.id().expect("calc-server is running");
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("running kill");
    assert!(killed.success());
    let killed_at = started.elapsed();
    drop(victim);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let again = server_config(&addresses[1]);
    let _restarted = ServerProcess::start("calc-server", &again).await;

    let output = within_for(PROCESS_LIMIT, "calc-load", load.wait_with_output())
        .await
        .expect("running calc-load");
    let took = started.elapsed();
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{}; stdout: {stdout}; stderr: {}",
        output.status,
        text(&output.stderr)
    );
    assert!(
        took > killed_at,
        "calc-load ended ({took:?}) before the kill ({killed_at:?}): the test proves nothing"
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    eprintln!("{report} in {took:?}, kill at {killed_at:?}");
    assert_eq!(report["ok"], 20000, "{report}");
    assert_eq!(report["failed"], serde_json::json!({}), "{report}");
    let by_endpoint = report["by_endpoint"].as_object().expect("by_endpoint");
    assert_eq!(by_endpoint.len(), 3, "{report}");
    for address in &addresses {
        assert!(by_endpoint[address].as_u64().unwrap() > 0, "{report}");
    }
    assert!(report["p99_us"].as_u64().unwrap() >= report["p50_us"].as_u64().unwrap());
}

#[tokio::test]
async fn calc_server_drains_and_exits_cleanly_on_sigterm_as_kubernetes_stops_a_pod() {
    let config = server_config("127.0.0.1:0");
    let mut server = ServerProcess::start("calc-server", &config).await;
    let pid = server.child.id().expect("calc-server is running");
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("running kill");
    assert!(sent.success());
    let status = within_for(PROCESS_LIMIT, "calc-server to exit", server.child.wait())
        .await
        .expect("waiting for calc-server");
    assert!(
        status.success(),
        "{status}: a SIGTERM must drain and exit 0; stderr: {}",
        server.stderr_text()
    );
}
