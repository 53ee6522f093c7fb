//! The gateway's TCP listener: each accepted connection counted open in the
//! server's metrics until it closes, and its bytes counted as they pass. At
//! the server's `max_connections` (HTTP connections alone), one more is
//! closed right after `accept`.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::metrics::{ConnectionGuard, Metrics, Refused, Transport};

/// A TCP listener whose connections carry a [`ConnectionGuard`].
pub(crate) struct Counting {
    inner: TcpListener,
    metrics: Arc<Metrics>,
    max_connections: usize,
}

impl Counting {
    pub(crate) fn new(
        inner: TcpListener,
        metrics: Arc<Metrics>,
        max_connections: usize,
    ) -> Counting {
        Counting {
            inner,
            metrics,
            max_connections,
        }
    }
}

impl axum::serve::Listener for Counting {
    type Io = Counted;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Counted, SocketAddr) {
        // axum's own accept logs and retries failures (out of descriptors…).
        let (stream, peer) = loop {
            let (stream, peer) = axum::serve::Listener::accept(&mut self.inner).await;
            let open = self.metrics.connections_open(Transport::Http);
            if usize::try_from(open).unwrap_or(usize::MAX) < self.max_connections {
                break (stream, peer);
            }
            self.metrics.refused(Refused::MaxConnections);
            tracing::warn!(
                limit = self.max_connections,
                "refused an HTTP connection: max_connections reached"
            );
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY");
        }
        let open = self.metrics.connection_opened(Transport::Http);
        let metrics = self.metrics.clone();
        (
            Counted {
                stream,
                metrics,
                _open: open,
            },
            peer,
        )
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// An accepted connection, counted open while it lives.
pub(crate) struct Counted {
    stream: TcpStream,
    metrics: Arc<Metrics>,
    _open: ConnectionGuard,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        let read = buf.filled().len().saturating_sub(before);
        self.metrics.add_bytes(Transport::Http, read as u64, 0);
        polled
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.metrics.add_bytes(Transport::Http, 0, n as u64);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled {
            self.metrics.add_bytes(Transport::Http, 0, n as u64);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
