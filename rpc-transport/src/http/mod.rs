//! The HTTP gateway (feature `http`): every service of a [`Server`]'s
//! registry over HTTP/1.1, as JSON-RPC 2.0, as XML-RPC and REST-style.
//!
//! ```no_run
//! # async fn demo(server: rpc_transport::Server) -> Result<(), Box<dyn std::error::Error>> {
//! use rpc_transport::http::{HttpConfig, HttpGateway};
//!
//! let config = HttpConfig::builder().listen("127.0.0.1:8080").password("a-different-secret").build()?;
//! let listening = HttpGateway::new(config, &server)?.bind().await?;
//! println!("http listening {}", listening.local_addr());
//! listening.serve_until(async { let _ = tokio::signal::ctrl_c().await; }).await;
//! # Ok(()) }
//! ```
//!
//! # Endpoints
//!
//! | request | answer |
//! |---|---|
//! | `POST /rpc` | JSON-RPC 2.0: one request, a batch, notifications; params by position or by name |
//! | `POST /RPC2` | XML-RPC, with `system.listMethods`, `system.methodSignature`, `system.methodHelp` |
//! | `POST /{Service}/{method}` | a JSON body (array = by position, object = by name; empty = none) → the bare JSON result |
//! | `GET /{Service}/{method}?x=2&y=3` | the same for methods marked `#[rpc(idempotent)]`; 405 for others |
//! | either, with `Accept: text/event-stream` | Server-Sent Events: a stream the method returns, one `data:` line of JSON per item, then `event: end` (see *Streams*) |
//! | `GET /rpc` with `Upgrade: websocket` | a WebSocket: JSON-RPC 2.0 as on `POST /rpc`, plus subscriptions to streams and `rpc.unsubscribe` (see *Streams*) |
//! | `GET /` | the explorer page for a browser (`Accept: text/html`): every method with its signature and docs, a form to call it, live calls/s and p99; for any other client the services, their methods and parameters, as JSON |
//! | `GET /openrpc.json` | the OpenRPC document of the services, as `rpc.discover` answers it ([`rpc_core::discover`]) |
//! | `GET /metrics` | Prometheus text ([`crate::metrics`]) |
//! | `GET /healthz` | 200 `serving`, or 503 `draining` once the server is shutting down ([`Server::shut_down`]); needs no password |
//!
//! ```text
//! $ curl -u rpc:PASSWORD 'http://127.0.0.1:8080/Calculator/add?x=2&y=3'
//! 5
//! $ curl -u rpc:PASSWORD -d '{"jsonrpc":"2.0","id":1,"method":"Calculator.div","params":[1,0]}' http://127.0.0.1:8080/rpc
//! {"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"division by zero","data":"DivideByZero"}}
//! ```
//!
//! # Streams
//!
//! A method that returns a [`Stream`](rpc_core::Stream) is called over
//! Server-Sent Events or the WebSocket; called by REST without
//! `Accept: text/event-stream`, by `POST /rpc` (a batch on the WebSocket
//! too) or by XML-RPC it is refused before it runs, with an error naming
//! those doors. A method that takes a stream is called over TCP only.
//!
//! **Server-Sent Events**: each item is one `data:` line of compact JSON;
//! the last event, `end`, carries why the stream ended: `{"ok":true}`, or
//! the error object `{"code":…,"message":…}` (the method's error, -32003
//! ShuttingDown when the server drains and the stream outlives
//! `shutdown_grace_ms`). A method that returns no stream sends its result
//! as one item. A call that fails before its stream opens is answered as
//! REST answers it.
//!
//! **WebSocket**: a call to a method that returns a stream answers with a
//! subscription id (a number, counted per connection); items arrive as
//! notifications under the method's name,
//! `{"jsonrpc":"2.0","method":M,"params":{"subscription":ID,"result":ITEM}}`,
//! and the end as `"params":{"subscription":ID,"error":REASON}`, a normal
//! finish too, with `{"code":0,"message":"the stream finished"}` (jsonrpsee
//! ends a subscription only on an `error` member). `rpc.unsubscribe` with
//! params `[ID]` ends one quietly and answers `true` (`false` for an id not
//! open). jsonrpsee's `WsClient::subscribe(method, params, "rpc.unsubscribe")`
//! works unchanged. Subscribe in single messages, not in batches.
//!
//! ```text
//! $ curl -N -u rpc:PASSWORD -H 'Accept: text/event-stream' 'http://127.0.0.1:8080/KeyValue/watch?prefix=a/'
//! data: {"Set":{"key":"a/1","value":[1,2]}}
//!
//! event: end
//! data: {"ok":true}
//!
//! $ wscat -c ws://127.0.0.1:8080/rpc --auth rpc:PASSWORD
//! > {"jsonrpc":"2.0","id":1,"method":"KeyValue.watch","params":["a/"]}
//! < {"jsonrpc":"2.0","id":1,"result":1}
//! < {"jsonrpc":"2.0","method":"KeyValue.watch","params":{"subscription":1,"result":{"Set":{"key":"a/1","value":[1,2]}}}}
//! ```
//!
//! ```python
//! s = xmlrpc.client.ServerProxy('http://rpc:PASSWORD@127.0.0.1:8080/RPC2', allow_none=True)
//! s.set('spam', [1, 2, 3]); s.get('spam')   # [1, 2, 3]
//! ```
//!
//! # Errors and statuses
//!
//! JSON-RPC answers a request it could read with 200 (a notification-only
//! request with 204), the outcome in the body; a body that is not JSON-RPC at
//! all gets 400 and an error object. XML-RPC answers failures as `<fault>`
//! (`faultCode` from [`ErrorKind::xmlrpc_fault`]). REST answers the status of
//! [`ErrorKind::http_status`] — 400 bad arguments, 404 unknown method, 413
//! body too large, 422 application error, 500 handler panic, 504 deadline —
//! with `{"error":{"code":…,"message":…,"data":…}}`. A request refused
//! before its call (body too large, foreign origin, shutting down) is
//! answered in its endpoint's form: a JSON-RPC error object at `/rpc`, a
//! fault at `/RPC2`, that JSON elsewhere.
//!
//! # The handler's context
//!
//! A handler called over HTTP finds its caller in
//! [`Context::current`](rpc_core::Context::current): the peer is the address
//! of the HTTP connection (a proxy's, behind one), and the deadline is when
//! the gateway stops waiting, counted from the arrival of the request's
//! head: the shortest of the `x-rpc-timeout-ms` header ([`TIMEOUT_HEADER`]),
//! a JSON-RPC request's `"deadline_ms"` and `request_timeout_ms`. At the
//! deadline the call is answered as timed out (504 for REST).
//!
//! ```text
//! $ curl -u rpc:PASSWORD -H 'x-rpc-timeout-ms: 1000' 'http://127.0.0.1:8080/Calculator/add?x=2&y=3'
//! ```
//!
//! # Security
//!
//! Every endpoint but `/healthz` needs HTTP Basic credentials: any user name
//! and the `[http]` password, which must differ from the `[server]` authkey
//! (the gateway refuses to start otherwise, and never accepts the authkey).
//! Plain HTTP gives **no confidentiality**: the password and every call cross
//! the network in the clear. So with `[http.tls]` ([`HttpConfigBuilder::tls`],
//! the keys of `[server.tls]`) the gateway serves HTTPS (ALPN `http/1.1`,
//! the WebSocket as `wss://`; see `secure.rs` for the sequence), and
//! without it [`HttpGateway::bind`] refuses a non-loopback address unless
//! `allow_plaintext_password = true` (a proxy in front terminates TLS).
//! The TLS handshake is pending like the header wait, and each has
//! `http_header_timeout_ms` (the head's starts after the handshake); a plain HTTP request to the HTTPS port gets
//! 400 and a close. [`HttpListening::tls_reloader`] re-reads the certificate.
//!
//! ```text
//! $ curl --cacert ca.pem -u rpc:PASSWORD 'https://localhost:8443/Calculator/add?x=2&y=3'
//! 5
//! ```
//!
//! A request with an `Origin` header (a browser sends one with every
//! cross-site request) is refused with 403 before anything runs unless
//! `[http] cors_origins` lists that origin; a page from a listed origin
//! gets the `Access-Control-Allow-*` headers, and its preflights are
//! answered without credentials. Requests without `Origin` are not affected.
//!
//! Bodies are bounded (`max_body_bytes`, by default the server's
//! `max_frame_bytes`), as are the time of a request and the time a client
//! may take to send its headers (both `request_timeout_ms`),
//! the nesting of JSON and XML values (64 levels), the calls of one JSON-RPC
//! batch and the open HTTP connections (the server's `max_batch` and
//! `max_connections`). A body over `max_body_bytes` is answered 413 at
//! once, and the rest of it is read and dropped before the connection
//! closes, so that a client still sending hears the 413 rather than a
//! broken pipe. XML is read without
//! a DTD: only the five predefined entities and numeric character references.
//!
//! Replies are bounded too: a JSON-RPC or REST reply is never larger than
//! the server's `max_frame_bytes`. A larger result is answered with an
//! over-budget error (413 for REST); a batch answers what fits and gives the
//! rest that error, without running the members it had not yet started.
//! A batch runs at most `max_in_flight` members at once.
//!
//! Streams are bounded the same way. An event-stream body is polled only
//! as the client takes it; a WebSocket message is at most
//! `max_body_bytes`, a connection runs at most `max_in_flight` calls and
//! holds at most `max_streams` subscriptions, and what it has queued to
//! send is at most 1 MiB: past that, its calls
//! and streams wait for the client to read. A stream item over
//! `max_frame_bytes` ends its stream with an over-budget error. A client
//! that takes no bytes for `write_timeout` is disconnected, and its
//! streams' producers are dropped.
//!
//! A wrong password is logged (one line a second at most, with a count),
//! and after 5 in a minute from one address each further one is answered
//! late, 100 ms doubling up to 2 s; a right password never waits, and
//! addresses in `trusted_proxies` are exempt. Once the server drains,
//! every request gets 503 and `Connection: close`.

