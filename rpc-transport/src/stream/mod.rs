//! Streams on a connection (protocol 2), the same on both sides: the
//! [`Streams`] table that routes stream messages by call id, the sender's
//! [`Credit`], and the [`pump`] that sends one stream's items as credit
//! allows.
//!
//! ```text
//! receiving side                                  sending side
//!   reader ── items ──► Inbox (window) ──► consumer's Stream<T>
//!   consumer took half a window ── credit ──►  Credit ──► pump polls the Source
//!   consumer dropped it ── cancel ──►            pump stopped, producer dropped
//! ```
//!
//! Each stream's window is its own budget: a stalled consumer stops its
//! own sender and no other, and the messages of every stream share the
//! connection's outbox, capped by `max_queued_reply_bytes` on a server. A
//! side holds at most `max_streams` windows of items per connection.
//!
//! Uses: metrics, the outbox and the frame limit. Its `Out` is the
//! connection's outbox, seen through a trait.

mod pump;
mod table;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;
use rpc_core::stream::Window;
use rpc_core::{Error, ErrorKind};

use crate::metrics::{Direction, Metrics};

pub(crate) use self::pump::{Out, Sent, pump, send_end, sent};
pub(crate) use self::table::Streams;

/// What a sender may still send on one stream, and why it must stop.
#[derive(Debug)]
pub(crate) struct Credit {
    items: AtomicU64,
    bytes: AtomicI64,
    /// Items per message: a quarter of the first window, so the receiver
    /// grants more while the sender still has some.
    batch: u32,
    waker: AtomicWaker,
    /// Why the stream was stopped, once it was.
    stopped: Mutex<Option<(ErrorKind, String)>>,
    /// A server's counters, for the items sent.
    metrics: Option<Arc<Metrics>>,
}

/// Credit stops growing here: a grant of 2^63 is as good as 2^40, and
/// sums cannot overflow.
const MAX_CREDIT: u64 = 1 << 40;

impl Credit {
    pub(crate) fn new(window: Window, metrics: Option<Arc<Metrics>>) -> Credit {
        Credit {
            items: AtomicU64::new(u64::from(window.items)),
            bytes: AtomicI64::new(i64::from(window.bytes)),
            batch: (window.items / 4).max(1),
            waker: AtomicWaker::new(),
            stopped: Mutex::new(None),
            metrics,
        }
    }

    /// The receiver granted more.
    pub(crate) fn grant(&self, items: u64, bytes: u64) {
        let items = items.min(MAX_CREDIT);
        let bytes = i64::try_from(bytes.min(MAX_CREDIT)).unwrap_or(i64::MAX);
        let _ = self
            .items
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_add(items).min(MAX_CREDIT))
            });
        let _ = self
            .bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_add(bytes).min(MAX_CREDIT as i64))
            });
        self.waker.wake();
    }

    /// Ready once there is at least one item and one byte of credit.
    fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<(u64, i64)> {
        let now = || {
            (
                self.items.load(Ordering::Acquire),
                self.bytes.load(Ordering::Acquire),
            )
        };
        let (items, bytes) = now();
        if items > 0 && bytes > 0 {
            return Poll::Ready((items, bytes));
        }
        self.waker.register(cx.waker());
        let (items, bytes) = now();
        if items > 0 && bytes > 0 {
            return Poll::Ready((items, bytes));
        }
        Poll::Pending
    }

    fn spend(&self, items: u32, bytes: usize) {
        if let Some(metrics) = &self.metrics {
            metrics.add_stream_items(Direction::Sent, u64::from(items));
        }
        self.items.fetch_sub(u64::from(items), Ordering::AcqRel);
        self.bytes
            .fetch_sub(i64::try_from(bytes).unwrap_or(i64::MAX), Ordering::AcqRel);
    }

    /// Records why the stream stops, if nothing did before.
    pub(crate) fn stop(&self, why: &Error) {
        let mut stopped = self.stopped.lock().unwrap_or_else(|p| p.into_inner());
        if stopped.is_none() {
            *stopped = Some((why.kind(), why.message().to_owned()));
        }
    }

    fn stopped(&self) -> Option<Error> {
        let stopped = self.stopped.lock().unwrap_or_else(|p| p.into_inner());
        stopped
            .as_ref()
            .map(|(kind, why)| Error::new(*kind, why.clone()))
    }
}
