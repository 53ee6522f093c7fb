//! The outbox: one buffer of outgoing frames per connection, and the writer
//! that drains it.
//!
//! Whoever has a frame to send (a caller on the client, a finished handler
//! on the server) encodes it straight into the shared buffer under a short
//! lock and wakes the writer. The writer swaps the whole buffer out and
//! writes it in one go, so frames that became ready together share one
//! syscall (but for a deep pipeline's, a dozen to a write: `pipelining`),
//! and it flushes as soon as nothing more is ready.
//!
//! Large byte payloads ([`rpc_core::Bytes`]) are not copied in: the codec
//! leaves them out of the buffer ([`rpc_core::blob::splicing`]) and the
//! outbox keeps them beside it, as [`Chunks`], to be written in their
//! places with `write_vectored`. Over a socket, a payload whose place would
//! slow the kernel's copy is copied in instead; over TLS, which copies every
//! payload into its records in user space anyway, none is.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use rpc_core::blob::{Spliced, splicing, splicing_anywhere};
use tokio::io::AsyncWrite;
use tokio::sync::Notify;
use tokio::sync::futures::Notified;

use crate::net::{Io, kernel_copies};
use crate::wire::frame::{FrameError, begin_frame, finish_spliced_frame};

/// Frames waiting to be written.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    ready: Notify,
    /// Woken when the writer takes what is queued: room for more.
    room: Notify,
    /// Tasks waiting in [`Outbox::room_below`]: a take wakes them only
    /// when there are any (a `Notify` takes its lock even to wake none).
    room_waiters: AtomicUsize,
    /// The queued bytes, as of the last push or take: read without the
    /// lock by a loop that checks it per frame.
    queued: AtomicUsize,
    /// The frames queued, as of the last push or take (see `queued`).
    frames: AtomicUsize,
    /// The stream copies what it is given in user space (TLS) before the
    /// kernel sees it: payloads are spliced wherever they lie.
    user_space_copy: bool,
}

#[derive(Debug, Default)]
struct State {
    chunks: Chunks,
    closed: bool,
}

/// Bytes to write, in order: a buffer, with payloads spliced in between
/// its bytes by reference.
#[derive(Debug, Default)]
pub(crate) struct Chunks {
    buf: BytesMut,
    /// The payloads in order, each with how many bytes of `buf` come
    /// between it and the payload before it (or the start of `buf`).
    spliced: VecDeque<(usize, Bytes)>,
    /// The sum of those gaps: where in `buf` the bytes after the last
    /// payload start.
    tail: usize,
    /// The payloads' length in all.
    outside: usize,
}

/// How many pieces one vectored write takes at most.
const MAX_SLICES: usize = 64;

