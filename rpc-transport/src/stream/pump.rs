//! The pump: one task per stream this side sends, polling its source as
//! credit allows and queueing its items, many to a message.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::Poll;

use bytes::BytesMut;
use futures::future::BoxFuture;
use rpc_core::codec::Codec;
use rpc_core::service::Fault;
use rpc_core::stream::{End, Filled, Source};
use rpc_core::{Error, ErrorKind};

use super::Credit;
use crate::outbox::Pushed;
use crate::wire::frame::FrameError;

/// Where a pump's messages go: the connection's outbox.
pub(crate) trait Out: Send + Sync + 'static {
    fn codec(&self) -> &'static dyn Codec;

    /// The largest message the peer takes.
    fn max_frame(&self) -> usize;

    /// Queues one message and gets it written.
    fn send(&self, payload: &[u8]) -> Sent;

    /// Completes once the connection has room for more messages.
    fn room(&self) -> BoxFuture<'_, ()>;

    /// Counts items sent.
    fn sent(&self, items: u32) {
        let _ = items;
    }
}

/// What became of a message given to [`Out::send`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Sent {
    /// Queued, to be written.
    Queued,
    /// The connection is closed.
    Closed,
    /// Larger than the peer's frame limit: not sent.
    TooLarge {
        /// The message's length.
        len: usize,
        /// The peer's limit.
        limit: usize,
    },
}

/// What an outbox push came to, as a [`Sent`].
pub(crate) fn sent<E>(pushed: Result<Option<()>, Pushed<E>>) -> Sent {
    match pushed {
        Ok(Some(())) => Sent::Queued,
        Ok(None) => Sent::Closed,
        Err(Pushed::Frame(FrameError::TooLarge { len, limit })) => Sent::TooLarge {
            len: usize::try_from(len).unwrap_or(usize::MAX),
            limit,
        },
        // Not from copying bytes in.
        Err(_) => Sent::Closed,
    }
}

/// How large an items message grows before it is sent.
const BATCH_BYTES: usize = 64 * 1024;

/// The most room a stream's batch buffer keeps between batches: a whole
/// batch of small items fits (grown by doubling past [`BATCH_BYTES`]),
/// and a stalled stream whose last batch was large (one item may take it
/// to the peer's frame limit) holds no more than this while it waits.
const KEPT_ROOM: usize = 2 * BATCH_BYTES;

/// Lets go of `buf`'s room after a batch if it is over [`KEPT_ROOM`].
fn keep_little(buf: &mut BytesMut) {
    if buf.capacity() > KEPT_ROOM {
        *buf = BytesMut::new();
    }
}

/// Sends `source`'s items as stream `id` until it ends, then its end. If
/// the task is dropped first (the receiver cancelled, the connection
/// ended), the source is closed with the reason recorded in `credit`.
///
/// A message fits the receiver's credit, except one of a single item,
/// which needs only some credit left (an item's size is known once it is
/// encoded): an item that would take a message past the credit, or past
/// the peer's frame limit, is split off and sent alone, at once if credit
/// is left, else once more is granted.
pub(crate) async fn pump(id: u64, source: Box<dyn Source>, credit: Arc<Credit>, out: Arc<dyn Out>) {
    let mut guard = Closing {
        source: Some(source),
        credit: credit.clone(),
    };
    let codec = out.codec();
    let max_frame = out.max_frame();
    let batch_bytes = BATCH_BYTES.min(max_frame.saturating_sub(64)).max(1);
    let separator = codec.item_separator().len();
    let mut buf = BytesMut::new();
    // An item split off a message, encoded, waiting for credit; and the
    // stream's end, once the producer gave it.
    let mut carried: Option<BytesMut> = None;
    let mut ended: Option<End> = None;
    let end = loop {
        if carried.is_none() {
            if let Some(end) = ended.take() {
                break end;
            }
        }
        let (items, bytes) = std::future::poll_fn(|cx| credit.poll_ready(cx)).await;
        out.room().await;
        if let Some(item) = carried.take() {
            if let Err(end) = send_items(&*out, &credit, id, &item, 1) {
                break end;
            }
            continue;
        }
        let max_items = u32::try_from(items).unwrap_or(u32::MAX).min(credit.batch);
        let max_bytes = usize::try_from(bytes)
            .unwrap_or(usize::MAX)
            .min(batch_bytes);
        buf.clear();
        codec.begin_items(&mut buf, id);
        let head = buf.len();
        let Some(source) = guard.source.as_mut() else {
            return;
        };
        let filled = std::future::poll_fn(|cx| {
            let polled = std::panic::catch_unwind(AssertUnwindSafe(|| {
                source.poll_batch(cx, codec, &mut buf, true, (max_items, max_bytes))
            }));
            polled.unwrap_or_else(|panic| {
                let why = rpc_core::service::panic_message(&*panic).to_owned();
                let end = Err(Error::new(
                    ErrorKind::HandlerPanic,
                    format!("the stream's producer panicked: {why}"),
                ));
                Poll::Ready(Filled {
                    items: 0,
                    last: head,
                    end: Some(end),
                })
            })
        })
        .await;
        ended = filled.end;
        let mut count = filled.items;
        let cost = buf.len() - head;
        let over = i64::try_from(cost).map_or(true, |c| c > bytes) || buf.len() + 64 > max_frame;
        // `buf` keeps its room from batch to batch, up to `KEPT_ROOM`:
        // items are copied out of it (splitting it would leave it none, and
        // every item after would grow it by its own few bytes).
        if count > 1 && over {
            // The last item goes alone, without the separator before it.
            let last = &buf[filled.last..];
            carried = Some(BytesMut::from(&last[separator.min(last.len())..]));
            buf.truncate(filled.last);
            count -= 1;
        }
        if count > 0 {
            if let Err(end) = send_items(&*out, &credit, id, &buf[head..], count) {
                break end;
            }
        }
        keep_little(&mut buf);
    };
    // Ended by itself, or by a message that could not be sent: the
    // producer is told the latter.
    if let (Err(e), Some(source)) = (&end, guard.source.take()) {
        source.close(Error::new(e.kind(), e.message()));
    }
    send_end(&*out, id, end.as_ref().map(|_| ()));
}

