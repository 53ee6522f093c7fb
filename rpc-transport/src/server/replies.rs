//! Where a connection's replies go: the outbox, each reply encoded by the
//! connection's codec and bounded by the client's frame limit, and the
//! `max_queued_reply_bytes` that spawned calls wait below.

use std::sync::Arc;

use rpc_core::codec::{Codec, Id};
use rpc_core::service::{Fault, Reply};
use rpc_core::{Error, ErrorKind};
use tracing::debug;

use crate::outbox::{Outbox, Pushed};
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
    pub(super) fn queue(&self, id: &Id, reply: Reply) {
        let pushed = self.outbox.push(self.max_frame, |buf| {
            self.codec.encode_response(buf, id, &reply)
        });
        let fault = match pushed {
            Ok(_) => return,
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
}
