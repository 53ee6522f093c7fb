//! Where connections come from: TCP, or Unix-domain sockets for addresses
//! written `unix:/path` (TLS, when configured, runs on top: see the `tls` room). Everything above works on any
//! `AsyncRead + AsyncWrite` stream, so tests also use in-memory pairs
//! (`tokio::io::duplex`).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
#[cfg(unix)]
use tokio::net::{UnixListener, UnixStream};

/// A byte stream a connection can run over.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// A bound listener.
#[derive(Debug)]
pub enum Listener {
    /// A TCP listener.
    Tcp(TcpListener),
    /// A Unix-domain socket listener.
    #[cfg(unix)]
    Unix(UnixListener, String),
}

/// An accepted or connected stream.
#[derive(Debug)]
pub enum Stream {
    /// A TCP stream (with `TCP_NODELAY` set).
    Tcp(TcpStream),
    /// A Unix-domain stream.
    #[cfg(unix)]
    Unix(UnixStream),
}

impl Listener {
    /// Binds `address`: `host:port`, or `unix:/path`.
    pub async fn bind(address: &str) -> io::Result<Listener> {
        #[cfg(unix)]
        if let Some(path) = address.strip_prefix("unix:") {
            return Ok(Listener::Unix(
                UnixListener::bind(path)?,
                address.to_owned(),
            ));
        }
        Ok(Listener::Tcp(TcpListener::bind(address).await?))
    }

    /// The bound address, as `host:port` or `unix:/path`.
    pub fn local_addr(&self) -> io::Result<String> {
        match self {
            Listener::Tcp(l) => Ok(l.local_addr()?.to_string()),
            #[cfg(unix)]
            Listener::Unix(_, address) => Ok(address.clone()),
        }
    }

    /// Accepts the next connection and its peer's address, when it has one.
    pub async fn accept(&self) -> io::Result<(Stream, Option<SocketAddr>)> {
        std::future::poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Polls for the next connection, so that one task can wait on several
    /// listeners at once.
    pub fn poll_accept(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(Stream, Option<SocketAddr>)>> {
        match self {
            Listener::Tcp(l) => {
                let (s, peer) = std::task::ready!(l.poll_accept(cx))?;
                s.set_nodelay(true)?;
                Poll::Ready(Ok((Stream::Tcp(s), Some(peer))))
            }
            #[cfg(unix)]
            Listener::Unix(l, _) => {
                let (s, _) = std::task::ready!(l.poll_accept(cx))?;
                Poll::Ready(Ok((Stream::Unix(s), None)))
            }
        }
    }

    /// Whether it listens on TCP beyond this host: not loopback, not a Unix socket.
    pub fn reaches_the_network(&self) -> bool {
        match self {
            Listener::Tcp(l) => l.local_addr().is_ok_and(|a| !a.ip().is_loopback()),
            #[cfg(unix)]
            Listener::Unix(..) => false,
        }
    }
}

/// Connects to `address`: `host:port`, or `unix:/path`.
pub async fn connect(address: &str) -> io::Result<Stream> {
    #[cfg(unix)]
    if let Some(path) = address.strip_prefix("unix:") {
        return Ok(Stream::Unix(UnixStream::connect(path).await?));
    }
    let s = TcpStream::connect(address).await?;
    s.set_nodelay(true)?;
    Ok(Stream::Tcp(s))
}

/// Whether the kernel copies what is written to `io` straight from the
/// writer's buffers (a TCP or Unix socket), rather than a layer in user
/// space (TLS) copying it first: only then does where a payload lies
/// matter to the write (see [`rpc_core::blob::splicing`]).
pub(crate) fn kernel_copies<S: Io>(io: &S) -> bool {
    let any: &dyn std::any::Any = io;
    #[cfg(unix)]
    if any.is::<UnixStream>() {
        return true;
    }
    any.is::<Stream>() || any.is::<TcpStream>()
}

/// The read half of a stream split by [`split`].
pub(crate) type ReadHalf = Box<dyn AsyncRead + Send + Unpin>;
/// The write half of a stream split by [`split`].
pub(crate) type WriteHalf = Box<dyn AsyncWrite + Send + Unpin>;

/// Splits `io` into halves that can be used from two tasks at once.
///
/// TCP and Unix streams split natively, so a read and a write never wait
/// for each other; any other stream goes through [`tokio::io::split`],
/// whose halves share a lock (a reader and a writer on two workers then
/// contend for it on every poll).
pub(crate) fn split<S: Io>(io: S) -> (ReadHalf, WriteHalf) {
    let mut io = Some(io);
    let any: &mut dyn std::any::Any = &mut io;
    if let Some(stream) = any.downcast_mut::<Option<Stream>>().and_then(Option::take) {
        return match stream {
            Stream::Tcp(s) => halves(s.into_split()),
            #[cfg(unix)]
            Stream::Unix(s) => halves(s.into_split()),
        };
    }
    if let Some(stream) = any
        .downcast_mut::<Option<TcpStream>>()
        .and_then(Option::take)
    {
        return halves(stream.into_split());
    }
    let io = io.take().expect("not taken: no downcast matched");
    halves(tokio::io::split(io))
}

fn halves<R, W>((read, write): (R, W)) -> (ReadHalf, WriteHalf)
where
    R: AsyncRead + Send + Unpin + 'static,
    W: AsyncWrite + Send + Unpin + 'static,
{
    (Box::new(read), Box::new(write))
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            Stream::Tcp($s) => $e,
            #[cfg(unix)]
            Stream::Unix($s) => $e,
        }
    };
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Tcp(s) => s.is_write_vectored(),
            #[cfg(unix)]
            Stream::Unix(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_shutdown(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The streams a server and a client are given over plain TCP count as
    /// copied by the kernel; a stream that copies in user space does not.
    #[tokio::test]
    async fn plain_sockets_are_copied_by_the_kernel_and_a_pipe_is_not() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let stream = connect(&address).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        assert!(kernel_copies(&stream));
        assert!(kernel_copies(&accepted));
        let (pipe, _far) = tokio::io::duplex(64);
        assert!(!kernel_copies(&pipe));
    }
}
