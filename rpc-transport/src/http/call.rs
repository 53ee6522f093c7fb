//! One call through the gateway, whatever the endpoint: resolve the method,
//! decode its arguments, run the handler under the deadline, count it.

use std::time::{Duration, Instant};

use rpc_core::registry::Route;
use rpc_core::service::{CallFuture, Reply};
use rpc_core::{Error, ErrorKind, Registry};

use super::Gateway;
use crate::metrics::Transport;

impl Gateway {
    /// Runs `method`: `start` decodes the arguments and starts the handler
    /// (see [`Registry::call`]). The call gets the request timeout, or the
    /// caller's `deadline` when that is shorter.
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
        let limit = deadline.map_or(self.request_timeout, |d| d.min(self.request_timeout));
        let reply = match start(&self.registry, route) {
            Ok(call) => {
                let _running = self.metrics.call_started();
                tokio::time::timeout(limit, call)
                    .await
                    .unwrap_or_else(|_| Err(timed_out(method, limit).into()))
            }
            Err(e) => Err(e.into()),
        };
        let outcome = reply.as_ref().map(drop).map_err(|fault| fault.kind);
        self.record(Some(route), outcome, began);
        reply
    }

    fn record(&self, route: Option<Route>, outcome: Result<(), ErrorKind>, began: Instant) {
        self.metrics
            .record_call(Transport::Http, route, outcome, began.elapsed());
    }
}

fn timed_out(method: &str, limit: Duration) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!("`{method}` did not finish within {} ms", limit.as_millis()),
    )
}
