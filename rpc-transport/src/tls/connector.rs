//! The client's side of TLS: the handshake with the expected name, then the
//! exporter. A server that answers with something other than a TLS record
//! (our plaintext server speaks first, a challenge frame starting 0x00) is
//! told apart by the first byte it sends: "the server does not speak TLS".

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rpc_core::{Error, ErrorKind};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::explain::{Side, handshake_failed};
use super::pace::SEND_BUFFER;
use super::{Session, load};
use crate::config::ClientTls;
use crate::net::Io;

/// TLS record types a TLS server may open with: a handshake, or an alert.
const HANDSHAKE_RECORD: u8 = 0x16;
const ALERT_RECORD: u8 = 0x15;

/// Connects TLS over `io` to `address` (whose host is the expected name
/// unless `tls` names one); the stream and its session.
pub(crate) async fn connect<S: Io>(
    io: S,
    tls: &ClientTls,
    address: &str,
) -> Result<(TlsStream<Sniffed<S>>, Session), Error> {
    let config = Arc::new(load::client_config(tls)?);
    let name = server_name(tls, address)?;
    let sniffed = Sniffed { io, seen: false };
    let stream = match TlsConnector::from(config).connect(name, sniffed).await {
        Ok(stream) => stream,
        Err(e) if e.get_ref().is_some_and(|inner| inner.is::<NotTls>()) => {
            return Err(Error::new(
                ErrorKind::Authentication,
                format!(
                    "the server does not speak TLS: {address} answered in plaintext; \
                     remove [client.tls] or connect to its TLS listener"
                ),
            ));
        }
        Err(e) => {
            return Err(handshake_failed(
                e,
                Side::Client(tls.min_version()),
                address,
            ));
        }
    };
    let session = Session::of(stream.get_ref().1)?;
    let mut stream = stream;
    stream.get_mut().1.set_buffer_limit(Some(SEND_BUFFER));
    Ok((stream, session))
}

/// The name the server's certificate must hold.
fn server_name(tls: &ClientTls, address: &str) -> Result<ServerName<'static>, Error> {
    let host = match tls.expected_name() {
        Some(name) => name,
        None if address.starts_with("unix:") => {
            let why = "TLS over a Unix socket needs `server_name` in [client.tls]";
            return Err(Error::new(ErrorKind::Config, why));
        }
        None => host_of(address),
    };
    ServerName::try_from(host.to_owned()).map_err(|e| {
        let why = format!(
            "`{host}` is not a name TLS can check ({e}); set `server_name` in [client.tls]"
        );
        Error::new(ErrorKind::Config, why)
    })
}

/// `host` of `host:port` (`[v6]:port` too).
fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// A stream that checks the first byte the peer sends.
#[derive(Debug)]
pub(crate) struct Sniffed<S> {
    io: S,
    seen: bool,
}

impl<S: AsyncRead + Unpin> AsyncRead for Sniffed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        let first = buf.filled().get(before).copied().filter(|_| !this.seen);
        if let Some(first) = first {
            this.seen = true;
            if !matches!(first, HANDSHAKE_RECORD | ALERT_RECORD) {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, NotTls)));
            }
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Sniffed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    // rustls hands each batch of records to one vectored write: without
    // these, the default would send one record (16 KiB) a syscall.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// The read error a plaintext answer becomes.
#[derive(Debug)]
struct NotTls;

impl std::fmt::Display for NotTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the peer answered with something other than a TLS record")
    }
}

impl std::error::Error for NotTls {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vectored_write_passes_through_whole() {
        let mut sniffed = Sniffed {
            io: Vec::new(),
            seen: false,
        };
        assert!(sniffed.is_write_vectored());
        let bufs = [
            io::IoSlice::new(b"record one, "),
            io::IoSlice::new(b"record two"),
        ];
        let waker = std::task::Waker::noop();
        let wrote =
            Pin::new(&mut sniffed).poll_write_vectored(&mut Context::from_waker(waker), &bufs);
        assert!(matches!(wrote, Poll::Ready(Ok(22))));
        assert_eq!(sniffed.io, b"record one, record two");
    }

    #[test]
    fn the_host_of_an_address_is_the_name_expected() {
        assert_eq!(host_of("rpc.internal:17000"), "rpc.internal");
        assert_eq!(host_of("127.0.0.1:1"), "127.0.0.1");
        assert_eq!(host_of("[::1]:1"), "::1");
    }
}
