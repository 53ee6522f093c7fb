//! The client's [`Connection`]: opening a session (handshake, hello) and
//! the [`Transport`](rpc_core::Transport) callers use; the state it shares
//! with its task is in `shared`, the task itself in `task`.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rpc_core::client::{Outgoing, Response, ResponseFuture};
use rpc_core::{Error, ErrorKind, Metadata, Transport};
use tokio::sync::{Notify, watch};
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_util::codec::Framed;

use super::shared::{Shared, Sink, Waiting};
use super::task::{Reader, run};
use crate::config::{ClientConfig, TlsVersion};
use crate::net::{self, Io};
use crate::outbox::{Chunks, Outbox};
use crate::stream::Streams;
use crate::tls;
use crate::wire::frame::FrameCodec;
use crate::wire::handshake::AuthOptions;
use crate::wire::hello::{Answer, Hello, PROTOCOL_VERSION, STREAMS};
use crate::wire::session::{self};

/// An authenticated connection to a server; implements [`Transport`].
///
/// Dropping it closes the connection; calls still pending fail with
/// [`ErrorKind::ConnectionLost`].
#[derive(Debug)]
pub struct Connection {
    pub(super) shared: Arc<Shared>,
    pub(super) task: AbortHandle,
}

impl Connection {
    /// Connects to `config.connect()` (with TLS if `[client.tls]` is set),
    /// authenticates and says hello.
    ///
    /// A TLS failure is an [`ErrorKind::Authentication`] error naming its
    /// cause: an unknown CA, an expired certificate, a name that does not
    /// match, a client certificate the server requires or refused, a server
    /// that does not speak TLS.
    pub async fn connect(config: &ClientConfig) -> Result<Connection, Error> {
        let address = config.address()?;
        Connection::dial(config, address, address).await
    }

    /// [`Connection::connect`] to `address`, a TLS server being checked
    /// against the host of `name` (the address as the user wrote it, when
    /// `address` is what it resolved to).
    pub(crate) async fn dial(
        config: &ClientConfig,
        address: &str,
        name: &str,
    ) -> Result<Connection, Error> {
        // An address that drops the SYN would hold the dial for the OS's
        // connect timeout (minutes): the handshake's limit bounds it too.
        let limit = config.handshake_timeout();
        let stream = match tokio::time::timeout(limit, net::connect(address)).await {
            Ok(stream) => stream.map_err(|e| {
                Error::new(ErrorKind::Io, format!("cannot connect to {address}: {e}"))
                    .with_source(e)
            })?,
            Err(_) => {
                let why = format!(
                    "cannot connect to {address}: no answer within {limit:?} (handshake_timeout_ms)"
                );
                return Err(Error::new(ErrorKind::Io, why));
            }
        };
        let Some(tls) = config.tls() else {
            return Connection::open(stream, config, &[], name).await;
        };
        let (stream, session) = tokio::time::timeout(limit, tls::connect(stream, tls, name))
            .await
            .map_err(|_| {
                let why = format!(
                    "no TLS handshake with {address} within {limit:?} (handshake_timeout_ms)"
                );
                Error::new(ErrorKind::Authentication, why)
            })??;
        let binding = match config.channel_binding() {
            true => &session.binding[..],
            false => &[],
        };
        Connection::open(stream, config, binding, name).await
    }

    /// Opens a session over an already connected stream (no TLS: wrap the
    /// stream first for that).
    pub async fn over<S: Io>(io: S, config: &ClientConfig) -> Result<Connection, Error> {
        Connection::open(io, config, &[], config.connect()).await
    }