mod auth;
mod batch;
mod body;
mod call;
mod caller;
pub mod config;
mod cors;
mod drain;
mod explorer;
mod jsonrpc;
mod listener;
mod member;
mod opened;
mod ops;
mod peer;
mod post_rpc;
mod query;
mod refuse;
mod reply;
mod rest;
mod routes;
mod secure;
mod sse;
mod throttle;
mod ws;
mod ws_out;
mod ws_sub;
mod xml_de;
mod xml_read;
mod xml_ser;
mod xml_value;
mod xmlrpc;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use rpc_core::{Error, ErrorKind, Registry};

pub use self::caller::{METADATA_PREFIX, TIMEOUT_HEADER};
pub use self::config::{HttpConfig, HttpConfigBuilder, Password};
use crate::Server;
use crate::config::ServerTls;
use crate::metrics::Metrics;
use crate::tls::Acceptor;

/// Time the whole request gets beyond `request_timeout`, so that a call that
/// runs out of time is answered by the gateway's own error, not cut off.
const ANSWER_MARGIN: Duration = Duration::from_secs(1);

/// What every request handler shares.
struct Gateway {
    server: Server,
    registry: Registry,
    metrics: Arc<Metrics>,
    guard: auth::Guard,
    throttle: throttle::Throttle,
    calls: call::InFlight,
    request_timeout: Duration,
    max_batch: usize,
    /// Members of one batch running at once (`max_in_flight`).
    max_in_flight: usize,
    /// The largest reply body (`max_frame_bytes`, as over TCP).
    max_reply_bytes: usize,
    /// The largest request body (`max_body_bytes`).
    max_body_bytes: usize,
    /// The origins whose pages may call (`cors_origins`), as browsers write them.
    cors_origins: Vec<String>,
}

