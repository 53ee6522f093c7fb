//! The server: an accept loop, and per connection the authkey handshake, the
//! hello, then a reader that starts calls and a writer that sends replies.
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
//! frame or a peer that vanishes ends that connection's task and is logged;
//! the accept loop goes on.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rpc_core::{Error, ErrorKind, Registry};
use tokio::task::JoinSet;
use tokio_util::codec::Framed;
use tracing::{Instrument, debug, info_span, warn};

use crate::config::ServerConfig;
use crate::connection::ServerConnection;
use crate::frame::FrameCodec;
use crate::handshake::AuthOptions;
use crate::hello::{Answer, Hello};
use crate::metrics::Metrics;
use crate::net::{Io, Listener};
use crate::session;

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
}

impl Server {
    /// A server offering `registry`'s services under `config`.
    pub fn new(config: ServerConfig, registry: Registry) -> Server {
        let metrics = Metrics::new(&registry);
        Server {
            inner: Arc::new(Inner {
                config,
                registry,
                metrics,
            }),
        }
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

    /// Binds the configured `listen` address.
    pub async fn bind(self) -> Result<Listening, Error> {
        let address = self.inner.config.listen();
        let listener = Listener::bind(address).await.map_err(|e| {
            Error::new(ErrorKind::Io, format!("cannot listen on {address}: {e}")).with_source(e)
        })?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
        Ok(Listening {
            server: self,
            listener,
            local_addr,
        })
    }

    /// Serves one connection on `io`, from authentication to its end.
    ///
    /// Fails if the handshake or the hello fails, or the connection breaks;
    /// a peer that closes cleanly is `Ok`.
    pub async fn serve_stream<S: Io>(&self, io: S, peer: Option<SocketAddr>) -> Result<(), Error> {
        let config = &self.inner.config;
        let mut framed = Framed::new(io, FrameCodec::new(config.max_frame_bytes()));
        let opts = AuthOptions {
            timeout: config.handshake_timeout(),
            allow_legacy: config.allow_legacy_auth(),
        };
        session::accept(&mut framed, config.authkey().as_bytes(), &opts).await?;
        let first = session::read_frame(&mut framed, config.handshake_timeout(), "hello").await?;
        if first.first() == Some(&PICKLE_PROTO) {
            return Err(Error::new(
                ErrorKind::Protocol,
                "a Python multiprocessing client connected, but Python peers are not served; \
                 set `python_compat = true` in [server] to serve them",
            ));
        }
        let hello = Hello::decode(&first)?;
        // `first` shares the handshake's 8 KiB read buffer: let it go.
        drop(first);
        let answer = hello.answer(config.codecs(), config.max_frame_bytes());
        session::send_frame(&mut framed, answer.encode()).await?;
        let Answer::Accept(_) = answer else {
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
        };
        connection.run(framed).await
    }
}

/// A bound server, ready to serve.
#[derive(Debug)]
pub struct Listening {
    server: Server,
    listener: Listener,
    local_addr: String,
}

impl Listening {
    /// The bound address (`host:port`; with port 0 configured, the real port).
    pub fn local_addr(&self) -> &str {
        &self.local_addr
    }

    /// Serves until the task is dropped.
    pub async fn serve(self) {
        self.serve_until(std::future::pending()).await
    }

    /// Serves until `shutdown` completes, then stops accepting and closes
    /// every connection.
    pub async fn serve_until(self, shutdown: impl Future<Output = ()>) {
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => self.spawn(&mut connections, stream, peer),
                    // Out of file descriptors or a reset before accept: the
                    // listener itself is fine, so wait a moment and go on.
                    Err(e) => {
                        warn!(error = %e, "accept failed; retrying");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        debug!(connections = connections.len(), "server stopping");
    }

    fn spawn(
        &self,
        connections: &mut JoinSet<()>,
        stream: crate::net::Stream,
        peer: Option<SocketAddr>,
    ) {
        let server = self.server.clone();
        let span = info_span!("connection", peer = ?peer);
        connections.spawn(
            async move {
                match server.serve_stream(stream, peer).await {
                    Ok(()) => debug!("connection closed"),
                    Err(e) => warn!(error = %e, "connection ended"),
                }
            }
            .instrument(span),
        );
    }
}
