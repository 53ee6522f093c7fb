//! A server connection after the hello: one task reads requests, starts
//! calls and writes their replies.
//!
//! Calls run concurrently and reply in completion order. A call is first
//! polled once where it is read; one that finishes at once (most do) replies
//! without a task of its own, the rest are spawned into the connection's
//! `JoinSet`, so they end with the connection.
//!
//! The connection's limits ([`Limits`]) are enforced here, each before the
//! memory or time it bounds is spent:
//!
//! | what the peer makes it hold | bound |
//! |---|---|
//! | calls running | `max_in_flight`: at it the loop stops reading |
//! | encoded replies not yet written | `max_queued_reply_bytes`: at it the loop stops reading, and spawned calls wait to encode theirs |
//! | one reply, one batch's reply | the smaller of the server's and the client's `max_frame_bytes`; a batch's members are encoded as they finish, and those past the limit are answered over budget (the rest not run) |
//! | a partly read frame | room grows with the bytes that arrived; it must be whole within `frame_timeout` |
//! | replies it does not read | `write_timeout`: in each window that long it must take 64 KiB (or all that is left) |
//! | malformed messages | `max_invalid_messages`, then closed |
//! | an idle connection | `idle_timeout` |
//!
//! A frame of 1 MiB or more may take long to decode: unless it is at most
//! 4 MiB and the connection's large frames have been quick, it is handled
//! with `block_in_place`, which moves this worker's other connections to
//! another thread instead of holding them up (`long_turn`). At shutdown it
//! tells the client it is going away, answers requests with a "shutting
//! down" error, gives running calls `shutdown_grace` to finish, and closes
//! once none is running and the client has closed (our clients close on
//! the notice) or the grace ended.
//!
//! An idle connection holds little: its read buffer is small until a read
//! fills it, and one a large message grew is released once no message of
//! a quarter of its largest has come for a second (`read_room`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use bytes::BytesMut;
use futures::FutureExt as _;
use rpc_core::codec::Codec;
use rpc_core::registry::Route;
use rpc_core::{Error, ErrorKind, Registry};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio_util::codec::{Decoder, Framed, FramedParts};
use tracing::debug;

use super::calls::Calls;
use super::calls::record;
use super::long_turn::LargeFrames;
use super::read_room::{KEEP_GROWN, READ_CHUNK, ReadRoom};
use super::replies::Replies;
use crate::config::limits::Limits;
use crate::metrics::{Metrics, Transport};
use crate::net::Io;
use crate::outbox::{Chunks, Outbox};
use crate::pipelining::{self, CUT, Deep, QUIET};
use crate::stream::Streams;
use crate::wire::frame::FrameCodec;
use crate::wire::session::frame_error;

/// What a connection needs to serve calls.
pub(crate) struct ServerConnection<'a> {
    pub(crate) registry: &'a Registry,
    pub(crate) codec: &'static dyn Codec,
    pub(crate) peer: Option<SocketAddr>,
    /// The largest frame the client accepts.
    pub(crate) peer_max_frame: usize,
    /// The protocol version both sides speak.
    pub(crate) protocol: u32,
    /// The window the client receives streams with.
    pub(crate) peer_window: rpc_core::stream::Window,
    pub(crate) limits: &'a Limits,
    pub(crate) metrics: &'a Arc<Metrics>,
    /// Becomes `true` when the server starts shutting down.
    pub(crate) draining: watch::Receiver<bool>,
    /// The same, as a flag (see [`crate::shutdown::drain_signal`]).
    pub(crate) drain_started: &'a AtomicBool,
    /// The subject of the client's TLS certificate (mTLS), for the Context.
    pub(crate) peer_identity: Option<Arc<str>>,
}

/// The frames handled in one pass, between two reads: they were read
/// together, and the replies of those that finish at once are written
/// together, so one clock reading at each end times them all.
pub(super) struct Batch {
    pub(super) read_at: Instant,
    /// Calls that finished at their first poll: method and outcome, to be
    /// counted once the batch is done.
    pub(super) done: Vec<(Option<Route>, Result<(), ErrorKind>)>,
}

impl Batch {
    /// Counts the calls finished inline, all with the batch's duration;
    /// returns the time it took as their end, if there were any.
    pub(super) fn record(&mut self, metrics: &Metrics) -> Option<Instant> {
        if self.done.is_empty() {
            return None;
        }
        let now = Instant::now();
        let elapsed = now - self.read_at;
        for (route, outcome) in self.done.drain(..) {
            record(metrics, route, outcome, elapsed);
        }
        Some(now)
    }
}

