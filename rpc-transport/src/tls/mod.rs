//! TLS on the TCP transport (rustls, ring provider only): loading the
//! `[server.tls]` and `[client.tls]` files, the server's reloadable
//! `acceptor`, the client's `connector`, the channel binding each session
//! yields, TLS failures as errors that name their cause (`explain`), and
//! how much a connection encrypts before it writes (`pace`).
//!
//! The room uses [`config`](crate::config) (the settings),
//! [`net`](crate::net) (the stream) and the wire's handshake errors (to
//! name a TLS alert that broke one); the server and the client use it,
//! never the other way round.
//!
//! ```text
//! client                                             server
//!   | ==== TLS handshake (1.3; 1.2 with EMS) ======== |   within handshake_timeout_ms,
//!   |                                                 |   a pending handshake until then
//!   |   both: exporter = TLS-Exporter("EXPORTER-Channel-Binding", "", 32)
//!   | <-- #CHALLENGE#{sha256}M ---------------------- |   inside TLS from here on
//!   | -- {sha256}HMAC(key, M ‖ exporter) -----------> |
//!   |    ... the authkey handshake, both answers bound, then the hello
//! ```

mod acceptor;
mod connector;
mod explain;
mod load;
mod pace;
mod subject;
#[cfg(test)]
mod test_pem;

use std::sync::Arc;

use rpc_core::{Error, ErrorKind};

pub(crate) use self::acceptor::Acceptor;
pub(crate) use self::connector::connect;
pub(crate) use self::explain::auth_failed;

/// RFC 9266's label for the `tls-exporter` channel binding.
const EXPORTER_LABEL: &[u8] = b"EXPORTER-Channel-Binding";

/// What a TLS session gives the layers above: its channel binding, and the
/// subject of the peer's certificate when it presented one.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    /// RFC 9266 `tls-exporter`: 32 bytes, empty context.
    pub(crate) binding: [u8; 32],
    /// The peer certificate's subject (RFC 4514), under mTLS.
    pub(crate) identity: Option<Arc<str>>,
}

impl Session {
    /// Reads the exporter (once: rustls 0.23 allows more, but 0.24 will
    /// allow one export per connection) and the peer's certificate subject,
    /// right after the handshake.
    fn of<D>(connection: &rustls::ConnectionCommon<D>) -> Result<Session, Error> {
        let binding = connection
            .export_keying_material([0u8; 32], EXPORTER_LABEL, Some(b""))
            .map_err(|e| Error::new(ErrorKind::Authentication, format!("no TLS exporter: {e}")))?;
        let identity = connection
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|cert| subject::subject(cert))
            .map(Arc::from);
        Ok(Session { binding, identity })
    }
}
