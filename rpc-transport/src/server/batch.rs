//! A JSON-RPC batch: its members run as separate requests would, and are
//! answered in one frame, built as they finish, within the frame limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use rpc_core::codec::{Codec, Id, Incoming};
use rpc_core::service::Reply;
use rpc_core::{Error, ErrorKind};

use super::calls::Calls;
use super::connection::ServerConnection;
use super::replies::Replies;

/// What a refused batch member is told of itself when it did not run.
const NOT_RUN: &str = "it did not run";
use crate::outbox::Pushed;
use crate::wire::frame::FrameError;

impl ServerConnection<'_> {
    /// Runs a batch's members, as separate requests would run, and answers
    /// them in one frame, built as they finish ([`BatchReply`]).
    pub(super) fn batch(
        &self,
        items: Vec<Incoming<'_>>,
        frame: &Bytes,
        replies: &Replies,
        calls: &mut Calls,
        read_at: Instant,
    ) {
        let mut reply = BatchReply::new(replies.codec, replies.max_frame);
        // Protocol 1 has no did-not-run mark.
        reply.marks = replies.streams.is_some();
        let mut pending = Vec::new();
        for item in items {
            let (id, call) = match item {
                Incoming::Request(request) if reply.full => {
                    if let Some(id) = &request.id {
                        reply.refuse(id, NOT_RUN);
                    }
                    continue;
                }
                Incoming::Request(request) => {
                    let id = request.id.clone();
                    let call = match self.registry.resolve(&request.method) {
                        Ok(route) if self.registry.method(route).streams() => {
                            Ok(Err(in_a_batch(&request.method).did_not_run().into()))
                        }
                        Ok(route) => self.start(route, request, frame, read_at, replies),
                        Err(e) => Ok(Err(e.did_not_run().into())),
                    };
                    (id, call)
                }
                Incoming::Invalid { id, error } => (Some(id), Ok(Err(error.into()))),
                // A cancel inside a batch has nothing to cancel: batch
                // members are not cancelled one by one.
                Incoming::Cancel(_) => continue,
                _ => {
                    let error = Error::new(ErrorKind::InvalidRequest, "a batch inside a batch");
                    (Some(Id::Null), Ok(Err(error.into())))
                }
            };
            match call {
                // Encoded at once, so that its value is let go of at once.
                Ok(done) => {
                    if let Some(id) = id {
                        reply.add(&id, done);
                    }
                }
                Err(call) => pending.push((id, call)),
            }
        }
        if pending.is_empty() {
            if !reply.is_empty() {
                reply.send(replies);
            }
            return;
        }
        let replies = replies.clone();
        let running = self.metrics.call_started();
        let members = BatchMembers::add(&calls.batch_members, pending.len());
        calls.tasks.spawn(async move {
            // The members run together, as separate requests would.
            let mut finishing: futures::stream::FuturesUnordered<_> = pending
                .into_iter()
                .map(|(id, call)| async move { (id, call.await) })
                .collect();
            while let Some((id, done)) = futures::StreamExt::next(&mut finishing).await {
                if let Some(id) = id {
                    reply.add(&id, done);
                }
            }
            if !reply.is_empty() {
                replies.room_below_cap().await;
                reply.send(&replies);
                replies.outbox.wake();
            }
            drop((running, members));
        });
    }
}

/// The reply to a batch, built as its members finish: each member's reply
/// is encoded as soon as it is known (and its value let go of), and once the
/// next would take the frame past the limit, that member and every one
/// after it is answered with an over-budget error instead; members not yet
/// started are not run.
pub(super) struct BatchReply {
    pub(super) codec: &'static dyn Codec,
    pub(super) limit: usize,
    pub(super) members: Vec<BytesMut>,
    /// The frame's length so far: members, commas and brackets.
    pub(super) bytes: usize,
    /// A member did not fit: later ones are refused.
    pub(super) full: bool,
    /// The peer reads the did-not-run mark (protocol 2).
    pub(super) marks: bool,
}

impl BatchReply {
    pub(super) fn new(codec: &'static dyn Codec, limit: usize) -> BatchReply {
        BatchReply {
            codec,
            limit,
            members: Vec::new(),
            bytes: 2,
            full: false,
            marks: false,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Adds member `id`'s reply, or an error in its place if it would not fit.
    pub(super) fn add(&mut self, id: &Id, mut reply: Reply) {
        if self.full {
            return self.refuse(id, "it ran, but its reply was not sent");
        }
        if let (Err(fault), false) = (&mut reply, self.marks) {
            fault.not_run = false;
        }
        let encoded = encode_alone(self.codec, id, &reply);
        if self.bytes + encoded.len() + 1 > self.limit {
            self.full = true;
            drop(encoded);
            return self.refuse(id, "it ran, but its reply was not sent");
        }
        self.push(encoded);
    }

    /// Answers member `id` with an over-budget error saying `what` of it.
    pub(super) fn refuse(&mut self, id: &Id, what: &str) {
        let mut error = Error::new(
            ErrorKind::OverBudget,
            format!(
                "the batch's reply would exceed the frame limit of {} bytes \
                 (max_frame_bytes, the smaller of the server's and the client's); {what}",
                self.limit
            ),
        );
        if what == NOT_RUN && self.marks {
            error = error.did_not_run();
        }
        self.push(encode_alone(self.codec, id, &Err(error.into())));
    }

    /// Queues the batch's reply in `replies`; the caller wakes the loop if it
    /// is not the loop.
    pub(super) fn send(self, replies: &Replies) {
        let pushed = replies.outbox.push(replies.max_frame, |buf| {
            replies.codec.encode_batch(buf, &self.members);
            Ok::<_, Error>(())
        });
        drop(self);
        if let Err(e) = pushed {
            let why = match e {
                Pushed::Frame(FrameError::TooLarge { len, limit }) => format!(
                    "the batch reply of {len} bytes exceeds the client's frame limit of {limit} bytes"
                ),
                Pushed::Frame(e) => e.to_string(),
                Pushed::Encode(e) => e.to_string(),
                Pushed::Panicked(why) => format!("encoding the batch reply panicked: {why}"),
            };
            let error = Error::new(ErrorKind::FrameTooLarge, why);
            replies.queue(&Id::Null, Err(error.into()));
        }
    }

    pub(super) fn push(&mut self, encoded: BytesMut) {
        self.bytes += encoded.len() + 1;
        self.members.push(encoded);
    }
}

/// One batch member's reply, encoded on its own.
pub(super) fn encode_alone(codec: &dyn Codec, id: &Id, reply: &Reply) -> BytesMut {
    let mut buf = BytesMut::new();
    if let Err(e) = codec.encode_response(&mut buf, id, reply) {
        let _ = codec.encode_response(&mut buf, id, &Err(e.into()));
    }
    buf
}

/// Pending members of one running batch, counted until it ends.
pub(super) struct BatchMembers(Arc<AtomicUsize>, usize);

impl BatchMembers {
    pub(super) fn add(count: &Arc<AtomicUsize>, n: usize) -> BatchMembers {
        count.fetch_add(n, Ordering::Relaxed);
        BatchMembers(count.clone(), n)
    }
}

impl Drop for BatchMembers {
    fn drop(&mut self) {
        self.0.fetch_sub(self.1, Ordering::Relaxed);
    }
}

/// The refusal of a streaming method called inside a batch, whose one
/// answer has no room for a stream.
fn in_a_batch(method: &str) -> Error {
    Error::new(
        ErrorKind::InvalidRequest,
        format!("`{method}` streams, and a stream cannot open inside a batch: call it on its own"),
    )
}
