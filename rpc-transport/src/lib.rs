//! The tokio transport of the rpc framework: framing, the authkey
//! handshake, the hello, the server and the client connection, and their
//! configuration.
//!
//! ```no_run
//! # async fn demo(registry: rpc_core::Registry) -> Result<(), Box<dyn std::error::Error>> {
//! use rpc_transport::{ClientConfig, Server, ServerConfig};
//!
//! let config = ServerConfig::builder().listen("127.0.0.1:0").authkey("peekaboo").build()?;
//! let listening = Server::new(config, registry).bind().await?;
//! let address = listening.local_addr().to_owned();
//! tokio::spawn(listening.serve());
//!
//! let config = ClientConfig::builder().connect(address).authkey("peekaboo").codec("json").build()?;
//! let client: rpc_core::Client = rpc_transport::connect(&config).await?;
//! // CalculatorClient::new(client).add(2, 3).await?
//! # Ok(()) }
//! ```
//!
//! # Rooms
//!
//! One folder per role; each room's docs say what it holds and what it may
//! use, and no room imports one that imports it back (`.ci/house.py` checks
//! it in CI).
//!
//! | room | holds | uses |
//! |---|---|---|
//! | `wire/` | bytes on the wire, no tasks: [`frame`], [`handshake`], [`hello`], and the session that opens a stream with them | [`net`], [`quiet`] |
//! | [`net`] | streams and listeners: TCP, Unix | — |
//! | `tls` | TLS (rustls, ring): loading `[server.tls]`/`[client.tls]` files, the server's reloadable acceptor, the client's connector, each session's channel binding and peer certificate subject (`subject`), the send limit (`pace`), TLS failures named | config, net, wire (handshake errors) |
//! | [`server`] | [`Listening`] (its listeners, TLS or plaintext, and the accept loop); admission (connections not yet authenticated); the connection loop, its read buffer (`read_room`) and whether a large frame's work leaves the worker (`long_turn`); one request and its call (through the registry's middleware layers, with its metadata in the `Context`); calls in flight and cancel; batches; queued replies; stream messages; a received trace context continued | wire, net, tls, config, metrics, quiet, the outbox, pipelining, stream, the shutdown signal, python |
//! | [`client`] | [`connect`]; the [`Connection`] (callers, reader, writer, expiry; each call's metadata and trace context); its streams; the [`Balancer`] (endpoints, health, reconnection, retries) | wire, net, tls, config, quiet, the outbox, pipelining, stream, python |
//! | [`config`] | the public types, the builders, the layering of builder → env → file, the `[server]` and `[client]` tables, [`limits`] (the nested tables), `[client.balance]`, the TLS tables, the checks | wire (the smallest frame) |
//! | `local` | [`local()`]: a client and a registry in one process, over an in-memory pipe | server, client, config |
//! | `shutdown` | the drain signal every listener shares | — |
//! | `outbox` | a connection's outgoing frames and the writer that drains them | wire, net |
//! | `pipelining` | when a batch of frames is cut into several writes: on a deep pipeline, while the process has no more such connections than workers | — |
//! | `stream` | streams on a connection (protocol 2): the table by call id, each stream's credit, the pump that sends one | metrics, the outbox, wire |
//! | [`metrics`], [`quiet`] | what every listener counts; log-safe peer text and rate-limited warnings | — |
//! | [`python`] | Python peers: serving stock `multiprocessing` clients, calling Python servers | wire, net, config, metrics, the shutdown signal |
//! | `http` | the HTTP gateway (feature `http`) | server, config, tls, metrics, quiet, the shutdown signal |
//!
//! # The wire
//!
//! Every message is a [`frame`]: a 4-byte big-endian signed length, then the
//! payload (a length of -1 announces an 8-byte length), as Python's
//! `multiprocessing.connection` writes it.
//!
//! ```text
//! +-------------------------+-------------------+
//! | length: i32 big-endian  | payload (length)  |
//! +-------------------------+-------------------+
//! ```
//!
//! A connection opens with the mutual [`handshake`] — nothing else is read
//! before both sides have proved they hold the authkey — then the client's
//! [`hello`] (protocol, codec, largest frame) and the server's answer. After
//! that, requests and responses in the codec's envelope
//! ([`rpc_core::codec`]), many in flight, matched by id.
//!
//! ```text
//! server                                             client
//!   | -- #CHALLENGE#{sha256}<40 random bytes> ------> |
//!   | <------------ {sha256}HMAC-SHA256(key, msg) --- |
//!   | -- #WELCOME# (or #FAILURE#, then close) ------> |
//!   | <------ #CHALLENGE#{sha256}<40 random bytes> -- |
//!   | -- {sha256}HMAC-SHA256(key, msg) -------------> |
//!   | <----------------------------------- #WELCOME# -- |
//!   | <------------------------------------ hello --- |
//!   | -- answer (accept, or refuse and close) ------> |
//!   | <------------------------------- request id=1 - |
//!   | <------------------------------- request id=2 - |
//!   | -- response id=2 -----------------------------> |   in completion order
//!   | -- response id=1 -----------------------------> |
//!   | <--------------------------------- cancel id=3 - |   a caller gave up on call 3
//!   | -- going away (shutdown) ---------------------> |   no new calls; in-flight ones still answered
//! ```
//!
//! # TLS
//!
//! With `[server.tls]` the `listen` addresses serve TLS (1.3; 1.2 only if
//! configured, with extended master secret), and `listen_plain` ones stay
//! plaintext for Python peers, which cannot speak TLS; a client with
//! `[client.tls]` connects with TLS. The TLS handshake comes first, as a
//! pending handshake under `handshake_timeout_ms`; then the same exchange
//! runs inside TLS, both answers also covering the session's RFC 9266
//! exporter, so a relay that terminates TLS cannot forward it:
//!
//! ```text
//! server                                             client
//!   | <============ TLS handshake (ClientHello first) | a plaintext client waits for a challenge:
//!   |                                                 | "no challenge from the server: … [client.tls]"
//!   |   each side: X = TLS-Exporter("EXPORTER-Channel-Binding", "", 32)
//!   | -- #CHALLENGE#{sha256}<40 random bytes> ------> |
//!   | <------- {sha256}HMAC-SHA256(key, msg ‖ X) ---- |
//!   | -- #WELCOME# ---------------------------------> |
//!   |    ... the roles swapped, the same binding; then hello, calls
//! ```
//!
//! Without TLS the handshake is byte for byte Python's. Under mutual TLS
//! (`client_ca_file`) a handler finds the client certificate's subject in
//! [`rpc_core::Context::peer_identity`]. [`Listening::reload_tls`] (or
//! [`Server::reload_tls`] while serving) re-reads the certificate: new
//! connections get the new one, open ones keep theirs.
//!
//! From protocol 2 a call may carry a stream each way, named by its id:
//!
//! ```text
//!   | <------------------------- request id=4 (watch) - |
//!   | -- response id=4, a stream follows ------------> |
//!   | -- items id=4 (many to a message) -------------> |   while the client's credit lasts
//!   | <------------------------------ credit id=4 ---- |   the consumer took half a window
//!   | -- end id=4 (finished, or an error) -----------> |   or the client cancels id=4
//! ```
//!
//! # Python peers
//!
//! With `python_compat = true` a server also serves stock Python
//! `multiprocessing.connection` clients on the same port, told apart by
//! their first frame (a pickle, not a hello); with `codec = "pickle"` or
//! `"py-json"` a client calls a Python server. Both speak the Python
//! Cookbook's RPC pattern, one call at a time: see [`python`].
//!
//! # Tasks
//!
//! | side | task | does |
//! |---|---|---|
//! | server | accept loop ([`Listening::serve_until`]) | spawns a task per connection; never stops on a bad peer |
//! | server | connection task | handshake, hello, then one loop: handle every complete frame (a call is polled once inline and spawned only if not done), write the replies in one go (a dozen at a time on a deep pipeline: `pipelining`), wait for bytes or a spawned call's reply |
//! | server | call tasks | calls not done at their first poll, bounded by the caller's deadline; dropped with the connection |
//! | client | callers | encode the request into the connection's outbox and write it themselves, unless callers woken by the same read are still running: then they leave it queued, and the connection task, woken once for the batch, writes it after they have run, so one write carries what a whole read answered (on a deep pipeline, the caller whose request makes a dozen queued writes them: `pipelining`) |
//! | client | connection task | reads replies, waking each caller's one-shot by id; writes what callers left queued (and what a full socket did not take); fails calls past their deadline, sleeping until the earliest one (no timer per call) |
//! | either | stream pump | one per stream this side sends: polls the producer while the receiver's credit lasts, many items to a message, into the connection's outbox; dropped when the receiver cancels or the connection ends |
//! | client | endpoint task ([`client::balance`]) | one per endpoint, with a `connect` list, `[client.balance]` or `[client.reconnect]`: pings the connection when idle, ejects it when it fails, reconnects with backoff and jitter (at once after a going-away) |
//! | client | resolver ([`client::balance`]) | with names in a balanced `connect`: looks them up every `resolve_interval_ms`, adding and draining endpoints |
//!
//! Both sides write through an outbox: small frames are encoded into one
//! buffer, while a large [`rpc_core::Bytes`] payload is written from its own
//! memory (`write_vectored`) instead of being copied in, unless its address
//! would slow the kernel's own copy ([`rpc_core::blob::splicing`]).
//!
//! The server's [`Limits`](config::Limits) bound each of these: connections,
//! pending handshakes, calls in flight per connection (past it the connection
//! task stops reading), batch size, invalid messages, idle time, and the
//! shutdown grace period. [`metrics`] counts what every listener does.
//!
//! # Over HTTP
//!
//! With the `http` feature, `http::HttpGateway` serves the same registry
//! over HTTP/1.1 on a second listener: JSON-RPC at `POST /rpc`, XML-RPC at
//! `POST /RPC2`, REST at `/{Service}/{method}`, plus `/healthz`, `/metrics`
//! (the [`metrics`] of every listener) and `/`.
//!
//! Connections run over any `AsyncRead + AsyncWrite` stream ([`net::Io`]):
//! TCP and Unix-domain sockets ship, and [`local()`] joins a client to a
//! registry in the same process over an in-memory pipe, for unit tests and
//! fakes (on top of [`Server::serve_stream`] and [`Connection::over`]).

pub mod client;
pub mod config;
#[cfg(feature = "http")]
pub mod http;
mod local;
pub mod metrics;
pub mod net;
mod outbox;
mod pipelining;
pub mod python;
pub mod quiet;
pub mod server;
mod shutdown;
mod stream;
mod tls;
mod wire;

pub use crate::client::{Balancer, Connection, EndpointStats, connect};
pub use crate::config::limits;
pub use crate::config::{ClientConfig, ServerConfig};
pub use crate::local::local;
pub use crate::python::PythonConnection;
pub use crate::server::{Listening, Server};
pub use crate::wire::{frame, handshake, hello};
