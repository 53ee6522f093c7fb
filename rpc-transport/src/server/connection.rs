//! A server connection after the hello: one task reads requests, starts
//! calls and writes their replies.
//!
//! Calls run concurrently and reply in completion order. A call is first
//! polled once where it is read; one that finishes at once (most do) replies
//! without a task of its own, the rest are spawned into the connection's
//! `JoinSet`, so they end with the connection.
//!
//! The connection's limits ([`Limits`]) are enforced here, each before the
//! memory or time it bounds is spent:
//!
//! | what the peer makes it hold | bound |
//! |---|---|
//! | calls running | `max_in_flight`: at it the loop stops reading |
//! | encoded replies not yet written | `max_queued_reply_bytes`: at it the loop stops reading, and spawned calls wait to encode theirs |
//! | one reply, one batch's reply | the smaller of the server's and the client's `max_frame_bytes`; a batch's members are encoded as they finish, and those past the limit are answered over budget (the rest not run) |
//! | a partly read frame | room grows with the bytes that arrived; it must be whole within `frame_timeout` |
//! | replies it does not read | `write_timeout`: in each window that long it must take 64 KiB (or all that is left) |
//! | malformed messages | `max_invalid_messages`, then closed |
//! | an idle connection | `idle_timeout` |
//!
//! A frame of 1 MiB or more is handled with `block_in_place`, so a long
//! decode moves this worker's other connections to another thread instead
//! of holding them up. At shutdown it tells the client it is going away,
//! answers requests with a "shutting down" error, gives running calls
//! `shutdown_grace` to finish, and closes once none is running and the
//! client has closed (our clients close on the notice) or the grace ended.
//!
//! An idle connection holds little: reads go into a 2 KiB buffer until one
//! fills it, and buffers a large message grew are released once empty.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Poll, Waker};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures::FutureExt as _;
use rpc_core::codec::{Codec, Id, Incoming, Request};
use rpc_core::registry::Route;
use rpc_core::service::{Fault, Reply};
use rpc_core::{Context, Error, ErrorKind, Registry};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinSet};
use tokio_util::codec::{Decoder, Framed, FramedParts};
use tracing::{Instrument, debug, debug_span};

use crate::config::limits::Limits;
use crate::metrics::{Metrics, Transport};
use crate::net::Io;
use crate::outbox::{Chunks, Outbox, Pushed};
use crate::wire::frame::{FrameCodec, FrameError};
use crate::wire::session::frame_error;

/// What a connection needs to serve calls.
pub(crate) struct ServerConnection<'a> {
    pub(crate) registry: &'a Registry,
    pub(crate) codec: &'static dyn Codec,
    pub(crate) peer: Option<SocketAddr>,
    /// The largest frame the client accepts.
    pub(crate) peer_max_frame: usize,
    pub(crate) limits: &'a Limits,
    pub(crate) metrics: &'a Arc<Metrics>,
    /// Becomes `true` when the server starts shutting down.
    pub(crate) draining: watch::Receiver<bool>,
    /// The same, as a flag (see [`crate::shutdown::drain_signal`]).
    pub(crate) drain_started: &'a AtomicBool,
}

/// Where replies go: the outbox, encoded by the connection's codec.
#[derive(Clone)]
struct Replies {
    outbox: Arc<Outbox>,
    codec: &'static dyn Codec,
    /// The largest reply frame: the smaller of the server's and the client's
    /// frame limits.
    max_frame: usize,
    /// `max_queued_reply_bytes`: spawned calls wait for room before they
    /// encode, and the loop stops reading past it.
    max_queued: usize,
}

/// The calls of one connection that outlived their first poll.
#[derive(Default)]
struct Calls {
    tasks: JoinSet<()>,
    /// Running calls by request id, to cancel them or answer them at shutdown.
    by_id: HashMap<Id, Running>,
    /// The request id of each task, to forget it when it ends.
    ids: HashMap<tokio::task::Id, Id>,
    /// Members of running batches still waiting on their handlers: each
    /// counts against `max_in_flight` like a call of its own.
    batch_members: Arc<AtomicUsize>,
}

struct Running {
    task: AbortHandle,
    route: Route,
    started: Instant,
    /// Set by whoever answers the call first: the call itself, a cancel, or
    /// the end of the shutdown grace period. The others stay silent.
    answered: Arc<AtomicBool>,
}

