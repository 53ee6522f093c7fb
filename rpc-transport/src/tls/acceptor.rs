//! The server's side of TLS: the certificate in force, swapped whole on
//! reload (each accept reads the current one, so open connections keep
//! theirs), and the handshake, after which the session's exporter and the
//! client's certificate subject are kept.

use std::sync::{Arc, RwLock};

use rpc_core::Error;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::explain::{Side, handshake_failed};
use super::pace::SEND_BUFFER;
use super::{Session, load};
use crate::config::ServerTls;
use crate::net::Io;

/// What a TLS listener accepts with; shared by every TLS listener of a server.
#[derive(Debug)]
pub(crate) struct Acceptor {
    settings: ServerTls,
    /// The table the settings came from, for errors.
    table: &'static str,
    /// The ALPN protocols offered (none on the RPC listeners).
    alpn: Vec<Vec<u8>>,
    current: RwLock<Arc<rustls::ServerConfig>>,
}

impl Acceptor {
    /// Reads the files `settings` names; fails naming the file at fault.
    pub(crate) fn new(settings: &ServerTls) -> Result<Acceptor, Error> {
        Acceptor::with(settings, "server.tls", Vec::new())
    }

    /// The HTTP gateway's (`[http.tls]`): ALPN `http/1.1`.
    #[cfg(feature = "http")]
    pub(crate) fn for_http(settings: &ServerTls) -> Result<Acceptor, Error> {
        Acceptor::with(settings, "http.tls", vec![b"http/1.1".to_vec()])
    }

    fn with(
        settings: &ServerTls,
        table: &'static str,
        alpn: Vec<Vec<u8>>,
    ) -> Result<Acceptor, Error> {
        Ok(Acceptor {
            current: RwLock::new(Arc::new(configure(settings, table, &alpn)?)),
            settings: settings.clone(),
            table,
            alpn,
        })
    }

    /// Reads the files again: new connections get the new certificate, open
    /// ones keep theirs. On failure the certificate in force stays.
    pub(crate) fn reload(&self) -> Result<(), Error> {
        let fresh = Arc::new(configure(&self.settings, self.table, &self.alpn)?);
        *self.current.write().expect("tls config lock") = fresh;
        Ok(())
    }

    /// Runs the handshake over `io` from `peer` (for the message): the
    /// stream and its session.
    pub(crate) async fn accept<S: Io>(
        &self,
        io: S,
        peer: &str,
    ) -> Result<(TlsStream<S>, Session), Error> {
        let config = self.current.read().expect("tls config lock").clone();
        let stream = TlsAcceptor::from(config).accept(io).await.map_err(|e| {
            handshake_failed(
                e,
                Side::Server(self.table, self.settings.min_version()),
                peer,
            )
        })?;
        let session = Session::of(stream.get_ref().1)?;
        let mut stream = stream;
        stream.get_mut().1.set_buffer_limit(Some(SEND_BUFFER));
        Ok((stream, session))
    }
}

/// The rustls configuration from `settings`' files, offering `alpn`.
fn configure(
    settings: &ServerTls,
    table: &str,
    alpn: &[Vec<u8>],
) -> Result<rustls::ServerConfig, Error> {
    let mut config = load::server_config(settings, table)?;
    config.alpn_protocols = alpn.to_vec();
    Ok(config)
}
