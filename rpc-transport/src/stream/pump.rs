//! The pump: one task per stream this side sends, polling its source as
//! credit allows and queueing its items, many to a message.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::Poll;

use bytes::BytesMut;
use futures::future::BoxFuture;
use rpc_core::codec::Codec;
use rpc_core::service::Fault;
use rpc_core::stream::Source;
use rpc_core::{Error, ErrorKind};

use super::Credit;

/// Where a pump's messages go: the connection's outbox.
pub(crate) trait Out: Send + Sync + 'static {
    fn codec(&self) -> &'static dyn Codec;

    /// The largest message the peer takes.
    fn max_frame(&self) -> usize;

    /// Queues one message and gets it written; false once the connection
    /// is closed.
    fn send(&self, payload: &[u8]) -> bool;

    /// Completes once the connection has room for more messages.
    fn room(&self) -> BoxFuture<'_, ()>;

    /// Counts items sent.
    fn sent(&self, items: u32) {
        let _ = items;
    }
}

/// How large an items message grows before it is sent.
const BATCH_BYTES: usize = 64 * 1024;

/// Sends `source`'s items as stream `id` until it ends, then its end;
/// returns how it ended. If the task is dropped first (the receiver
/// cancelled, the connection ended), the source is closed with the reason
/// recorded in `credit`.
pub(crate) async fn pump(id: u64, source: Box<dyn Source>, credit: Arc<Credit>, out: Arc<dyn Out>) {
    let mut guard = Closing {
        source: Some(source),
        credit: credit.clone(),
    };
    let codec = out.codec();
    let batch_bytes = BATCH_BYTES.min(out.max_frame().saturating_sub(64)).max(1);
    let mut buf = BytesMut::new();
    let end = loop {
        let (items, bytes) = std::future::poll_fn(|cx| credit.poll_ready(cx)).await;
        out.room().await;
        let max_items = u32::try_from(items).unwrap_or(u32::MAX).min(credit.batch);
        let max_bytes = usize::try_from(bytes)
            .unwrap_or(usize::MAX)
            .min(batch_bytes);
        buf.clear();
        codec.begin_items(&mut buf, id);
        let head = buf.len();
        let mut count = 0u32;
        let mut ended = None;
        let Some(source) = guard.source.as_mut() else {
            return;
        };
        std::future::poll_fn(|cx| {
            let polled = std::panic::catch_unwind(AssertUnwindSafe(|| {
                source.poll_batch(cx, codec, &mut buf, true, (max_items, max_bytes))
            }));
            match polled {
                Ok(Poll::Pending) => Poll::Pending,
                Ok(Poll::Ready(filled)) => {
                    count = filled.items;
                    ended = filled.end;
                    Poll::Ready(())
                }
                Err(panic) => {
                    let why = rpc_core::service::panic_message(&*panic).to_owned();
                    ended = Some(Err(Error::new(
                        ErrorKind::HandlerPanic,
                        format!("the stream's producer panicked: {why}"),
                    )));
                    Poll::Ready(())
                }
            }
        })
        .await;
        if count > 0 {
            let cost = buf.len() - head;
            codec.finish_items(&mut buf, 0, count);
            credit.spend(count, cost);
            if !out.send(&buf) {
                return;
            }
            out.sent(count);
        }
        if let Some(end) = ended {
            break end;
        }
    };
    // Ended by itself: nothing to tell it.
    guard.source = None;
    send_end(&*out, id, end.as_ref().map(|_| ()));
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
        out.send(&buf);
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
