//! The gateway's TCP listener: each accepted connection counted open in the
//! server's metrics until it closes, and its bytes counted as they pass. At
//! the server's `max_connections` (HTTP connections alone), one more is
//! closed right after `accept`. A peer that takes no bytes of a response
//! for the server's `write_timeout` has its connection closed, as on the TCP
//! listener: hyper itself has no write timer.
//!
//! Until it has sent a whole request head, a connection is pending in the
//! server's admission registry (`crate::server::admission`), with the TCP listener's
//! connections: [`FirstHead`] gives its place up when hyper hands over the
//! first request.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::server::conn::http1::UpgradeableConnection;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Sleep;

use crate::config::limits::Limits;
use crate::metrics::{ConnectionGuard, Metrics, Refused, Transport};
use crate::quiet::Every;
use crate::server::admission::{Notice, Pending};

/// The most a connection's read buffer holds: a request head must fit in
/// it, and a client cannot pin more before it has sent a password.
pub(crate) const MAX_HEAD_BUFFER: usize = 64 * 1024;

/// A TCP listener whose connections carry a [`ConnectionGuard`].
pub(crate) struct Counting {
    inner: TcpListener,
    metrics: Arc<Metrics>,
    max_connections: usize,
    write_timeout: Duration,
}

impl Counting {
    pub(crate) fn new(
        inner: TcpListener,
        metrics: Arc<Metrics>,
        max_connections: usize,
        write_timeout: Duration,
    ) -> Counting {
        Counting {
            inner,
            metrics,
            max_connections,
            write_timeout,
        }
    }
}

impl Counting {
    /// Accepts the next connection under `max_connections`. Fails as
    /// `accept` does (out of descriptors, say), for the caller to handle.
    pub(crate) async fn accept(&mut self) -> io::Result<(Counted, SocketAddr)> {
        static FULL: Every = Every::second();
        let (stream, peer) = loop {
            let (stream, peer) = self.inner.accept().await?;
            let open = self.metrics.connections_open(Transport::Http);
            if usize::try_from(open).unwrap_or(usize::MAX) < self.max_connections {
                break (stream, peer);
            }
            self.metrics.refused(Refused::MaxConnections);
            if let Some(suppressed) = FULL.ready() {
                tracing::warn!(
                    limit = self.max_connections,
                    suppressed,
                    "refused an HTTP connection: max_connections reached"
                );
            }
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY");
        }
        let open = self.metrics.connection_opened(Transport::Http);
        let metrics = self.metrics.clone();
        let counted = Counted {
            stream,
            metrics,
            _open: open,
            write_timeout: self.write_timeout,
            stalled: None,
        };
        Ok((counted, peer))
    }
}

/// Serves one connection (which may upgrade to a WebSocket) until it
/// ends, the server sheds it, or `closing` turns true: then it finishes
/// the answer it is writing and closes.
pub(crate) async fn drive<I, S, B>(
    connection: UpgradeableConnection<TokioIo<I>, S>,
    mut notice: Notice,
    mut closing: watch::Receiver<bool>,
    limits: Limits,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    tokio::pin!(connection);
    let ended = tokio::select! {
        ended = connection.as_mut() => ended,
        why = notice.shed() => {
            tracing::debug!(reason = why.reason(&limits), "HTTP connection shed");
            return;
        }
        () = async { drop(closing.wait_for(|closing| *closing).await) } => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = ended {
        tracing::debug!(error = %e, "HTTP connection ended");
    }
}

/// A connection's service that gives up its place among the pending
/// connections when its first request head has arrived whole.
pub(crate) struct FirstHead<S> {
    inner: S,
    pending: std::sync::Mutex<Option<Pending>>,
}

impl<S> FirstHead<S> {
    pub(crate) fn new(inner: S, pending: Pending) -> FirstHead<S> {
        FirstHead {
            inner,
            pending: std::sync::Mutex::new(Some(pending)),
        }
    }
}

impl<S: hyper::service::Service<R>, R> hyper::service::Service<R> for FirstHead<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, request: R) -> Self::Future {
        if let Ok(mut pending) = self.pending.lock() {
            pending.take();
        }
        self.inner.call(request)
    }
}

/// An accepted connection, counted open while it lives.
pub(crate) struct Counted {
    stream: TcpStream,
    metrics: Arc<Metrics>,
    _open: ConnectionGuard,
    write_timeout: Duration,
    /// Armed when a write cannot proceed; cleared when one does.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl Counted {
    /// The first byte the client sends, left unread; `None` if it closed first.
    pub(crate) async fn first_byte(&self) -> io::Result<Option<u8>> {
        let mut byte = [0u8; 1];
        let n = self.stream.peek(&mut byte).await?;
        Ok((n == 1).then_some(byte[0]))
    }

    /// Passes `polled` through, failing it once writes have made no
    /// progress for `write_timeout`.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let timeout = self.write_timeout;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if stalled.as_mut().poll(cx).is_ready() {
            let why = format!("the client took no response bytes for {timeout:?} (write_timeout)");
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, why)));
        }
        Poll::Pending
    }
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
        self.watch(cx, polled)
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
        self.watch(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.stream).poll_flush(cx);
        self.watch(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
