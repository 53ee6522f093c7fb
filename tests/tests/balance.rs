//! Client-side balancing (`connect` as a list, `[client.balance]`): calls
//! spread by the policy, a server going away hands its new calls to the
//! others without an error, a lost connection retries only what is safe to
//! repeat, and an endpoint that stops answering pings is ejected.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rpc_core::{ErrorKind, Registry};
use rpc_transport::{Balancer, ClientConfig, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use common::{KEY, ServerGuard, TaskGuard, serve_with, server_builder, within};

/// What each server remembers.
#[rpc_core::rpc_service]
pub trait Tally {
    /// The server's name.
    #[rpc(idempotent)]
    async fn who(&self) -> String;

    /// The server's name, after `ms` milliseconds.
    #[rpc(idempotent)]
    async fn slow_who(&self, ms: u64) -> String;

    /// Records `token` (not safe to repeat), after `ms` milliseconds.
    async fn bump(&self, token: u64, ms: u64) -> String;
}

#[derive(Clone)]
struct Node {
    name: &'static str,
    /// Every token recorded, by every node of a test.
    ledger: Arc<Mutex<Vec<(u64, &'static str)>>>,
}

impl Tally for Node {
    async fn who(&self) -> String {
        self.name.into()
    }

    async fn slow_who(&self, ms: u64) -> String {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        self.name.into()
    }

    async fn bump(&self, token: u64, ms: u64) -> String {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        self.ledger.lock().unwrap().push((token, self.name));
        self.name.into()
    }
}

fn registry(node: &Node) -> Registry {
    Registry::new()
        .with(TallyServer::new(node.clone()))
        .unwrap()
}

/// A balancing client over `addresses`, with `balance` as its
/// `[client.balance]` table's body.
async fn balancer(addresses: &[&str], balance: &str) -> Balancer {
    let list: Vec<_> = addresses.iter().map(|a| format!("{a:?}")).collect();
    let text = format!(
        "[client]\nconnect = [{}]\nauthkey = \"{KEY}\"\ncall_timeout_ms = 10000\n\
         [client.reconnect]\ninitial_backoff_ms = 20\nmax_backoff_ms = 100\n\
         [client.balance]\n{balance}\n",
        list.join(", ")
    );
    let config = ClientConfig::builder()
        .no_env()
        .load_toml(&text)
        .unwrap()
        .build()
        .unwrap();
    within("the balancer to connect", Balancer::connect(&config))
        .await
        .unwrap()
}

/// Servers `a` and `b`, sharing one ledger.
async fn two_servers() -> (Vec<Node>, ServerGuard, ServerGuard) {
    let nodes = nodes(&["a", "b"]);
    let config = server_builder().build().unwrap();
    let a = serve_with(config.clone(), registry(&nodes[0])).await;
    let b = serve_with(config, registry(&nodes[1])).await;
    (nodes, a, b)
}

fn nodes(names: &[&'static str]) -> Vec<Node> {
    let ledger = Arc::default();
    names
        .iter()
        .map(|&name| Node {
            name,
            ledger: Arc::clone(&ledger),
        })
        .collect()
}

#[tokio::test]
async fn round_robin_takes_each_endpoint_in_turn_and_counts_its_calls() {
    let (_nodes, a, b) = two_servers().await;
    let balancer = balancer(&[&a.address, &b.address], "policy = \"round_robin\"").await;
    let client = TallyClient::new(balancer.client());
    let mut names = Vec::new();
    for _ in 0..10 {
        names.push(within("who", client.who()).await.unwrap());
    }
    assert_eq!(names.iter().filter(|n| *n == "a").count(), 5, "{names:?}");
    let stats = balancer.endpoints();
    assert_eq!(stats.len(), 2);
    for endpoint in &stats {
        assert!(endpoint.up, "{endpoint:?}");
        assert_eq!((endpoint.calls, endpoint.in_flight), (5, 0), "{endpoint:?}");
        assert_eq!(
            (endpoint.ejections, endpoint.retries),
            (0, 0),
            "{endpoint:?}"
        );
    }
    assert_eq!(stats[0].address, a.address);
}

/// A server that drains gracefully when told to.
struct Draining {
    address: String,
    stop: Option<oneshot::Sender<()>>,
    task: TaskGuard<()>,
}

async fn serve_draining(node: &Node) -> Draining {
    let config = server_builder()
        .limits(rpc_transport::limits::Limits {
            shutdown_grace: Duration::from_secs(5),
            ..Default::default()
        })
        .build()
        .unwrap();
    let listening = within("bind", Server::new(config, registry(node)).bind())
        .await
        .unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let address = listening.local_addr().to_owned();
    let task = tokio::spawn(listening.serve_until(async {
        let _ = stopped.await;
    }));
    Draining {
        address,
        stop: Some(stop),
        task: TaskGuard(task),
    }
}

#[tokio::test]
async fn a_server_going_away_hands_new_calls_to_the_others_and_no_caller_sees_an_error() {
    let nodes = nodes(&["a", "b"]);
    let mut a = serve_draining(&nodes[0]).await;
    let b = serve_with(server_builder().build().unwrap(), registry(&nodes[1])).await;
    let balancer = balancer(&[&a.address, &b.address], "policy = \"round_robin\"").await;
    let client = TallyClient::new(balancer.client());
    let load = |from: u64| {
        let client = client.clone();
        tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for i in 0..40 {
                let token = from * 1000 + i;
                outcomes.push(client.bump(token, 5).await.map(|_| token));
                outcomes.push(client.who().await.map(|_| 0));
            }
            outcomes
        })
    };
    let tasks: Vec<_> = (1..=8).map(load).collect();
    tokio::time::sleep(Duration::from_millis(60)).await;
    let _ = a.stop.take().unwrap().send(());
    let mut tokens = Vec::new();
    for task in tasks {
        for outcome in within("the load", task).await.unwrap() {
            let token = outcome.unwrap_or_else(|e| panic!("a caller saw the drain: {e}"));
            if token != 0 {
                tokens.push(token);
            }
        }
    }
    within("a to stop", &mut a.task.0).await.unwrap();
    let mut ledger: Vec<u64> = nodes[0]
        .ledger
        .lock()
        .unwrap()
        .iter()
        .map(|t| t.0)
        .collect();
    ledger.sort_unstable();
    tokens.sort_unstable();
    assert_eq!(ledger, tokens, "each bump ran exactly once");
    let stats = balancer.endpoints();
    assert_eq!(
        stats[0].ejections, 0,
        "going away is not a failure: {stats:?}"
    );
    assert!(!stats[0].up, "{stats:?}");
    assert!(stats[1].calls > stats[0].calls, "{stats:?}");
}

#[tokio::test]
async fn a_lost_connection_retries_an_idempotent_call_elsewhere_and_never_a_non_idempotent_one() {
    let (nodes, mut a, b) = two_servers().await;
    // pick_first: every call goes to `a` while it is up.
    let balancer = balancer(&[&a.address, &b.address], "policy = \"pick_first\"").await;
    let client = TallyClient::new(balancer.client());
    let idempotent = tokio::spawn({
        let client = client.clone();
        async move { client.slow_who(500).await }
    });
    let once = tokio::spawn({
        let client = client.clone();
        async move { client.bump(7, 500).await }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    a.stop().await;
    let retried = within("the idempotent call", idempotent).await.unwrap();
    assert_eq!(retried.unwrap(), "b", "retried on the other endpoint");
    let lost = within("the non-idempotent call", once)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(lost.kind(), ErrorKind::ConnectionLost, "{lost}");
    assert!(
        lost.to_string().contains("may or may not have run"),
        "{lost}"
    );
    assert!(!lost.not_run(), "{lost}");
    // `a` was aborted before it could record it; `b` never saw it.
    assert!(nodes[1].ledger.lock().unwrap().is_empty());
    let stats = balancer.endpoints();
    assert_eq!(stats[0].retries, 1, "{stats:?}");
    assert_eq!(stats[1].calls, 1, "{stats:?}");
}

#[tokio::test]
async fn an_endpoint_that_stops_answering_pings_is_ejected_and_its_calls_go_elsewhere() {
    let (_nodes, a, b) = two_servers().await;
    let (proxy, frozen, _proxy_task) = freezable_proxy(&a.address).await;
    let balancer = balancer(
        &[&proxy, &b.address],
        "policy = \"pick_first\"\nhealth_interval_ms = 100",
    )
    .await;
    let client = TallyClient::new(balancer.client());
    assert_eq!(within("who", client.who()).await.unwrap(), "a");
    frozen.store(true, Ordering::SeqCst);
    // A call sent into the silence is retried once the ping fails.
    let answer = within("a call through the frozen endpoint", client.who()).await;
    assert_eq!(answer.unwrap(), "b");
    let stats = balancer.endpoints();
    assert!(stats[0].ejections >= 1 && !stats[0].up, "{stats:?}");
    assert_eq!(within("who", client.who()).await.unwrap(), "b");
}

/// A TCP relay to `target` that can be frozen: it then stops passing bytes
/// either way, as a hung host or a dead path would.
async fn freezable_proxy(target: &str) -> (String, Arc<AtomicBool>, TaskGuard<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let frozen = Arc::new(AtomicBool::new(false));
    let target = target.to_owned();
    let task = tokio::spawn({
        let frozen = frozen.clone();
        async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let Ok(outbound) = TcpStream::connect(&target).await else {
                    continue;
                };
                let (ri, wi) = inbound.into_split();
                let (ro, wo) = outbound.into_split();
                tokio::spawn(pass(ri, wo, frozen.clone()));
                tokio::spawn(pass(ro, wi, frozen.clone()));
            }
        }
    });
    (address, frozen, TaskGuard(task))
}

async fn pass(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<AtomicBool>,
) {
    let mut buf = vec![0; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Frozen: what was read is held, never passed on.
        while frozen.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn a_refusal_that_did_not_run_is_retried_elsewhere_whatever_the_method() {
    let nodes = nodes(&["a", "b"]);
    let config = server_builder().build().unwrap();
    // `a` refuses every call before its handler, as a draining server does.
    let mut refusing = registry(&nodes[0]);
    refusing.layer(rpc_core::layer::from_fn(|call, _next| async move {
        let kind = match call.method() {
            "who" => ErrorKind::InvalidParams,
            _ => ErrorKind::ShuttingDown,
        };
        Err(rpc_core::Error::new(kind, "refused before the handler").into())
    }));
    let a = serve_with(config.clone(), refusing).await;
    let b = serve_with(config, registry(&nodes[1])).await;
    let balancer = balancer(&[&a.address, &b.address], "policy = \"pick_first\"").await;
    let client = TallyClient::new(balancer.client());
    // Not idempotent, but it did not run: sent again, to `b`.
    assert_eq!(within("bump", client.bump(1, 0)).await.unwrap(), "b");
    assert_eq!(nodes[1].ledger.lock().unwrap().as_slice(), [(1, "b")]);
    // Refused for what the call is, not where it went: not sent again.
    let refused = within("who", client.who()).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::InvalidParams, "{refused}");
    assert!(refused.not_run(), "{refused}");
    let stats = balancer.endpoints();
    assert_eq!((stats[0].calls, stats[0].retries), (2, 1), "{stats:?}");
    assert_eq!(stats[1].calls, 1, "{stats:?}");
}

#[tokio::test]
async fn a_lone_server_going_away_costs_a_client_that_does_not_wait_no_error() {
    let nodes = nodes(&["a"]);
    let mut a = serve_draining(&nodes[0]).await;
    let address = a.address.clone();
    // One address, `[client.reconnect]` with `wait = false` (the default):
    // as behind HAProxy, the calls made while the connection is handed over
    // wait for the new one instead of failing.
    let text = format!(
        "[client]\nconnect = \"{address}\"\nauthkey = \"{KEY}\"\ncall_timeout_ms = 10000\n\
         [client.reconnect]\ninitial_backoff_ms = 20\nmax_backoff_ms = 100\n"
    );
    let config = ClientConfig::builder()
        .no_env()
        .load_toml(&text)
        .unwrap()
        .build()
        .unwrap();
    let client = TallyClient::new(
        within("connect", rpc_transport::connect(&config))
            .await
            .unwrap(),
    );
    let load: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                for _ in 0..60 {
                    outcomes.push(client.who().await);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                outcomes
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let _ = a.stop.take().unwrap().send(());
    within("a to stop", &mut a.task.0).await.unwrap();
    // Its successor on the same address.
    let config = server_builder().listen(&address).build().unwrap();
    let _b = within("the successor to bind", async {
        loop {
            match Server::new(config.clone(), registry(&nodes[0]))
                .bind()
                .await
            {
                Ok(listening) => break TaskGuard(tokio::spawn(listening.serve())),
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    })
    .await;
    for task in load {
        for outcome in within("the load", task).await.unwrap() {
            outcome.unwrap_or_else(|e| panic!("a caller saw the handover: {e}"));
        }
    }
}

#[tokio::test]
async fn a_frozen_endpoint_is_ejected_even_while_its_calls_keep_timing_out() {
    let (_nodes, a, b) = two_servers().await;
    let (proxy, frozen, _proxy_task) = freezable_proxy(&a.address).await;
    let balancer = balancer(
        &[&proxy, &b.address],
        "policy = \"round_robin\"\nhealth_interval_ms = 200\nmax_retries = 0",
    )
    .await;
    // Calls give up sooner than the health interval: a timed-out call is
    // no sign of life.
    let client = TallyClient::new(balancer.client().with_timeout(Duration::from_millis(50)));
    frozen.store(true, Ordering::SeqCst);
    within("the frozen endpoint to be ejected", async {
        loop {
            let _ = client.who().await;
            if balancer.endpoints()[0].ejections > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    // Every call now goes to `b`.
    for _ in 0..4 {
        assert_eq!(within("who", client.who()).await.unwrap(), "b");
    }
}
