//! What callers and the connection's task share: the outbox and the
//! socket's write half, the waiters by id with their deadlines, and how a
//! call is started, expired, cancelled or failed with the
//! connection.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, ready};
use std::time::Duration;

use rpc_core::client::Response;
use rpc_core::codec::{Codec, OutRequest};
use rpc_core::{Error, ErrorKind, Metadata};
use tokio::io::AsyncWrite;
use tokio::sync::{Notify, oneshot, watch};
use tokio::time::Instant;

use crate::net::{self};
use crate::outbox::{Chunks, Outbox, Pushed};
use crate::pipelining;
use crate::pipelining::{CUT, Deep};
use crate::stream::Streams;
use crate::wire::frame::FrameError;

pub(super) struct Shared {
    pub(super) outbox: Outbox,
    /// The socket's write half and the bytes taken from the outbox but not
    /// yet written. Callers write through it directly when no one else is.
    pub(super) sink: Mutex<Sink>,
    pub(super) waiters: Mutex<Waiters>,
    /// A call was given a deadline earlier than the one the connection's
    /// task sleeps until.
    pub(super) deadline_moved: Notify,
    pub(super) codec: &'static dyn Codec,
    /// The largest frame the server accepts.
    pub(super) server_max_frame: usize,
    pub(super) call_timeout: Duration,
    /// The worker threads of the runtime it was opened on (`pipelining`).
    pub(super) workers: usize,
    /// Replies handed to callers that have not taken them yet: while some
    /// have not, the request just queued waits for what those callers
    /// queue next, unless it cuts a deep pipeline's batch (see
    /// [`Shared::send_queued`]). Each is counted down
    /// exactly once, when its caller takes it or drops the call.
    pub(super) woken: AtomicUsize,
    /// A request was left queued for the woken callers and the writer has
    /// been woken to write it once they have had their turn (see
    /// `task::write_loop`): set at most once per batch, so one wake covers it.
    pub(super) write_owed: AtomicBool,
    /// The writer has something to do: set by [`Shared::wake_writer`],
    /// taken by the writer when it wakes.
    pub(super) writer_due: AtomicBool,
    /// The writer's waker, while it waits for `writer_due`.
    pub(super) writer: futures::task::AtomicWaker,
    /// Turns `true` when the connection has ended.
    pub(super) ended: watch::Sender<bool>,
    /// Turns `true` when it takes no new calls: ended, or the server is going away.
    pub(super) stopping: watch::Sender<bool>,
    /// A call on this connection has sent a stream (set before its pump
    /// starts, never cleared): only then must an answer look for a stream
    /// to stop ([`Shared::call_ended`]).
    pub(super) uploaded: AtomicBool,
    /// The connection's streams; `None` when the server speaks protocol 1.
    pub(super) streams: Option<Arc<Streams>>,
    /// The server said it is going away.
    pub(super) went_away: AtomicBool,
    /// New calls may go on the connection: it has not ended, and the
    /// server has not said it is going away (`stopping`, as one load).
    pub(super) open: AtomicBool,
    /// Reads that returned bytes (or the end): a health check reads it to
    /// tell a silent connection from a busy one.
    pub(super) heard: std::sync::atomic::AtomicU64,
    /// The nonce of the last ping sent.
    pub(super) pings: std::sync::atomic::AtomicU64,
    /// The highest nonce the server's pongs have answered.
    pub(super) pong: watch::Sender<u64>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("codec", &self.codec)
            .finish_non_exhaustive()
    }
}

pub(super) struct Sink {
    pub(super) io: net::WriteHalf,
    pub(super) pending: Chunks,
}

pub(super) type Waiter = oneshot::Sender<Result<Response, Error>>;

#[derive(Debug, Default)]
pub(super) struct Waiters {
    pub(super) next_id: u64,
    /// Each pending call's waiter and deadline.
    pub(super) by_id: HashMap<u64, (Waiter, Instant), BuildHasherDefault<IdHasher>>,
    /// When the connection's task next looks for calls past their
    /// deadline: no later than the earliest deadline (earlier when that
    /// call was answered since; it then looks again). `None`: no call is
    /// pending since it last looked.
    pub(super) next_check: Option<Instant>,
    /// Why the connection ended, once it has.
    pub(super) closed: Option<(ErrorKind, String)>,
    /// Counted among the connections that pipeline deeply while many
    /// calls are pending (`pipelining`).
    pub(super) deep: Deep,
}

impl Waiters {
    /// Counts the connection in or out of those that pipeline deeply, after
    /// calls were added or removed.
    pub(super) fn recount(&mut self) {
        self.deep.in_flight(self.by_id.len());
    }
}

