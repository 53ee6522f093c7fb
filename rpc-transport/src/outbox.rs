//! The outbox: one buffer of outgoing frames per connection, and the writer
//! that drains it.
//!
//! Whoever has a frame to send (a caller on the client, a finished handler
//! on the server) encodes it straight into the shared buffer under a short
//! lock and wakes the writer. The writer swaps the whole buffer out and
//! writes it in one go, so frames that became ready together share one
//! syscall, and it flushes as soon as nothing more is ready.

use std::panic::AssertUnwindSafe;
use std::sync::Mutex;

use bytes::BytesMut;
use tokio::sync::Notify;
use tokio::sync::futures::Notified;

use crate::frame::{FrameError, begin_frame, finish_frame};

/// Frames waiting to be written.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    ready: Notify,
}

#[derive(Debug, Default)]
struct State {
    buf: BytesMut,
    closed: bool,
}

impl Outbox {
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
        let start = begin_frame(&mut state.buf);
        // A panicking `Serialize` must not leave half a frame behind.
        let encoded = std::panic::catch_unwind(AssertUnwindSafe(|| encode(&mut state.buf)));
        let out = match encoded {
            Ok(Ok(out)) => out,
            Ok(Err(e)) => {
                state.buf.truncate(start);
                return Err(Pushed::Encode(e));
            }
            Err(panic) => {
                state.buf.truncate(start);
                return Err(Pushed::Panicked(
                    rpc_core::service::panic_message(&*panic).to_owned(),
                ));
            }
        };
        finish_frame(&mut state.buf, start, max_frame_bytes).map_err(Pushed::Frame)?;
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
    }

    /// Moves everything queued into `out` (which must be empty), leaving
    /// `out`'s old allocation for the next frames; says whether the outbox
    /// is closed.
    pub(crate) fn take(&self, out: &mut BytesMut) -> bool {
        debug_assert!(out.is_empty());
        let mut state = self.lock();
        std::mem::swap(&mut state.buf, out);
        state.closed
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.lock().buf.is_empty()
    }

    /// Completes once [`Outbox::wake`] or [`Outbox::close`] was called
    /// since the last wait.
    pub(crate) fn ready(&self) -> Notified<'_> {
        self.ready.notified()
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