/// The frames handled in one pass, between two reads: they were read
/// together, and the replies of those that finish at once are written
/// together, so one clock reading at each end times them all.
struct Batch {
    read_at: Instant,
    /// Calls that finished at their first poll: method and outcome, to be
    /// counted once the batch is done.
    done: Vec<(Option<Route>, Result<(), ErrorKind>)>,
}

impl Batch {
    /// Counts the calls finished inline, all with the batch's duration;
    /// returns the time it took as their end, if there were any.
    fn record(&mut self, metrics: &Metrics) -> Option<Instant> {
        if self.done.is_empty() {
            return None;
        }
        let now = Instant::now();
        let elapsed = now - self.read_at;
        for (route, outcome) in self.done.drain(..) {
            record(metrics, route, outcome, elapsed);
        }
        Some(now)
    }
}

/// Why a connection's loop stops.
enum Stop {
    /// The client closed the connection, or it idled out: a normal end.
    Quiet,
    /// The connection failed or broke a limit.
    Failed(Error),
}

impl ServerConnection<'_> {
    /// Serves calls until the client closes the connection (which cancels
    /// its calls still in flight), the connection fails, idles out, or the
    /// server has shut it down.
    ///
    /// One loop reads and writes: it handles every complete frame it has,
    /// writes the replies they produced in one go, then waits for more bytes,
    /// or for a spawned call to queue its reply. Nothing wakes this task for
    /// the replies it queues itself, and the socket is not split.
    pub(crate) async fn run<S: Io>(self, framed: Framed<S, FrameCodec>) -> Result<(), Error> {
        let FramedParts {
            mut io,
            mut codec,
            read_buf: mut input,
            ..
        } = framed.into_parts();
        let limits = self.limits;
        let replies = Replies {
            outbox: Arc::new(Outbox::default()),
            codec: self.codec,
            max_frame: self.peer_max_frame.min(codec.max_frame_bytes()),
            max_queued: limits.max_queued_reply_bytes,
        };
        let mut shutdown = self.draining.clone();
        let mut calls = Calls::default();
        let mut output = Chunks::default();
        let mut invalid = 0;
        let mut closing = None;
        let mut draining = false;
        let mut grace_over = false;
        let grace = tokio::time::sleep(limits.shutdown_grace);
        let idle = tokio::time::sleep(limits.idle_timeout.unwrap_or_default());
        // Armed while a frame is partly read: it must arrive whole in time.
        let trickle = tokio::time::sleep(limits.frame_timeout);
        let mut partial_since: Option<tokio::time::Instant> = None;
        // Made once, and reading a flag after its first poll: a fresh wait
        // each turn would take the watch's lock, which every connection
        // shares, to register and again to unregister.
        let drain = crate::shutdown::drain_signal(self.drain_started, &mut shutdown);
        tokio::pin!(grace, idle, trickle, drain);
        let mut last_active = tokio::time::Instant::now();
        // Room for the next read: small until a read fills it.
        let mut room = IDLE_ROOM;
        let mut batch = Batch {
            read_at: Instant::now(),
            done: Vec::new(),
        };
        loop {
            while closing.is_none() && self.has_room(&calls, &replies) {
                let frame = match codec.decode(&mut input) {
                    Ok(Some(frame)) => {
                        partial_since = None;
                        frame
                    }
                    Ok(None) => {
                        if !input.is_empty() && partial_since.is_none() {
                            partial_since = Some(batch.read_at.into());
                        }
                        break;
                    }
                    Err(e) => {
                        // The calls already answered still count.
                        batch.record(self.metrics);
                        return Err(frame_error(e));
                    }
                };
                let frame = frame.freeze();
                let handled = if frame.len() >= BLOCKING_FRAME {
                    // A large message takes long to decode: let the
                    // worker's other connections move to another thread.
                    blocking(|| self.handle(&frame, &replies, &mut calls, &mut batch, draining))
                } else {
                    self.handle(&frame, &replies, &mut calls, &mut batch, draining)
                };
                match handled {
                    Ok(()) => {}
                    Err(e) => {
                        invalid += 1;
                        if invalid >= limits.max_invalid_messages {
                            closing = Some(Error::new(
                                ErrorKind::Protocol,
                                format!(
                                    "closed after {invalid} invalid messages, the last: {}",
                                    e.message()
                                ),
                            ));
                        }
                    }
                }
            }
            let finished = batch.record(self.metrics);
            replies.outbox.take(&mut output);
            if !output.is_empty() {
                let written = output.len() as u64;
                match write_out(&mut io, &mut output, limits.write_timeout).await {
                    Ok(()) => {
                        self.metrics.add_bytes(Transport::Tcp, 0, written);
                        // Clock reads are not free: the one taken for the
                        // metrics is close enough for the idle timer.
                        last_active = finished.unwrap_or_else(Instant::now).into();
                        continue;
                    }
                    // The client went away while a reply was on its way: a
                    // normal end, and the calls still in flight are cancelled.
                    Err(e) if is_disconnect(&e) => return Ok(()),
                    Err(e) => {
                        let why = format!("writing to the client failed: {e}");
                        return Err(Error::new(ErrorKind::ConnectionLost, why));
                    }
                }
            }
            if let Some(e) = closing.take() {
                return Err(e);
            }
            // An idle connection stays until the client closes it (ours do
            // on the going-away notice) or the grace period ends, so that a
            // call sent after the notice is answered "shutting down", not
            // cut off by a reset.
            if draining && calls.tasks.is_empty() && grace_over {
                debug!("connection drained");
                return Ok(());
            }
            make_room(&mut input, room);
            let spare = input.capacity() - input.len();
            let reading = self.has_room(&calls, &replies);
            let idling = limits.idle_timeout.is_some() && calls.tasks.is_empty() && !draining;
            // In a fixed order, the rare events first: no random number per
            // turn, and a flood of requests cannot hold back finished calls
            // or the shutdown.
            tokio::select! {
                biased;
                Some(ended) = calls.tasks.join_next_with_id(), if !calls.tasks.is_empty() => calls.ended(ended),
                () = &mut drain, if !draining => {
                    draining = true;
                    grace.as_mut().reset(tokio::time::Instant::now() + limits.shutdown_grace);
                    replies.going_away();
                }
                () = &mut grace, if draining && !grace_over => {
                    calls.shut_down(&replies, self.metrics);
                    grace_over = true;
                }
                () = &mut trickle, if reading && partial_since.is_some() => {
                    let until = partial_since.unwrap_or_else(tokio::time::Instant::now) + limits.frame_timeout;
                    if tokio::time::Instant::now() >= until {
                        let why = format!(
                            "closed: a frame was not complete {:?} after its first bytes (frame_timeout_ms); \
                             {} bytes of it had arrived",
                            limits.frame_timeout,
                            input.len()
                        );
                        return Err(Error::new(ErrorKind::ConnectionLost, why));
                    }
                    trickle.as_mut().reset(until);
                }
                read = io.read_buf(&mut input), if reading => {
                    // Requests read now start their deadlines and durations
                    // here, even those left in the buffer for a later turn
                    // (at `max_in_flight`).
                    batch.read_at = Instant::now();
                    last_active = batch.read_at.into();
                    match self.after_read(read, &input, spare, &mut room, calls.tasks.len()) {
                        None => {}
                        Some(Stop::Quiet) => return Ok(()),
                        Some(Stop::Failed(e)) => return Err(e),
                    }
                },
                // Only spawned calls queue replies from elsewhere (and wake).
                () = replies.outbox.ready(), if !calls.tasks.is_empty() => {}
                () = &mut idle, if idling => {
                    let until = last_active + limits.idle_timeout.unwrap_or_default();
                    if tokio::time::Instant::now() >= until {
                        debug!("closing an idle connection");
                        return Ok(());
                    }
                    idle.as_mut().reset(until);
                }
            }
        }
    }

    /// Whether another request may be handled: fewer than `max_in_flight`
    /// calls running and fewer than `max_queued_reply_bytes` queued.
    fn has_room(&self, calls: &Calls, replies: &Replies) -> bool {
        calls.running() < self.limits.max_in_flight && replies.outbox.queued() < replies.max_queued
    }

    /// Accounts for a read; says why to stop, if the read ended the connection.
    fn after_read(
        &self,
        read: std::io::Result<usize>,
        input: &BytesMut,
        spare: usize,
        room: &mut usize,
        running: usize,
    ) -> Option<Stop> {
        let n = match read {
            Ok(n) => n,
            Err(e) if is_disconnect(&e) => return Some(Stop::Quiet),
            Err(e) => {
                let why = format!("reading from the client failed: {e}");
                return Some(Stop::Failed(Error::new(ErrorKind::ConnectionLost, why)));
            }
        };
        self.metrics.add_bytes(Transport::Tcp, n as u64, 0);
        if n == spare && *room < READ_CHUNK {
            *room = READ_CHUNK;
        }
        match n {
            0 if input.is_empty() => {
                debug!(cancelled = running, "client closed the connection");
                Some(Stop::Quiet)
            }
            0 => {
                let why = format!(
                    "the client closed the connection {} bytes into a frame",
                    input.len()
                );
                Some(Stop::Failed(Error::new(ErrorKind::ConnectionLost, why)))
            }
            _ => None,
        }
    }

    /// Handles one frame; `Err` if it was not a valid message (it has been
    /// answered).
    fn handle(
        &self,
        frame: &Bytes,
        replies: &Replies,
        calls: &mut Calls,
        batch: &mut Batch,
        draining: bool,
    ) -> Result<(), Error> {
        match self
            .codec
            .decode_request_within(frame, self.limits.max_batch)
        {
            Incoming::Request(request) if draining => {
                if let Some(id) = request.id {
                    replies.queue(&id, Err(shutting_down().into()));
                }
                Ok(())
            }
            Incoming::Batch(_) if draining => {
                replies.queue(&Id::Null, Err(shutting_down().into()));
                Ok(())
            }
            Incoming::Request(request) => {
                self.request(request, frame, replies, calls, batch);
                Ok(())
            }
            Incoming::Batch(items) if items.len() > self.limits.max_batch => {
                let error = Error::new(
                    ErrorKind::InvalidRequest,
                    format!(
                        "a batch of {} calls exceeds the limit of {} (max_batch)",
                        items.len(),
                        self.limits.max_batch
                    ),
                );
                replies.queue(&Id::Null, Err(Fault::from(error)));
                Ok(())
            }
            Incoming::Batch(items) => {
                self.batch(items, frame, replies, calls, batch.read_at);
                Ok(())
            }
            Incoming::Cancel(id) => {
                calls.cancel(&id, self.metrics);
                Ok(())
            }
            Incoming::Invalid { id, error } => {
                let reply = Error::new(error.kind(), error.message());
                replies.queue(&id, Err(reply.into()));
                Err(error)
            }
            _ => {
                let error = Error::new(ErrorKind::InvalidRequest, "unsupported message");
                replies.queue(
                    &Id::Null,
                    Err(Error::new(error.kind(), error.message()).into()),
                );
                Err(error)
            }
        }
    }

    fn request(
        &self,
        request: Request<'_>,
        frame: &Bytes,
        replies: &Replies,
        calls: &mut Calls,
        batch: &mut Batch,
    ) {
        let id = request.id.clone();
        let started = batch.read_at;
        let route = match self.registry.resolve(&request.method) {
            Ok(route) => route,
            Err(e) => {
                batch.done.push((None, Err(e.kind())));
                if let Some(id) = id {
                    replies.queue(&id, Err(e.into()));
                }
                return;
            }
        };
        if let Some(id) = &id {
            // Checked before the handler runs, so a refused call has no effect.
            if !calls.by_id.is_empty() && calls.by_id.contains_key(id) {
                let error = Error::new(
                    ErrorKind::InvalidRequest,
                    format!("request id {id:?} is already used by a call in flight"),
                );
                batch.done.push((Some(route), Err(error.kind())));
                replies.queue(id, Err(error.into()));
                return;
            }
        }
        let span =
            debug_span!("call", method = %request.method, id = ?id, codec = self.codec.name());
        let call = span.in_scope(|| self.start(route, request, frame, started));
        match call {
            Ok(reply) => {
                batch.done.push((Some(route), outcome(&reply)));
                if let Some(id) = id {
                    replies.queue(&id, reply);
                }
            }
            Err(pending) => {
                let replies = replies.clone();
                let metrics = self.metrics.clone();
                let running = metrics.call_started();
                let reply_to = id.clone();
                let answered = Arc::new(AtomicBool::new(false));
                let first = answered.clone();
                let task = calls.tasks.spawn(
                    async move {
                        let reply = pending.await;
                        if !first.swap(true, Ordering::AcqRel) {
                            record(&metrics, Some(route), outcome(&reply), started.elapsed());
                            if let Some(id) = reply_to {
                                replies.room_below_cap().await;
                                replies.send(&id, reply);
                            }
                        }
                        drop(running);
                    }
                    .instrument(span),
                );
                if let Some(id) = id {
                    calls.ids.insert(task.id(), id.clone());
                    calls.by_id.insert(
                        id,
                        Running {
                            task,
                            route,
                            started,
                            answered,
                        },
                    );
                }
            }
        }
    }

    /// Starts a call read at `read_at`, polling it once: `Ok` if it is done
    /// already, else the rest of it, bounded by the caller's deadline.
    fn start(
        &self,
        route: Route,
        request: Request<'_>,
        frame: &Bytes,
        read_at: Instant,
    ) -> Result<Reply, Pending> {
        let dispatch = || {
            self.registry
                .call_encoded(route, self.codec, request.params)
        };
        let call = match rpc_core::blob::decoding_from(frame, dispatch) {
            Ok(call) => call,
            Err(e) => return Ok(Err(e.into())),
        };
        let deadline = request.deadline.map(|d| read_at + d);
        let context = Context::new().with_peer(self.peer).with_deadline(deadline);
        let mut call = context.scope(call);
        // A waker that does nothing is enough for this first poll: a call
        // that is not done is polled again at once by its own task, which
        // registers the real waker.
        let mut cx = std::task::Context::from_waker(Waker::noop());
        match Pin::new(&mut call).poll(&mut cx) {
            Poll::Ready(reply) => Ok(reply),
            Poll::Pending => Err(Box::pin(bounded(call, deadline))),
        }
    }

    /// Runs a batch's members, as separate requests would run, and answers
    /// them in one frame, built as they finish ([`BatchReply`]).
    fn batch(
        &self,
        items: Vec<Incoming<'_>>,
        frame: &Bytes,
        replies: &Replies,
        calls: &mut Calls,
        read_at: Instant,
    ) {
        let mut reply = BatchReply::new(replies.codec, replies.max_frame);
        let mut pending = Vec::new();
        for item in items {
            let (id, call) = match item {
                Incoming::Request(request) if reply.full => {
                    if let Some(id) = &request.id {
                        reply.refuse(id, "it did not run");
                    }
                    continue;
                }
                Incoming::Request(request) => {
                    let id = request.id.clone();
                    let call = match self.registry.resolve(&request.method) {
                        Ok(route) => self.start(route, request, frame, read_at),
                        Err(e) => Ok(Err(e.into())),
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
                        reply.add(&id, &done);
                    }
                }
                Err(call) => pending.push((id, call)),
            }
        }
        if pending.is_empty() {
            if !reply.is_empty() {
                replies.push_batch(reply);
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
                    reply.add(&id, &done);
                }
            }
            if !reply.is_empty() {
                replies.room_below_cap().await;
                replies.push_batch(reply);
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
struct BatchReply {
    codec: &'static dyn Codec,
    limit: usize,
    members: Vec<BytesMut>,
    /// The frame's length so far: members, commas and brackets.
    bytes: usize,
    /// A member did not fit: later ones are refused.
    full: bool,
}

impl BatchReply {
    fn new(codec: &'static dyn Codec, limit: usize) -> BatchReply {
        BatchReply {
            codec,
            limit,
            members: Vec::new(),
            bytes: 2,
            full: false,
        }
    }

    fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Adds member `id`'s reply, or an error in its place if it would not fit.
    fn add(&mut self, id: &Id, reply: &Reply) {
        if self.full {
            return self.refuse(id, "it ran, but its reply was not sent");
        }
        let encoded = encode_alone(self.codec, id, reply);
        if self.bytes + encoded.len() + 1 > self.limit {
            self.full = true;
            drop(encoded);
            return self.refuse(id, "it ran, but its reply was not sent");
        }
        self.push(encoded);
    }

    /// Answers member `id` with an over-budget error saying `what` of it.
    fn refuse(&mut self, id: &Id, what: &str) {
        let error = Error::new(
            ErrorKind::OverBudget,
            format!(
                "the batch's reply would exceed the frame limit of {} bytes \
                 (max_frame_bytes, the smaller of the server's and the client's); {what}",
                self.limit
            ),
        );
        self.push(encode_alone(self.codec, id, &Err(error.into())));
    }

    fn push(&mut self, encoded: BytesMut) {
        self.bytes += encoded.len() + 1;
        self.members.push(encoded);
    }
}

/// One batch member's reply, encoded on its own.
fn encode_alone(codec: &dyn Codec, id: &Id, reply: &Reply) -> BytesMut {
    let mut buf = BytesMut::new();
    if let Err(e) = codec.encode_response(&mut buf, id, reply) {
        let _ = codec.encode_response(&mut buf, id, &Err(e.into()));
    }
    buf
}

/// Pending members of one running batch, counted until it ends.
struct BatchMembers(Arc<AtomicUsize>, usize);

impl BatchMembers {
    fn add(count: &Arc<AtomicUsize>, n: usize) -> BatchMembers {
        count.fetch_add(n, Ordering::Relaxed);
        BatchMembers(count.clone(), n)
    }
}

impl Drop for BatchMembers {
    fn drop(&mut self) {
        self.0.fetch_sub(self.1, Ordering::Relaxed);
    }
}

impl Calls {
    /// Calls whose handlers have not stopped: tasks, and the members of
    /// batches still waiting on theirs.
    fn running(&self) -> usize {
        self.tasks.len() + self.batch_members.load(Ordering::Relaxed)
    }

    /// Forgets a spawned call that ended (or was cancelled).
    fn ended(&mut self, ended: Result<(tokio::task::Id, ()), tokio::task::JoinError>) {
        let task = match ended {
            Ok((task, ())) => task,
            Err(e) => e.id(),
        };
        if let Some(id) = self.ids.remove(&task) {
            self.by_id.remove(&id);
        }
    }

    /// Stops call `id`, which gets no answer; its slot is free once its
    /// handler has really stopped.
    fn cancel(&mut self, id: &Id, metrics: &Metrics) {
        if let Some(running) = self.by_id.remove(id) {
            self.ids.remove(&running.task.id());
            running.task.abort();
            if !running.answered.swap(true, Ordering::AcqRel) {
                let outcome = Err(ErrorKind::Cancelled);
                let elapsed = running.started.elapsed();
                metrics.record_call(Transport::Tcp, Some(running.route), outcome, elapsed);
            }
        }
    }

    /// The grace period is over: stops every call and answers each that
    /// has an id with a "shutting down" error.
    fn shut_down(&mut self, replies: &Replies, metrics: &Metrics) {
        self.ids.clear();
        for (id, running) in self.by_id.drain() {
            running.task.abort();
            if !running.answered.swap(true, Ordering::AcqRel) {
                let outcome = Err(ErrorKind::ShuttingDown);
                let elapsed = running.started.elapsed();
                metrics.record_call(Transport::Tcp, Some(running.route), outcome, elapsed);
                replies.queue(&id, Err(shutting_down().into()));
            }
        }
        // Batches, and calls without an id, end unanswered.
        self.tasks.abort_all();
    }
}

fn shutting_down() -> Error {
    Error::new(
        ErrorKind::ShuttingDown,
        "the server is shutting down and did not run or finish this call",
    )
}

/// A reply as the metrics count it.
fn outcome(reply: &Reply) -> Result<(), ErrorKind> {
    reply.as_ref().map(drop).map_err(|fault| fault.kind)
}

/// Counts a finished call and logs it at debug level.
fn record(
    metrics: &Metrics,
    route: Option<Route>,
    outcome: Result<(), ErrorKind>,
    elapsed: std::time::Duration,
) {
    metrics.record_call(Transport::Tcp, route, outcome, elapsed);
    debug!(
        outcome = outcome.err().map_or("ok", ErrorKind::label),
        elapsed_us = elapsed.as_micros() as u64,
        "call finished"
    );
}

/// Whether a write failed because the peer closed the connection.
fn is_disconnect(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    matches!(e.kind(), BrokenPipe | ConnectionReset | ConnectionAborted)
}

/// Writes `output` and empties it, letting go of a buffer a large reply grew.
/// Fails with `TimedOut` if the peer takes less than [`MIN_PROGRESS`] bytes
/// (or all that is left) within a window of `window`: a peer that reads a
/// byte now and then cannot hold its replies for ever.
async fn write_out<W: tokio::io::AsyncWrite + Unpin>(
    io: &mut W,
    output: &mut Chunks,
    window: std::time::Duration,
) -> std::io::Result<()> {
    // The window's end and the bytes still owed in it; set only when the
    // socket does not take the bytes at once, so the fast path reads no clock.
    let mut owed: Option<(tokio::time::Instant, usize)> = None;
    while !output.is_empty() {
        let left = output.len();
        let mut write = std::future::poll_fn(|cx| output.poll_write_to(io, cx));
        let wrote = match (&mut write).now_or_never() {
            Some(wrote) => Ok(wrote),
            None => {
                let (until, _) = *owed.get_or_insert_with(|| {
                    (tokio::time::Instant::now() + window, MIN_PROGRESS.min(left))
                });
                tokio::time::timeout_at(until, write).await
            }
        };
        match wrote {
            Ok(Ok(0)) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(Ok(n)) => {
                if let Some((_, due)) = &mut owed {
                    *due = due.saturating_sub(n);
                    if *due == 0 {
                        owed = None;
                    }
                }
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                let why = format!(
                    "the client took less than {MIN_PROGRESS} bytes of its replies in {window:?} \
                     (write_timeout_ms)"
                );
                return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, why));
            }
        }
    }
    // A buffering stream (TLS, `BufWriter`) holds bytes until flushed.
    io.flush().await?;
    output.clear(READ_CHUNK);
    Ok(())
}

