//! One call through the gateway, whatever the endpoint: resolve the method,
//! decode its arguments, run the handler under the deadline with the
//! caller's [`Context`](rpc_core::Context) (see [`super::caller`]), count it.
//! Once the server drains, a call not yet started is refused, and one still
//! running after `shutdown_grace` is stopped and answered `ShuttingDown`,
//! so no HTTP request goes unanswered at shutdown.
//!
//! A method that takes or returns a [`Stream`](rpc_core::Stream) runs only
//! where its stream can travel: [`Gateway::call`] (REST, `POST /rpc`,
//! XML-RPC) refuses it before the handler runs, naming the doors that can
//! carry it ([`rpc_core::stream::DOORS`]); [`Gateway::call_streaming`]
//! (Server-Sent Events, the WebSocket) runs a method that returns one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tracing::{Instrument, debug_span};

use rpc_core::registry::Route;
use rpc_core::service::{CallFuture, MethodInfo, Reply};
use rpc_core::{Error, ErrorKind, Metadata, Registry};

use super::Gateway;
use super::caller::Caller;
use crate::metrics::Transport;

/// Which calls a door can carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Door {
    /// No streams either way.
    Plain,
    /// A stream the method returns (Server-Sent Events, the WebSocket).
    Streams,
}

impl Door {
    /// Fails if `info`'s calls carry a stream this door cannot.
    fn admits(self, method: &str, info: &MethodInfo) -> Result<(), Error> {
        let why = match self {
            _ if info.takes_stream => format!(
                "`{method}` takes a stream, which travels only over TCP (protocol 2): \
                 the HTTP gateway carries the streams methods return"
            ),
            Door::Plain if info.returns_stream => format!(
                "`{method}` returns a stream, which this door cannot carry; {}",
                rpc_core::stream::DOORS
            ),
            _ => return Ok(()),
        };
        Err(Error::new(ErrorKind::InvalidRequest, why))
    }
}

impl Gateway {
    /// Runs `method`: `start` decodes the arguments and starts the handler
    /// (see [`Registry::call`]). The call gets the request timeout, or the
    /// caller's timeout or its own `deadline` when that is shorter, counted
    /// from the request's arrival. A method that streams is refused.
    pub(crate) async fn call(
        &self,
        method: &str,
        deadline: Option<Duration>,
        start: impl FnOnce(&Registry, Route) -> Result<CallFuture, Error>,
    ) -> Reply {
        self.run(Door::Plain, method, deadline, None, start).await
    }

    /// [`Gateway::call`] with the call's own metadata (a JSON-RPC request
    /// object's `"meta"`), set over the headers'.
    pub(crate) async fn call_with(
        &self,
        method: &str,
        deadline: Option<Duration>,
        metadata: Option<Metadata>,
        start: impl FnOnce(&Registry, Route) -> Result<CallFuture, Error>,
    ) -> Reply {
        self.run(Door::Plain, method, deadline, metadata, start)
            .await
    }

    /// [`Gateway::call`] for a door that carries the streams methods
    /// return: the reply may hold one, for the caller to capture.
    pub(crate) async fn call_streaming(
        &self,
        method: &str,
        deadline: Option<Duration>,
        start: impl FnOnce(&Registry, Route) -> Result<CallFuture, Error>,
    ) -> Reply {
        self.run(Door::Streams, method, deadline, None, start).await
    }

    /// Runs the call in its own `call` span, which records the caller's
    /// trace context.
    async fn run(
        &self,
        door: Door,
        method: &str,
        deadline: Option<Duration>,
        metadata: Option<Metadata>,
        start: impl FnOnce(&Registry, Route) -> Result<CallFuture, Error>,
    ) -> Reply {
        let span = debug_span!(
            "call",
            method,
            trace_id = tracing::field::Empty,
            parent_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
        );
        self.run_in_span(door, method, deadline, metadata, start)
            .instrument(span)
            .await
    }

    async fn run_in_span(
        &self,
        door: Door,
        method: &str,
        deadline: Option<Duration>,
        metadata: Option<Metadata>,
        start: impl FnOnce(&Registry, Route) -> Result<CallFuture, Error>,
    ) -> Reply {
        let began = Instant::now();
        let route = match self.registry.resolve(method).and_then(|route| {
            door.admits(method, self.registry.method(route))?;
            Ok(route)
        }) {
            Ok(route) => route,
            Err(e) => {
                self.record(None, Err(e.kind()), began);
                return Err(e.did_not_run().into());
            }
        };
        // Counted before the draining check, so a drain that starts now
        // waits for this call instead of missing it.
        let in_flight = self.calls.enter();
        if self.server.is_draining() {
            let e = Error::new(
                ErrorKind::ShuttingDown,
                format!("the server is shutting down; `{method}` was not started"),
            )
            .did_not_run();
            self.record(Some(route), Err(e.kind()), began);
            return Err(e.into());
        }
        let _in_flight = in_flight;
        let caller = Caller::current();
        let (limit, end) = caller.limit(deadline, self.request_timeout);
        // The context is installed while the arguments are decoded too.
        let started = caller.context(end, metadata).and_then(|mut context| {
            let call = context.within(|| start(&self.registry, route))?;
            Ok((call, context))
        });
        let reply = match started {
            Ok((call, context)) => {
                let _running = self.metrics.call_started();
                let call = self.registry.layered(route, call, &context);
                let call = context.scope(call);
                tokio::select! {
                    reply = tokio::time::timeout_at(end.into(), call) => {
                        reply.unwrap_or_else(|_| Err(timed_out(method, limit).into()))
                    }
                    () = self.grace_over() => Err(cut_off(method).into()),
                }
            }
            // Its arguments or metadata did not read: it did not run.
            Err(e) => Err(e.did_not_run().into()),
        };
        let outcome = reply.as_ref().map(drop).map_err(|fault| fault.kind);
        self.record(Some(route), outcome, began);
        reply
    }

    /// Completes `shutdown_grace` after the server starts draining.
    pub(crate) async fn grace_over(&self) {
        let mut draining = self.server.draining();
        crate::shutdown::draining_started(&mut draining).await;
        tokio::time::sleep(self.server.config().limits().shutdown_grace).await;
    }

    fn record(&self, route: Option<Route>, outcome: Result<(), ErrorKind>, began: Instant) {
        self.metrics
            .record_call(Transport::Http, route, outcome, began.elapsed());
    }
}

fn timed_out(method: &str, limit: Duration) -> Error {
    Error::timed_out(method, limit)
}

fn cut_off(method: &str) -> Error {
    Error::new(
        ErrorKind::ShuttingDown,
        format!(
            "the server is shutting down and `{method}` did not finish within shutdown_grace_ms"
        ),
    )
}

/// The gateway's calls in progress, so that draining can wait for them.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

/// One call in progress; dropping it ends the call's count.
pub(crate) struct Running<'a>(&'a InFlight);

/// A stream in progress, counted with the calls so that draining waits
/// for it (up to the grace, when it is ended); dropping it ends the count.
pub(crate) struct Streaming(std::sync::Arc<Gateway>);

impl Streaming {
    pub(crate) fn new(gateway: std::sync::Arc<Gateway>) -> Streaming {
        gateway.calls.count.fetch_add(1, Ordering::SeqCst);
        Streaming(gateway)
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        self.0.calls.leave();
    }
}

impl InFlight {
    fn enter(&self) -> Running<'_> {
        self.count.fetch_add(1, Ordering::SeqCst);
        Running(self)
    }

    fn leave(&self) {
        if self.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// How many calls are in progress.
    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Completes when no call is in progress.
    pub(crate) async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.leave();
    }
}