/// The gateway of one [`Server`]: its services, its counters, an `[http]`
/// configuration. Build it, [`bind`](HttpGateway::bind) it, serve.
pub struct HttpGateway {
    gateway: Arc<Gateway>,
    listen: String,
    tls: Option<ServerTls>,
    allow_plaintext_password: bool,
}

impl HttpGateway {
    /// A gateway to `server`'s services, counting into `server`'s metrics.
    ///
    /// Fails if the `[http]` password equals the `[server]` authkey: the two
    /// secrets guard different doors and must not open each other's.
    pub fn new(config: HttpConfig, server: &Server) -> Result<HttpGateway, Error> {
        if config.password().as_bytes() == server.config().authkey().as_bytes() {
            return Err(Error::new(
                ErrorKind::Config,
                "the [http] password is the [server] authkey; choose a different password",
            ));
        }
        let limits = server.config().limits();
        let gateway = Gateway {
            server: server.clone(),
            registry: server.registry().clone(),
            metrics: server.metrics().clone(),
            guard: auth::Guard::new(config.password(), config.realm())?,
            throttle: throttle::Throttle::new(&limits.trusted_proxies, config.request_timeout()),
            calls: call::InFlight::default(),
            request_timeout: config.request_timeout(),
            max_batch: limits.max_batch,
            max_in_flight: limits.max_in_flight,
            max_reply_bytes: server.config().max_frame_bytes(),
            max_body_bytes: config
                .max_body_bytes()
                .unwrap_or(server.config().max_frame_bytes()),
            cors_origins: config.cors_origins().to_vec(),
        };
        Ok(HttpGateway {
            gateway: Arc::new(gateway),
            listen: config.listen().to_owned(),
            tls: config.tls().cloned(),
            allow_plaintext_password: config.allows_plaintext_password(),
        })
    }

