//! The client connection: many calls in flight on one connection, matched by
//! request id.
//!
//! The room: [`connect`] here, which picks the transport; `connection`
//! ([`Connection`] and its session), `shared` (what callers and the
//! connection's task share), `deliver` (a read's replies to their
//! callers), `task` (reader, writer, expiry) and
//! [`balance`] (endpoints, reconnection, health and retries), which uses
//! `connection`, never this module. It uses the
//! wire, [`net`](crate::net), [`config`](crate::config), the outbox and,
//! for Python servers, [`python`](crate::python); never the server.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rpc_core::Error> {
//! use rpc_transport::ClientConfig;
//! let config = ClientConfig::builder().connect("127.0.0.1:17000").authkey("peekaboo").build().unwrap();
//! let client: rpc_core::Client = rpc_transport::connect(&config).await?;
//! // CalculatorClient::new(client).add(2, 3).await?
//! # Ok(()) }
//! ```
//!
//! A caller encodes its request straight into the connection's outbox and
//! registers a one-shot waiter under its id; it writes the outbox itself
//! when the socket is idle, else leaves it to the connection's task, which
//! also reads replies and hands each frame to its waiter. The caller decodes
//! its result in its own task. When the connection fails, every pending
//! call fails at once with the reason.
//!
//! Timeouts cost no timer per call: each waiter carries its deadline, and
//! a task of the connection sleeps until the earliest one, then fails the
//! calls past theirs.

pub mod balance;
mod connection;
mod deliver;
mod flow;
mod metadata;
mod shared;
mod task;

pub use self::balance::{Balancer, EndpointStats};
pub use self::connection::Connection;

use rpc_core::{Client, Error};

use crate::config::ClientConfig;

/// Connects as `config` says and returns a client handle for generated
/// clients (`CalculatorClient::new(client)`).
///
/// With `[client.tls]` the connection is TLS (see [`Connection::connect`]
/// for the errors). With `codec = "pickle"` or `"py-json"` the server is a
/// Python `multiprocessing` server in the pattern (never TLS): see
/// [`crate::python`]. Otherwise the handle is a [`Balancer`]'s: with a
/// `connect` list or `[client.balance]` it spreads calls over every
/// endpoint and keeps each up; with one address it reconnects only with a
/// `[client.reconnect]` policy (without one, a lost connection stays lost
/// and every later call fails at once). Either way, a call that is safe to
/// repeat is retried as [`balance`] says.
pub async fn connect(config: &ClientConfig) -> Result<Client, Error> {
    if crate::config::PYTHON_CODECS.contains(&config.codec()) {
        if config.tls().is_some() {
            let why = "Python multiprocessing servers cannot speak TLS: remove [client.tls] \
                       to call one (on a loopback or trusted network only)";
            return Err(Error::new(rpc_core::ErrorKind::Config, why));
        }
        if config.endpoints().len() > 1 || config.balance().is_some() {
            let why = "a Python multiprocessing client calls one server: give `connect` one \
                       address and no [client.balance]";
            return Err(Error::new(rpc_core::ErrorKind::Config, why));
        }
        return Ok(Client::new(
            crate::python::PythonConnection::connect(config).await?,
        ));
    }
    Ok(Balancer::connect(config).await?.client())
}
