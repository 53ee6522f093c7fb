//! One endpoint of a [`Balancer`](super::Balancer): its connection, or why
//! it has none, its counters, and the task that keeps it up: reconnecting
//! with backoff, pinging it when idle, ejecting it when it stops answering.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::AbortHandle;
use tracing::{info, warn};

use crate::client::connection::Connection;
use crate::config::{ClientConfig, Reconnect};

/// Why an endpoint is down while it redials a server that went away.
pub(super) const GOING_AWAY: &str = "the server is going away";

/// What a caller can reach through an endpoint right now.
#[derive(Clone, Debug)]
pub(super) enum Link {
    Up(Arc<Connection>),
    /// Reconnecting: `attempt` attempts have failed since it went down.
    Down {
        attempt: u32,
        error: Arc<str>,
    },
}

/// An endpoint's figures, as [`Balancer::endpoints`](super::Balancer::endpoints) reports them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointStats {
    /// The address dialed (`"10.0.0.1:17000"`: what a name in `connect` resolved to).
    pub address: String,
    /// Whether it takes calls now: connected, and not going away.
    pub up: bool,
    /// Calls sent to it and not answered yet.
    pub in_flight: usize,
    /// Calls sent to it, retries included.
    pub calls: u64,
    /// Times it was taken out of rotation because its connection failed or
    /// it did not answer a health ping (a server going away is not counted).
    pub ejections: u64,
    /// Calls sent to it that were then sent again (to it or elsewhere).
    pub retries: u64,
}

/// One server address and its connection.
#[derive(Debug)]
pub(super) struct Endpoint {
    pub(super) address: String,
    /// The address as the user wrote it: a TLS server is checked against its host.
    name: String,
    link: watch::Sender<Link>,
    /// Bumped at every change of any endpoint's link, for callers waiting
    /// for one to come up (shared by the balancer's endpoints).
    changed: Arc<watch::Sender<u64>>,
    /// Whether calls are counted here, one by one (`in_flight`, `calls`):
    /// when balancing, which reads `in_flight` at every pick. A lone
    /// endpoint reads its connection's own counts instead, so that its
    /// calls touch no counter shared across threads.
    counted: bool,
    in_flight: AtomicUsize,
    calls: AtomicU64,
    /// Calls sent on the connections before the current one (not counted).
    past_calls: AtomicU64,
    ejections: AtomicU64,
    retries: AtomicU64,
    task: Mutex<Option<AbortHandle>>,
}