    /// Opens a session over `io` to the server `name` (for errors), the
    /// handshake's answers bound to `binding`.
    async fn open<S: Io>(
        io: S,
        config: &ClientConfig,
        binding: &[u8],
        name: &str,
    ) -> Result<Connection, Error> {
        if crate::config::PYTHON_CODECS.contains(&config.codec()) {
            let why = format!(
                "codec `{}` calls Python servers; use `rpc_transport::connect` or `PythonConnection::over`",
                config.codec()
            );
            return Err(Error::new(ErrorKind::Config, why));
        }
        let mut framed = Framed::new(io, FrameCodec::new(config.max_frame_bytes()));
        let opts = AuthOptions {
            timeout: config.handshake_timeout(),
            allow_legacy: config.allow_legacy_auth(),
        };
        let key = config.authkey().as_bytes();
        session::connect_bound(&mut framed, key, &opts, binding)
            .await
            .map_err(|e| {
                let min = config.tls().map_or(TlsVersion::V1_3, |t| t.min_version());
                tls::auth_failed(e, name, min)
            })?;
        let hello = Hello {
            protocol: PROTOCOL_VERSION,
            codec: config.codec().to_owned(),
            max_frame_bytes: config.max_frame_bytes(),
            stream_window: Some(super::flow::WINDOW),
        };
        session::send_frame(&mut framed, hello.encode()).await?;
        let answer = session::read_frame(
            &mut framed,
            config.handshake_timeout(),
            "answer to the hello",
        )
        .await?;
        let server = Answer::decode(&answer)?;
        let codec = rpc_core::codec::by_name(&hello.codec).ok_or_else(|| {
            Error::new(
                ErrorKind::CodecRejected,
                format!("this client has no codec `{}`", hello.codec),
            )
        })?;
        let parts = framed.into_parts();
        let outbox = Outbox::for_stream(&parts.io);
        let (read, write) = net::split(parts.io);
        let shared = Arc::new(Shared {
            outbox,
            sink: Mutex::new(Sink {
                io: write,
                pending: Chunks::default(),
            }),
            waiters: Mutex::default(),
            deadline_moved: Notify::new(),
            codec,
            server_max_frame: server.max_frame_bytes,
            call_timeout: config.call_timeout(),
            workers: crate::pipelining::workers(),
            woken: AtomicUsize::new(0),
            write_owed: AtomicBool::new(false),
            ended: watch::Sender::new(false),
            stopping: watch::Sender::new(false),
            went_away: AtomicBool::new(false),
            uploaded: AtomicBool::new(false),
            writer_due: AtomicBool::new(false),
            writer: futures::task::AtomicWaker::new(),
            open: AtomicBool::new(true),
            heard: AtomicU64::new(0),
            pings: AtomicU64::new(0),
            pong: watch::Sender::new(0),
            streams: (server.protocol >= STREAMS).then(|| {
                Arc::new(Streams::new(
                    super::flow::MAX_STREAMS,
                    super::flow::WINDOW,
                    server.window(),
                    None,
                ))
            }),
        });
        let reader = Reader {
            io: read,
            codec: parts.codec,
            input: parts.read_buf,
        };
        let task = tokio::spawn(run(shared.clone(), reader)).abort_handle();
        Ok(Connection { shared, task })
    }
}

impl Connection {
    /// Completes once the connection has ended, for whatever reason.
    pub async fn closed(&self) {
        let mut ended = self.shared.ended.subscribe();
        let _ = ended.wait_for(|&e| e).await;
    }

    /// Completes once the connection takes no new calls: it has ended, or
    /// the server said it is going away (calls in flight may still finish).
    pub async fn stopping(&self) {
        let mut stopping = self.shared.stopping.subscribe();
        let _ = stopping.wait_for(|&s| s).await;
    }

    /// Whether the connection takes no new calls: it has ended, or the
    /// server said it is going away. (`Transport::is_closed` is stricter:
    /// ended.)
    pub fn is_closed(&self) -> bool {
        !self.takes_calls()
    }
}