impl Chunks {
    /// Nothing is left to write.
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty() && self.spliced.is_empty()
    }

    /// How many bytes are left to write.
    pub(crate) fn len(&self) -> usize {
        self.buf.len() + self.outside
    }

    /// Splices `bytes` in before offset `at` of the buffer, which is at or
    /// after the last payload's place.
    fn splice(&mut self, at: usize, bytes: Bytes) {
        debug_assert!(self.tail <= at && at <= self.buf.len());
        self.outside += bytes.len();
        self.spliced.push_back((at - self.tail, bytes));
        self.tail = at;
    }

    /// Fills `out` with the pieces to write next, in order, as many as one
    /// write takes; returns how many.
    fn slices<'a>(&'a self, out: &mut [IoSlice<'a>; MAX_SLICES]) -> usize {
        let mut at = 0;
        let pieces = self.spliced.iter().flat_map(|(gap, bytes)| {
            let before = &self.buf[at..at + gap];
            at += gap;
            [before, &bytes[..]]
        });
        let mut n = 0;
        for piece in pieces.chain([&self.buf[self.tail..]]) {
            if n == MAX_SLICES {
                break;
            }
            if !piece.is_empty() {
                out[n] = IoSlice::new(piece);
                n += 1;
            }
        }
        n
    }

    /// Writes what it can of the next pieces to `io` (one `write` when
    /// nothing is spliced, else one `write_vectored`) and drops what was
    /// written; returns how many bytes that was.
    pub(crate) fn poll_write_to<W: AsyncWrite + Unpin + ?Sized>(
        &mut self,
        io: &mut W,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<usize>> {
        let wrote = if self.spliced.is_empty() {
            ready!(Pin::new(io).poll_write(cx, &self.buf))
        } else {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let count = self.slices(&mut slices);
            ready!(Pin::new(io).poll_write_vectored(cx, &slices[..count]))
        };
        if let Ok(n) = wrote {
            self.advance(n);
        }
        Poll::Ready(wrote)
    }

    /// Drops the first `n` bytes, which were written.
    fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let Some((gap, bytes)) = self.spliced.front_mut() else {
                self.buf.advance(n);
                return;
            };
            if *gap > 0 {
                let k = n.min(*gap);
                self.buf.advance(k);
                *gap -= k;
                self.tail -= k;
                n -= k;
                continue;
            }
            let k = n.min(bytes.len());
            bytes.advance(k);
            self.outside -= k;
            n -= k;
            if bytes.is_empty() {
                self.spliced.pop_front();
            }
        }
    }

    /// Empties it, letting go of a buffer that grew past `keep` bytes.
    pub(crate) fn clear(&mut self, keep: usize) {
        self.buf.clear();
        self.spliced.clear();
        self.tail = 0;
        self.outside = 0;
        if self.buf.capacity() > keep {
            self.buf = BytesMut::new();
        }
    }
}

impl Outbox {
    /// An outbox for frames written to `io`.
    pub(crate) fn for_stream<S: Io>(io: &S) -> Outbox {
        Outbox {
            user_space_copy: !kernel_copies(io),
            ..Outbox::default()
        }
    }

    /// Appends one frame whose payload `encode` writes, unless the outbox is
    /// closed; the frame is refused (and nothing appended) if it exceeds
    /// `max_frame_bytes`. The writer is not woken: see [`Outbox::wake`].
    pub(crate) fn push<T, E>(
        &self,
        max_frame_bytes: usize,
        encode: impl FnOnce(&mut BytesMut) -> Result<T, E>,
    ) -> Result<Option<T>, Pushed<E>> {
        let mut state = self.lock();
        if state.closed {
            return Ok(None);
        }
        let chunks = &mut state.chunks;
        let start = begin_frame(&mut chunks.buf);
        let outside = chunks.outside;
        // A panicking `Serialize` must not leave half a frame behind.
        let encoded = std::panic::catch_unwind(AssertUnwindSafe(|| match self.user_space_copy {
            true => splicing_anywhere(&mut chunks.buf, encode),
            false => splicing(&mut chunks.buf, outside, encode),
        }));
        let (out, spliced) = match encoded {
            Ok((Ok(out), spliced)) => (out, spliced),
            Ok((Err(e), _)) => {
                chunks.buf.truncate(start);
                return Err(Pushed::Encode(e));
            }
            Err(panic) => {
                chunks.buf.truncate(start);
                return Err(Pushed::Panicked(
                    rpc_core::service::panic_message(&*panic).to_owned(),
                ));
            }
        };
        let spliced_len = spliced.iter().map(|s| s.bytes.len()).sum();
        let moved = finish_spliced_frame(&mut chunks.buf, start, spliced_len, max_frame_bytes)
            .map_err(Pushed::Frame)?;
        for Spliced { at, bytes } in spliced {
            chunks.splice(at + moved, bytes);
        }
        self.queued.store(chunks.len(), Ordering::Relaxed);
        // Under the lock, as every change is: a store, not a read-modify-write.
        let frames = self.frames.load(Ordering::Relaxed);
        self.frames.store(frames + 1, Ordering::Relaxed);
        Ok(Some(out))
    }

