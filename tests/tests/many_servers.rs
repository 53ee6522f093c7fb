//! Client-side balancing over three `ledger-server`s: one client whose
//! `connect` lists the three addresses, with `[client.balance]`.
//!
//! - A mixed load of idempotent `add` and non-idempotent `record` runs while
//!   one server is killed with `kill -9` (its connections reset, calls in
//!   flight cut off) and later restarted on its old port: every call is
//!   accounted for, every `add` succeeds (retried on another endpoint), no
//!   `record` runs twice (the journals), and the restarted server gets
//!   calls again (`Balancer::endpoints`).
//! - The same with SIGINT (the server drains): no call fails at all.
//! - `least_request` sends fewer calls to a slowed server than to each
//!   fast one: compared by the calls each endpoint took, not by time.

mod common;
#[path = "common/many/mod.rs"]
mod many;

use std::path::Path;
use std::time::Duration;

use rpc_transport::{Balancer, ClientConfig};

use common::{KEY, WAIT, within};
use many::{CALL_TIMEOUT_MS, LedgerServer, Load, RECONNECT, Scratch, Stop, check, three, until};

/// Calls made in each phase: before the kill, after it, after the restart.
const PHASE: u64 = 1500;

/// How long a phase may take.
const PHASE_WAIT: Duration = Duration::from_secs(20);

/// A client config for `servers` with `[client.balance]` (`policy`, health
/// checks every 100 ms) and a fast `[client.reconnect]`.
fn balanced_config(servers: &[LedgerServer], policy: &str) -> ClientConfig {
    let addresses: Vec<String> = servers.iter().map(|s| format!("\"{}\"", s.tcp)).collect();
    let text = format!(
        "[client]\nconnect = [{}]\nauthkey = \"{KEY}\"\ncodec = \"bincode\"\n\
         call_timeout_ms = {CALL_TIMEOUT_MS}\n\n{RECONNECT}\n\
         [client.balance]\npolicy = \"{policy}\"\nhealth_interval_ms = 100\nmax_retries = 2\n",
        addresses.join(", ")
    );
    ClientConfig::builder()
        .no_env()
        .load_toml(&text)
        .and_then(|builder| builder.build())
        .expect("a valid client config")
}