/// Leaves at least half of `room` free in `input` for the next read, and
/// lets go of a buffer a large request grew once it is empty.
fn make_room(input: &mut BytesMut, room: usize) {
    if input.is_empty() && input.capacity() > 2 * room {
        *input = BytesMut::new();
    }
    if input.capacity() - input.len() < room / 2 {
        input.reserve(room);
    }
}

/// What a peer must read of its replies in each `write_timeout` window.
const MIN_PROGRESS: usize = 64 * 1024;

/// Frames this large are handled where a long decode cannot hold up other
/// connections ([`blocking`]).
const BLOCKING_FRAME: usize = 1024 * 1024;

/// Runs `f`, which may take a while, telling a multi-threaded runtime to
/// hand this worker's other tasks to another thread meanwhile.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// How much more room a read asks for once a read has filled the buffer.
const READ_CHUNK: usize = 16 * 1024;

/// The read room of a connection that has never filled it.
const IDLE_ROOM: usize = 2 * 1024;

/// The part of a call still running after its first poll.
type Pending = Pin<Box<dyn Future<Output = Reply> + Send>>;

/// Runs `call` until it replies or `deadline` passes.
async fn bounded(call: impl Future<Output = Reply>, deadline: Option<Instant>) -> Reply {
    let Some(deadline) = deadline else {
        return call.await;
    };
    match tokio::time::timeout_at(deadline.into(), call).await {
        Ok(reply) => reply,
        Err(_) => Err(Error::new(
            ErrorKind::Timeout,
            "the call did not finish before its deadline",
        )
        .into()),
    }
}

impl Replies {
    /// Queues the going-away notice.
    fn going_away(&self) {
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
    fn send(&self, id: &Id, reply: Reply) {
        self.queue(id, reply);
        self.outbox.wake();
    }

    /// Queues the reply to request `id`, for the loop to write once it has
    /// handled what it read; a reply too large for the client, or one the
    /// codec cannot encode, is replaced by an error saying so.
    fn queue(&self, id: &Id, reply: Reply) {
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
    async fn room_below_cap(&self) {
        self.outbox.room_below(self.max_queued).await
    }

    /// Queues a batch's reply; the caller wakes the loop if it is not the loop.
    fn push_batch(&self, reply: BatchReply) {
        let pushed = self.outbox.push(self.max_frame, |buf| {
            self.codec.encode_batch(buf, &reply.members);
            Ok::<_, Error>(())
        });
        drop(reply);
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
            self.queue(&Id::Null, Err(error.into()));
        }
    }
}