    /// Binds the configured `listen` address, reading `[http.tls]`'s files
    /// first.
    ///
    /// Fails naming the address or the file at fault, and on a non-loopback
    /// address without `[http.tls]` unless `allow_plaintext_password` is
    /// set: the Basic password would cross the network in clear.
    pub async fn bind(self) -> Result<HttpListening, Error> {
        let tls = match &self.tls {
            Some(settings) => Some(Arc::new(Acceptor::for_http(settings)?)),
            None => None,
        };
        if let Some(acceptor) = &tls {
            // `Server::reload_tls` reloads this certificate too.
            self.gateway.server.reload_with(acceptor);
        }
        let listener = tokio::net::TcpListener::bind(&self.listen)
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::Io,
                    format!("cannot listen on {}: {e}", self.listen),
                )
                .with_source(e)
            })?;
        let bound = listener
            .local_addr()
            .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
        secure::check_plaintext(bound, tls.is_some(), self.allow_plaintext_password)?;
        let local_addr = bound.to_string();
        Ok(HttpListening {
            tls,
            router: routes::router(&self.gateway),
            listener: listener::Counting::new(
                listener,
                self.gateway.metrics.clone(),
                self.gateway.server.config().limits().max_connections,
                self.gateway.server.config().limits().write_timeout,
            ),
            local_addr,
            gateway: self.gateway.clone(),
        })
    }
}

impl std::fmt::Debug for HttpGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpGateway")
            .field("listen", &self.listen)
            .field("max_body_bytes", &self.gateway.max_body_bytes)
            .finish_non_exhaustive()
    }
}

/// A bound gateway, ready to serve.
pub struct HttpListening {
    tls: Option<Arc<Acceptor>>,
    router: Router,
    listener: listener::Counting,
    local_addr: String,
    gateway: Arc<Gateway>,
}

impl HttpListening {
    /// The bound address (`host:port`; with port 0 configured, the real port).
    pub fn local_addr(&self) -> &str {
        &self.local_addr
    }

    /// A handle that re-reads `[http.tls]`'s files while the gateway
    /// serves; `None` for plain HTTP.
    pub fn tls_reloader(&self) -> Option<TlsReloader> {
        self.tls.clone().map(TlsReloader)
    }

    /// Serves until the task is dropped.
    pub async fn serve(self) {
        self.serve_until(std::future::pending()).await
    }

