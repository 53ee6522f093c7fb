//! The client's [`Balancer`]: calls spread over one or more endpoints,
//! each kept up, health-checked and ejected when it fails, with the
//! at-most-once retry rules; what [`crate::connect`] returns for every
//! codec but Python's.
//!
//! The room: the balancer and a call's first attempt here; `attempt`
//! (waiting for an endpoint, retries), `endpoint` (one address, its
//! connection, counters and the task that keeps it up), `pick` (the
//! policy's choice), `retry` (whether an outcome may be sent again) and
//! `resolve` (names to addresses). It uses the client's
//! `connection` and the [`config`](crate::config), nothing else.
//!
//! # Endpoints
//!
//! - A single `connect` string without `[client.balance]` is one endpoint,
//!   dialed by name, as a plain connection; it reconnects only with a
//!   `[client.reconnect]` table.
//! - A list, or a `[client.balance]` table, makes every address each entry
//!   resolves to an endpoint (names are looked up again every
//!   `resolve_interval_ms`: new addresses are added, vanished ones drained).
//!   Each endpoint is kept up with `[client.reconnect]`'s backoff (its
//!   defaults without the table); a connection from which nothing was read
//!   for a `health_interval_ms` is pinged, and one that fails (or reads
//!   nothing for two more intervals) is aborted and its endpoint ejected
//!   until it connects again. A server going away is left for a fresh
//!   connection, at once unless it was younger than a second, without
//!   ejection.
//! - A call goes to the endpoint the policy picks among those up. With none
//!   up it waits (up to its timeout) while a reconnection is under way,
//!   and with `wait = true` for as long as its timeout allows; else it
//!   fails at once, not sent.
//!
//! # Retries: at most once where it matters
//!
//! A call is sent again, up to `max_retries` times (2 by default, also
//! without the table) and within its own deadline, preferring endpoints it
//! has not tried, when its outcome says that is safe (see `retry`):
//! - refused with the did-not-run mark for a reason about the server
//!   (going away, overloaded, connection lost before sending): any method;
//! - lost mid-flight (`ConnectionLost`, or cut off at a shutdown): only a
//!   method marked `#[rpc(idempotent)]`. A non-idempotent call that may
//!   have run fails with `ConnectionLost`, saying so.
//!
//! A call whose arguments carry a stream is never sent again (its stream
//! was taken by the first attempt), nor one without its method's
//! description, which cannot say.

mod attempt;
mod endpoint;
mod pick;
mod resolve;
mod retry;

pub use self::endpoint::EndpointStats;

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use rpc_core::client::{Outgoing, Response, ResponseFuture};
use rpc_core::{Client, Error, ErrorKind, Transport};
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use self::endpoint::{Endpoint, InFlight, Keeper, Link};
use self::pick::{Choice, pick};
use self::resolve::{Resolved, Target, resolve};
use crate::client::connection::Connection;
use crate::client::connection::deadline_after;
use crate::config::{ClientConfig, Policy};

/// A [`Transport`] over one or more endpoints; see the [module docs](self).
/// Clones share the endpoints; the last one dropped closes them.
///
/// ```no_run
/// # async fn demo() -> Result<(), rpc_core::Error> {
/// use rpc_transport::{Balancer, ClientConfig};
/// let text = r#"
///     [client]
///     connect = ["10.0.0.1:17000", "10.0.0.2:17000"]
///     authkey = "peekaboo"
///     [client.balance]
///     policy = "least_request"
/// "#;
/// let config = ClientConfig::builder().load_toml(text).unwrap().build().unwrap();
/// let balancer = Balancer::connect(&config).await?;
/// let client = balancer.client(); // CalculatorClient::new(client)
/// for endpoint in balancer.endpoints() {
///     println!("{} up={} calls={}", endpoint.address, endpoint.up, endpoint.calls);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Balancer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    endpoints: RwLock<Arc<[Arc<Endpoint>]>>,
    /// The one endpoint of a client that does not balance (its list never
    /// changes): read without the list's lock.
    single: Option<Arc<Endpoint>>,
    /// The lone endpoint's connection, when it is never replaced (no
    /// reconnection): taken without reading the endpoint's state.
    fixed: Option<Arc<Connection>>,
    policy: Policy,
    /// Round robin's next turn.
    turn: AtomicUsize,
    max_retries: u32,
    call_timeout: Duration,
    /// How endpoints are kept up; `None`: the one endpoint is never
    /// reconnected, and a lost connection stays lost.
    keeper: Option<Keeper>,
    /// Calls made while no endpoint is up wait for one (`[client.reconnect]`'s `wait`).
    wait: bool,
    /// Bumped at every change of an endpoint's link.
    changed: Arc<watch::Sender<u64>>,
    resolver: Mutex<Option<AbortHandle>>,
}

