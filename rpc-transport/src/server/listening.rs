//! A bound server: its listeners (TLS or plaintext, each bound address),
//! the accept loop that serves them all from one task, and the graceful
//! shutdown of [`Listening::serve_until`], and how a failed accept or a
//! failed connection is handled and logged.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;

use rpc_core::{Error, ErrorKind};
use tokio::task::JoinSet;
use tracing::{Instrument, debug, info, info_span, warn};

use super::Server;
use crate::metrics::Refused;
use crate::net::{Listener, Stream};
use crate::quiet::Every;
use crate::shutdown::draining_started;
use crate::tls::Acceptor;

/// A bound server, ready to serve.
#[derive(Debug)]
pub struct Listening {
    server: Server,
    listeners: Vec<Bound>,
    local_addrs: Vec<String>,
    /// Where the next accept looks first, so no listener starves the others.
    next: AtomicUsize,
}

/// One bound address: TLS if it has the acceptor.
#[derive(Debug)]
struct Bound {
    listener: Listener,
    tls: Option<Arc<Acceptor>>,
}

impl Listening {
    pub(super) async fn bind(server: Server) -> Result<Listening, Error> {
        let acceptor = server.acceptor()?;
        let mut listeners = Vec::new();
        let mut local_addrs = Vec::new();
        for (address, tls) in server.config().listeners() {
            let listener = Listener::bind(address).await.map_err(|e| {
                let why = format!("cannot listen on {address}: {e}");
                Error::new(ErrorKind::Io, why).with_source(e)
            })?;
            let local = listener
                .local_addr()
                .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
            if !tls && listener.reaches_the_network() {
                warn!(
                    address = %local,
                    "listening without TLS on an address reachable from the network: \
                     the authkey handshake proves who connects, but every call after it \
                     travels in clear; configure [server.tls] (keep plaintext on loopback)"
                );
            }
            local_addrs.push(local);
            let tls = acceptor.clone().filter(|_| tls);
            listeners.push(Bound { listener, tls });
        }
        Ok(Listening {
            server,
            listeners,
            local_addrs,
            next: AtomicUsize::new(0),
        })
    }

    /// The first bound address (`host:port`; with port 0 configured, the
    /// real port): the first of `listen`.
    pub fn local_addr(&self) -> &str {
        &self.local_addrs[0]
    }

    /// Every bound address, in the order of the config: `listen` (TLS
    /// with `[server.tls]`), then `listen_plain`.
    pub fn local_addrs(&self) -> &[String] {
        &self.local_addrs
    }

    /// Re-reads the TLS certificate and key; see [`Server::reload_tls`].
    /// To reload while serving, keep a clone of [`Listening::server`].
    pub fn reload_tls(&self) -> Result<(), Error> {
        self.server.reload_tls()
    }

    /// Serves until the task is dropped.
    pub async fn serve(self) {
        self.serve_until(std::future::pending()).await
    }

    /// The server this listener serves (its metrics, its shutdown).
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// The next connection on any listener: the stream, its peer, and the
    /// acceptor if it came in on a TLS listener.
    async fn accept(&self) -> std::io::Result<(Stream, Option<SocketAddr>, Option<Arc<Acceptor>>)> {
        let count = self.listeners.len();
        std::future::poll_fn(|cx| {
            let first = self.next.load(Ordering::Relaxed);
            for turn in 0..count {
                let bound = &self.listeners[(first + turn) % count];
                if let Poll::Ready(accepted) = bound.listener.poll_accept(cx) {
                    self.next
                        .store((first + turn + 1) % count, Ordering::Relaxed);
                    let tls = bound.tls.clone();
                    return Poll::Ready(accepted.map(|(stream, peer)| (stream, peer, tls)));
                }
            }
            Poll::Pending
        })
        .await
    }

