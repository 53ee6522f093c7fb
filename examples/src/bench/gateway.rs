//! Codec `http` of `rpc-bench server`: the benchmark service behind the
//! framework's HTTP gateway (`rpc_transport::http`), JSON-RPC 2.0 at
//! `POST /rpc`, Server-Sent Events for `stream`. The address printed as
//! `listening HOST:PORT` is the gateway's; the TCP listener the gateway's
//! [`Server`] needs is bound on another loopback port and serves too, but
//! no client of the benchmark calls it.

use std::io::Write;

use rpc_core::Registry;
use rpc_transport::http::{HttpConfig, HttpGateway};
use rpc_transport::{Server, ServerConfig};

/// The gateway's password (HTTP Basic, any user name): a fixed value the
/// benchmark's client sends; it must differ from the TCP authkey
/// ([`super::AUTHKEY`]), which the gateway refuses as its password.
pub const HTTP_PASSWORD: &str = "peerbench-http";

/// Serves `registry` through the HTTP gateway on `addr` (plain HTTP on
/// loopback); prints `listening HOST:PORT` of the gateway first.
pub async fn serve(
    addr: String,
    config: ServerConfig,
    registry: Registry,
) -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::new(config, registry);
    let http = HttpConfig::builder()
        .listen(addr)
        .password(HTTP_PASSWORD)
        .max_body_bytes(super::MAX_FRAME_BYTES)
        .build()?;
    let gateway = HttpGateway::new(http, &server)?;
    let tcp = server.bind().await?;
    let http = gateway.bind().await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening {}", http.local_addr())?;
    out.flush()?;
    drop(out);
    tokio::spawn(tcp.serve());
    http.serve().await;
    Ok(())
}