/// The balancer's view of the endpoint at `address`: (up, calls, ejections).
fn endpoint(balancer: &Balancer, address: &str) -> (bool, u64, u64) {
    let stats = balancer.endpoints();
    let endpoint = stats
        .iter()
        .find(|e| e.address == address)
        .unwrap_or_else(|| panic!("no endpoint {address} in {stats:?}"));
    (endpoint.up, endpoint.calls, endpoint.ejections)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balanced_over_three_a_kill_9_and_restart_lose_no_idempotent_call_and_run_none_twice() {
    stop_and_restart_balanced(Stop::Kill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balanced_over_three_a_sigint_and_restart_fail_no_call_at_all() {
    stop_and_restart_balanced(Stop::Interrupt).await;
}

/// A mixed load over three balanced servers; `s2` is stopped as `stop`
/// says, then restarted; every outcome is checked against the journals,
/// and the restarted server must take calls again.
async fn stop_and_restart_balanced(stop: Stop) {
    let scratch = Scratch::new("many-servers");
    // 2 ms in each call, so that calls are in flight when the server stops.
    let mut servers = three(&scratch, [2, 2, 2]).await;
    let config = balanced_config(&servers, "least_request");
    let balancer = within("the balancer to connect", Balancer::connect(&config))
        .await
        .expect("connecting to three servers");
    let client = balancer.client();
    let load = Load::start(&client, 32, 3);
    load.progress(PHASE, PHASE_WAIT, "calls before the stop")
        .await;

    let victim = 1;
    let (address, name) = (servers[victim].tcp.clone(), servers[victim].name.clone());
    let (up, calls, _) = endpoint(&balancer, &address);
    assert!(
        up && calls > 0,
        "{name} took calls before the stop: {:?}",
        balancer.endpoints()
    );
    servers[victim].stop_with(stop).await;
    load.progress(PHASE, PHASE_WAIT, "calls to the two left after the stop")
        .await;
    until(&format!("the balancer to eject {name}"), || {
        !endpoint(&balancer, &address).0
    })
    .await;

    // Restarted on its old port, it is re-added and takes calls again.
    servers[victim].restart().await;
    let (_, at_restart, _) = endpoint(&balancer, &address);
    until(&format!("{name} to take calls again"), || {
        let (up, calls, _) = endpoint(&balancer, &address);
        up && calls > at_restart + 20
    })
    .await;
    load.progress(PHASE, PHASE_WAIT, "calls after the restart")
        .await;

    let (outcomes, issued) = load.finish().await;
    let journals: Vec<&Path> = servers.iter().map(|s| s.journal.as_path()).collect();
    let tally = check(&outcomes, issued, &journals);
    let stats = balancer.endpoints();
    println!("balanced over three, {name} stopped ({stop:?}) and restarted: {tally}");
    println!("endpoints: {stats:?}");
    if stop == Stop::Interrupt {
        // A drain cuts nothing off: refusals that did not run are retried,
        // and new calls go to the others.
        assert_eq!(tally.failed(), 0, "no caller sees a drain: {tally}");
    }
    let (_, calls, ejections) = endpoint(&balancer, &address);
    // A dead connection is an ejection; a going-away (seen above as the
    // endpoint down) need not be.
    if stop == Stop::Kill {
        assert!(ejections >= 1, "{name} was ejected: {stats:?}");
    }
    assert!(
        calls > at_restart,
        "{name} took calls after its restart: {stats:?}"
    );
    for server in &mut servers {
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_request_sends_fewer_calls_to_a_slowed_server() {
    let scratch = Scratch::new("many-least");
    // s3's `add` takes 50 ms; s1's and s2's answer at once.
    let mut servers = three(&scratch, [0, 0, 50]).await;
    let config = balanced_config(&servers, "least_request");
    let balancer = within("the balancer to connect", Balancer::connect(&config))
        .await
        .expect("connecting to three servers");
    // `add` only: 8 callers, each waiting for its answer before the next call.
    let client = balancer.client();
    let load = Load::start(&client, 8, 0);
    load.progress(600, WAIT * 2, "600 calls").await;
    let (outcomes, issued) = load.finish().await;
    let journals: Vec<&Path> = servers.iter().map(|s| s.journal.as_path()).collect();
    let tally = check(&outcomes, issued, &journals);

    let calls: Vec<u64> = servers
        .iter()
        .map(|s| endpoint(&balancer, &s.tcp).1)
        .collect();
    println!("least_request, s3 slowed by 50 ms: {tally}; calls per endpoint {calls:?}");
    let (fast, slow) = (calls[0].min(calls[1]), calls[2]);
    assert!(
        fast >= 3 * slow.max(1),
        "each fast server takes at least 3 times the slow one's calls: {calls:?}"
    );
    for server in &mut servers {
        server.stop().await;
    }
}

/// The calls each of `servers` took after an `add`-only load of `calls`
/// calls from 8 callers with `policy`.
async fn calls_per_endpoint(servers: &[LedgerServer], policy: &str, calls: u64) -> Vec<u64> {
    let balancer = within(
        "the balancer to connect",
        Balancer::connect(&balanced_config(servers, policy)),
    )
    .await
    .expect("connecting to three servers");
    let client = balancer.client();
    let load = Load::start(&client, 8, 0);
    load.progress(calls, PHASE_WAIT, "the calls").await;
    let (outcomes, issued) = load.finish().await;
    let journals: Vec<&Path> = servers.iter().map(|s| s.journal.as_path()).collect();
    let tally = check(&outcomes, issued, &journals);
    let taken: Vec<u64> = servers
        .iter()
        .map(|s| endpoint(&balancer, &s.tcp).1)
        .collect();
    println!("{policy}: {tally}; calls per endpoint {taken:?}");
    assert_eq!(
        taken.iter().sum::<u64>(),
        issued,
        "every call went to one endpoint"
    );
    taken
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_spreads_calls_evenly_and_pick_first_sends_them_all_to_the_first() {
    let scratch = Scratch::new("many-policies");
    let mut servers = three(&scratch, [0, 0, 0]).await;

    let taken = calls_per_endpoint(&servers, "round_robin", 600).await;
    let (least, most) = (taken.iter().min(), taken.iter().max());
    let (least, most) = (*least.expect("three"), *most.expect("three"));
    assert!(
        most - least <= most / 10 + 8,
        "round_robin takes turns: {taken:?}"
    );

    let taken = calls_per_endpoint(&servers, "pick_first", 300).await;
    assert!(
        taken[0] > 0 && taken[1] == 0 && taken[2] == 0,
        "pick_first uses the first endpoint while it is up: {taken:?}"
    );
    for server in &mut servers {
        server.stop().await;
    }
}
