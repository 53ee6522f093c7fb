//! The connection's task: the reader that hands each reply to its waiter
//! and the writer that sends what callers left queued, until the
//! connection ends; and the expiry of calls past their deadline, a task of
//! its own that ends with it.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;

use bytes::BytesMut;
use rpc_core::{Error, ErrorKind};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::time::Instant;
use tokio_util::codec::Decoder;
use tracing::debug;

use super::deliver::Scratch;
use super::shared::{CloseOnDrop, Shared};
use crate::wire::frame::{FrameCodec, FrameError};
use crate::wire::session::frame_error;

/// Writes what callers queued but did not write themselves, until the
/// outbox is closed and drained.
///
/// Callers write their own requests when they can (see
/// [`Shared::send_queued`]); the writer is woken for the rest: what the
/// callers of one read queued together, and what a full socket left.
///
/// When callers woken with a reply have not all taken it, the writer
/// yields so that those ready to run can queue their next requests first,
/// for as long as they are taking their replies; then it writes, whether or
/// not they all did (one may never be polled again).
pub(super) async fn write_loop(shared: &Shared) -> std::io::Result<()> {
    loop {
        due(shared).await;
        let mut left = shared.woken.load(Ordering::SeqCst);
        for _ in 0..MAX_WRITER_YIELDS {
            if left == 0 {
                break;
            }
            tokio::task::yield_now().await;
            let now_left = shared.woken.load(Ordering::SeqCst);
            if now_left >= left {
                break;
            }
            left = now_left;
        }
        // Reads the flag a caller set after queueing (acquire), so what it
        // queued is seen by the flush below; a caller queueing later wakes
        // this task again.
        shared.write_owed.swap(false, Ordering::AcqRel);
        loop {
            // Never waits for a caller that is writing: see below.
            let flushed = poll_fn(|cx| match shared.sink.try_lock() {
                Ok(mut sink) => shared.poll_flush(&mut sink, cx).map_ok(Some),
                Err(std::sync::TryLockError::WouldBlock) => Poll::Ready(Ok(None)),
                Err(std::sync::TryLockError::Poisoned(_)) => panic!("sink lock poisoned"),
            })
            .await?;
            match flushed {
                Some(true) => {
                    return poll_fn(|cx| {
                        Pin::new(&mut shared.sink.lock().expect("sink lock").io).poll_shutdown(cx)
                    })
                    .await;
                }
                // Queued by a caller who found the socket taken by this task
                // and left the request to it.
                Some(false) if !shared.outbox.is_empty() => {}
                Some(false) => break,
                // A caller is writing: it writes the queue as it stands when
                // it lets go (see `Shared::write_now`), and wakes this task
                // if the socket does not take it all.
                None => break,
            }
        }
    }
}

/// Waits until the writer has something to do ([`Shared::wake_writer`]).
///
/// The connection's task polls it each time it wakes, for every reply the
/// reader hands over: once its waker is registered, that poll reads one
/// flag. A `Notify` would take its lock each time, on memory that has
/// gone cold when thousands of connections take turns.
async fn due(shared: &Shared) {
    let mut registered: Option<std::task::Waker> = None;
    poll_fn(|cx| {
        // Read before it is taken: most polls find it unset.
        if shared.writer_due.load(Ordering::Relaxed)
            && shared.writer_due.swap(false, Ordering::AcqRel)
        {
            return Poll::Ready(());
        }
        // A wake takes the waker out, but sets the flag first: the flag
        // not set, the waker registered by this wait is still there.
        if registered.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            return Poll::Pending;
        }
        shared.writer.register(cx.waker());
        registered = Some(cx.waker().clone());
        // Set between the first look and the registration: seen now.
        match shared.writer_due.swap(false, Ordering::AcqRel) {
            true => Poll::Ready(()),
            false => Poll::Pending,
        }
    })
    .await
}

/// How many turns the writer leaves callers to take their replies before
/// it writes what the others queued.
pub(super) const MAX_WRITER_YIELDS: usize = 16;

/// Fails calls past their deadline: sleeps until the earliest one, or
/// until a call brings an earlier one.
///
/// It runs as a task of its own, which [`run`] ends with the connection:
/// it wakes about once per call timeout, while the reader and the writer
/// wake for every reply and request, and a task polls all it awaits each
/// time it wakes. Here, its timer and notification are not polled (each
/// a lock, and cold memory when thousands of connections take turns) for
/// every reply.
async fn expire_loop(shared: Arc<Shared>) {
    loop {
        let next = shared.waiters.lock().expect("waiters lock").next_check;
        match next {
            // `notify_one` leaves a permit when no one waits, so a deadline
            // set between the lock above and this wait is not missed.
            None => shared.deadline_moved.notified().await,
            Some(at) => tokio::select! {
                biased;
                () = shared.deadline_moved.notified() => {}
                () = tokio::time::sleep_until(at) => {
                    shared.expire(Instant::now());
                }
            },
        }
    }
}

/// The read half of the connection and the bytes read but not yet handed
/// over.
pub(super) struct Reader<R> {
    pub(super) io: R,
    pub(super) codec: FrameCodec,
    pub(super) input: BytesMut,
}

/// Room the reader keeps free for the next read.
pub(super) const READ_ROOM: usize = 8 * 1024;

impl<R: AsyncRead + Unpin> Reader<R> {
    /// Reads replies and hands them to their waiters, every frame that
    /// arrived together as one batch, until the connection fails or the
    /// server closes it.
    pub(super) async fn run(mut self, shared: &Arc<Shared>) -> Result<(), Error> {
        loop {
            Scratch::with(|scratch| {
                while let Some(frame) = self.codec.decode(&mut self.input).map_err(frame_error)? {
                    scratch.frames.push(frame.freeze());
                }
                if scratch.frames.is_empty() {
                    return Ok(());
                }
                shared.deliver(scratch)
            })?;
            if self.input.capacity() - self.input.len() < READ_ROOM / 2 {
                self.input.reserve(READ_ROOM);
            }
            let n = self
                .io
                .read_buf(&mut self.input)
                .await
                .map_err(|e| frame_error(FrameError::Io(e)))?;
            // Proof of life for the health check (only this task writes it).
            shared
                .heard
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if n == 0 {
                // A frame cut short is an error of its own.
                self.codec
                    .decode_eof(&mut self.input)
                    .map_err(frame_error)?;
                return Err(Error::new(
                    ErrorKind::ConnectionLost,
                    "the server closed the connection",
                ));
            }
        }
    }
}

/// The connection's task: writes queued requests and reads replies until
/// either side fails, then fails every pending call with the reason.
pub(super) async fn run<R: AsyncRead + Unpin>(shared: Arc<Shared>, reader: Reader<R>) {
    // However this task ends (even by a panic), pending calls fail at once.
    let _closing = CloseOnDrop(shared.clone());
    // Dropped (the expiry ended) when this task ends, or is aborted.
    let _expiring = AbortOnDrop(tokio::spawn(expire_loop(shared.clone())).abort_handle());
    let reading = reader.run(&shared);
    let writing = write_loop(&shared);
    let error = tokio::select! {
        // Each branch loops inside and returns only when the connection
        // ends, so a fixed order starves none of them.
        biased;
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
    // The write half outlives this task (callers hold it): end it, so that
    // the server sees the connection close.
    let shutdown = poll_fn(|cx| match shared.sink.try_lock() {
        Ok(mut sink) => Pin::new(&mut sink.io).poll_shutdown(cx),
        Err(_) => Poll::Ready(Ok(())),
    });
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), shutdown).await;
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
