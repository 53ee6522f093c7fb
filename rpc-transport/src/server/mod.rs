//! The server: an accept loop, and per connection the authkey handshake, the
//! hello, then a reader that starts calls and a writer that sends replies.
//!
//! The room: the accept loop and [`Listening`] here; `admission` (who gets
//! in before credentials), `connection` (one connection's loop), `request`
//! (one frame and its call), `long_turn` (whether a large frame's work
//! leaves the worker), `read_room` (a connection's read buffer), `calls`
//! (calls in flight, cancel), `batch` (a JSON-RPC batch and its reply) and
//! `replies` (where replies queue). It uses
//! the wire ([`frame`](crate::frame), [`handshake`](crate::handshake),
//! [`hello`](crate::hello)), [`net`](crate::net), [`config`](crate::config),
//! [`metrics`](crate::metrics), [`quiet`](crate::quiet), the outbox, the
//! shutdown signal and, for Python peers, [`python`](crate::python); never
//! the client or the HTTP gateway (which uses this room).
//!
//! ```no_run
//! # async fn demo(registry: rpc_core::Registry) -> Result<(), rpc_core::Error> {
//! use rpc_transport::{Server, ServerConfig};
//! let config = ServerConfig::builder().listen("127.0.0.1:0").authkey("peekaboo").build().unwrap();
//! let listening = Server::new(config, registry).bind().await?;
//! println!("listening {}", listening.local_addr());
//! listening.serve_until(async { let _ = tokio::signal::ctrl_c().await; }).await;
//! # Ok(()) }
//! ```
//!
//! One bad connection never affects another: a failed handshake, a malformed
//! frame or a peer that vanishes ends that connection's task and is logged
//! (at most one line a second per kind, with how many were held back); the
//! accept loop goes on. When `accept` fails for want of file descriptors,
//! it sheds an unauthenticated connection (of any listener) and accepts
//! again; other failures back off for 50 ms.
//!
//! # Limits
//!
//! [`Limits`](crate::config::Limits) bound what peers can make the server
//! hold: past `max_connections` a new connection is closed at once. A
//! connection is pending from `accept` until its hello is read (an HTTP
//! one, until its first request head is whole), and when one more arrives
//! at `max_pending_handshakes`, one is shed: of those that made the least
//! progress (connected; answered our challenge; authenticated), one from the
//! source address holding the most of them, the oldest first. An address
//! holding `max_pending_per_ip` sheds its own first (`trusted_proxies` are
//! exempt). So a flood of silent peers sheds its own, and a client that
//! answered the challenge outlives any number of them. A peer that has not
//! answered the challenge within `first_answer_timeout` is dropped as junk.
//! Each connection bounds its calls in flight, its invalid messages and its
//! idle time.
//!
//! # Shutdown
//!
//! When [`Listening::serve_until`]'s signal fires, the server stops
//! accepting, tells every client it is going away, answers requests that
//! arrive after that with a "server shutting down" error, lets calls in
//! flight finish for `shutdown_grace`, answers those still running with the
//! same error, and returns once every connection has closed.

pub(crate) mod admission;
mod batch;
mod calls;
mod connection;
mod flow;
mod listening;
mod long_turn;
mod read_room;
mod replies;
mod request;
pub(crate) mod trace;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rpc_core::{Error, ErrorKind, Registry};
use tokio::sync::watch;
use tokio_util::codec::Framed;
use tracing::debug;

pub use self::listening::Listening;
#[cfg(feature = "http")]
pub(crate) use self::listening::accept_failed;

use self::admission::{Admission, Notice, Pending, Stage};
use self::connection::ServerConnection;
use crate::config::ServerConfig;
use crate::metrics::{Metrics, Refused, Transport};
use crate::net::Io;
use crate::shutdown::draining_started;
use crate::tls::{Acceptor, Session};
use crate::wire::frame::FrameCodec;
use crate::wire::handshake::{AuthError, AuthOptions, Keys};
use crate::wire::hello::{Answer, Hello};
use crate::wire::session;

/// pickle's PROTO opcode: the first byte of every frame a Python
/// `multiprocessing` client sends.
const PICKLE_PROTO: u8 = 0x80;

/// A server: its configuration and its services. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Server {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ServerConfig,
    registry: Registry,
    metrics: Arc<Metrics>,
    /// `true` once the server is shutting down.
    draining: watch::Sender<bool>,
    /// The same, as a flag a connection's loop reads every turn.
    drain_started: AtomicBool,
    /// The connections of every listener not yet authenticated.
    admission: Arc<Admission>,
    /// The TLS certificate in force, once bound with `[server.tls]`.
    tls: std::sync::OnceLock<Arc<Acceptor>>,
    /// The other listeners' TLS (the gateway's `[http.tls]`), so that
    /// [`Server::reload_tls`] reloads them too; gone once they are dropped.
    more_tls: std::sync::Mutex<Vec<std::sync::Weak<Acceptor>>>,
}