/// One attempt of a call: its endpoint, counted in flight when balancing
/// (`None`: the lone endpoint), and its reply.
struct Attempt<F> {
    on: Option<InFlight>,
    reply: F,
}

impl Balancer {
    /// Connects to every endpoint of `config` at once; succeeds when at
    /// least one answers (the others keep trying in the background). With
    /// one endpoint, fails as [`Connection::connect`](crate::Connection::connect) does.
    pub async fn connect(config: &ClientConfig) -> Result<Balancer, Error> {
        let entries = config.endpoints();
        let first = config.address()?;
        let balanced = entries.len() > 1 || config.balance().is_some();
        let balance = config.balance().cloned().unwrap_or_default();
        let targets = match balanced {
            true => resolve(entries).await.map(|r| r.targets).map_err(|why| {
                Error::new(
                    ErrorKind::Io,
                    format!("no address in `connect` resolves: {why}"),
                )
            })?,
            false => vec![Target {
                address: first.to_owned(),
                name: first.to_owned(),
            }],
        };
        let changed = Arc::new(watch::Sender::new(0));
        let endpoints: Vec<_> = targets
            .into_iter()
            .map(|t| Endpoint::new(t.address, t.name, not_yet(), changed.clone(), balanced))
            .collect();
        let dialed = futures::future::join_all(endpoints.iter().map(|e| e.dial(config))).await;
        let mut failures = Vec::new();
        for (endpoint, dialed) in endpoints.iter().zip(dialed) {
            match dialed {
                Ok(connection) => drop(endpoint.set(Link::Up(Arc::new(connection)))),
                Err(e) => {
                    let error = e.to_string().into();
                    endpoint.set(Link::Down { attempt: 1, error });
                    failures.push((endpoint.address.clone(), e));
                }
            }
        }
        if failures.len() == endpoints.len() {
            return Err(none_answered(failures));
        }
        let keeper = (balanced || config.reconnect().is_some()).then(|| Keeper {
            config: config.clone(),
            backoff: config.reconnect().cloned().unwrap_or_default(),
            health: balance.health_interval,
        });
        if let Some(keeper) = &keeper {
            for endpoint in &endpoints {
                endpoint.spawn_keeper(keeper.clone());
            }
        }
        let fixed = match (&keeper, endpoints[0].current()) {
            (None, Link::Up(connection)) => Some(connection),
            _ => None,
        };
        let inner = Arc::new(Inner {
            single: (!balanced).then(|| endpoints[0].clone()),
            fixed,
            endpoints: RwLock::new(endpoints.into()),
            policy: balance.policy,
            turn: AtomicUsize::new(0),
            max_retries: config.max_retries(),
            call_timeout: config.call_timeout(),
            keeper,
            wait: config.reconnect().is_some_and(|r| r.wait),
            changed,
            resolver: Mutex::new(None),
        });
        if balanced && resolve::has_names(entries) {
            let refresh = refresh(
                Arc::downgrade(&inner),
                entries.to_vec(),
                balance.resolve_interval,
            );
            *inner.resolver.lock().expect("resolver lock") =
                Some(tokio::spawn(refresh).abort_handle());
        }
        Ok(Balancer { inner })
    }

    /// A client handle whose calls go through this balancer.
    pub fn client(&self) -> Client {
        Client::new(self.clone())
    }

    /// Each endpoint's state and figures, in `connect` order.
    pub fn endpoints(&self) -> Vec<EndpointStats> {
        self.inner.endpoints().iter().map(|e| e.stats()).collect()
    }
}

/// The error of a connect that reached no endpoint: the endpoint's own
/// when there is one, else each endpoint's, with the first one's kind.
fn none_answered(mut failures: Vec<(String, Error)>) -> Error {
    if failures.len() == 1 {
        return failures.pop().expect("one failure").1;
    }
    let kind = failures[0].1.kind();
    let each: Vec<_> = failures.iter().map(|(a, e)| format!("{a}: {e}")).collect();
    let why = format!(
        "none of the {} endpoints answered ({})",
        failures.len(),
        each.join("; ")
    );
    Error::new(kind, why)
}

fn not_yet() -> Link {
    Link::Down {
        attempt: 0,
        error: "not connected yet".into(),
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = self.resolver.get_mut().ok().and_then(Option::take) {
            task.abort();
        }
        for endpoint in self.endpoints().iter() {
            endpoint.stop();
        }
    }
}

impl Inner {
    fn endpoints(&self) -> Arc<[Arc<Endpoint>]> {
        self.endpoints.read().expect("endpoints lock").clone()
    }

    fn pick(&self, tried: &[usize]) -> Option<Choice> {
        if let Some(only) = &self.single {
            return only.usable().map(|c| (only.clone(), c));
        }
        pick(&self.endpoints(), self.policy, &self.turn, tried)
    }