    /// Serves until `shutdown` completes, then shuts down gracefully (see
    /// the [module docs](super)) and returns once every connection is closed.
    pub async fn serve_until(self, shutdown: impl Future<Output = ()>) {
        let mut connections = JoinSet::new();
        let mut draining = self.server.draining();
        let limits = self.server.inner.config.limits().clone();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                () = draining_started(&mut draining) => break,
                accepted = self.accept() => match accepted {
                    Ok(_) if connections.len() >= limits.max_connections => {
                        static FULL: Every = Every::second();
                        self.server.inner.metrics.refused(Refused::MaxConnections);
                        if let Some(suppressed) = FULL.ready() {
                            warn!(limit = limits.max_connections, suppressed, "refused a connection: max_connections reached");
                        }
                    }
                    Ok((stream, peer, tls)) => self.spawn(&mut connections, stream, peer, tls),
                    Err(e) => accept_failed(&self.server, &e).await,
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        drop(self.listeners);
        self.server.shut_down();
        info!(connections = connections.len(), "shutting down");
        // Each connection gives its calls the grace period; past it (and a
        // moment to write the last answers) the rest are dropped.
        let drained = async { while connections.join_next().await.is_some() {} };
        let bound = limits.shutdown_grace + Duration::from_secs(1);
        if tokio::time::timeout(bound, drained).await.is_err() {
            warn!(
                connections = connections.len(),
                "closing connections that did not drain in time"
            );
        }
    }

    fn spawn(
        &self,
        connections: &mut JoinSet<()>,
        stream: Stream,
        peer: Option<SocketAddr>,
        tls: Option<Arc<Acceptor>>,
    ) {
        let server = self.server.clone();
        let span = info_span!("connection", peer = ?peer, tls = tls.is_some());
        connections.spawn(
            async move {
                let served = match tls {
                    Some(acceptor) => server.serve_tls(stream, peer, &acceptor).await,
                    None => server.serve_stream(stream, peer).await,
                };
                match served {
                    Ok(()) => debug!("connection closed"),
                    Err(e) => connection_failed(&e),
                }
            }
            .instrument(span),
        );
    }
}

/// Logs a connection's failure: at most one line a second for those that
/// never authenticated (shed, junk, a wrong key) and one for the rest,
/// each with how many were held back. A peer can fail at will.
fn connection_failed(e: &Error) {
    static REFUSED: Every = Every::second();
    static ENDED: Every = Every::second();
    if e.kind() == ErrorKind::Authentication {
        match REFUSED.ready() {
            Some(suppressed) => {
                warn!(error = %e, suppressed, "refused a connection before authentication")
            }
            None => debug!(error = %e, "refused a connection before authentication"),
        }
    } else {
        match ENDED.ready() {
            Some(suppressed) => warn!(error = %e, suppressed, "connection ended"),
            None => debug!(error = %e, "connection ended"),
        }
    }
}

/// How many unauthenticated connections one failed `accept` sheds when the
/// process is out of descriptors: more than one, so that a flood does not
/// cost a shed-and-wait per connection.
const SHED_PER_ACCEPT: usize = 8;

/// Handles a failed `accept` on any listener of `server`. Out of file
/// descriptors (EMFILE, ENFILE), it sheds unauthenticated connections of
/// every listener and gives their tasks a moment to close them before the
/// next `accept`; any other failure (a reset before accept…) waits 50 ms.
pub(crate) async fn accept_failed(server: &Server, e: &std::io::Error) {
    static OUT_OF_DESCRIPTORS: Every = Every::second();
    static FAILED: Every = Every::second();
    if is_out_of_descriptors(e) {
        let admission = server.admission();
        let shed = (0..SHED_PER_ACCEPT)
            .take_while(|_| admission.shed_one())
            .count();
        if let Some(suppressed) = OUT_OF_DESCRIPTORS.ready() {
            warn!(
                error = %e,
                shed,
                suppressed,
                "accept failed: out of file descriptors; shedding unauthenticated connections"
            );
        }
        let pause = if shed > 0 { 1 } else { 50 };
        tokio::time::sleep(Duration::from_millis(pause)).await;
        return;
    }
    if let Some(suppressed) = FAILED.ready() {
        warn!(error = %e, suppressed, "accept failed; retrying in 50 ms");
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// Whether `accept` failed for want of file descriptors (the process's
/// or the system's).
fn is_out_of_descriptors(e: &std::io::Error) -> bool {
    // EMFILE and ENFILE, the same on Linux, the BSDs and macOS.
    const EMFILE: i32 = 24;
    const ENFILE: i32 = 23;
    cfg!(unix) && matches!(e.raw_os_error(), Some(EMFILE | ENFILE))
}
