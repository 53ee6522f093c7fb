//! Handing the replies of one read to their callers: each frame decoded
//! outside the waiters' lock, then one lock for the whole read, and the
//! uploads those answers end stopped; with the thread's scratch space the
//! read's frames and replies are gathered in.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use rpc_core::client::{Response, WireFault};
use rpc_core::codec::Inbound;
use rpc_core::{Error, ErrorKind};
use tracing::debug;

use super::shared::{Shared, Waiter};

/// Where the reader gathers the replies of one read before handing them
/// over (see [`Shared::deliver`]): one per thread, not one per
/// connection. With thousands of connections taking turns, a connection's
/// own vectors have left the cache by the time its next reply comes, and
/// each reply written into them would cost a few cache misses; the
/// thread's set stays warm. It holds nothing between two reads.
#[derive(Default)]
pub(super) struct Scratch {
    /// The frames of one read.
    pub(super) frames: Vec<bytes::Bytes>,
    /// Their replies, decoded, by request id.
    pub(super) decoded: Vec<(u64, Response)>,
    /// The replies whose caller still waits, with its waiter.
    pub(super) answered: Vec<(Waiter, Response)>,
    /// The calls those replies end (not those opening a stream), with the
    /// server's refusal if it refused: an upload they sent is stopped.
    pub(super) ended: Vec<(u64, Option<WireFault>)>,
}

impl Scratch {
    /// Runs `f` with this thread's scratch space (a fresh one if it is in
    /// use, which nothing does today), and leaves it empty however `f` ended.
    pub(super) fn with<T>(f: impl FnOnce(&mut Scratch) -> T) -> T {
        thread_local! {
            static SCRATCH: std::cell::RefCell<Scratch> = const {
                std::cell::RefCell::new(Scratch {
                    frames: Vec::new(),
                    decoded: Vec::new(),
                    answered: Vec::new(),
                    ended: Vec::new(),
                })
            };
        }
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => {
                let out = f(&mut scratch);
                scratch.clear();
                out
            }
            Err(_) => f(&mut Scratch::default()),
        })
    }

    fn clear(&mut self) {
        self.frames.clear();
        self.decoded.clear();
        self.answered.clear();
        self.ended.clear();
    }
}

impl Shared {
    /// Hands the reply frames read together to their waiters: decoded
    /// outside the lock, then one lock for the whole read rather than one
    /// per reply (callers registering new calls contend for it).
    ///
    /// `scratch` holds the frames; its vectors are left empty.
    pub(super) fn deliver(self: &Arc<Self>, scratch: &mut Scratch) -> Result<(), Error> {
        let Scratch {
            frames,
            decoded,
            answered,
            ended,
        } = scratch;
        let mut failed = None;
        let mut going_away = None;
        let drained;
        for frame in frames.drain(..) {
            match self.codec.decode_response(&frame) {
                Ok(Inbound::Response {
                    id,
                    outcome,
                    stream,
                }) => {
                    // An answer ends the call's upload, if it has one: its
                    // pump is stopped now, before a later message of this
                    // read (a cancel) gives another reason, and looked for
                    // again once the waiter is gone (below).
                    if !stream {
                        let refused = outcome.as_ref().err().cloned();
                        // Most connections never send a stream: they need
                        // not look for one to stop (in a table of its own, a
                        // cache miss when thousands of connections take turns).
                        if self.uploaded.load(Ordering::SeqCst) {
                            self.call_ended(id, refused.clone().map(WireFault::into_error));
                        }
                        ended.push((id, refused));
                    }
                    let response = Response::new(self.codec, frame, outcome);
                    let response = match stream {
                        // Opened before any of its items is read.
                        true => match self.open_inbox(id) {
                            Ok(inbox) => response.with_stream(inbox),
                            Err(e) => {
                                failed = Some(e);
                                break;
                            }
                        },
                        false => response,
                    };
                    decoded.push((id, response));
                }
                Ok(Inbound::GoingAway { reason }) => going_away = Some(reason),
                Ok(Inbound::Cancel { id }) => self.stop_upload(id),
                Ok(Inbound::Flow(flow)) => self.flow(flow, &frame),
                // A server sends only the kinds of the protocol both agreed
                // on: another is a broken server, as garbage is.
                Ok(Inbound::Unknown { kind }) => {
                    failed = Some(Error::new(
                        ErrorKind::Protocol,
                        format!(
                            "the server sent a message of unknown kind {}",
                            crate::quiet::peer_text(&kind)
                        ),
                    ));
                }
                Ok(other) => {
                    failed = Some(Error::new(
                        ErrorKind::Protocol,
                        format!("unexpected message from the server: {other:?}"),
                    ));
                }
                Err(e) => failed = Some(e),
            }
            if failed.is_some() {
                break;
            }
        }
        {
            let mut waiters = self.waiters.lock().expect("waiters lock");
            for (id, response) in decoded.drain(..) {
                match waiters.by_id.remove(&id) {
                    Some((waiter, _)) => answered.push((waiter, response)),
                    // A call that timed out or was dropped: its reply has no taker.
                    None => debug!(id, "a reply for a call no longer waiting"),
                }
            }
            waiters.recount();
            if let Some(reason) = going_away {
                // Calls in flight still get their answers; new ones fail.
                let why = format!("the server is going away ({reason}); no new calls are sent");
                waiters.closed.get_or_insert((ErrorKind::ShuttingDown, why));
                self.went_away.store(true, Ordering::Relaxed);
                self.open.store(false, Ordering::Release);
                self.stopping.send_replace(true);
            }
            // Gone away and nothing left to wait for: close this side, so
            // the server need not keep the connection for its grace period.
            // Streams still open go on until the server ends them (its grace).
            drained = waiters.by_id.is_empty()
                && matches!(waiters.closed, Some((ErrorKind::ShuttingDown, _)))
                && self.streams.as_ref().is_none_or(|s| s.open() == 0);
        }
        // An upload whose pump was registered after the look above but
        // before its waiter was removed saw the waiter and did not stop
        // itself ([`Shared::upload`]): read after the removal, the flag and
        // the pump are seen here. Stopping one already stopped does nothing.
        if self.uploaded.load(Ordering::SeqCst) {
            for (id, refused) in ended.drain(..) {
                self.call_ended(id, refused.map(WireFault::into_error));
            }
        }
        ended.clear();
        // Counted before any caller can take its reply (and count it down).
        self.woken.fetch_add(answered.len(), Ordering::SeqCst);
        for (waiter, response) in answered.drain(..) {
            if waiter.send(Ok(response)).is_err() {
                // The call was dropped in the meantime: no one takes it.
                self.resumed();
            }
        }
        if drained && failed.is_none() {
            let why = "the server went away and every call has been answered";
            failed = Some(Error::new(ErrorKind::ConnectionLost, why));
        }
        failed.map_or(Ok(()), Err)
    }
}