/// Sends `count` encoded items as one message of stream `id`, charging
/// the credit. `Err` with the stream's end when it cannot go on: the
/// connection closed, or the message is over the peer's frame limit.
fn send_items(
    out: &dyn Out,
    credit: &Credit,
    id: u64,
    items: &[u8],
    count: u32,
) -> Result<(), End> {
    let codec = out.codec();
    let mut message = BytesMut::with_capacity(items.len() + 32);
    codec.begin_items(&mut message, id);
    message.extend_from_slice(items);
    codec.finish_items(&mut message, 0, count);
    match out.send(&message) {
        Sent::Queued => {
            credit.spend(count, items.len());
            out.sent(count);
            Ok(())
        }
        Sent::Closed => Err(Err(Error::new(
            ErrorKind::ConnectionLost,
            "the connection ended",
        ))),
        Sent::TooLarge { len, limit } => Err(Err(Error::new(
            ErrorKind::FrameTooLarge,
            format!(
                "a stream item made a message of {len} bytes, over the receiver's frame limit of {limit} bytes"
            ),
        ))),
    }
}

/// Queues the end of stream `id`.
pub(crate) fn send_end(out: &dyn Out, id: u64, end: Result<(), &Error>) {
    let codec = out.codec();
    let mut buf = BytesMut::new();
    let fault = end
        .err()
        .map(|e| Fault::from(Error::new(e.kind(), e.message())));
    if codec
        .encode_end(&mut buf, id, fault.as_ref().map_or(Ok(()), Err))
        .is_ok()
    {
        let _ = out.send(&buf);
    }
}

/// Closes the source, if the pump stopped before it ended, with the
/// reason recorded in the credit.
struct Closing {
    source: Option<Box<dyn Source>>,
    credit: Arc<Credit>,
}

impl Drop for Closing {
    fn drop(&mut self) {
        if let Some(source) = self.source.take() {
            let why = self
                .credit
                .stopped()
                .unwrap_or_else(|| Error::new(ErrorKind::ConnectionLost, "the connection ended"));
            source.close(why);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_buffer_keeps_small_room_and_lets_go_of_large() {
        let mut small = BytesMut::with_capacity(10 * 1024);
        small.extend_from_slice(&[1; 9000]);
        small.clear();
        keep_little(&mut small);
        assert!(
            small.capacity() >= 10 * 1024,
            "a small batch's room is kept"
        );
        let mut large = BytesMut::with_capacity(1 << 20);
        large.extend_from_slice(&[1; 1 << 20]);
        keep_little(&mut large);
        assert!(large.capacity() <= KEPT_ROOM, "{} kept", large.capacity());
    }
}