/// The read buffer a new connection starts with: the handshake's frames
/// are at most 260 bytes, and a pending connection should cost little.
/// It grows as later frames need.
const HANDSHAKE_READ_ROOM: usize = 64;

impl Server {
    /// A server offering `registry`'s services under `config`.
    pub fn new(config: ServerConfig, registry: Registry) -> Server {
        let metrics = Metrics::new(&registry);
        let admission = Arc::new(Admission::new(config.limits(), metrics.clone()));
        Server {
            inner: Arc::new(Inner {
                config,
                registry,
                metrics,
                draining: watch::Sender::new(false),
                drain_started: AtomicBool::new(false),
                admission,
                tls: std::sync::OnceLock::new(),
                more_tls: std::sync::Mutex::default(),
            }),
        }
    }

    /// Wraps every call, from every door (TCP with either codec, Python
    /// peers, the HTTP gateway's JSON-RPC, XML-RPC and REST, a stream's
    /// call when it opens), in a tower `layer`: see [`rpc_core::layer`]
    /// and [`Registry::layer`]. The last layer added runs first.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use rpc_core::layer::RefuseOverRateLayer;
    /// # fn demo(config: rpc_transport::ServerConfig, registry: rpc_core::Registry) {
    /// let server = rpc_transport::Server::new(config, registry)
    ///     .layer(RefuseOverRateLayer::new(100, Duration::from_secs(1)));
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// If the server was cloned already (a listener holds a clone): add
    /// layers before serving.
    pub fn layer<L>(mut self, layer: L) -> Server
    where
        L: tower::Layer<rpc_core::layer::Next>,
        L::Service: tower::Service<rpc_core::layer::Call, Response = rpc_core::service::Reply>
            + Send
            + 'static,
        <L::Service as tower::Service<rpc_core::layer::Call>>::Error:
            Into<rpc_core::layer::BoxError>,
        <L::Service as tower::Service<rpc_core::layer::Call>>::Future: Send + 'static,
    {
        let inner = Arc::get_mut(&mut self.inner)
            .expect("Server::layer is called before the server is cloned or served");
        inner.registry.layer(layer);
        self
    }

    /// The connections of every listener not yet authenticated.
    pub(crate) fn admission(&self) -> &Arc<Admission> {
        &self.inner.admission
    }

    /// The services it offers.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// Its configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// The counters of every listener serving this server.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// Whether the server is shutting down (for health checks).
    pub fn is_draining(&self) -> bool {
        *self.inner.draining.borrow()
    }

    /// Starts shutting down every connection of this server: no new calls,
    /// calls in flight get `shutdown_grace` to finish. [`Listening::serve_until`]
    /// calls this when its signal fires.
    pub fn shut_down(&self) {
        // The flag first: a connection woken by the watch must see it.
        self.inner.drain_started.store(true, Ordering::Release);
        self.inner.draining.send_replace(true);
    }

    /// A receiver that turns `true` when the server starts shutting down.
    pub fn draining(&self) -> watch::Receiver<bool> {
        self.inner.draining.subscribe()
    }

    /// Binds every configured address (`listen`, TLS with `[server.tls]`,
    /// then `listen_plain`), reading the TLS files first; fails naming the
    /// address or the file at fault. A plaintext TCP listener reachable
    /// from the network is logged as a warning.
    pub async fn bind(self) -> Result<Listening, Error> {
        Listening::bind(self).await
    }