/// Why a connection's loop stops.
enum Stop {
    /// The client closed the connection, or it idled out: a normal end.
    Quiet,
    /// The connection failed or broke a limit.
    Failed(Error),
}

impl ServerConnection<'_> {
    /// Serves calls until the client closes the connection (which cancels
    /// its calls still in flight), the connection fails, idles out, or the
    /// server has shut it down.
    ///
    /// One loop reads and writes: it handles every complete frame it has,
    /// writes the replies they produced in one go (or every few, on a deep
    /// pipeline: `pipelining`), then waits for more bytes, or for a
    /// spawned call to queue its reply. Nothing wakes this task for
    /// the replies it queues itself, and the socket is not split.
    pub(crate) async fn run<S: Io>(self, framed: Framed<S, FrameCodec>) -> Result<(), Error> {
        let FramedParts {
            mut io,
            mut codec,
            read_buf: mut input,
            ..
        } = framed.into_parts();
        let limits = self.limits;
        let streams = (self.protocol >= crate::wire::hello::STREAMS).then(|| {
            Arc::new(Streams::new(
                limits.max_streams,
                limits.stream_window(),
                self.peer_window,
                Some(self.metrics.clone()),
            ))
        });
        // However the loop ends, its streams end: a lost connection.
        let _streams_end = EndStreams(streams.clone());
        let replies = Replies {
            outbox: Arc::new(Outbox::for_stream(&io)),
            codec: self.codec,
            max_frame: self.peer_max_frame.min(codec.max_frame_bytes()),
            max_queued: limits.max_queued_reply_bytes,
            streams,
        };
        let mut shutdown = self.draining.clone();
        let mut calls = Calls::default();
        let mut output = Chunks::default();
        let mut invalid = 0;
        let mut closing = None;
        let mut draining = false;
        let mut grace_over = false;
        let grace = tokio::time::sleep(limits.shutdown_grace);
        let idle = tokio::time::sleep(limits.idle_timeout.unwrap_or_default());
        // Armed while a frame is partly read: it must arrive whole in time.
        let trickle = tokio::time::sleep(limits.frame_timeout);
        let mut partial_since: Option<tokio::time::Instant> = None;
        // Made once, and reading a flag after its first poll: a fresh wait
        // each turn would take the watch's lock, which every connection
        // shares, to register and again to unregister.
        let drain = crate::shutdown::drain_signal(self.drain_started, &mut shutdown);
        // Armed while the read buffer is one a large message grew: it is
        // let go once no message that keeps it has come for `KEEP_GROWN`.
        let shrink = tokio::time::sleep(KEEP_GROWN);
        tokio::pin!(grace, idle, trickle, drain, shrink);
        let mut last_active = tokio::time::Instant::now();
        let mut room = ReadRoom::new(last_active);
        let mut large = LargeFrames::default();
        let mut batch = Batch {
            read_at: Instant::now(),
            done: Vec::new(),
        };
        // Replies go out every `CUT` of them while the process has few
        // connections that pipeline deeply (`pipelining`); this one counts
        // itself in from the read after one that brought `CUT` requests,
        // and out once `QUIET` has passed without another such read.
        let workers = pipelining::workers();
        let mut deep = Deep::default();
        let mut this_read = 0;
        let mut deep_at = last_active;
        let quiet = tokio::time::sleep(QUIET);
        tokio::pin!(quiet);
        let ended = async {
        loop {
            while closing.is_none()
                && self.has_room(&calls, &replies)
                && !(replies.outbox.frames() >= CUT && pipelining::may_cut(workers))
            {
                let frame = match codec.decode(&mut input) {
                    Ok(Some(frame)) => {
                        partial_since = None;
                        frame
                    }
                    Ok(None) => {
                        if !input.is_empty() && partial_since.is_none() {
                            partial_since = Some(batch.read_at.into());
                        }
                        break;
                    }
                    Err(e) => {
                        // The calls already answered still count.
                        batch.record(self.metrics);
                        return Err(frame_error(e));
                    }
                };
                let frame = frame.freeze();
                this_read += 1;
                room.framed(frame.len(), batch.read_at.into());
                // A large message may take long to decode: the worker's
                // other connections may move to another thread meanwhile.
                let handled = large.run(frame.len(), || {
                    self.handle(&frame, &replies, &mut calls, &mut batch, draining)
                });
                match handled {
                    Ok(()) => {}
                    Err(e) => {
                        invalid += 1;
                        if invalid >= limits.max_invalid_messages {
                            closing = Some(Error::new(
                                ErrorKind::Protocol,
                                format!(
                                    "closed after {invalid} invalid messages, the last: {}",
                                    e.message()
                                ),
                            ));
                        }
                    }
                }
            }
            let finished = batch.record(self.metrics);
            replies.outbox.take(&mut output);
            if !output.is_empty() {
                let written = output.len() as u64;
                match write_out(&mut io, &mut output, limits.write_timeout).await {
                    Ok(()) => {
                        self.metrics.add_bytes(Transport::Tcp, 0, written);
                        // Clock reads are not free: the one taken for the
                        // metrics is close enough for the idle timer.
                        last_active = finished.unwrap_or_else(Instant::now).into();
                        continue;
                    }
                    // The client went away while a reply was on its way: a
                    // normal end, and the calls still in flight are cancelled.
                    Err(e) if is_disconnect(&e) => return Ok(()),
                    Err(e) => {
                        let why = format!("writing to the client failed: {e}");
                        return Err(Error::new(ErrorKind::ConnectionLost, why));
                    }
                }
            }
            if let Some(e) = closing.take() {
                return Err(e);
            }
            // An idle connection stays until the client closes it (ours do
            // on the going-away notice) or the grace period ends, so that a
            // call sent after the notice is answered "shutting down", not
            // cut off by a reset.
            if draining && calls.tasks.is_empty() && grace_over {
                debug!("connection drained");
                return Ok(());
            }
            if let Some(due) = room.make_room(&mut input) {
                shrink.as_mut().reset(due);
            }
            let grown = room.holding();
            let spare = input.capacity() - input.len();
            let reading = self.has_room(&calls, &replies);
            let streaming = replies.streams.as_ref().is_some_and(|s| s.open() > 0);
            let idling =
                limits.idle_timeout.is_some() && calls.tasks.is_empty() && !streaming && !draining;
            // In a fixed order, the rare events first: no random number per
            // turn, and a flood of requests cannot hold back finished calls
            // or the shutdown.
            tokio::select! {
                biased;
                Some(ended) = calls.tasks.join_next_with_id(), if !calls.tasks.is_empty() => calls.ended(ended),
                () = &mut drain, if !draining => {
                    draining = true;
                    grace.as_mut().reset(tokio::time::Instant::now() + limits.shutdown_grace);
                    replies.going_away();
                }
                () = &mut grace, if draining && !grace_over => {
                    calls.shut_down(&replies, self.metrics);
                    self.end_streams(&replies);
                    grace_over = true;
                }
                () = &mut trickle, if reading && partial_since.is_some() => {
                    let until = partial_since.unwrap_or_else(tokio::time::Instant::now) + limits.frame_timeout;
                    if tokio::time::Instant::now() >= until {
                        let why = format!(
                            "closed: a frame was not complete {:?} after its first bytes (frame_timeout_ms); \
                             {} bytes of it had arrived",
                            limits.frame_timeout,
                            input.len()
                        );
                        return Err(Error::new(ErrorKind::ConnectionLost, why));
                    }
                    trickle.as_mut().reset(until);
                }
                read = io.read_buf(&mut input), if reading => {
                    // Requests read now start their deadlines and durations
                    // here, even those left in the buffer for a later turn
                    // (at `max_in_flight`).
                    batch.read_at = Instant::now();
                    last_active = batch.read_at.into();
                    if this_read >= CUT {
                        deep_at = last_active;
                        if !deep.is_counted() {
                            deep.set(true);
                            quiet.as_mut().reset(deep_at + QUIET);
                        }
                    }
                    this_read = 0;
                    match self.after_read(read, &input, spare, &mut room, calls.tasks.len()) {
                        None => {}
                        Some(Stop::Quiet) => return Ok(()),
                        Some(Stop::Failed(e)) => return Err(e),
                    }
                },
                // Only spawned calls and streams queue replies from elsewhere (and wake).
                () = replies.outbox.ready(), if !calls.tasks.is_empty() || streaming => {}
                () = &mut shrink, if grown => {
                    if let Some(later) = room.release(&mut input, tokio::time::Instant::now()) {
                        shrink.as_mut().reset(later);
                    }
                }
                () = &mut quiet, if deep.is_counted() => {
                    let until = deep_at + QUIET;
                    match tokio::time::Instant::now() >= until {
                        true => deep.set(false),
                        false => quiet.as_mut().reset(until),
                    }
                }
                () = &mut idle, if idling => {
                    let until = last_active + limits.idle_timeout.unwrap_or_default();
                    if tokio::time::Instant::now() >= until {
                        debug!("closing an idle connection");
                        return Ok(());
                    }
                    idle.as_mut().reset(until);
                }
            }
        }
        }
        .await;
        // Calls still running are cancelled now, not after the close below.
        drop(calls);
        // However the loop ended, the stream is shut down: over TLS the
        // client reads a close_notify, and knows the server closed it.
        close(&mut io, limits.write_timeout).await;
        ended
    }

    /// Whether another request may be handled: fewer than `max_in_flight`
    /// calls running and fewer than `max_queued_reply_bytes` queued.
    fn has_room(&self, calls: &Calls, replies: &Replies) -> bool {
        calls.running() < self.limits.max_in_flight && replies.outbox.queued() < replies.max_queued
    }

    /// Accounts for a read; says why to stop, if the read ended the connection.
    fn after_read(
        &self,
        read: std::io::Result<usize>,
        input: &BytesMut,
        spare: usize,
        room: &mut ReadRoom,
        running: usize,
    ) -> Option<Stop> {
        let n = match read {
            Ok(n) => n,
            Err(e) if is_disconnect(&e) => return Some(Stop::Quiet),
            // Over TLS, a client that closes its socket without a
            // close_notify: between frames nothing is lost (frames delimit
            // themselves), so it ends quietly as a plaintext close does.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && input.is_empty() => {
                debug!(cancelled = running, "client closed the connection");
                return Some(Stop::Quiet);
            }
            Err(e) => {
                let why = format!("reading from the client failed: {e}");
                return Some(Stop::Failed(Error::new(ErrorKind::ConnectionLost, why)));
            }
        };
        self.metrics.add_bytes(Transport::Tcp, n as u64, 0);
        room.read(n, spare);
        match n {
            0 if input.is_empty() => {
                debug!(cancelled = running, "client closed the connection");
                Some(Stop::Quiet)
            }
            0 => {
                let why = format!(
                    "the client closed the connection {} bytes into a frame",
                    input.len()
                );
                Some(Stop::Failed(Error::new(ErrorKind::ConnectionLost, why)))
            }
            _ => None,
        }
    }
}

