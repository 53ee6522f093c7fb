//! The client side of streams (protocol 2): the stream a call's arguments
//! carry, pumped to the server; the stream its result opens, received
//! into an inbox; and the stream messages the reader routes between them.

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use rpc_core::client::WireFault;
use rpc_core::codec::{Codec, Flow};
use rpc_core::stream::{Control, Inbox};
use rpc_core::{Error, ErrorKind};

use super::shared::Shared;
use crate::stream::{Out, Sent, sent};

/// The window the client receives streams with.
pub(super) const WINDOW: rpc_core::stream::Window = rpc_core::stream::Window::DEFAULT;

/// Streams a client may have open on one connection; each is one of its
/// own calls, so this only bounds what a server can make it hold.
pub(super) const MAX_STREAMS: usize = 1024;

/// How many bytes of stream items a client queues before its pumps wait
/// for the socket.
const MAX_QUEUED: usize = 4 * 1024 * 1024;

/// A connection's side of its streams, seen from an inbox or a pump;
/// weak, since the connection's table holds both.
pub(super) struct Link(pub(super) Weak<Shared>);

impl Link {
    fn notify(&self, encode: impl FnOnce(&dyn Codec, &mut bytes::BytesMut)) {
        let Some(shared) = self.0.upgrade() else {
            return;
        };
        let pushed = shared.outbox.push(shared.server_max_frame, |buf| {
            encode(shared.codec, buf);
            Ok::<_, Error>(())
        });
        if let Ok(Some(())) = pushed {
            shared.send_queued();
        }
    }
}

impl Control for Link {
    fn grant(&self, id: u64, items: u32, bytes: u32) {
        self.notify(|codec, buf| codec.encode_credit(buf, id, u64::from(items), u64::from(bytes)));
    }

    fn cancel(&self, inbox: &Inbox) {
        let id = inbox.id();
        if let Some(streams) = self.0.upgrade().and_then(|s| s.streams.clone()) {
            streams.forget_inbox(id, Some(inbox));
        }
        self.notify(|codec, buf| codec.encode_cancel(buf, id));
    }
}

impl Out for Link {
    fn codec(&self) -> &'static dyn Codec {
        match self.0.upgrade() {
            Some(shared) => shared.codec,
            None => &rpc_core::codec::Bincode,
        }
    }

    fn max_frame(&self) -> usize {
        self.0.upgrade().map_or(0, |s| s.server_max_frame)
    }

    fn send(&self, payload: &[u8]) -> Sent {
        let Some(shared) = self.0.upgrade() else {
            return Sent::Closed;
        };
        let pushed = shared.outbox.push(shared.server_max_frame, |buf| {
            buf.extend_from_slice(payload);
            Ok::<_, Error>(())
        });
        let sent = sent(pushed);
        if sent == Sent::Queued {
            shared.send_queued();
        }
        sent
    }

    fn room(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some(shared) = self.0.upgrade() {
                shared.outbox.room_below(MAX_QUEUED).await;
            }
        })
    }
}

impl Shared {
    /// Opens the inbox of the stream call `id`'s result opened.
    pub(super) fn open_inbox(self: &Arc<Self>, id: u64) -> Result<Arc<Inbox>, Error> {
        let Some(streams) = &self.streams else {
            return Err(Error::new(
                ErrorKind::Protocol,
                "the server opened a stream on a protocol-1 connection",
            ));
        };
        streams.receive(id, self.codec, Arc::new(Link(Arc::downgrade(self))))
    }