    /// Serves until `shutdown` completes or the server starts shutting down
    /// (whichever listener saw the signal first), then drains: the server
    /// is marked shutting down, `/healthz` answers 503, new calls are
    /// refused with 503, and calls in flight (on every door, TCP included)
    /// get the server's `shutdown_grace` to finish. Then the listener
    /// closes, and this
    /// returns once the last connection is closed (at most a second later).
    pub async fn serve_until(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let gateway = self.gateway;
        let signal = {
            let gateway = gateway.clone();
            async move {
                let mut draining = gateway.server.draining();
                tokio::select! {
                    () = shutdown => {}
                    () = crate::shutdown::draining_started(&mut draining) => {}
                }
                gateway.server.shut_down();
                let grace = gateway.server.config().limits().shutdown_grace;
                tracing::info!(calls = gateway.calls.count(), "HTTP gateway draining");
                // Open (answering 503 on /healthz) until every call of the
                // server has finished, not only its HTTP ones: a load
                // balancer checking the gateway then reads "draining"
                // while TCP calls finish, rather than a closed port.
                let metrics = gateway.server.metrics().clone();
                let drained = async {
                    gateway.calls.idle().await;
                    while metrics.calls_in_flight() > 0 {
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    }
                };
                if tokio::time::timeout(grace, drained).await.is_err() {
                    tracing::warn!("calls still running after the shutdown grace");
                }
            }
        };
        let HttpListening {
            router,
            mut listener,
            tls,
            ..
        } = self;
        // hyper's HTTP/1 server, with a timer so that a client that sends its
        // headers slowly (or not at all) is cut off: axum::serve sets none.
        let limits = gateway.server.config().limits();
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            // A head cannot take longer than the whole request may.
            .header_read_timeout(limits.http_header_timeout.min(gateway.request_timeout))
            .max_buf_size(listener::MAX_HEAD_BUFFER);
        // Each connection is told to finish its answer and close once the
        // calls have drained (hyper-util's `GracefulShutdown` cannot watch a
        // connection that may upgrade to a WebSocket).
        let (closing, closed) = tokio::sync::watch::channel(false);
        // The TLS handshake is bounded as the head that follows it is.
        let tls = tls.map(|acceptor| secure::Secure {
            acceptor,
            limit: limits.http_header_timeout.min(gateway.request_timeout),
            metrics: gateway.metrics.clone(),
        });
        // Held here so that whatever outlives the shutdown is dropped with it.
        let mut tasks = tokio::task::JoinSet::new();
        tokio::pin!(signal);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (io, peer) = match accepted {
                        Ok(accepted) => accepted,
                        Err(e) => {
                            crate::server::accept_failed(&gateway.server, &e).await;
                            continue;
                        }
                    };
                    // Pending, with the TCP listener's, until a request head is whole.
                    let (pending, notice) = gateway.server.admission().admit(Some(peer.ip()));
                    let service = listener::FirstHead::new(peer::service_for(&gateway, &router, peer), pending);
                    let (closed, limits) = (closed.clone(), limits.clone());
                    let Some(tls) = &tls else {
                        let connection = http.serve_connection(TokioIo::new(io), service).with_upgrades();
                        tasks.spawn(listener::drive(connection, notice, closed, limits));
                        continue;
                    };
                    let (tls, http, mut notice) = (tls.clone(), http.clone(), notice);
                    tasks.spawn(async move {
                        if let Some(io) = tls.handshake(io, peer, &mut notice).await {
                            let connection = http.serve_connection(TokioIo::new(io), service).with_upgrades();
                            listener::drive(connection, notice, closed, limits).await;
                        }
                    });
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                () = &mut signal => break,
            }
        }
        drop(listener);
        // Calls have drained; connections finish the answers they are writing.
        let _ = closing.send(true);
        let finished = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(ANSWER_MARGIN, finished).await.is_err() {
            tracing::warn!("closing HTTP connections that did not finish in time");
        }
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
}

impl std::fmt::Debug for HttpListening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpListening")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

/// Re-reads the gateway's `[http.tls]` certificate and key; see
/// [`HttpListening::tls_reloader`].
#[derive(Clone, Debug)]
pub struct TlsReloader(Arc<Acceptor>);

impl TlsReloader {
    /// New connections get the new certificate, open ones keep theirs.
    /// Fails if the files do not load: the certificate in force stays.
    pub fn reload(&self) -> Result<(), Error> {
        self.0.reload()
    }
}