/// Hashes the request ids this side hands out (sequential, never chosen by
/// the peer) with one multiplication: SipHash's defence against chosen keys
/// buys nothing here and costs more than the rest of the map lookup.
#[derive(Default)]
pub(super) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(self.0.rotate_left(8) ^ u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        // Fibonacci hashing: spreads consecutive ids over the high bits the
        // table's control bytes use, as well as over the low ones.
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl Shared {
    /// Registers a waiter and queues the request; a stream in `args` is
    /// sent after it.
    pub(super) fn start(
        self: &Arc<Self>,
        method: &str,
        args: &dyn erased_serde::Serialize,
        timeout: Duration,
        deadline: Instant,
        metadata: Option<&Metadata>,
    ) -> Result<(u64, oneshot::Receiver<Result<Response, Error>>), Error> {
        let metadata = super::metadata::to_send(method, metadata, self.streams.is_some())?;
        let metadata = metadata.as_deref();
        let (tx, rx) = oneshot::channel();
        let (id, earliest) = {
            let mut waiters = self.waiters.lock().expect("waiters lock");
            if let Some((kind, why)) = &waiters.closed {
                // Never sent: it did not run.
                return Err(Error::new(*kind, why.clone()).did_not_run());
            }
            waiters.next_id += 1;
            let id = waiters.next_id;
            waiters.by_id.insert(id, (tx, deadline));
            waiters.recount();
            let earliest = waiters.next_check.is_none_or(|at| deadline < at);
            if earliest {
                waiters.next_check = Some(deadline);
            }
            (id, earliest)
        };
        if earliest {
            self.deadline_moved.notify_one();
        }
        let request = OutRequest {
            id,
            method,
            deadline: Some(timeout),
            args,
            metadata,
        };
        let mut upload = None;
        let queued = self.outbox.push(self.server_max_frame, |buf| {
            let (encoded, source) =
                rpc_core::stream::capturing(|| self.codec.encode_request(buf, &request));
            upload = source;
            encoded
        });
        let failed = match queued {
            Ok(Some(())) => {
                if let Some(source) = upload {
                    self.upload(id, source);
                }
                self.send_queued();
                return Ok((id, rx));
            }
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
            Err(Pushed::Panicked(why)) => Error::new(
                ErrorKind::InvalidParams,
                format!("encoding the arguments of `{method}` panicked: {why}"),
            ),
        };
        self.forget(id);
        Err(failed)
    }

    /// Gets what was just queued on its way: written here, in the caller's
    /// task, unless callers woken with a reply are about to queue more.
    /// Then the writer, woken once per batch, writes it after them, and
    /// the last of them, finding none left to come, writes what is queued
    /// with its own request; on a deep pipeline, so does every caller whose
    /// request makes `CUT` queued. By the writer, too, if the socket is full.
    pub(super) fn send_queued(&self) {
        if self.woken.load(Ordering::SeqCst) > 0 && !self.cut_now() {
            if !self.write_owed.swap(true, Ordering::AcqRel) {
                self.wake_writer();
            }
            return;
        }
        if !self.write_now() {
            self.wake_writer();
        }
    }

    /// Whether what is queued goes out now although woken callers are
    /// still to queue theirs: the batch is cut every `CUT` requests while
    /// few connections pipeline deeply (`pipelining`).
    fn cut_now(&self) -> bool {
        self.outbox.frames() >= CUT && pipelining::may_cut(self.workers)
    }

    /// Wakes the writer (`task::write_loop`): the flag is set first, so a
    /// wake while it runs is not lost, and it looks at the outbox again.
    pub(super) fn wake_writer(&self) {
        self.writer_due.store(true, Ordering::Release);
        self.writer.wake();
    }

    /// Writes the queue without waiting; true if all of it went out, or if
    /// someone else is writing it (they look at the queue again after
    /// letting go of the socket, so nothing queued before that is left
    /// behind). False when the writer must finish: the socket is full.
    pub(super) fn write_now(&self) -> bool {
        loop {
            let Ok(mut sink) = self.sink.try_lock() else {
                return true;
            };
            if !sink.pending.is_empty() {
                // The writer is waiting for the socket: leave it its turn.
                return false;
            }
            // A write that cannot finish registers this waker for the
            // socket's readiness; the writer, woken by the caller, polls
            // again and puts its own waker back.
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            let flushed = matches!(self.poll_flush(&mut sink, &mut cx), Poll::Ready(Ok(false)));
            drop(sink);
            // What was queued while this held the socket: its caller found
            // the socket taken and left it to this one.
            if !flushed || self.outbox.is_empty() {
                return flushed;
            }
        }
    }

    /// Writes queued bytes until none are left (`Ready(Ok(closed))`) or the
    /// socket is full (`Pending`).
    pub(super) fn poll_flush(
        &self,
        sink: &mut Sink,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<bool>> {
        loop {
            let closed = sink.pending.is_empty() && self.outbox.take(&mut sink.pending);
            if sink.pending.is_empty() {
                // A buffering stream (TLS, `BufWriter`) holds bytes until flushed.
                ready!(Pin::new(&mut sink.io).poll_flush(cx))?;
                return Poll::Ready(Ok(closed));
            }
            let Sink { io, pending } = sink;
            match ready!(pending.poll_write_to(io, cx)) {
                Ok(0) => return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into())),
                Ok(_) => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Removes call `id`'s waiter; if the call was still waiting, asks the
    /// server to stop it.
    pub(super) fn forget(&self, id: u64) {
        let waiting = {
            let mut waiters = self.waiters.lock().expect("waiters lock");
            let waiting = waiters.by_id.remove(&id);
            waiters.recount();
            waiting
        };
        if waiting.is_some() {
            self.cancel(id);
        }
    }

    /// Asks the server to stop call `id`, whose caller no longer waits.
    pub(super) fn cancel(&self, id: u64) {
        let cancel = self.outbox.push(self.server_max_frame, |buf| {
            self.codec.encode_cancel(buf, id);
            Ok::<_, Error>(())
        });
        if let Ok(Some(())) = cancel {
            self.send_queued();
        }
    }

    /// Fails the calls whose deadline has passed by `now` with
    /// [`ErrorKind::Timeout`] (their caller words the message), asks the
    /// server to stop them, and notes when to look again.
    ///
    /// It scans every pending call, but runs about once per timeout
    /// period: when the earliest deadline it last saw comes.
    pub(super) fn expire(&self, now: Instant) {
        let expired = {
            let mut waiters = self.waiters.lock().expect("waiters lock");
            let ids: Vec<u64> = waiters
                .by_id
                .iter()
                .filter(|(_, (_, deadline))| *deadline <= now)
                .map(|(id, _)| *id)
                .collect();
            let expired: Vec<(u64, Waiter)> = ids
                .into_iter()
                .filter_map(|id| Some((id, waiters.by_id.remove(&id)?.0)))
                .collect();
            waiters.next_check = waiters.by_id.values().map(|(_, deadline)| *deadline).min();
            waiters.recount();
            expired
        };
        for (id, waiter) in expired {
            let _ = waiter.send(Err(Error::new(ErrorKind::Timeout, "")));
            self.cancel(id);
        }
    }

    /// Counts down a reply taken by its caller (or left untaken).
    pub(super) fn resumed(&self) {
        self.woken.fetch_sub(1, Ordering::SeqCst);
    }

    /// Ends the connection: every pending call fails with `kind` and `why`,
    /// and every later one with `ConnectionLost`.
    ///
    /// After a going-away notice, calls still pending when the connection
    /// ends fail with the server's shutdown reason instead.
    pub(super) fn close(&self, kind: ErrorKind, why: String) {
        let (pending, (kind, why)) = {
            let mut waiters = self.waiters.lock().expect("waiters lock");
            let first = waiters.closed.clone().unwrap_or((kind, why.clone()));
            // Calls from now on learn the connection is gone, whatever
            // ended it: not "shutting down" for ever after the server has
            // come back.
            if !matches!(waiters.closed, Some((ErrorKind::ConnectionLost, _))) {
                let lost = format!("the connection is closed: {why}");
                waiters.closed = Some((ErrorKind::ConnectionLost, lost));
            }
            let pending = std::mem::take(&mut waiters.by_id);
            waiters.recount();
            (pending, first)
        };
        for (waiter, _) in pending.into_values() {
            // Sent and not answered: the server may have run it, or not
            // (after a going-away too: the server's notice came after it).
            let why = match kind {
                ErrorKind::ConnectionLost | ErrorKind::ShuttingDown => {
                    format!("{why}; the call was sent, and may or may not have run")
                }
                _ => why.clone(),
            };
            let _ = waiter.send(Err(Error::new(kind, why)));
        }
        if let Some(streams) = &self.streams {
            streams.close_all(&Error::new(kind, why.clone()));
        }
        self.outbox.close();
        self.wake_writer();
        self.open.store(false, Ordering::Release);
        self.stopping.send_replace(true);
        self.ended.send_replace(true);
    }
}

/// Fails every pending call when the connection's task ends; the first
/// reason given to [`Shared::close`] is the one callers see.
pub(super) struct CloseOnDrop(pub(super) Arc<Shared>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close(
            ErrorKind::ConnectionLost,
            "the connection's task ended".into(),
        );
    }
}

/// Removes a call's waiter when the caller stops waiting (timeout or drop).
pub(super) struct Waiting {
    pub(super) shared: Arc<Shared>,
    pub(super) id: u64,
    pub(super) rx: oneshot::Receiver<Result<Response, Error>>,
    /// The waiter is gone already: the call was answered or failed.
    pub(super) answered: bool,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        // After `close`, a reply is either here already or never sent.
        self.rx.close();
        match self.rx.try_recv() {
            // A reply came as the caller gave up: it was counted as woken.
            Ok(Ok(_)) => self.shared.resumed(),
            Ok(Err(_)) => {}
            Err(_) => self.shared.forget(self.id),
        }
    }
}