    /// The state; never poisoned for good, since nothing panics while it is
    /// held (encoding runs under `catch_unwind`).
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Wakes whoever waits in [`Outbox::ready`].
    pub(crate) fn wake(&self) {
        self.ready.notify_one();
    }

    /// Stops accepting frames; the writer ends once it has written what is
    /// already queued.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
        self.room.notify_waiters();
    }

    /// Moves everything queued into `out` (which must be empty), leaving
    /// `out`'s old allocation for the next frames; says whether the outbox
    /// is closed.
    pub(crate) fn take(&self, out: &mut Chunks) -> bool {
        debug_assert!(out.is_empty());
        let mut state = self.lock();
        std::mem::swap(&mut state.chunks, out);
        self.queued.store(0, Ordering::Relaxed);
        self.frames.store(0, Ordering::Relaxed);
        let closed = state.closed;
        drop(state);
        // After the lock is let go of: a waiter counted later checks the
        // queue under the lock, and finds it emptied.
        if !out.is_empty() && self.room_waiters.load(Ordering::SeqCst) > 0 {
            self.room.notify_waiters();
        }
        closed
    }

    /// How many frames are queued (read without the lock, as `queued`).
    pub(crate) fn frames(&self) -> usize {
        self.frames.load(Ordering::Relaxed)
    }

    /// How many bytes are queued.
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Completes once fewer than `cap` bytes are queued (at once if they
    /// are), or the outbox is closed.
    pub(crate) async fn room_below(&self, cap: usize) {
        self.room_waiters.fetch_add(1, Ordering::SeqCst);
        let _counted = Uncount(&self.room_waiters);
        loop {
            let taken = self.room.notified();
            tokio::pin!(taken);
            // Registered before the check, so a take in between is not missed.
            taken.as_mut().enable();
            {
                let state = self.lock();
                if state.closed || state.chunks.len() < cap {
                    return;
                }
            }
            taken.await;
        }
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.lock().chunks.is_empty()
    }

    /// Completes once [`Outbox::wake`] or [`Outbox::close`] was called
    /// since the last wait.
    pub(crate) fn ready(&self) -> Notified<'_> {
        self.ready.notified()
    }
}

/// Counts a waiter out when its wait ends, however it ends.
struct Uncount<'a>(&'a AtomicUsize);

