//! The receiving side: an [`Inbox`] where a stream's arriving items wait
//! for its consumer, bounded by the credit the consumer's side granted,
//! and the [`receiving`] scope in which a `Stream<T>` being decoded takes
//! the inbox the transport made for it.
//!
//! Credit is counted in items and in bytes (the items' encoded bytes, as
//! the stream messages carry them). The peer starts with one [`Window`]
//! (the transports agree on it in the hello). A message must fit the
//! credit left, except a message of one item, which needs only one byte
//! of it: a sender learns an item's size by encoding it, and sends an item
//! that would overshoot alone. So an inbox holds at most its window plus
//! one item. Once the consumer has taken half a window of items or bytes,
//! the inbox grants them again through [`Control`].

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

use super::End;
use crate::codec::Codec;
use crate::error::{Error, ErrorKind};

/// How much one stream's receiver lets the sender send ahead: its budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Window {
    /// Items.
    pub items: u32,
    /// Encoded bytes of those items.
    pub bytes: u32,
}

impl Window {
    /// 4096 items or 256 KiB: with items batched 1024 to a message, a
    /// sender keeps sending while the consumer works through the half it
    /// has, and a stalled stream holds at most this.
    pub const DEFAULT: Window = Window {
        items: 4096,
        bytes: 256 * 1024,
    };
}

impl Default for Window {
    fn default() -> Window {
        Window::DEFAULT
    }
}

/// What an inbox asks of its transport.
pub trait Control: Send + Sync + 'static {
    /// Sends the peer credit for `items` more items and `bytes` more bytes
    /// on stream `id`.
    fn grant(&self, id: u64, items: u32, bytes: u32);

    /// The consumer dropped the stream `inbox` receives before its end:
    /// tell the peer to stop sending, and forget this inbox (not another
    /// that may have taken its id since).
    fn cancel(&self, inbox: &Inbox);
}

/// A stream's arriving items, between the transport's reader and the
/// consumer.
pub struct Inbox {
    id: u64,
    codec: &'static dyn Codec,
    window: Window,
    control: Arc<dyn Control>,
    state: Mutex<State>,
}

/// Items that arrived in one message: `count` of them, at `at..end` of `frame`.
pub(super) struct Batch {
    pub(super) frame: Bytes,
    pub(super) at: usize,
    pub(super) end: usize,
    pub(super) count: u32,
    /// `end - at` as it arrived: the bytes its credit was charged.
    pub(super) bytes: usize,
}

struct State {
    queue: VecDeque<Batch>,
    /// Credit the peer has left.
    items_left: u64,
    bytes_left: i64,
    /// Taken by the consumer since the last grant.
    used_items: u32,
    used_bytes: u64,
    /// Queued and not yet taken.
    held_items: u64,
    held_bytes: u64,
    end: Option<End>,
    waker: Option<Waker>,
}