/// Ends a connection's streams when its loop ends, however it does.
struct EndStreams(Option<Arc<Streams>>);

impl Drop for EndStreams {
    fn drop(&mut self) {
        if let Some(streams) = &self.0 {
            let why = Error::new(ErrorKind::ConnectionLost, "the connection ended");
            streams.close_all(&why);
        }
    }
}

/// Shuts the write side down (over TLS, a close_notify first), for at
/// most `limit`: a client that reads nothing cannot hold the task.
async fn close<W: tokio::io::AsyncWrite + Unpin>(io: &mut W, limit: std::time::Duration) {
    let limit = limit.min(std::time::Duration::from_secs(1));
    let _ = tokio::time::timeout(limit, io.shutdown()).await;
}

/// Whether a write failed because the peer closed the connection.
fn is_disconnect(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    matches!(e.kind(), BrokenPipe | ConnectionReset | ConnectionAborted)
}

/// Writes `output` and empties it, letting go of a buffer a large reply grew.
/// Fails with `TimedOut` if the peer takes less than [`MIN_PROGRESS`] bytes
/// (or all that is left) within a window of `window`: a peer that reads a
/// byte now and then cannot hold its replies for ever.
async fn write_out<W: tokio::io::AsyncWrite + Unpin>(
    io: &mut W,
    output: &mut Chunks,
    window: std::time::Duration,
) -> std::io::Result<()> {
    // The window's end and the bytes still owed in it; set only when the
    // socket does not take the bytes at once, so the fast path reads no clock.
    let mut owed: Option<(tokio::time::Instant, usize)> = None;
    while !output.is_empty() {
        let left = output.len();
        let mut write = std::future::poll_fn(|cx| output.poll_write_to(io, cx));
        let wrote = match (&mut write).now_or_never() {
            Some(wrote) => Ok(wrote),
            None => {
                let (until, _) = *owed.get_or_insert_with(|| {
                    (tokio::time::Instant::now() + window, MIN_PROGRESS.min(left))
                });
                tokio::time::timeout_at(until, write).await
            }
        };
        match wrote {
            Ok(Ok(0)) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(Ok(n)) => {
                if let Some((_, due)) = &mut owed {
                    *due = due.saturating_sub(n);
                    if *due == 0 {
                        owed = None;
                    }
                }
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                let why = format!(
                    "the client took less than {MIN_PROGRESS} bytes of its replies in {window:?} \
                     (write_timeout_ms)"
                );
                return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, why));
            }
        }
    }
    // A buffering stream (TLS, `BufWriter`) holds bytes until flushed.
    io.flush().await?;
    output.clear(READ_CHUNK);
    Ok(())
}

/// What a peer must read of its replies in each `write_timeout` window.
const MIN_PROGRESS: usize = 64 * 1024;
