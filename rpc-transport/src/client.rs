//! The client connection: many calls in flight on one connection, matched by
//! request id.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rpc_core::Error> {
//! use rpc_transport::ClientConfig;
//! let config = ClientConfig::builder().connect("127.0.0.1:17000").authkey("peekaboo").build().unwrap();
//! let client: rpc_core::Client = rpc_transport::connect(&config).await?;
//! // CalculatorClient::new(client).add(2, 3).await?
//! # Ok(()) }
//! ```
//!
//! A caller encodes its request straight into the connection's outbox and
//! registers a one-shot waiter under its id; one task per connection writes
//! the outbox and reads replies, handing each frame to its waiter, and the
//! caller decodes its result in its own task. When the connection fails,
//! every pending call fails at once with the reason.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use futures::StreamExt;
use rpc_core::client::Response;
use rpc_core::codec::{Codec, Inbound, OutRequest};
use rpc_core::service::BoxFuture;
use rpc_core::{Client, Error, ErrorKind, Transport};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::AbortHandle;
use tokio_util::codec::{Framed, FramedRead};
use tracing::debug;

use crate::config::ClientConfig;
use crate::frame::{FrameCodec, FrameError};
use crate::handshake::AuthOptions;
use crate::hello::{Answer, Hello, PROTOCOL_VERSION};
use crate::net::{self, Io};
use crate::outbox::{Outbox, Pushed};
use crate::session::{self, frame_error};

/// Connects as `config` says and returns a client handle for generated
/// clients (`CalculatorClient::new(client)`).
pub async fn connect(config: &ClientConfig) -> Result<Client, Error> {
    Ok(Client::new(Connection::connect(config).await?))
}

/// An authenticated connection to a server; implements [`Transport`].
///
/// Dropping it closes the connection; calls still pending fail with
/// [`ErrorKind::ConnectionLost`].
#[derive(Debug)]
pub struct Connection {
    shared: Arc<Shared>,
    task: AbortHandle,
}

#[derive(Debug)]
struct Shared {
    outbox: Outbox,
    waiters: Mutex<Waiters>,
    codec: &'static dyn Codec,
    /// The largest frame the server accepts.
    server_max_frame: usize,
    call_timeout: Duration,
    /// Callers woken with a reply since the writer last looked.
    woken: AtomicUsize,
}

type Waiter = oneshot::Sender<Result<Response, Error>>;

#[derive(Debug, Default)]
struct Waiters {
    next_id: u64,
    by_id: HashMap<u64, Waiter>,
    /// Why the connection ended, once it has.
    closed: Option<(ErrorKind, String)>,
}

impl Connection {
    /// Connects to `config.connect()`, authenticates and says hello.
    pub async fn connect(config: &ClientConfig) -> Result<Connection, Error> {
        let address = config.connect();
        let stream = net::connect(address).await.map_err(|e| {
            Error::new(ErrorKind::Io, format!("cannot connect to {address}: {e}")).with_source(e)
        })?;
        Connection::over(stream, config).await
    }