impl Inbox {
    /// An inbox for stream `id`, whose peer starts with `window` of credit.
    pub fn new(
        id: u64,
        codec: &'static dyn Codec,
        window: Window,
        control: Arc<dyn Control>,
    ) -> Arc<Inbox> {
        Arc::new(Inbox {
            id,
            codec,
            window,
            control,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                items_left: u64::from(window.items),
                bytes_left: i64::from(window.bytes),
                used_items: 0,
                used_bytes: 0,
                held_items: 0,
                held_bytes: 0,
                end: None,
                waker: None,
            }),
        })
    }

    /// The stream's id: its call's.
    pub fn id(&self) -> u64 {
        self.id
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// `count` items arrived, at `items` of `frame`. Past the credit the
    /// peer was granted, they are not kept: the stream ends with
    /// [`ErrorKind::OverBudget`] after the items that came within it, and
    /// that error is returned for the transport to tell the peer (a
    /// cancel) and count.
    pub fn push(&self, frame: Bytes, items: Range<usize>, count: u32) -> Result<(), Error> {
        let bytes = items.len();
        let waker = {
            let mut state = self.state();
            if state.end.is_some() {
                // Ended here (cancelled, over budget): what was in flight is dropped.
                return Ok(());
            }
            if count == 0 {
                return Ok(());
            }
            // Within the credit, or one item when some is left: a sender
            // cannot know an item's size before it has encoded it, so the
            // last one may overshoot (see the module docs).
            let fits = i64::try_from(bytes).is_ok_and(|b| b <= state.bytes_left)
                || (count == 1 && state.bytes_left > 0);
            if u64::from(count) > state.items_left || !fits {
                let why = Error::new(
                    ErrorKind::OverBudget,
                    format!(
                        "stream {} received {count} items ({bytes} bytes) with credit for {} items \
                         and {} bytes left: its window is {} items, {} bytes",
                        self.id,
                        state.items_left,
                        state.bytes_left.max(0),
                        self.window.items,
                        self.window.bytes
                    ),
                );
                // What arrived within the credit is still the consumer's.
                state.end = Some(Err(Error::new(why.kind(), why.message())));
                let waker = state.waker.take();
                drop(state);
                if let Some(w) = waker {
                    w.wake();
                }
                return Err(why);
            }
            state.items_left -= u64::from(count);
            state.bytes_left -= i64::try_from(bytes).unwrap_or(i64::MAX);
            state.held_items += u64::from(count);
            state.held_bytes += bytes as u64;
            state.queue.push_back(Batch {
                frame,
                at: items.start,
                end: items.end,
                count,
                bytes,
            });
            state.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// Ends the stream with `end` (the peer's, or the transport's reason:
    /// a lost connection, a shutdown) once the consumer has taken what
    /// arrived before. The first end wins; returns whether this was it.
    pub fn finish(&self, end: End) -> bool {
        let waker = {
            let mut state = self.state();
            if state.end.is_some() {
                return false;
            }
            state.end = Some(end);
            state.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        true
    }

    /// Whether the stream has ended (items may still wait).
    pub fn is_finished(&self) -> bool {
        self.state().end.is_some()
    }

    /// What waits for the consumer: items and bytes.
    pub fn held(&self) -> (u64, u64) {
        let state = self.state();
        (state.held_items, state.held_bytes)
    }

    /// The next batch of items, or `None` once the stream has ended and
    /// every item was taken.
    pub(super) fn poll_batch(&self, cx: &mut Context<'_>) -> Poll<Option<Batch>> {
        let mut state = self.state();
        if let Some(batch) = state.queue.pop_front() {
            return Poll::Ready(Some(batch));
        }
        if state.end.is_some() {
            return Poll::Ready(None);
        }
        match &state.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// The consumer took a batch of `count` items, `bytes` long: they no
    /// longer count as held, and half a window taken is granted again.
    pub(super) fn taken(&self, count: u32, bytes: usize) {
        let grant = {
            let mut state = self.state();
            state.held_items = state.held_items.saturating_sub(u64::from(count));
            state.held_bytes = state.held_bytes.saturating_sub(bytes as u64);
            state.used_items += count;
            state.used_bytes += bytes as u64;
            let enough = state.used_items >= self.window.items / 2
                || state.used_bytes >= u64::from(self.window.bytes / 2);
            if !enough || state.end.is_some() {
                None
            } else {
                let items = std::mem::take(&mut state.used_items);
                let bytes =
                    u32::try_from(std::mem::take(&mut state.used_bytes)).unwrap_or(u32::MAX);
                state.items_left += u64::from(items);
                state.bytes_left += i64::from(bytes);
                Some((items, bytes))
            }
        };
        if let Some((items, bytes)) = grant {
            self.control.grant(self.id, items, bytes);
        }
    }

    /// Why the stream ended; `Ok(())` if it has not.
    pub(super) fn take_end(&self) -> End {
        self.state().end.take().unwrap_or(Ok(()))
    }

    /// Stops the stream before its end (its consumer let go of it): drops
    /// what waits and asks the peer to stop sending.
    pub fn cancel(&self) {
        let open = {
            let mut state = self.state();
            state.queue.clear();
            state.held_items = 0;
            state.held_bytes = 0;
            match state.end {
                Some(_) => false,
                None => {
                    state.end = Some(Err(Error::new(
                        ErrorKind::Cancelled,
                        "the receiver dropped the stream",
                    )));
                    true
                }
            }
        };
        if open {
            self.control.cancel(self);
        }
    }

    pub(super) fn codec(&self) -> &'static dyn Codec {
        self.codec
    }
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("id", &self.id)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

thread_local! {
    /// The open [`receiving`] scope: `Some(Some(_))` until a stream takes
    /// its inbox, `Some(None)` after.
    static OFFER: RefCell<Option<Option<Arc<Inbox>>>> = const { RefCell::new(None) };
}

/// Runs `decode` (a transport decoding a call's arguments or result) with
/// `inbox` offered to the `Stream<T>` in it; returns whether one took it.
pub fn receiving<R>(inbox: Arc<Inbox>, decode: impl FnOnce() -> R) -> (R, bool) {
    struct Restore(Option<Option<Arc<Inbox>>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            OFFER.with(|o| *o.borrow_mut() = self.0.take());
        }
    }
    let outer = OFFER.with(|o| o.borrow_mut().replace(Some(inbox)));
    let restore = Restore(outer);
    let out = decode();
    let taken = OFFER.with(|o| matches!(&*o.borrow(), Some(None)));
    drop(restore);
    (out, taken)
}

/// The offered inbox, for a `Stream<T>` being decoded.
pub(super) fn take_incoming() -> Result<Arc<Inbox>, String> {
    OFFER.with(|o| match &mut *o.borrow_mut() {
        Some(offer) => offer
            .take()
            .ok_or_else(|| "a call carries at most one stream each way".to_owned()),
        None => Err(format!(
            "this door cannot carry a stream ({})",
            super::DOORS
        )),
    })
}
