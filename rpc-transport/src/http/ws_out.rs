//! What a WebSocket connection sends, queued for its one writer and
//! bounded in bytes: a call's answer or a subscription's item waits for
//! room before it is queued, so a client that reads slowly pauses the
//! calls and the stream sources that write to it instead of making the
//! server buffer for it.
//!
//! ```text
//! calls ──┐
//! subscription 1 ──┼─▶ queue (≤ QUEUE_BYTES) ─▶ writer ─▶ socket (write_timeout)
//! subscription 2 ──┘
//! ```

use std::sync::Arc;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use bytes::BytesMut;
use futures::SinkExt;
use futures::stream::SplitSink;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

/// The most bytes of messages queued on one connection and not yet
/// handed to the socket. A larger message waits for the queue to empty.
pub(crate) const QUEUE_BYTES: usize = 1024 * 1024;

type Queued = (Message, OwnedSemaphorePermit);

/// The sending end of a connection's queue; clones share the bound.
#[derive(Clone)]
pub(crate) struct Outgoing {
    queue: mpsc::UnboundedSender<Queued>,
    room: Arc<Semaphore>,
}

/// The writer's end; once it is dropped, senders no longer wait for room.
pub(crate) struct Queue(mpsc::UnboundedReceiver<Queued>, Arc<Semaphore>);

impl Drop for Queue {
    fn drop(&mut self) {
        self.1.close();
    }
}

impl Outgoing {
    pub(crate) fn new() -> (Outgoing, Queue) {
        let (queue, receiver) = mpsc::unbounded_channel();
        let room = Arc::new(Semaphore::new(QUEUE_BYTES));
        (
            Outgoing {
                queue,
                room: room.clone(),
            },
            Queue(receiver, room),
        )
    }

    /// Queues `text` (JSON, so UTF-8) once there is room for it; `false`
    /// once the connection's writer has stopped.
    pub(crate) async fn send(&self, text: BytesMut) -> bool {
        let cost = text.len().clamp(1, QUEUE_BYTES);
        let cost = u32::try_from(cost).unwrap_or(u32::MAX);
        let Ok(permit) = self.room.clone().acquire_many_owned(cost).await else {
            return false;
        };
        let Ok(text) = Utf8Bytes::try_from(text.freeze()) else {
            return true;
        };
        self.queue.send((Message::Text(text), permit)).is_ok()
    }
}

/// Writes what is queued until every [`Outgoing`] is dropped (then closes
/// the WebSocket) or the socket fails. Messages ready together are
/// written with one flush.
pub(crate) async fn write(mut sink: SplitSink<WebSocket, Message>, mut queue: Queue) {
    while let Some((message, room)) = queue.0.recv().await {
        if sink.feed(message).await.is_err() {
            return;
        }
        drop(room);
        while let Ok((message, room)) = queue.0.try_recv() {
            if sink.feed(message).await.is_err() {
                return;
            }
            drop(room);
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
    let _ = sink.send(Message::Close(None)).await;
}