impl Drop for Uncount<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Why a frame was not queued.
#[derive(Debug)]
pub(crate) enum Pushed<E> {
    /// The payload did not encode.
    Encode(E),
    /// The frame is over the peer's limit.
    Frame(FrameError),
    /// Encoding panicked (a user's `Serialize`); the message of the panic.
    Panicked(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::frame::finish_frame;
    use proptest::prelude::*;
    use rpc_core::codec::{Bincode, Codec, Id};
    use rpc_core::service::Reply;

    /// A `len`-byte payload sliced `skip` bytes into a fresh buffer, so its
    /// address (and so whether it is spliced) varies.
    fn payload(len: usize, skip: usize, seed: u8) -> rpc_core::Bytes {
        let block: Vec<u8> = (0..len + skip)
            .map(|i| (i as u8).wrapping_mul(7) ^ seed)
            .collect();
        rpc_core::Bytes(Bytes::from(block).slice(skip..))
    }

    fn encode(
        buf: &mut BytesMut,
        id: u64,
        payload: &rpc_core::Bytes,
    ) -> Result<(), rpc_core::Error> {
        let reply: Reply = Ok(Box::new(payload.clone()));
        Bincode.encode_response(buf, &Id::Num(id), &reply)
    }

    /// Writes `chunks` out in pieces of at most the given sizes (cycled),
    /// as a socket that takes a little at a time would.
    fn write_out(chunks: &mut Chunks, takes: &[usize]) -> Vec<u8> {
        let mut wire = Vec::new();
        for take in takes.iter().cycle() {
            if chunks.is_empty() {
                break;
            }
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let count = chunks.slices(&mut slices);
            let mut left = *take;
            for slice in &slices[..count] {
                let n = left.min(slice.len());
                wire.extend_from_slice(&slice[..n]);
                left -= n;
            }
            let len = chunks.len();
            chunks.advance(*take - left);
            assert_eq!(chunks.len(), len - (*take - left));
        }
        wire
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Frames with payloads spliced or copied, written in any pieces,
        /// put on the wire exactly the bytes of the frames encoded by copy.
        #[test]
        fn spliced_frames_write_the_bytes_copied_frames_would(
            frames in proptest::collection::vec((0usize..70_000, 0usize..64), 1..6),
            takes in proptest::collection::vec(1usize..100_000, 1..8),
        ) {
            let outbox = Outbox::default();
            let mut expected = BytesMut::new();
            for (id, &(len, skip)) in frames.iter().enumerate() {
                let p = payload(len, skip, id as u8);
                outbox.push(usize::MAX, |buf| encode(buf, id as u64, &p)).unwrap();
                let start = begin_frame(&mut expected);
                encode(&mut expected, id as u64, &p).unwrap();
                finish_frame(&mut expected, start, usize::MAX).unwrap();
            }
            let mut chunks = Chunks::default();
            outbox.take(&mut chunks);
            prop_assert_eq!(chunks.len(), expected.len());
            let wire = write_out(&mut chunks, &takes);
            prop_assert!(wire == expected[..], "the written bytes differ");
            prop_assert!(chunks.is_empty());
            prop_assert_eq!(chunks.len(), 0);
        }
    }

    #[test]
    fn large_payloads_are_spliced_unless_their_alignment_would_slow_the_copy() {
        let outbox = Outbox::default();
        for skip in 0..64 {
            let big = payload(64 * 1024, skip, 3);
            outbox.push(usize::MAX, |buf| encode(buf, 3, &big)).unwrap();
        }
        let mut chunks = Chunks::default();
        outbox.take(&mut chunks);
        // On a CPU that minds alignment (AMD), about 15 in 64 land 1 to 15
        // bytes ahead of their source and are copied (how many exactly
        // depends on where the allocator put them); elsewhere none is.
        let spliced = chunks.spliced.len();
        if rpc_core::blob::minds_alignment() {
            assert!((1..64).contains(&spliced), "{spliced} of 64 spliced");
        } else {
            assert_eq!(spliced, 64);
        }
        assert_eq!(chunks.buf.len(), chunks.len() - spliced * 64 * 1024);
    }

    #[test]
    fn over_a_stream_that_copies_in_user_space_every_large_payload_is_spliced() {
        // TLS copies each payload into its records; an in-memory pipe, as here, copies too.
        let (tls_like, _peer) = tokio::io::duplex(64);
        let outbox = Outbox::for_stream(&tls_like);
        for skip in 0..64 {
            let big = payload(64 * 1024, skip, 3);
            outbox.push(usize::MAX, |buf| encode(buf, 3, &big)).unwrap();
        }
        let mut chunks = Chunks::default();
        outbox.take(&mut chunks);
        assert_eq!(chunks.spliced.len(), 64);
    }

    #[test]
    fn a_frame_over_the_limit_leaves_nothing_spliced_behind() {
        let outbox = Outbox::default();
        let small = payload(10, 0, 1);
        outbox
            .push(usize::MAX, |buf| encode(buf, 1, &small))
            .unwrap();
        // Some alignment of a large payload is spliced; try them all.
        for skip in 0..64 {
            let big = payload(64 * 1024, skip, 2);
            let refused = outbox.push(1024, |buf| encode(buf, 2, &big));
            assert!(matches!(
                refused,
                Err(Pushed::Frame(FrameError::TooLarge { .. }))
            ));
        }
        let mut chunks = Chunks::default();
        outbox.take(&mut chunks);
        let mut expected = BytesMut::new();
        let start = begin_frame(&mut expected);
        encode(&mut expected, 1, &small).unwrap();
        finish_frame(&mut expected, start, usize::MAX).unwrap();
        assert_eq!(write_out(&mut chunks, &[usize::MAX]), &expected[..]);
    }
}