impl Connection {
    /// Sends a ping and waits up to `timeout` for its pong: whether the
    /// server still reads and answers this connection, whatever its
    /// handlers are doing. A server of protocol 1 has no ping: its
    /// connection counts as answering while it is open.
    pub async fn ping(&self, timeout: Duration) -> Result<(), Error> {
        if self.shared.streams.is_none() {
            return match self.is_closed() {
                true => Err(Error::new(
                    ErrorKind::ConnectionLost,
                    "the connection is closed",
                )),
                false => Ok(()),
            };
        }
        let nonce = self.shared.pings.fetch_add(1, Ordering::Relaxed) + 1;
        let mut pong = self.shared.pong.subscribe();
        self.shared.ping(nonce);
        match tokio::time::timeout(timeout, pong.wait_for(|&n| n >= nonce)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(Error::new(
                ErrorKind::ConnectionLost,
                "the connection is closed",
            )),
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                format!("no answer to a ping within {timeout:?}"),
            )),
        }
    }

    /// How many reads have returned something: it moves while the server
    /// sends anything at all.
    pub(crate) fn heard(&self) -> u64 {
        self.shared.heard.load(Ordering::Relaxed)
    }

    /// Calls sent on this connection so far, and those not answered yet.
    pub(crate) fn counts(&self) -> (u64, usize) {
        let waiters = self.shared.waiters.lock().expect("waiters lock");
        (waiters.next_id, waiters.by_id.len())
    }

    /// Whether the server said it is going away.
    pub(crate) fn went_away(&self) -> bool {
        self.shared.went_away.load(Ordering::Relaxed)
    }

    /// Why the connection takes no new calls (empty while it does).
    pub(crate) fn why_closed(&self) -> String {
        let waiters = self.shared.waiters.lock().expect("waiters lock");
        waiters
            .closed
            .as_ref()
            .map(|(_, why)| why.clone())
            .unwrap_or_default()
    }

    /// Ends the connection now: pending calls fail with `ConnectionLost`
    /// saying `why` (and that they may or may not have run).
    pub(crate) fn abort(&self, why: String) {
        self.shared.close(ErrorKind::ConnectionLost, why);
        self.task.abort();
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.shared.close(
            ErrorKind::ConnectionLost,
            "the client closed the connection".into(),
        );
        self.task.abort();
    }
}

impl Transport for Connection {
    fn call<'a>(&'a self, call: Outgoing<'a>) -> ResponseFuture<'a> {
        self.send(call.method, call.args, call.timeout, call.metadata)
    }

    fn is_closed(&self) -> bool {
        *self.shared.ended.borrow()
    }

    fn closed(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(Connection::closed(self))
    }
}

impl Connection {
    /// [`Transport::call`], with the request queued before this returns,
    /// so the future borrows only the method's name (for its timeout error).
    pub(crate) fn send<'m>(
        &self,
        method: &'m str,
        args: &dyn erased_serde::Serialize,
        timeout: Option<Duration>,
        metadata: Option<&Metadata>,
    ) -> ResponseFuture<'m> {
        let timeout = timeout.unwrap_or(self.shared.call_timeout);
        let deadline = deadline_after(Instant::now(), timeout);
        Box::pin(self.send_until(method, args, timeout, deadline, metadata))
    }

    /// [`Connection::send`] with the call's deadline (`timeout` from when
    /// it was made) given, and its future not boxed: for a transport that
    /// wraps this one and has read the clock already.
    pub(crate) fn send_until<'m>(
        &self,
        method: &'m str,
        args: &dyn erased_serde::Serialize,
        timeout: Duration,
        deadline: Instant,
        metadata: Option<&Metadata>,
    ) -> impl Future<Output = Result<Response, Error>> + Send + use<'m> {
        // The request is queued now, so the waiter is removed however the
        // future ends: with a reply, at the timeout, or dropped unpolled.
        let started = self
            .shared
            .start(method, args, timeout, deadline, metadata)
            .map(|(id, rx)| Waiting {
                shared: self.shared.clone(),
                id,
                rx,
                answered: false,
            });
        async move {
            let mut waiting = started?;
            let outcome = (&mut waiting.rx).await;
            // The reader, `expire` or `close` removed the waiter already.
            waiting.answered = true;
            if let Ok(Ok(_)) = &outcome {
                waiting.shared.resumed();
            }
            drop(waiting);
            match outcome {
                Ok(Err(e)) if e.kind() == ErrorKind::Timeout => {
                    Err(Error::timed_out(method, timeout))
                }
                Ok(outcome) => outcome,
                Err(_) => Err(Error::new(
                    ErrorKind::ConnectionLost,
                    "the connection closed before the reply",
                )),
            }
        }
    }

    /// Whether a new call may go on this connection: it has not ended and
    /// the server has not said it is going away. (One atomic load: what a
    /// balancer checks on every call.)
    pub(crate) fn takes_calls(&self) -> bool {
        self.shared.open.load(Ordering::Acquire)
    }
}

/// `timeout` from `now`; a timeout too long to represent waits a year: for
/// ever, in effect.
pub(crate) fn deadline_after(now: Instant, timeout: Duration) -> Instant {
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600))
}
