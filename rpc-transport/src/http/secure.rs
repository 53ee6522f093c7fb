//! HTTPS for the gateway (`[http.tls]`), and the rule that keeps its
//! password off the network in clear.
//!
//! ```text
//! client                                             gateway
//!   | -- TCP connect ------------------------------> |   admitted as pending
//!   | ==== TLS handshake (ALPN http/1.1) =========== |   within http_header_timeout_ms
//!   | -- GET /rpc ... Authorization: Basic ... ----> |   (the same bound): hyper's
//!   | <-- 200 ... ---------------------------------- |   header wait; pending until
//!   |                                                |   the first head is whole
//! ```
//!
//! A client that speaks plain HTTP to the HTTPS port gets one plaintext
//! `400` saying so, and its connection is closed: the first byte of a TLS
//! client is `0x16` (a handshake record), of an HTTP client a letter.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rpc_core::{Error, ErrorKind};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio_rustls::server::TlsStream;

use super::listener::Counted;
use crate::config::{ConfigError, ServerTls, min_version, suite_list};
use crate::metrics::{Metrics, Refused};
use crate::server::admission::Notice;
use crate::tls::Acceptor;

/// The first byte of a TLS client's first record: a handshake.
const HANDSHAKE_RECORD: u8 = 0x16;

/// What a plain HTTP request to the HTTPS port is answered with.
const SPEAKS_HTTPS: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
    Content-Type: text/plain\r\nContent-Length: 52\r\nConnection: close\r\n\r\n\
    this port speaks HTTPS: call it with an https:// URL";

/// `[http.tls]` as written: the keys of `[server.tls]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HttpTlsTable {
    cert_file: PathBuf,
    key_file: PathBuf,
    client_ca_file: Option<PathBuf>,
    min_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
}

impl HttpTlsTable {
    /// The settings, paths relative to `base` (the config file's directory).
    pub(super) fn resolve(self, base: &Path) -> Result<ServerTls, ConfigError> {
        let min_version = min_version(self.min_version.as_deref(), "http.tls")?;
        let tls = ServerTls::new(base.join(self.cert_file), base.join(self.key_file));
        let tls = match self.client_ca_file {
            Some(path) => tls.client_ca_file(base.join(path)),
            None => tls,
        };
        let tls = tls.with_min_version(min_version);
        Ok(tls.cipher_suites(suite_list(self.cipher_suites, "http.tls")?))
    }
}

/// Refuses a gateway whose Basic password would cross the network in
/// clear: one bound to `address`, not loopback, without TLS, unless
/// `allow_plaintext_password` says a proxy in front terminates TLS.
pub(super) fn check_plaintext(address: SocketAddr, tls: bool, allowed: bool) -> Result<(), Error> {
    if tls || allowed || address.ip().is_loopback() {
        return Ok(());
    }
    let why = format!(
        "the HTTP gateway on {address} would take its Basic password in clear from the network; \
         add [http.tls] (cert_file, key_file) to serve HTTPS, listen on a loopback address, \
         or set `allow_plaintext_password = true` in [http] if a proxy in front terminates TLS"
    );
    Err(Error::new(ErrorKind::Config, why))
}

/// The gateway's TLS: the certificate in force (reloadable) and the time a
/// client gets for its handshake.
#[derive(Clone, Debug)]
pub(super) struct Secure {
    pub(super) acceptor: Arc<Acceptor>,
    pub(super) limit: Duration,
    pub(super) metrics: Arc<Metrics>,
}

impl Secure {
    /// The TLS handshake over `io` from `peer`, as a pending connection:
    /// `None` (the connection closed, logged) if it fails, takes longer than
    /// `limit`, or the server sheds it.
    pub(super) async fn handshake(
        &self,
        io: Counted,
        peer: SocketAddr,
        notice: &mut Notice,
    ) -> Option<TlsStream<Counted>> {
        let handshake = tokio::time::timeout(self.limit, self.accept(io, peer));
        let failed = tokio::select! {
            done = handshake => match done {
                Ok(Ok(stream)) => return Some(stream),
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no TLS handshake from {peer} within {:?}", self.limit),
            },
            _ = notice.shed() => format!("the TLS handshake of {peer} was shed"),
        };
        self.metrics.refused(Refused::Handshake);
        tracing::debug!(error = %failed, "HTTPS connection closed");
        None
    }

    async fn accept(&self, mut io: Counted, peer: SocketAddr) -> Result<TlsStream<Counted>, Error> {
        let first = io
            .first_byte()
            .await
            .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
        if first.is_some_and(|byte| byte != HANDSHAKE_RECORD) {
            // Best effort: the client learns why before the close.
            let _ = io.write_all(SPEAKS_HTTPS).await;
            let _ = io.shutdown().await;
            let why = format!("{peer} spoke plain HTTP to the HTTPS port");
            return Err(Error::new(ErrorKind::Authentication, why));
        }
        let (stream, _session) = self.acceptor.accept(io, &peer.to_string()).await?;
        Ok(stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_clear_is_refused_off_loopback_only() {
        let public: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let e = check_plaintext(public, false, false).unwrap_err();
        assert!(e.to_string().contains("[http.tls]"), "{e}");
        assert!(e.to_string().contains("allow_plaintext_password"), "{e}");
        assert!(check_plaintext(public, true, false).is_ok());
        assert!(check_plaintext(public, false, true).is_ok());
        assert!(check_plaintext(local, false, false).is_ok());
        assert!(check_plaintext("[::1]:1".parse().unwrap(), false, false).is_ok());
    }

    #[test]
    fn the_plain_http_answer_is_well_formed() {
        let text = std::str::from_utf8(SPEAKS_HTTPS).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains(&format!("Content-Length: {}", body.len())),
            "{text}"
        );
    }
}
