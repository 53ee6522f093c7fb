//! The service the HTTP stream tests call, and a gateway serving it (and
//! its TCP listener, for Python peers) on `127.0.0.1:0`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use rpc_core::{Error, ErrorKind, Registry, Stream};
use rpc_transport::Server;
use rpc_transport::config::Limits;
use rpc_transport::http::{HttpConfig, HttpGateway};
use tokio::process::Command;
use tokio::task::JoinHandle;

use crate::common::{server_builder, within, within_for};

pub(crate) const PASSWORD: &str = "http-streams-password";

#[rpc_core::rpc_service]
/// Numbers streamed over HTTP.
pub trait Ticks {
    /// 0..n, then the end.
    #[rpc(idempotent)]
    async fn count(&self, n: u64) -> Stream<u64>;
    /// 0..n, then an application error.
    async fn fail_after(&self, n: u64) -> Stream<u64>;
    /// 0, 1, 2… until the receiver goes away (which the drop flag records).
    #[rpc(idempotent)]
    async fn forever(&self) -> Stream<u64>;
    /// 0, 1, 2… as fast as they are taken (`produced` counts them).
    #[rpc(idempotent)]
    async fn many(&self) -> Stream<u64>;
    /// 1.5, then NaN, which JSON cannot carry.
    #[rpc(idempotent)]
    async fn ratios(&self) -> Stream<f64>;
    /// A plain call.
    async fn add(&self, a: i64, b: i64) -> i64;
    /// Takes a stream: only TCP carries it.
    async fn total(&self, items: Stream<u64>) -> u64;
}

#[derive(Clone, Default)]
pub(crate) struct Impl {
    pub(crate) dropped: Arc<AtomicBool>,
    pub(crate) produced: Arc<AtomicU64>,
}

/// Sets its flag when the producer holding it is dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Ticks for Impl {
    async fn count(&self, n: u64) -> Stream<u64> {
        Stream::iter(0..n)
    }
    async fn fail_after(&self, n: u64) -> Stream<u64> {
        let items = (0..n)
            .map(Ok)
            .chain([Err(Error::new(ErrorKind::Application, "ran out of ticks"))]);
        Stream::try_new(futures::stream::iter(items))
    }
    async fn forever(&self) -> Stream<u64> {
        let flag = DropFlag(self.dropped.clone());
        Stream::new(futures::stream::unfold(
            (0u64, flag),
            |(n, flag)| async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                Some((n, (n + 1, flag)))
            },
        ))
    }
    async fn many(&self) -> Stream<u64> {
        let produced = self.produced.clone();
        Stream::new(futures::stream::iter(0..).inspect(move |_| {
            produced.fetch_add(1, Ordering::Relaxed);
        }))
    }
    async fn ratios(&self) -> Stream<f64> {
        Stream::iter([1.5, f64::NAN, 2.5])
    }
    async fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }
    async fn total(&self, items: Stream<u64>) -> u64 {
        items.fold(0, |a, b| async move { a + b }).await
    }
}

pub(crate) struct Gateway {
    pub(crate) http: String,
    pub(crate) tcp: String,
    pub(crate) server: Server,
    pub(crate) ticks: Impl,
    tasks: [JoinHandle<()>; 2],
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

pub(crate) async fn start() -> Gateway {
    start_with(Limits::default()).await
}

pub(crate) async fn start_with(limits: Limits) -> Gateway {
    let ticks = Impl::default();
    let registry = Registry::new()
        .with(TicksServer::new(ticks.clone()))
        .expect("the service registers");
    let config = server_builder()
        .limits(limits)
        .python_compat(true)
        .allow_legacy_auth(true)
        .build()
        .expect("a config");
    let server = Server::new(config, registry);
    let http = HttpConfig::builder()
        .listen("127.0.0.1:0")
        .password(PASSWORD)
        .max_body_bytes(64 * 1024)
        .build()
        .expect("an [http] config");
    let listening = within(
        "the gateway to bind",
        HttpGateway::new(http, &server).unwrap().bind(),
    )
    .await
    .expect("binds");
    let tcp = within("the server to bind", server.clone().bind())
        .await
        .expect("binds");
    Gateway {
        http: listening.local_addr().to_owned(),
        tcp: tcp.local_addr().to_owned(),
        server,
        ticks,
        tasks: [tokio::spawn(listening.serve()), tokio::spawn(tcp.serve())],
    }
}

/// Waits until `produced` stops growing (no change over 300 ms) and
/// returns it: a producer no one reads from must pause.
pub(crate) async fn paused(produced: &AtomicU64) -> u64 {
    within_for(Duration::from_secs(20), "the producer to pause", async {
        let mut last = 0;
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = produced.load(Ordering::Relaxed);
            if now == last && now > 0 {
                return now;
            }
            last = now;
        }
    })
    .await
}

/// Waits until the producer holding the drop flag has been dropped.
pub(crate) async fn producer_dropped(ticks: &Impl) {
    within("the producer to be dropped", async {
        while !ticks.dropped.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// Runs a Python script given as text with `args`; its stdout, after
/// checking it exited 0.
pub(crate) async fn python(script: &str, args: &[&str]) -> String {
    let output = within_for(
        Duration::from_secs(30),
        "python3",
        Command::new("python3")
            .args(["-c", script])
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    stdout
}
