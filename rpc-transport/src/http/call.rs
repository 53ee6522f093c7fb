//! One call through the gateway, whatever the endpoint: resolve the method,
//! decode its arguments, run the handler under the deadline with the
//! caller's [`Context`](rpc_core::Context) (see [`super::caller`]), count it.
//! Once the server drains, a call not yet started is refused, and one still
//! running after `shutdown_grace` is stopped and answered `ShuttingDown`,
//! so no HTTP request goes unanswered at shutdown.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use rpc_core::registry::Route;
use rpc_core::service::{CallFuture, Reply};
use rpc_core::{Error, ErrorKind, Registry};

use super::Gateway;
use super::caller::Caller;
use crate::metrics::Transport;

impl Gateway {
    /// Runs `method`: `start` decodes the arguments and starts the handler
    /// (see [`Registry::call`]). The call gets the request timeout, or the
    /// caller's timeout or its own `deadline` when that is shorter, counted
    /// from the request's arrival.
    pub(crate) async fn call(
        &self,
        method: &str,
        deadline: Option<Duration>,
        start: impl FnOnce(&Registry, Route) -> Result<CallFuture, Error>,
    ) -> Reply {
        let began = Instant::now();
        let route = match self.registry.resolve(method) {
            Ok(route) => route,
            Err(e) => {
                self.record(None, Err(e.kind()), began);
                return Err(e.into());
            }
        };
        // Counted before the draining check, so a drain that starts now
        // waits for this call instead of missing it.
        let in_flight = self.calls.enter();
        if self.server.is_draining() {
            let e = Error::new(
                ErrorKind::ShuttingDown,
                format!("the server is shutting down; `{method}` was not started"),
            );
            self.record(Some(route), Err(e.kind()), began);
            return Err(e.into());
        }
        let _in_flight = in_flight;
        let caller = Caller::current();
        let (limit, end) = caller.limit(deadline, self.request_timeout);
        let reply = match start(&self.registry, route) {
            Ok(call) => {
                let _running = self.metrics.call_started();
                let call = caller.context(end).scope(call);
                tokio::select! {
                    reply = tokio::time::timeout_at(end.into(), call) => {
                        reply.unwrap_or_else(|_| Err(timed_out(method, limit).into()))
                    }
                    () = self.grace_over() => Err(cut_off(method).into()),
                }
            }
            Err(e) => Err(e.into()),
        };
        let outcome = reply.as_ref().map(drop).map_err(|fault| fault.kind);
        self.record(Some(route), outcome, began);
        reply
    }

    /// Completes `shutdown_grace` after the server starts draining.
    async fn grace_over(&self) {
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

impl InFlight {
    fn enter(&self) -> Running<'_> {
        self.count.fetch_add(1, Ordering::SeqCst);
        Running(self)
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
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}
