//! Where a connection's replies go: the outbox, each reply encoded by the
//! connection's codec and bounded by the client's frame limit, and the
//! `max_queued_reply_bytes` that spawned calls and stream pumps wait below.
//! A reply whose result is a stream (protocol 2) is marked as opening it,
//! and its items follow from a pump ([`crate::stream`]).

use std::sync::{Arc, Weak};

use futures::future::BoxFuture;
use rpc_core::codec::{Codec, Id};
use rpc_core::service::{Fault, Reply};
use rpc_core::stream::{Control, Inbox};
use rpc_core::{Error, ErrorKind};
use tracing::debug;

use crate::outbox::{Outbox, Pushed};
use crate::stream::{Out, Sent, Streams, sent};
use crate::wire::frame::FrameError;

/// Where replies go: the outbox, encoded by the connection's codec.
#[derive(Clone)]
pub(super) struct Replies {
    pub(super) outbox: Arc<Outbox>,
    pub(super) codec: &'static dyn Codec,
    /// The largest reply frame: the smaller of the server's and the client's
    /// frame limits.
    pub(super) max_frame: usize,
    /// `max_queued_reply_bytes`: spawned calls wait for room before they
    /// encode, and the loop stops reading past it.
    pub(super) max_queued: usize,
    /// The connection's streams; `None` on a protocol-1 connection.
    pub(super) streams: Option<Arc<Streams>>,
}

impl Replies {
    /// Queues the going-away notice.
    pub(super) fn going_away(&self) {
        let notice = self.outbox.push(self.max_frame, |buf| {
            self.codec
                .encode_going_away(buf, "the server is shutting down");
            Ok::<_, Error>(())
        });
        if let Err(e) = notice {
            debug!(error = ?e, "the going-away notice could not be queued");
        }
        self.outbox.wake();
    }

    /// Queues the reply to request `id` and wakes the connection's loop to
    /// write it: for spawned calls. The loop's own replies need no wake
    /// (see [`Replies::queue`]).
    pub(super) fn send(&self, id: &Id, reply: Reply) {
        self.queue(id, reply);
        self.outbox.wake();
    }

    /// Queues the reply to request `id`, for the loop to write once it has
    /// handled what it read; a reply too large for the client, or one the
    /// codec cannot encode, is replaced by an error saying so.
    pub(super) fn queue(&self, id: &Id, mut reply: Reply) {
        if self.streams.is_none() {
            // Protocol 1 has no did-not-run mark (bincode's status 03).
            if let Err(fault) = &mut reply {
                fault.not_run = false;
            }
        }
        let mut opened = None;
        let pushed = self.outbox.push(self.max_frame, |buf| {
            let (Some(streams), &Id::Num(n)) = (&self.streams, id) else {
                return self.codec.encode_response(buf, id, &reply);
            };
            let start = buf.len();
            let (encoded, source) =
                rpc_core::stream::capturing(|| self.codec.encode_response(buf, id, &reply));
            encoded?;
            if let Some(source) = source {
                if let Err(e) = streams.check_room() {
                    source.close(Error::new(e.kind(), e.message()));
                    return Err(e);
                }
                self.codec.mark_stream(buf, start);
                opened = Some((n, source));
            }
            Ok(())
        });
        let fault = match pushed {
            Ok(_) => {
                if let (Some((n, source)), Some(streams)) = (opened, &self.streams) {
                    // Refused only if another stream took the last room since
                    // the check: the client, told a stream follows, is told
                    // it ended.
                    if let Err(e) = streams.send(n, source, Arc::new(self.clone())) {
                        crate::stream::send_end(self, n, Err(&e));
                    }
                }
                return;
            }
            Err(Pushed::Encode(e)) => Fault::from(e),
            Err(Pushed::Frame(FrameError::TooLarge { len, limit })) => Fault::from(Error::new(
                ErrorKind::FrameTooLarge,
                format!(
                    "the reply of {len} bytes exceeds the client's frame limit of {limit} bytes"
                ),
            )),
            Err(Pushed::Frame(e)) => Fault::from(Error::new(ErrorKind::Internal, e.to_string())),
            Err(Pushed::Panicked(why)) => Fault::from(Error::new(
                ErrorKind::HandlerPanic,
                format!("encoding the reply panicked: {why}"),
            )),
        };
        let fallback = self.outbox.push(self.max_frame, |buf| {
            self.codec.encode_response(buf, id, &Err(fault))
        });
        if let Err(e) = fallback {
            debug!(error = ?e, "even the error reply could not be sent");
        }
    }

    /// Waits until fewer than `max_queued_reply_bytes` are queued: for
    /// spawned calls, whose replies the loop does not count as it reads.
    pub(super) async fn room_below_cap(&self) {
        self.outbox.room_below(self.max_queued).await
    }

    /// Queues a message `encode` writes, and wakes the loop to write it.
    pub(super) fn notify(&self, encode: impl FnOnce(&mut bytes::BytesMut)) {
        let pushed = self.outbox.push(self.max_frame, |buf| {
            encode(buf);
            Ok::<_, Error>(())
        });
        if pushed.is_ok() {
            self.outbox.wake();
        }
    }

    /// What an inbox of this connection asks of it.
    pub(super) fn control(&self) -> Arc<dyn Control> {
        Arc::new(InboxControl {
            replies: Replies {
                streams: None,
                ..self.clone()
            },
            streams: self.streams.as_ref().map_or_else(Weak::new, Arc::downgrade),
        })
    }
}

impl Out for Replies {
    fn codec(&self) -> &'static dyn Codec {
        self.codec
    }

    fn max_frame(&self) -> usize {
        self.max_frame
    }

    fn send(&self, payload: &[u8]) -> Sent {
        let pushed = self.outbox.push(self.max_frame, |buf| {
            buf.extend_from_slice(payload);
            Ok::<_, Error>(())
        });
        self.outbox.wake();
        sent(pushed)
    }

    fn room(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.room_below_cap())
    }
}

/// Credit and cancels from the server's inboxes (the streams clients
/// send), as messages to the client. Holds the table weakly: the table
/// holds the inboxes.
struct InboxControl {
    replies: Replies,
    streams: Weak<Streams>,
}

impl Control for InboxControl {
    fn grant(&self, id: u64, items: u32, bytes: u32) {
        let codec = self.replies.codec;
        self.replies
            .notify(|buf| codec.encode_credit(buf, id, u64::from(items), u64::from(bytes)));
    }

    fn cancel(&self, inbox: &Inbox) {
        let id = inbox.id();
        if let Some(streams) = self.streams.upgrade() {
            streams.forget_inbox(id, Some(inbox));
        }
        let codec = self.replies.codec;
        self.replies.notify(|buf| codec.encode_cancel(buf, id));
    }
}
