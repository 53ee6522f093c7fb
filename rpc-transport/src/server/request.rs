//! One frame a server connection read: a request, a cancel or a batch,
//! answered at once when it is not valid; a call is polled once where it
//! is read and spawned only if it is not done.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use rpc_core::codec::{Id, Incoming, Request};
use rpc_core::registry::Route;
use rpc_core::service::{CallFuture, Fault, Reply};
use rpc_core::{Context, Error, ErrorKind};
use tracing::{Instrument, debug_span};

use super::calls::{Calls, Running, not_started, outcome, record};
use super::connection::{Batch, ServerConnection};
use super::replies::Replies;

impl ServerConnection<'_> {
    /// Handles one frame; `Err` if it was not a valid message (it has been
    /// answered).
    pub(super) fn handle(
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
                    replies.queue(&id, Err(not_started().into()));
                }
                Ok(())
            }
            Incoming::Batch(_) if draining => {
                replies.queue(&Id::Null, Err(not_started().into()));
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
                self.cancel_stream(&id, replies);
                Ok(())
            }
            Incoming::Flow(flow) => self.flow(flow, frame, replies),
            Incoming::Unknown { kind, id } => {
                // A kind from a later protocol: told, and not held against it.
                let error = Error::new(
                    ErrorKind::InvalidRequest,
                    format!("unexpected message kind {kind} from the client"),
                );
                replies.queue(&id, Err(error.into()));
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

    pub(super) fn request(
        &self,
        request: Request<'_>,
        frame: &Bytes,
        replies: &Replies,
        calls: &mut Calls,
        batch: &mut Batch,
    ) {
        let id = request.id.clone();
        let started = batch.read_at;
        let route = match self
            .registry
            .resolve(&request.method)
            .and_then(|route| self.can_stream(route, id.as_ref(), replies).map(|()| route))
        {
            Ok(route) => route,
            Err(e) => {
                batch.done.push((None, Err(e.kind())));
                if let Some(id) = id {
                    replies.queue(&id, Err(e.did_not_run().into()));
                }
                return;
            }
        };
        if let Some(id) = &id {
            let streaming = match (id, &replies.streams) {
                (Id::Num(n), Some(streams)) => streams.contains(*n),
                _ => false,
            };
            // Checked before the handler runs, so a refused call has no effect.
            if streaming || (!calls.by_id.is_empty() && calls.by_id.contains_key(id)) {
                let error = Error::new(
                    ErrorKind::InvalidRequest,
                    format!("request id {id:?} is already used by a call in flight"),
                );
                batch.done.push((Some(route), Err(error.kind())));
                // Not marked: the id names the call that runs, not this one.
                replies.queue(id, Err(error.into()));
                return;
            }
        }
        let span = debug_span!(
            "call",
            method = %request.method,
            id = ?id,
            codec = self.codec.name(),
            trace_id = tracing::field::Empty,
            parent_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
        );
        let call = span.in_scope(|| self.start(route, request, frame, started, replies));
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

    /// Whether this connection can carry the streams of `route`'s method:
    /// protocol 2, a numeric id, and room for one more stream.
    fn can_stream(&self, route: Route, id: Option<&Id>, replies: &Replies) -> Result<(), Error> {
        let method = self.registry.method(route);
        if !method.streams() {
            return Ok(());
        }
        let name = format!("{}.{}", self.registry.service(route).name, method.name);
        let Some(streams) = &replies.streams else {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                format!(
                    "`{name}` streams, which needs protocol 2; this client speaks protocol {}",
                    self.protocol
                ),
            ));
        };
        if !matches!(id, Some(Id::Num(_))) {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                format!("`{name}` streams: call it with a numeric id, which names its stream"),
            ));
        }
        streams.check_room()
    }

    /// Starts a call read at `read_at`, polling it once: `Ok` if it is done
    /// already, else the rest of it, bounded by the caller's deadline.
    pub(super) fn start(
        &self,
        route: Route,
        request: Request<'_>,
        frame: &Bytes,
        read_at: Instant,
        replies: &Replies,
    ) -> Result<Reply, Pending> {
        if request.metadata.is_some() && self.protocol < crate::wire::hello::STREAMS {
            let error = Error::new(
                ErrorKind::InvalidRequest,
                format!(
                    "call metadata needs protocol 2; this client speaks protocol {}",
                    self.protocol
                ),
            );
            return Ok(Err(error.did_not_run().into()));
        }
        // A call that takes a stream gets an inbox for it while its
        // arguments are decoded (checked by `can_stream`); the deadline
        // bounds opening a stream, not its life: a call that reads one runs
        // for as long as it is sent.
        let takes = self.registry.method(route).takes_stream;
        let inbox_for = match (takes, &replies.streams, &request.id) {
            (true, Some(streams), Some(Id::Num(id))) => Some((streams, *id)),
            _ => None,
        };
        let limit = request.deadline.filter(|_| inbox_for.is_none());
        let deadline = limit.map(|d| read_at + d);
        let mut context = Some(
            Context::new()
                .with_peer(self.peer)
                .with_deadline(deadline)
                .with_transport("tcp")
                .with_peer_identity(self.peer_identity.clone())
                .with_metadata(
                    request
                        .metadata
                        .map(|metadata| Arc::new(super::trace::continue_trace(metadata))),
                ),
        );
        // The context is installed once for the arguments' decoding, the
        // service starting the call and its first poll.
        let first = Context::within_slot(&mut context, || {
            let dispatch = || {
                self.registry
                    .call_encoded(route, self.codec, request.params)
            };
            let decode = || rpc_core::blob::decoding_from(frame, dispatch);
            let started = match inbox_for {
                Some((streams, id)) => match streams.receive(id, self.codec, replies.control()) {
                    Ok(inbox) => {
                        let (started, taken) = rpc_core::stream::receiving(inbox, decode);
                        if !taken || started.is_err() {
                            streams.forget_inbox(id, None);
                        }
                        started
                    }
                    Err(e) => Err(e),
                },
                None => decode(),
            };
            let mut call = match started {
                Ok(call) => self.layered(route, call),
                // Its arguments did not decode (or the service refused to
                // start it): the handler did not run.
                Err(e) => return Ok(Err(e.did_not_run().into())),
            };
            // A waker that does nothing is enough for this first poll: a
            // call that is not done is polled again at once by its own
            // task, which registers the real waker.
            let mut cx = std::task::Context::from_waker(Waker::noop());
            match Pin::new(&mut call).poll(&mut cx) {
                Poll::Ready(reply) => Ok(reply),
                Poll::Pending => Err(call),
            }
        });
        first.map_err(|call| {
            let names = (
                self.registry.service(route).name,
                self.registry.method(route).name,
            );
            let call = context.take().unwrap_or_default().scope(call);
            Box::pin(bounded(call, deadline.zip(limit), names)) as Pending
        })
    }

    /// `call` through the registry's middleware, if it has any, with the
    /// context installed for it.
    #[inline]
    fn layered(&self, route: Route, call: CallFuture) -> CallFuture {
        if !self.registry.has_layers() {
            return call;
        }
        let context = Context::current().unwrap_or_default();
        self.registry.layered(route, call, &context)
    }
}

/// The part of a call still running after its first poll.
pub(super) type Pending = Pin<Box<dyn Future<Output = Reply> + Send>>;

/// Runs `call` (of `service.method`) until it replies or its deadline
/// passes: the instant, and the time the caller gave it.
pub(super) async fn bounded(
    call: impl Future<Output = Reply>,
    deadline: Option<(Instant, std::time::Duration)>,
    (service, method): (&'static str, &'static str),
) -> Reply {
    let Some((deadline, limit)) = deadline else {
        return call.await;
    };
    match tokio::time::timeout_at(deadline.into(), call).await {
        Ok(reply) => reply,
        Err(_) => Err(Error::timed_out(&format!("{service}.{method}"), limit).into()),
    }
}
