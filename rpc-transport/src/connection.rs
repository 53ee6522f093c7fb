//! A server connection after the hello: one task reads requests, starts
//! calls and writes their replies.
//!
//! Calls run concurrently and reply in completion order. A call is first
//! polled once where it is read; one that finishes at once (most do) replies
//! without a task of its own, the rest are spawned into the connection's
//! `JoinSet`, so they end with the connection.
//!
//! An idle connection holds little: reads go into a 2 KiB buffer until one
//! fills it, and buffers a large message grew are released once empty.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use rpc_core::codec::{Codec, Id, Incoming, Request};
use rpc_core::service::{Fault, Reply};
use rpc_core::{Context, Error, ErrorKind, Registry};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;
use tokio_util::codec::{Decoder, Framed, FramedParts};
use tracing::debug;

use crate::frame::{FrameCodec, FrameError};
use crate::net::Io;
use crate::outbox::{Outbox, Pushed};
use crate::session::frame_error;

/// What a connection needs to serve calls.
pub(crate) struct ServerConnection<'a> {
    pub(crate) registry: &'a Registry,
    pub(crate) codec: &'static dyn Codec,
    pub(crate) peer: Option<SocketAddr>,
    /// The largest frame the client accepts.
    pub(crate) peer_max_frame: usize,
}

/// Where replies go: the outbox, encoded by the connection's codec.
#[derive(Clone)]
struct Replies {
    outbox: Arc<Outbox>,
    codec: &'static dyn Codec,
    max_frame: usize,
}

impl ServerConnection<'_> {
    /// Serves calls until the client closes the connection (which cancels
    /// its calls still in flight) or the connection fails.
    ///
    /// One loop reads and writes: it handles every complete frame it has,
    /// writes the replies they produced in one go, then waits for more bytes,
    /// or for a spawned call to queue its reply. Nothing wakes this task for
    /// the replies it queues itself, and the socket is not split.
    pub(crate) async fn run<S: Io>(self, framed: Framed<S, FrameCodec>) -> Result<(), Error> {
        let FramedParts {
            mut io,
            mut codec,
            read_buf: mut input,
            ..
        } = framed.into_parts();
        let replies = Replies {
            outbox: Arc::new(Outbox::default()),
            codec: self.codec,
            max_frame: self.peer_max_frame,
        };
        let mut calls = JoinSet::new();
        let mut output = BytesMut::new();
        // Room for the next read: small until a read fills it.
        let mut room = IDLE_ROOM;
        loop {
            while let Some(frame) = codec.decode(&mut input).map_err(frame_error)? {
                self.handle(&frame.freeze(), &replies, &mut calls);
            }
            replies.outbox.take(&mut output);
            if !output.is_empty() {
                match write_out(&mut io, &mut output).await {
                    Ok(()) => continue,
                    // The client went away while a reply was on its way: a
                    // normal end, and the calls still in flight are cancelled.
                    Err(e) if is_disconnect(&e) => return Ok(()),
                    Err(e) => {
                        let why = format!("writing to the client failed: {e}");
                        return Err(Error::new(ErrorKind::ConnectionLost, why));
                    }
                }
            }
            make_room(&mut input, room);
            let spare = input.capacity() - input.len();
            tokio::select! {
                read = io.read_buf(&mut input) => match read {
                    Ok(n) if n == spare && room < READ_CHUNK => room = READ_CHUNK,
                    Ok(0) if input.is_empty() => {
                        debug!(cancelled = calls.len(), "client closed the connection");
                        return Ok(());
                    }
                    Ok(0) => {
                        let why = format!("the client closed the connection {} bytes into a frame", input.len());
                        return Err(Error::new(ErrorKind::ConnectionLost, why));
                    }
                    Ok(_) => {}
                    Err(e) if is_disconnect(&e) => return Ok(()),
                    Err(e) => return Err(Error::new(ErrorKind::ConnectionLost, format!("reading from the client failed: {e}"))),
                },
                () = replies.outbox.ready() => {}
                Some(_) = calls.join_next(), if !calls.is_empty() => {}
            }
        }
    }

    fn handle(&self, frame: &Bytes, replies: &Replies, calls: &mut JoinSet<()>) {
        match self.codec.decode_request(frame) {
            Incoming::Request(request) => {
                let id = request.id.clone();
                let call = self.start(request, frame);
                match (id, call) {
                    (Some(id), Ok(reply)) => replies.send(&id, reply),
                    (Some(id), Err(pending)) => {
                        let replies = replies.clone();
                        calls.spawn(async move { replies.send(&id, pending.await) });
                    }
                    (None, Ok(_)) => {}
                    (None, Err(pending)) => drop(calls.spawn(async move { drop(pending.await) })),
                }
            }
            Incoming::Batch(items) => self.batch(items, frame, replies, calls),
            Incoming::Invalid { id, error } => replies.send(&id, Err(error.into())),
            _ => replies.send(
                &Id::Null,
                Err(Error::new(ErrorKind::InvalidRequest, "unsupported message").into()),
            ),
        }
    }

    /// Starts a call, polling it once: `Ok` if it is done already, else the
    /// rest of it, bounded by the caller's deadline.
    fn start(&self, request: Request<'_>, frame: &Bytes) -> Result<Reply, Pending> {
        let dispatch = || {
            self.registry
                .dispatch_encoded(&request.method, self.codec, request.params)
        };
        let call = match rpc_core::blob::decoding_from(frame, dispatch) {
            Ok(call) => call,
            Err(e) => return Ok(Err(e.into())),
        };
        let deadline = request.deadline.map(|d| Instant::now() + d);
        let context = Context::new().with_peer(self.peer).with_deadline(deadline);
        let mut call = context.scope(call);
        // A waker that does nothing is enough for this first poll: a call
        // that is not done is polled again at once by its own task, which
        // registers the real waker.
        let mut cx = std::task::Context::from_waker(Waker::noop());
        match Pin::new(&mut call).poll(&mut cx) {
            Poll::Ready(reply) => Ok(reply),
            Poll::Pending => Err(Box::pin(bounded(call, deadline))),
        }
    }

    fn batch(
        &self,
        items: Vec<Incoming<'_>>,
        frame: &Bytes,
        replies: &Replies,
        calls: &mut JoinSet<()>,
    ) {
        let mut started = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Incoming::Request(request) => {
                    let id = request.id.clone();
                    started.push((id, self.start(request, frame)));
                }
                Incoming::Invalid { id, error } => started.push((Some(id), Ok(Err(error.into())))),
                _ => started.push((
                    Some(Id::Null),
                    Ok(Err(Error::new(
                        ErrorKind::InvalidRequest,
                        "a batch inside a batch",
                    )
                    .into())),
                )),
            }
        }
        let replies = replies.clone();
        calls.spawn(async move {
            // The members run together, as separate requests would.
            let done =
                futures::future::join_all(started.into_iter().map(|(id, call)| async move {
                    let reply = match call {
                        Ok(reply) => reply,
                        Err(pending) => pending.await,
                    };
                    (id, reply)
                }))
                .await;
            let encoded: Vec<BytesMut> = done
                .iter()
                .filter_map(|(id, reply)| Some(replies.encode_alone(id.as_ref()?, reply)))
                .collect();
            if !encoded.is_empty() {
                replies.push_batch(&encoded);
            }
        });
    }
}