    /// Opens a session over an already connected stream.
    pub async fn over<S: Io>(io: S, config: &ClientConfig) -> Result<Connection, Error> {
        let mut framed = Framed::new(io, FrameCodec::new(config.max_frame_bytes()));
        let opts = AuthOptions {
            timeout: config.handshake_timeout(),
            allow_legacy: config.allow_legacy_auth(),
        };
        session::connect(&mut framed, config.authkey().as_bytes(), &opts).await?;
        let hello = Hello {
            protocol: PROTOCOL_VERSION,
            codec: config.codec().to_owned(),
            max_frame_bytes: config.max_frame_bytes(),
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
        let shared = Arc::new(Shared {
            outbox: Outbox::default(),
            waiters: Mutex::default(),
            codec,
            server_max_frame: server.max_frame_bytes,
            call_timeout: config.call_timeout(),
            woken: AtomicUsize::new(0),
        });
        let task = tokio::spawn(run(shared.clone(), framed)).abort_handle();
        Ok(Connection { shared, task })
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
    fn call(
        &self,
        method: &str,
        args: &dyn erased_serde::Serialize,
        timeout: Option<Duration>,
    ) -> BoxFuture<Result<Response, Error>> {
        let timeout = timeout.unwrap_or(self.shared.call_timeout);
        let started = self.shared.start(method, args, timeout);
        let shared = self.shared.clone();
        let method = method.to_owned();
        Box::pin(async move {
            let (id, rx) = started?;
            let waiting = Waiting { shared, id };
            let outcome = tokio::time::timeout(timeout, rx).await;
            drop(waiting);
            match outcome {
                Ok(Ok(response)) => response,
                Ok(Err(_)) => Err(Error::new(
                    ErrorKind::ConnectionLost,
                    "the connection closed before the reply",
                )),
                Err(_) => Err(Error::new(
                    ErrorKind::Timeout,
                    format!("no reply to `{method}` within {timeout:?}"),
                )),
            }
        })
    }
}

impl Shared {
    /// Registers a waiter and queues the request.
    fn start(
        &self,
        method: &str,
        args: &dyn erased_serde::Serialize,
        timeout: Duration,
    ) -> Result<(u64, oneshot::Receiver<Result<Response, Error>>), Error> {
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut waiters = self.waiters.lock().expect("waiters lock");
            if let Some((kind, why)) = &waiters.closed {
                return Err(Error::new(*kind, why.clone()));
            }
            waiters.next_id += 1;
            let id = waiters.next_id;
            waiters.by_id.insert(id, tx);
            id
        };
        let request = OutRequest {
            id,
            method,
            deadline: Some(timeout),
            args,
        };
        let queued = self.outbox.push(self.server_max_frame, |buf| {
            self.codec.encode_request(buf, &request)
        });
        let failed = match queued {
            Ok(Some(())) => return Ok((id, rx)),
            Ok(None) => Error::new(ErrorKind::ConnectionLost, "the connection is closed"),
            Err(Pushed::Encode(e)) => Error::new(
                ErrorKind::InvalidParams,
                format!(
                    "the arguments of `{method}` could not be encoded: {}",
                    e.message()
                ),
            ),
            Err(Pushed::Frame(FrameError::TooLarge { len, limit })) => Error::new(
                ErrorKind::FrameTooLarge,
                format!(
                    "the request to `{method}` is {len} bytes, over the server's frame limit of {limit} bytes"
                ),
            ),
            Err(Pushed::Frame(e)) => Error::new(ErrorKind::Internal, e.to_string()),
        };
        self.forget(id);
        Err(failed)
    }

    fn forget(&self, id: u64) {
        self.waiters.lock().expect("waiters lock").by_id.remove(&id);
    }

    /// Hands a reply frame to its waiter.
    fn deliver(&self, frame: bytes::Bytes) -> Result<(), Error> {
        let (id, outcome) = match self.codec.decode_response(&frame)? {
            Inbound::Response { id, outcome } => (id, outcome),
            other => {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    format!("unexpected message from the server: {other:?}"),
                ));
            }
        };
        let waiter = self.waiters.lock().expect("waiters lock").by_id.remove(&id);
        match waiter {
            Some(waiter) => {
                self.woken.fetch_add(1, Ordering::Relaxed);
                drop(waiter.send(Ok(Response::new(self.codec, frame, outcome))));
            }
            // A call that timed out or was dropped: its reply has no taker.
            None => debug!(id, "a reply for a call no longer waiting"),
        }
        Ok(())
    }

    /// Ends the connection: every pending call and every later one fails
    /// with `kind` and `why`.
    fn close(&self, kind: ErrorKind, why: String) {
        let pending = {
            let mut waiters = self.waiters.lock().expect("waiters lock");
            if waiters.closed.is_none() {
                waiters.closed = Some((kind, why.clone()));
            }
            std::mem::take(&mut waiters.by_id)
        };
        for waiter in pending.into_values() {
            let _ = waiter.send(Err(Error::new(kind, why.clone())));
        }
        self.outbox.close();
    }
}

/// Removes a call's waiter when the caller stops waiting (timeout or drop).
struct Waiting {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.shared.forget(self.id);
    }
}

/// Writes queued requests until the outbox is closed and drained.
///
/// Requests queued together share one write. When the reader has just woken
/// callers that have not queued their next request yet, the writer yields
/// once so they can: under pipelining, that turns a write per call into a
/// write per batch; with one call in flight it never waits.
async fn write_loop<W: AsyncWrite + Unpin>(shared: &Shared, io: &mut W) -> std::io::Result<()> {
    let mut chunk = BytesMut::new();
    loop {
        if shared.woken.swap(0, Ordering::Relaxed) > shared.outbox.queued() {
            tokio::task::yield_now().await;
        }
        let closed = shared.outbox.take(&mut chunk);
        if !chunk.is_empty() {
            io.write_all(&chunk).await?;
            chunk.clear();
        } else if closed {
            return io.shutdown().await;
        } else {
            shared.outbox.ready().await;
        }
    }
}

/// The connection's task: writes queued requests and reads replies until
/// either side fails, then fails every pending call with the reason.
async fn run<S: Io>(shared: Arc<Shared>, framed: Framed<S, FrameCodec>) {
    let parts = framed.into_parts();
    let (read, mut write) = tokio::io::split(parts.io);
    let mut frames = FramedRead::new(read, parts.codec);
    frames.read_buffer_mut().extend_from_slice(&parts.read_buf);
    let reading = async {
        while let Some(frame) = frames.next().await {
            shared.deliver(frame.map_err(frame_error)?.freeze())?;
        }
        Err::<(), _>(Error::new(
            ErrorKind::ConnectionLost,
            "the server closed the connection",
        ))
    };
    let writing = write_loop(&shared, &mut write);
    let error = tokio::select! {
        Err(e) = reading => e,
        written = writing => match written {
            Ok(()) => Error::new(ErrorKind::ConnectionLost, "the connection was closed"),
            Err(e) => Error::new(ErrorKind::ConnectionLost, format!("writing to the server failed: {e}")),
        },
    };
    debug!(error = %error, "client connection ended");
    let message = match error.kind() {
        ErrorKind::ConnectionLost => error.message().to_owned(),
        _ => format!("the connection failed: {error}"),
    };
    shared.close(ErrorKind::ConnectionLost, message);
}