    /// Re-reads `[server.tls]`'s certificate and key, and those of every
    /// gateway serving this server with `[http.tls]`: new connections get
    /// the new certificate, open ones keep theirs. Fails if the files do not
    /// load (the certificate in force stays; the others are still
    /// reloaded) or nothing is bound with TLS.
    pub fn reload_tls(&self) -> Result<(), Error> {
        let more: Vec<Arc<Acceptor>> = self
            .more_tls()
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .collect();
        let own = self.inner.tls.get();
        if own.is_none() && more.is_empty() {
            return Err(Error::new(
                ErrorKind::Config,
                "no TLS to reload: the server has no [server.tls] listener bound, nor a gateway \
                 with [http.tls]",
            ));
        }
        // Each is reloaded even if another fails; the first failure is told.
        let mut first = Ok(());
        for acceptor in own.into_iter().chain(&more) {
            if let Err(e) = acceptor.reload() {
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        first
    }

    /// Has [`Server::reload_tls`] reload `acceptor` too (the gateway's).
    #[cfg(feature = "http")]
    pub(crate) fn reload_with(&self, acceptor: &Arc<Acceptor>) {
        self.more_tls().push(Arc::downgrade(acceptor));
    }

    /// The gateways' TLS acceptors still alive, locked.
    fn more_tls(&self) -> std::sync::MutexGuard<'_, Vec<std::sync::Weak<Acceptor>>> {
        let mut more = self
            .inner
            .more_tls
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        more.retain(|weak| weak.strong_count() > 0);
        more
    }

    /// The TLS acceptor of the `listen` addresses, made from `[server.tls]`
    /// at the first bind.
    fn acceptor(&self) -> Result<Option<Arc<Acceptor>>, Error> {
        let Some(settings) = self.inner.config.tls() else {
            return Ok(None);
        };
        if let Some(acceptor) = self.inner.tls.get() {
            return Ok(Some(acceptor.clone()));
        }
        let acceptor = Arc::new(Acceptor::new(settings)?);
        Ok(Some(self.inner.tls.get_or_init(|| acceptor).clone()))
    }

    /// Serves one connection on `io`, from authentication to its end.
    ///
    /// Fails if the handshake or the hello fails, or the connection breaks;
    /// a peer that closes cleanly is `Ok`.
    pub async fn serve_stream<S: Io>(&self, io: S, peer: Option<SocketAddr>) -> Result<(), Error> {
        let admitted = self.inner.admission.admit(peer.map(|p| p.ip()));
        self.serve_admitted(io, peer, admitted, None).await
    }

    /// Serves one connection of a TLS listener: the TLS handshake first,
    /// as a pending handshake (shed like any, and bounded by
    /// `handshake_timeout_ms`), then the authkey handshake bound to the session.
    pub(crate) async fn serve_tls(
        &self,
        io: crate::net::Stream,
        peer: Option<SocketAddr>,
        acceptor: &Acceptor,
    ) -> Result<(), Error> {
        let config = &self.inner.config;
        let (pending, mut notice) = self.inner.admission.admit(peer.map(|p| p.ip()));
        let from = peer.map_or_else(|| "a local peer".to_owned(), |p| p.to_string());
        let limit = config.handshake_timeout();
        let handshake = tokio::time::timeout(limit, acceptor.accept(io, &from));
        let (stream, session) = tokio::select! {
            done = handshake => match done {
                Ok(Ok(done)) => done,
                Ok(Err(e)) => {
                    self.inner.metrics.refused(Refused::Handshake);
                    return Err(e);
                }
                Err(_) => {
                    self.inner.metrics.refused(Refused::Handshake);
                    let why = format!("no TLS handshake within {limit:?} (handshake_timeout_ms)");
                    return Err(Error::new(ErrorKind::Authentication, why));
                }
            },
            why = notice.shed() => {
                return Err(Error::new(ErrorKind::Authentication, why.reason(config.limits())));
            }
        };
        self.serve_admitted(stream, peer, (pending, notice), Some(session))
            .await
    }

    /// Serves a connection admitted as pending, over TLS if `session` is set.
    async fn serve_admitted<S: Io>(
        &self,
        io: S,
        peer: Option<SocketAddr>,
        (pending, mut notice): (Pending, Notice),
        session: Option<Session>,
    ) -> Result<(), Error> {
        let config = &self.inner.config;
        let binding = match &session {
            Some(session) if config.channel_binding() => &session.binding[..],
            _ => &[],
        };
        let codec = FrameCodec::new(config.max_frame_bytes());
        let mut framed = Framed::with_capacity(io, codec, HANDSHAKE_READ_ROOM);
        let open = self.inner.metrics.connection_opened(Transport::Tcp);
        let opening = self.open(&mut framed, pending, binding);
        let first = tokio::select! {
            first = opening => match first? {
                Some(first) => first,
                None => {
                    debug!("closing a peer that sent nothing before the shutdown");
                    return Ok(());
                }
            },
            // A shed connection was counted as such when it was shed.
            why = notice.shed() => {
                return Err(Error::new(ErrorKind::Authentication, why.reason(config.limits())));
            }
        };
        // Our hello is a JSON object; a Python peer's first frame is a
        // pickle (0x80 from protocol 2 on), or something to refuse as one.
        if config.python_compat() && first.first() != Some(&b'{') {
            drop(open);
            let _open = self.inner.metrics.connection_opened(Transport::Python);
            let python = crate::python::PythonPeer {
                registry: &self.inner.registry,
                metrics: &self.inner.metrics,
                limits: config.limits(),
                draining: self.draining(),
                peer,
            };
            return crate::python::serve(framed, first, python).await;
        }
        if first.first() == Some(&PICKLE_PROTO) {
            return Err(Error::new(
                ErrorKind::Protocol,
                "a Python multiprocessing client connected, but Python peers are not served; \
                 set `python_compat = true` in [server] to serve them",
            ));
        }
        let hello = match Hello::decode(&first) {
            Ok(hello) => hello,
            Err(e) => {
                // Told why, as a refused hello is; it may be gone already.
                let _ = session::send_frame(&mut framed, Answer::refusing(&e).encode()).await;
                return Err(e);
            }
        };
        drop(first);
        let window = config.limits().stream_window();
        let answer = hello.answer(config.codecs(), config.max_frame_bytes(), window);
        session::send_frame(&mut framed, answer.encode()).await?;
        let Answer::Accept(agreed) = answer else {
            return Err(
                Answer::decode(&answer.encode()).expect_err("a refusal decodes as an error")
            );
        };
        let codec = rpc_core::codec::by_name(&hello.codec).expect("only known codecs are accepted");
        let connection = ServerConnection {
            registry: &self.inner.registry,
            codec,
            peer,
            peer_max_frame: hello.max_frame_bytes,
            protocol: agreed.protocol,
            peer_window: hello.window(),
            limits: config.limits(),
            metrics: &self.inner.metrics,
            draining: self.draining(),
            drain_started: &self.inner.drain_started,
            peer_identity: session.and_then(|s| s.identity),
        };
        connection.run(framed).await
    }
}

impl Server {
    /// Authenticates the peer and reads its first frame (its hello, or a
    /// Python peer's first request). The connection stays pending until
    /// the hello is read; a Python peer, which sends its first request
    /// only when it makes its first call, stops being pending once
    /// authenticated. `None` if the server started shutting down before
    /// the peer sent its first frame: it has nothing to finish.
    async fn open<S: Io>(
        &self,
        framed: &mut Framed<S, FrameCodec>,
        pending: Pending,
        binding: &[u8],
    ) -> Result<Option<bytes::BytesMut>, Error> {
        let config = &self.inner.config;
        self.authenticate(framed, &pending, binding).await?;
        pending.advance(Stage::Authenticated);
        // A Python client sends its first request when it makes its first
        // call, which may be long after it connects: it gets the idle timeout.
        let first_wait = match config.python_compat() {
            true => {
                drop(pending);
                config.limits().idle_timeout.unwrap_or(Duration::MAX)
            }
            false => config.handshake_timeout(),
        };
        let mut draining = self.draining();
        tokio::select! {
            first = session::read_frame(framed, first_wait, "hello") => first.map(Some),
            () = draining_started(&mut draining) => Ok(None),
        }
    }