    /// Sends `call` on `choice`'s connection (the request is queued before
    /// this returns).
    fn send<'a>(
        &self,
        (endpoint, connection): Choice,
        call: &Outgoing<'a>,
        deadline: Instant,
    ) -> Attempt<impl Future<Output = Result<Response, Error>> + Send + use<'a>> {
        let on = self.single.is_none().then(|| endpoint.start());
        let timeout = deadline.saturating_duration_since(Instant::now());
        let reply = connection.send_until(call.method, call.args, timeout, deadline, call.metadata);
        Attempt { on, reply }
    }

    /// The first attempt, made before the call's future is first polled;
    /// `None` when no endpoint is up.
    fn first<'a>(
        &self,
        call: &Outgoing<'a>,
        timeout: Duration,
        deadline: Instant,
    ) -> Option<Attempt<impl Future<Output = Result<Response, Error>> + Send + use<'a>>> {
        let send = |connection: &Connection| {
            connection.send_until(call.method, call.args, timeout, deadline, call.metadata)
        };
        // Never reconnected: the connection itself (it says why it is
        // closed, if it is).
        if let Some(fixed) = &self.fixed {
            return Some(Attempt {
                on: None,
                reply: send(fixed),
            });
        }
        if let Some(only) = &self.single {
            // Sent under the link's read lock, without cloning the
            // connection: the keeper's next change waits for this queueing
            // (and at most one write), which is short.
            let reply = only.with_link(|link| match link {
                Link::Up(connection) if connection.takes_calls() => Some(send(connection)),
                _ => None,
            })?;
            return Some(Attempt { on: None, reply });
        }
        let (endpoint, connection) = self.pick(&[])?;
        let on = Some(endpoint.start());
        Some(Attempt {
            on,
            reply: send(&connection),
        })
    }
}

impl Transport for Balancer {
    fn call<'a>(&'a self, call: Outgoing<'a>) -> ResponseFuture<'a> {
        let inner = &*self.inner;
        let timeout = call.timeout.unwrap_or(inner.call_timeout);
        let deadline = deadline_after(Instant::now(), timeout);
        let Some(first) = inner.first(&call, timeout, deadline) else {
            return Box::pin(inner.later(call, deadline));
        };
        // The common case stays small: one attempt, answered for good. The
        // retries' state is boxed only when there is one to consider.
        Box::pin(async move {
            let outcome = first.reply.await;
            if inner.is_final(&call, &outcome) {
                return outcome;
            }
            Box::pin(inner.settle(call, deadline, first.on, outcome)).await
        })
    }

    fn is_closed(&self) -> bool {
        if self.inner.keeper.is_some() {
            return false;
        }
        match self.inner.endpoints()[0].current() {
            Link::Up(connection) => Transport::is_closed(&*connection),
            Link::Down { .. } => true,
        }
    }

    fn closed(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            if self.inner.keeper.is_some() {
                return std::future::pending().await;
            }
            if let Link::Up(connection) = self.inner.endpoints()[0].current() {
                connection.closed().await;
            }
        })
    }
}

/// Looks `entries` up every `every`, replacing the endpoints that vanished
/// with those that appeared; a lookup that fails keeps the list as it is.
async fn refresh(inner: Weak<Inner>, entries: Vec<String>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Ok(resolved) = resolve(&entries).await else {
            continue;
        };
        let Some(inner) = inner.upgrade() else { return };
        inner.replace(&resolved);
    }
}

impl Inner {
    /// Makes the endpoints those `resolved` found, keeping the order and
    /// state of those that stay (records come back in any order) and the
    /// endpoints of an entry that failed this time (a lookup that fails
    /// once is no sign its servers are gone); the others are drained.
    fn replace(&self, resolved: &Resolved) {
        let Some(keeper) = &self.keeper else { return };
        let old = self.endpoints();
        let stays = |e: &Arc<Endpoint>| {
            resolved.targets.iter().any(|t| t.address == e.address)
                || resolved.failed.iter().any(|f| f == e.name())
        };
        let mut list: Vec<_> = old.iter().filter(|e| stays(e)).cloned().collect();
        for t in &resolved.targets {
            if !list.iter().any(|e| e.address == t.address) {
                let added = Endpoint::new(
                    t.address.clone(),
                    t.name.clone(),
                    not_yet(),
                    self.changed.clone(),
                    true,
                );
                added.spawn_keeper(keeper.clone());
                list.push(added);
            }
        }
        if list.len() == old.len() && list.iter().zip(old.iter()).all(|(a, b)| Arc::ptr_eq(a, b)) {
            return;
        }
        for gone in old.iter().filter(|e| !stays(e)) {
            gone.retire(self.call_timeout);
        }
        *self.endpoints.write().expect("endpoints lock") = list.into();
    }
}