/// A call on an endpoint: counted in flight until it is dropped.
pub(super) struct InFlight(pub(super) Arc<Endpoint>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Endpoint {
    pub(super) fn new(
        address: String,
        name: String,
        link: Link,
        changed: Arc<watch::Sender<u64>>,
        counted: bool,
    ) -> Arc<Endpoint> {
        Arc::new(Endpoint {
            address,
            name,
            link: watch::Sender::new(link),
            changed,
            counted,
            in_flight: AtomicUsize::new(0),
            calls: AtomicU64::new(0),
            past_calls: AtomicU64::new(0),
            ejections: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            task: Mutex::new(None),
        })
    }

    /// Connects once to this endpoint.
    pub(super) async fn dial(&self, config: &ClientConfig) -> Result<Connection, rpc_core::Error> {
        Connection::dial(config, &self.address, &self.name).await
    }

    /// The entry of `connect` this endpoint came from.
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// The connection a new call may take, if it is up and not going away.
    pub(super) fn usable(&self) -> Option<Arc<Connection>> {
        match &*self.link.borrow() {
            Link::Up(connection) if connection.takes_calls() => Some(connection.clone()),
            _ => None,
        }
    }

    /// The connection, whatever its state: for a client that never reconnects.
    pub(super) fn current(&self) -> Link {
        self.link.borrow().clone()
    }

    /// Publishes `link` as this endpoint's state.
    pub(super) fn set(&self, link: Link) -> Link {
        let old = self.link.send_replace(link);
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
        old
    }

    /// Stops keeping this endpoint up (its connection stays until dropped).
    pub(super) fn stop(&self) {
        if let Some(task) = self.task.lock().expect("endpoint task lock").take() {
            task.abort();
        }
    }

    /// Calls sent here so far, and those in flight.
    fn counts(&self) -> (u64, usize) {
        if self.counted {
            let in_flight = self.in_flight();
            return (self.calls.load(Ordering::Relaxed), in_flight);
        }
        let past = self.past_calls.load(Ordering::Relaxed);
        match &*self.link.borrow() {
            Link::Up(connection) => {
                let (calls, in_flight) = connection.counts();
                (past + calls, in_flight)
            }
            Link::Down { .. } => (past, 0),
        }
    }

    /// Calls in flight here, as a pick reads them (when balancing).
    pub(super) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Runs `f` on this endpoint's state, without cloning its connection.
    pub(super) fn with_link<R>(&self, f: impl FnOnce(&Link) -> R) -> R {
        f(&self.link.borrow())
    }

    /// Counts a call sent here; the guard counts it answered when dropped.
    pub(super) fn start(self: &Arc<Self>) -> InFlight {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    pub(super) fn retried(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn stats(&self) -> EndpointStats {
        let (calls, in_flight) = self.counts();
        EndpointStats {
            address: self.address.clone(),
            up: self.usable().is_some(),
            in_flight,
            calls,
            ejections: self.ejections.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
        }
    }

    /// Keeps this endpoint up from now on (see [`keep_up`]).
    pub(super) fn spawn_keeper(self: &Arc<Self>, keeper: Keeper) {
        let task = tokio::spawn(keep_up(self.clone(), keeper)).abort_handle();
        *self.task.lock().expect("endpoint task lock") = Some(task);
    }

    /// Takes this endpoint out for good: no new calls; the calls in flight
    /// on its connection still get their answers (up to the call timeout).
    pub(super) fn retire(&self, timeout: Duration) {
        self.stop();
        let down = Link::Down {
            attempt: u32::MAX,
            error: "removed: its name no longer resolves to it".into(),
        };
        if let Link::Up(connection) = self.set(down) {
            tokio::spawn(async move {
                let _ = tokio::time::timeout(timeout, connection.closed()).await;
            });
        }
    }
}

/// What the task keeping an endpoint up needs.
#[derive(Clone, Debug)]
pub(super) struct Keeper {
    pub(super) config: ClientConfig,
    pub(super) backoff: Reconnect,
    /// How often an idle connection is pinged; also the time a ping has.
    pub(super) health: Duration,
}

/// Why a connection stopped taking calls.
enum Ended {
    /// The server is going away: reconnect at once, it is not a failure.
    GoingAway,
    /// The connection failed, or did not answer a ping: an ejection.
    Failed(String),
}

/// Keeps `endpoint` up: watches its connection, pings it when idle, and
/// when it ends connects again with backoff, publishing each change.
async fn keep_up(endpoint: Arc<Endpoint>, keeper: Keeper) {
    let mut attempt = 0u32;
    loop {
        if let Link::Up(connection) = endpoint.current() {
            let opened = tokio::time::Instant::now();
            let ended = watch_over(&connection, keeper.health).await;
            let going_away = matches!(ended, Ended::GoingAway);
            let error: Arc<str> = match ended {
                Ended::GoingAway => {
                    info!(endpoint = %endpoint.address, "the server is going away; reconnecting");
                    GOING_AWAY.into()
                }
                Ended::Failed(why) => {
                    endpoint.ejections.fetch_add(1, Ordering::Relaxed);
                    warn!(endpoint = %endpoint.address, error = %why, "endpoint ejected");
                    why.into()
                }
            };
            if !endpoint.counted {
                let (calls, _) = connection.counts();
                endpoint.past_calls.fetch_add(calls, Ordering::Relaxed);
            }
            endpoint.set(Link::Down { attempt: 0, error });
            // Its calls in flight still get their answers (for as long as a
            // call may wait).
            let grace = keeper.config.call_timeout();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(grace, connection.closed()).await;
            });
            attempt = 0;
            // A server going away may have a replacement (or a peer behind
            // the same address): try again at once, unless the connection
            // was young (a server that goes away at once would be redialed
            // in a tight loop); a failure backs off.
            if going_away && opened.elapsed() >= keeper.health.max(Duration::from_secs(1)) {
                if let Ok(connection) = endpoint.dial(&keeper.config).await {
                    endpoint.set(Link::Up(Arc::new(connection)));
                    continue;
                }
            }
        }
        tokio::time::sleep(keeper.backoff.backoff(attempt)).await;
        attempt = attempt.saturating_add(1);
        match endpoint.dial(&keeper.config).await {
            Ok(connection) => {
                info!(endpoint = %endpoint.address, attempts = attempt, "endpoint up");
                attempt = 0;
                endpoint.set(Link::Up(Arc::new(connection)));
            }
            Err(e) => {
                warn!(endpoint = %endpoint.address, attempt, error = %e, "reconnect failed");
                let error = e.to_string().into();
                endpoint.set(Link::Down { attempt, error });
            }
        }
    }
}

/// Returns when `connection` stops taking calls, pinging it whenever a
/// health interval passes with nothing read from it.
///
/// The server's reader answers a ping whatever its handlers are doing, so
/// a busy server passes; the ping gets two intervals, and anything read
/// meanwhile (a large reply ahead of the pong) counts as an answer.
async fn watch_over(connection: &Connection, every: Duration) -> Ended {
    let mut heard = connection.heard();
    loop {
        tokio::select! {
            () = connection.stopping() => break,
            () = tokio::time::sleep(every) => {}
        }
        if connection.heard() != heard {
            heard = connection.heard();
            continue;
        }
        let pinged = tokio::select! {
            () = connection.stopping() => break,
            pinged = connection.ping(every * 2) => pinged,
        };
        if let Err(e) = pinged {
            if connection.heard() == heard {
                let why = format!("no answer to a health ping: {e}");
                connection.abort(why.clone());
                return Ended::Failed(why);
            }
        }
        heard = connection.heard();
    }
    match connection.went_away() {
        true => Ended::GoingAway,
        false => Ended::Failed(format!("connection lost: {}", connection.why_closed())),
    }
}