    /// Sends `source` as the stream of call `id`, whose answer then has no
    /// deadline: the timeout bounds opening a stream, not its life.
    pub(super) fn upload(self: &Arc<Self>, id: u64, source: Box<dyn rpc_core::stream::Source>) {
        let far = tokio::time::Instant::now() + Duration::from_secs(365 * 24 * 3600);
        if let Some((_, deadline)) = self
            .waiters
            .lock()
            .expect("waiters lock")
            .by_id
            .get_mut(&id)
        {
            *deadline = far;
        }
        self.uploaded
            .store(true, std::sync::atomic::Ordering::SeqCst);
        if let Err(e) = self.open_upload(id, source) {
            let waiter = {
                let mut waiters = self.waiters.lock().expect("waiters lock");
                let waiter = waiters.by_id.remove(&id);
                waiters.recount();
                waiter
            };
            if let Some((waiter, _)) = waiter {
                let _ = waiter.send(Err(e));
            }
            self.cancel(id);
            return;
        }
        // Another caller may have written the request already, and its
        // answer come before the pump was registered to be stopped by it.
        let waiting = self
            .waiters
            .lock()
            .expect("waiters lock")
            .by_id
            .contains_key(&id);
        if !waiting {
            self.call_ended(id, None);
        }
    }

    /// Sends the stream call `id`'s arguments carry.
    pub(super) fn open_upload(
        self: &Arc<Self>,
        id: u64,
        source: Box<dyn rpc_core::stream::Source>,
    ) -> Result<(), Error> {
        let Some(streams) = &self.streams else {
            let why = "this server speaks protocol 1, which has no streams";
            source.close(Error::new(ErrorKind::Protocol, why));
            return Err(Error::new(ErrorKind::Protocol, why));
        };
        streams.send(id, source, Arc::new(Link(Arc::downgrade(self))))
    }

    /// Call `id` was answered for good (`refused` if with an error): the
    /// stream its arguments carry, if still being sent, stops (the server
    /// reads no more of it), told the call's error or that it was answered.
    pub(super) fn call_ended(&self, id: u64, refused: Option<Error>) {
        if let Some(streams) = &self.streams {
            let why = refused.unwrap_or_else(|| {
                Error::new(
                    ErrorKind::Cancelled,
                    "the server answered the call before it read the whole stream",
                )
            });
            streams.stop_sending(id, &why);
        }
    }

    /// Routes a stream message from the server.
    pub(super) fn flow(&self, flow: Flow, frame: &Bytes) {
        let Some(streams) = &self.streams else { return };
        match flow {
            Flow::Items { id, count, items }
                if streams.items(id, frame, items.clone(), count).is_err() =>
            {
                self.notify_server(|codec, buf| codec.encode_cancel(buf, id));
            }
            Flow::End { id, outcome } => {
                streams.end(id, outcome.map_err(WireFault::into_error));
            }
            Flow::Credit { id, items, bytes } => streams.credit(id, items, bytes),
            Flow::Ping { nonce, pong: false } => {
                self.notify_server(|codec, buf| codec.encode_ping(buf, nonce, true));
            }
            Flow::Ping { nonce, pong: true } => {
                // Only the nonces this side sent count: a pong from the
                // future proves nothing about the pings to come.
                let sent = self.pings.load(std::sync::atomic::Ordering::Relaxed);
                self.pong.send_if_modified(|n| {
                    let newer = nonce > *n && nonce <= sent;
                    if newer {
                        *n = nonce;
                    }
                    newer
                });
            }
            _ => {}
        }
    }

    /// The server no longer reads the stream call `id` sends.
    pub(super) fn stop_upload(&self, id: u64) {
        if let Some(streams) = &self.streams {
            let why = Error::new(
                ErrorKind::Cancelled,
                "the server stopped reading the stream",
            );
            streams.stop_sending(id, &why);
        }
    }

    /// Sends ping `nonce`; the pong is read as a stream message.
    pub(super) fn ping(&self, nonce: u64) {
        self.notify_server(|codec, buf| codec.encode_ping(buf, nonce, false));
    }

    fn notify_server(&self, encode: impl FnOnce(&dyn Codec, &mut bytes::BytesMut)) {
        let pushed = self.outbox.push(self.server_max_frame, |buf| {
            encode(self.codec, buf);
            Ok::<_, Error>(())
        });
        if let Ok(Some(())) = pushed {
            self.send_queued();
        }
    }
}
