//! The benchmark service of `rpc-bench`: the workload of `peerbench`
//! (`add`, `sub`, `echo` of a byte payload, and `stream` of u64 items),
//! the TLS of its `-tls` codecs ([`tls`]), the no-op server layers
//! that price the middleware stack ([`layer`]), codec `http` through the
//! HTTP gateway ([`gateway`] serves it, [`http`] calls it), and opening
//! the many connections of scenario `many` ([`open`]).

pub mod gateway;
pub mod http;
pub mod layer;
pub mod open;
pub mod tls;

use std::io::Write;

use rpc_core::{Bytes, Registry, Stream, rpc_service};
use rpc_transport::config::Limits;
use rpc_transport::{Server, ServerConfig};

/// The authkey of the benchmark's server and clients.
pub const AUTHKEY: &str = "peerbench";

/// The largest frame the benchmark accepts (its payloads reach 1 MiB and
/// more when overridden).
pub const MAX_FRAME_BYTES: usize = 64 << 20;

/// The peerbench workload.
#[rpc_service]
pub trait Bench {
    /// `x + y`.
    #[rpc(idempotent)]
    async fn add(&self, x: i64, y: i64) -> i64;

    /// `x - y`.
    #[rpc(idempotent)]
    async fn sub(&self, x: i64, y: i64) -> i64;

    /// Returns `data` unchanged.
    #[rpc(idempotent)]
    async fn echo(&self, data: Bytes) -> Bytes;

    /// Items `0, 1, …, n - 1`; `u64::MAX` asks for an endless stream.
    #[rpc(idempotent)]
    async fn stream(&self, n: u64) -> Stream<u64>;
}

/// The benchmark service's implementation.
#[derive(Clone, Copy, Debug, Default)]
pub struct BenchImpl;

impl Bench for BenchImpl {
    async fn add(&self, x: i64, y: i64) -> i64 {
        x.wrapping_add(y)
    }

    async fn sub(&self, x: i64, y: i64) -> i64 {
        x.wrapping_sub(y)
    }

    async fn echo(&self, data: Bytes) -> Bytes {
        data
    }

    async fn stream(&self, n: u64) -> Stream<u64> {
        // A plain range is always ready: the producer costs next to nothing,
        // so the figure is the framework's.
        if n == u64::MAX {
            Stream::iter(0..)
        } else {
            Stream::iter(0..n)
        }
    }
}

/// The server's limits: the defaults, but for the connection counts,
/// which scenario `many` (2,000 connections, more with `--conns`) must not
/// reach.
///
/// - `max_connections` (10,000 by default, the TCP listener's and the
///   gateway's each) is raised so that `--conns` beyond it still measures
///   the server rather than its refusals.
/// - `max_pending_handshakes` (4096) and `max_pending_per_ip` (2048) count
///   connections not yet authenticated, every one of them from 127.0.0.1
///   here. The client opens TCP connections [`open::AT_ONCE`] at a time, so
///   few are ever pending; but an HTTP connection stays pending until its
///   first request head has arrived, and the client opens all of its
///   connections before it sends the first request: with the default
///   per-address cap, more than 2048 HTTP connections would shed the
///   oldest. Both are raised to the connection cap.
pub fn limits() -> Limits {
    const CONNECTIONS: usize = 1 << 20;
    Limits {
        max_connections: CONNECTIONS,
        max_pending_handshakes: CONNECTIONS,
        max_pending_per_ip: CONNECTIONS,
        ..Limits::default()
    }
}

/// Serves the benchmark service on `addr`, accepting only `codec` (a
/// `-tls` codec, or `tls`, serves TLS with a fresh certificate written to
/// [`tls::ca_path`] first; `http` serves the HTTP gateway, see
/// [`gateway`]); prints `listening HOST:PORT` as the first line
/// of stdout, then serves until the task is dropped.
pub async fn serve(
    addr: String,
    codec: String,
    tls: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    serve_layered(addr, codec, tls, &[]).await
}

/// [`serve`], with every call running through `layers` (the last given
/// runs first; none: calls go straight to the handler).
pub async fn serve_layered(
    addr: String,
    codec: String,
    tls: bool,
    layers: &[layer::BenchLayer],
) -> Result<(), Box<dyn std::error::Error>> {
    let use_tls = tls || codec.ends_with("-tls");
    let http = tls::wire_codec(&codec) == "http";
    if http && use_tls {
        return Err("codec http is served over plain HTTP only".into());
    }
    let mut config = ServerConfig::builder()
        // With `http`, the gateway listens on `addr` and this listener,
        // which the gateway's server needs, on a port of its own.
        .listen(if http {
            "127.0.0.1:0".to_owned()
        } else {
            addr.clone()
        })
        .authkey(AUTHKEY)
        .codecs([if http {
            "json"
        } else {
            tls::wire_codec(&codec)
        }])
        .max_frame_bytes(MAX_FRAME_BYTES)
        .limits(limits())
        .no_env();
    let cert = use_tls.then(tls::ServerCert::new).transpose()?;
    if let Some(cert) = &cert {
        config = config.tls(cert.server_tls());
    }
    let mut registry = Registry::new().with(BenchServer::new(BenchImpl))?;
    for layer in layers {
        layer.install(&mut registry);
    }
    if http {
        return gateway::serve(addr, config.build()?, registry).await;
    }
    let listening = Server::new(config.build()?, registry).bind().await?;
    // The certificate and key are loaded: only the CA file must stay.
    drop(cert);
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening {}", listening.local_addr())?;
    out.flush()?;
    drop(out);
    listening.serve().await;
    Ok(())
}