    /// Authenticates the peer within the handshake timeout; the peer must
    /// answer our challenge within `first_answer_timeout`.
    async fn authenticate<S: Io>(
        &self,
        framed: &mut Framed<S, FrameCodec>,
        pending: &Pending,
        binding: &[u8],
    ) -> Result<(), Error> {
        let config = &self.inner.config;
        let opts = AuthOptions {
            timeout: config.handshake_timeout(),
            allow_legacy: config.allow_legacy_auth(),
        };
        let first_answer = config.limits().first_answer_timeout;
        let answered = || pending.advance(Stage::Answered);
        let keys = Keys {
            authkey: config.authkey().as_bytes(),
            binding,
        };
        crate::wire::handshake::accept_timed(framed, keys, &opts, first_answer, answered)
            .await
            .map_err(|e| {
                self.inner.metrics.refused(match e {
                    AuthError::NoAnswer(_) => Refused::FirstAnswerTimeout,
                    _ => Refused::Handshake,
                });
                refused(e)
            })
    }
}

/// The error for a refused authkey handshake; a TLS ClientHello on a
/// plaintext port (its record header read as a frame length, 0x1603….) is
/// named as such.
fn refused(e: AuthError) -> Error {
    let hello = matches!(e, AuthError::FrameTooLarge { len } if len >> 16 == 0x1603);
    let e = session::auth_error(e);
    match hello {
        true => Error::new(
            ErrorKind::Authentication,
            format!(
                "a TLS client connected to a plaintext listener ({}); \
                 give it the TLS address or configure [server.tls]",
                e.message()
            ),
        ),
        false => e,
    }
}
