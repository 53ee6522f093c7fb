//! Three `ledger-server`s behind a real HAProxy in TCP mode, run from
//! `examples/config/haproxy.cfg` (the README's config; its addresses are
//! environment variables set here), with one client whose `connect` is
//! HAProxy's address and which reconnects (`[client.reconnect]`).
//!
//! A mixed load of idempotent `add` and non-idempotent `record` runs
//! through it while the server the client is connected to is stopped with
//! SIGINT (it drains: `/healthz` answers 503, calls in flight finish, the
//! client is told it is going away), or in the second test with `kill -9`,
//! and later restarted on its old ports.
//! Every call must be accounted for, every `add` must succeed, and the
//! journals must show that no `record` ran twice. Needs `haproxy` on the
//! PATH (`.ci/run` installs it).

mod common;
#[path = "common/many/mod.rs"]
mod many;

use std::path::Path;
use std::time::Duration;

use rpc_transport::ClientConfig;
use tests::ledger::LedgerClient;

use common::{KEY, WAIT, within};
use many::haproxy::Haproxy;
use many::{CALL_TIMEOUT_MS, LedgerServer, Load, RECONNECT, Scratch, Stop, check, three, until};

/// Calls made in each phase: before the SIGINT, after it, after the restart.
const PHASE: u64 = 1500;

/// How long the call that keeps a draining server busy lasts: longer than
/// HAProxy needs to see two failed checks, shorter than the servers'
/// shutdown grace (3 s).
const HOLD_MS: u64 = 1500;

/// A ledger client connected to `server` itself, not through HAProxy.
async fn connect_directly(server: &LedgerServer) -> LedgerClient {
    let config = ClientConfig::builder()
        .no_env()
        .connect(&server.tcp)
        .authkey(KEY)
        .call_timeout(Duration::from_secs(10))
        .build()
        .expect("a valid client config");
    let client = rpc_transport::connect(&config).await;
    LedgerClient::new(client.expect("connecting to the server directly"))
}

/// A reconnecting client config for HAProxy's address.
fn client_config(address: &str) -> ClientConfig {
    let text = format!(
        "[client]\nconnect = \"{address}\"\nauthkey = \"{KEY}\"\ncodec = \"bincode\"\n\
         call_timeout_ms = {CALL_TIMEOUT_MS}\n\n{RECONNECT}"
    );
    ClientConfig::builder()
        .no_env()
        .load_toml(&text)
        .and_then(|builder| builder.build())
        .expect("a valid client config")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_haproxy_a_sigint_and_restart_fail_no_call_at_all() {
    stop_and_restart_behind_haproxy(Stop::Interrupt).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_haproxy_a_kill_9_and_restart_lose_no_idempotent_call_and_run_none_twice() {
    stop_and_restart_behind_haproxy(Stop::Kill).await;
}

/// Three servers behind HAProxy, one client with a mixed load through it;
/// the server it reaches is stopped as `stop` says, then restarted; every
/// outcome is checked against the journals.
async fn stop_and_restart_behind_haproxy(stop: Stop) {
    let scratch = Scratch::new("many-haproxy");
    // 2 ms in each call, so that calls are in flight when the server stops.
    let mut servers = three(&scratch, [2, 2, 2]).await;
    let haproxy = Haproxy::start(&servers).await;
    let config = client_config(&haproxy.address);
    let client = within(
        "the client to connect through haproxy",
        rpc_transport::connect(&config),
    )
    .await
    .expect("connecting through haproxy");
    let load = Load::start(&client, 32, 3);
    load.progress(PHASE, WAIT, "calls before the stop").await;

    // One client holds one connection: the server it reaches is the one
    // whose journal grows. That one is stopped, mid-run.
    let lines: Vec<usize> = servers.iter().map(LedgerServer::journal_len).collect();
    let victim = (0..servers.len())
        .max_by_key(|&i| lines[i])
        .expect("three servers");
    assert!(lines[victim] > 0, "no server journaled a record: {lines:?}");
    let name = servers[victim].name.clone();
    match stop {
        Stop::Interrupt => {
            // A long call, made directly, keeps the server draining while
            // HAProxy takes it out, and still finishes. The gateway stays
            // open while any call runs, so HAProxy reads /healthz's 503.
            let direct = within("a direct connection", connect_directly(&servers[victim])).await;
            let held = tokio::spawn(async move { direct.hold(HOLD_MS).await });
            tokio::time::sleep(Duration::from_millis(200)).await;
            servers[victim].interrupt().await;
            until(&format!("haproxy to mark {name} DOWN"), || {
                haproxy.times(&name, "DOWN") >= 1
            })
            .await;
            let log = haproxy.log_text();
            let down = log
                .lines()
                .find(|l| l.contains(&format!("rpc_servers/{name} is DOWN")))
                .unwrap_or_default();
            assert!(
                down.contains("code: 503"),
                "taken out by its health check: {down}"
            );
            let held = within("the held call to finish", held)
                .await
                .expect("the held call's task");
            assert_eq!(
                held.expect("a call in flight finishes while the server drains"),
                HOLD_MS
            );
            let status = servers[victim].exited().await;
            assert!(
                status.success(),
                "{name} exits 0 after draining, got {status}; stderr: {}",
                servers[victim].stderr_text()
            );
        }
        Stop::Kill => servers[victim].stop_with(stop).await,
    }
    until(&format!("haproxy to mark {name} DOWN"), || {
        haproxy.times(&name, "DOWN") >= 1
    })
    .await;
    load.progress(PHASE, WAIT, "calls through another server after the stop")
        .await;

    // Restarted on its old ports, HAProxy's checks bring it back, and new
    // connections reach it again.
    servers[victim].restart().await;
    until(&format!("haproxy to mark {name} UP again"), || {
        haproxy.times(&name, "UP") >= 1
    })
    .await;
    let before = servers[victim].journal_len();
    let mut probes = Vec::new();
    within(&format!("a new connection to reach {name} again"), async {
        while servers[victim].journal_len() == before {
            let fresh = rpc_transport::connect(&config)
                .await
                .expect("a new connection through haproxy");
            probes.push(load.record_through(&fresh).await);
        }
    })
    .await;
    load.progress(PHASE, WAIT, "calls after the restart").await;

    let (mut outcomes, issued) = load.finish().await;
    outcomes.extend(probes);
    let journals: Vec<&Path> = servers.iter().map(|s| s.journal.as_path()).collect();
    let tally = check(&outcomes, issued, &journals);
    println!("behind haproxy, {name} stopped ({stop:?}) and restarted: {tally}");
    if stop == Stop::Interrupt {
        // A drain cuts nothing off: refusals that did not run are retried.
        assert_eq!(tally.failed(), 0, "no caller sees a drain: {tally}");
    }
    let log = haproxy.log_text();
    let transitions: Vec<&str> = log.lines().filter(|l| l.contains("rpc_servers/")).collect();
    println!("haproxy: {transitions:#?}");
    haproxy.stop().await;
    for server in &mut servers {
        server.stop().await;
    }
}