/// Whether a write failed because the peer closed the connection.
fn is_disconnect(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    matches!(e.kind(), BrokenPipe | ConnectionReset | ConnectionAborted)
}

/// Writes `output` and empties it, letting go of a buffer a large reply grew.
async fn write_out<W: tokio::io::AsyncWrite + Unpin>(
    io: &mut W,
    output: &mut BytesMut,
) -> std::io::Result<()> {
    io.write_all(output).await?;
    // A buffering stream (TLS, `BufWriter`) holds bytes until flushed.
    io.flush().await?;
    output.clear();
    if output.capacity() > READ_CHUNK {
        *output = BytesMut::new();
    }
    Ok(())
}

/// Leaves at least half of `room` free in `input` for the next read, and
/// lets go of a buffer a large request grew once it is empty.
fn make_room(input: &mut BytesMut, room: usize) {
    if input.is_empty() && input.capacity() > 2 * room {
        *input = BytesMut::new();
    }
    if input.capacity() - input.len() < room / 2 {
        input.reserve(room);
    }
}

/// How much more room a read asks for once a read has filled the buffer.
const READ_CHUNK: usize = 16 * 1024;

/// The read room of a connection that has never filled it.
const IDLE_ROOM: usize = 2 * 1024;

/// The part of a call still running after its first poll.
type Pending = Pin<Box<dyn Future<Output = Reply> + Send>>;

/// Runs `call` until it replies or `deadline` passes.
async fn bounded(call: impl Future<Output = Reply>, deadline: Option<Instant>) -> Reply {
    let Some(deadline) = deadline else {
        return call.await;
    };
    match tokio::time::timeout_at(deadline.into(), call).await {
        Ok(reply) => reply,
        Err(_) => Err(Error::new(
            ErrorKind::Timeout,
            "the call did not finish before its deadline",
        )
        .into()),
    }
}

impl Replies {
    /// Queues the reply to request `id`; a reply too large for the client, or
    /// one the codec cannot encode, is replaced by an error saying so.
    ///
    /// Replies queued by the connection's own loop need no wake; those of
    /// spawned calls do, and a spare wake costs the loop one extra turn.
    fn send(&self, id: &Id, reply: Reply) {
        let pushed = self.outbox.push(self.max_frame, |buf| {
            self.codec.encode_response(buf, id, &reply)
        });
        let fault = match pushed {
            Ok(_) => return self.outbox.wake(),
            Err(Pushed::Encode(e)) => Fault::from(e),
            Err(Pushed::Frame(FrameError::TooLarge { len, limit })) => Fault::from(Error::new(
                ErrorKind::FrameTooLarge,
                format!(
                    "the reply of {len} bytes exceeds the client's frame limit of {limit} bytes"
                ),
            )),
            Err(Pushed::Frame(e)) => Fault::from(Error::new(ErrorKind::Internal, e.to_string())),
            Err(Pushed::Panicked(why)) => Fault::from(Error::new(
                ErrorKind::HandlerPanic,
                format!("encoding the reply panicked: {why}"),
            )),
        };
        let fallback = self.outbox.push(self.max_frame, |buf| {
            self.codec.encode_response(buf, id, &Err(fault))
        });
        if let Err(e) = fallback {
            debug!(error = ?e, "even the error reply could not be sent");
        }
        self.outbox.wake();
    }

    /// One batch member's reply, encoded on its own.
    fn encode_alone(&self, id: &Id, reply: &Reply) -> BytesMut {
        let mut buf = BytesMut::new();
        if let Err(e) = self.codec.encode_response(&mut buf, id, reply) {
            let _ = self.codec.encode_response(&mut buf, id, &Err(e.into()));
        }
        buf
    }

    fn push_batch(&self, encoded: &[BytesMut]) {
        let pushed = self.outbox.push(self.max_frame, |buf| {
            self.codec.encode_batch(buf, encoded);
            Ok::<_, Error>(())
        });
        self.outbox.wake();
        if let Err(e) = pushed {
            let error = Error::new(
                ErrorKind::FrameTooLarge,
                format!("the batch reply could not be sent: {e:?}"),
            );
            self.send(&Id::Null, Err(error.into()));
        }
    }
}
