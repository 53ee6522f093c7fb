//! A call's attempts after the first: waiting for an endpoint when none
//! is up, and sending the call again while the retry rules and its
//! deadline allow (see the [module docs](super)).

use std::sync::Arc;

use rpc_core::client::{Outgoing, Response};
use rpc_core::{Error, ErrorKind};
use tokio::time::Instant;

use super::endpoint::{Endpoint, GOING_AWAY, InFlight, Link};
use super::pick::{Choice, key};
use super::{Inner, retry};
use crate::config::Reconnect;

/// The least time left for which a call is sent again.
const MIN_ATTEMPT: std::time::Duration = std::time::Duration::from_millis(1);

impl Inner {
    /// A call with no endpoint up when it was made: waits for one as the
    /// policy says, then goes on as any call.
    pub(super) async fn later<'a>(
        &self,
        call: Outgoing<'a>,
        deadline: Instant,
    ) -> Result<Response, Error> {
        let choice = self
            .wait_for_endpoint(call.method, deadline, self.wait)
            .await?;
        let attempt = self.send(choice, &call, deadline);
        let outcome = attempt.reply.await;
        self.settle(call, deadline, attempt.on, outcome).await
    }

    /// Whether `outcome` is the call's answer: no retry to consider.
    pub(super) fn is_final(&self, call: &Outgoing<'_>, outcome: &Result<Response, Error>) -> bool {
        match outcome {
            Ok(response) => !response.not_run(),
            Err(_) => self.max_retries == 0 || !retry::may_retry(outcome, call.idempotent()),
        }
    }

    /// Retries the call after the attempt `on` ended with `outcome`, while
    /// the rules and its deadline allow, and returns its final outcome.
    pub(super) async fn settle<'a>(
        &self,
        call: Outgoing<'a>,
        deadline: Instant,
        on: Option<InFlight>,
        mut outcome: Result<Response, Error>,
    ) -> Result<Response, Error> {
        // A call without its method's description may carry a stream,
        // which its first attempt consumed: only described calls repeat.
        let repeatable = call.info.is_some_and(|info| !info.takes_stream);
        let mut tried = Vec::new();
        let mut on = on;
        loop {
            let endpoint = match on.take() {
                Some(on) => on.0.clone(),
                None => match &self.single {
                    Some(only) => only.clone(),
                    None => return outcome,
                },
            };
            if tried.len() as u32 >= self.max_retries
                || !repeatable
                || !retry::may_retry(&outcome, call.idempotent())
            {
                return outcome;
            }
            // An attempt needs some time left to be worth sending.
            let left = deadline.saturating_duration_since(Instant::now());
            if left < MIN_ATTEMPT {
                return outcome;
            }
            tried.push(key(&endpoint));
            let choice = match self.pick(&tried) {
                Some(choice) => choice,
                None if self.keeper.is_none() => return outcome,
                None => match self.wait_for_endpoint(call.method, deadline, true).await {
                    Ok(choice) => choice,
                    Err(_) => return outcome,
                },
            };
            if tried.contains(&key(&choice.0)) {
                // The same server again: give it a moment.
                let pause = self.backoff().backoff(tried.len() as u32 - 1).min(left / 2);
                tokio::time::sleep(pause).await;
            }
            if deadline.saturating_duration_since(Instant::now()) < MIN_ATTEMPT {
                return outcome;
            }
            endpoint.retried();
            let attempt = self.send(choice, &call, deadline);
            on = attempt.on;
            outcome = attempt.reply.await;
            // A retry that ran out of time reports the caller's timeout,
            // not what was left of it.
            if let Err(e) = &outcome {
                if e.kind() == ErrorKind::Timeout {
                    let timeout = call.timeout.unwrap_or(self.call_timeout);
                    outcome = Err(Error::timed_out(call.method, timeout));
                }
            }
        }
    }

    fn backoff(&self) -> Reconnect {
        self.keeper
            .as_ref()
            .map(|k| k.backoff.clone())
            .unwrap_or_default()
    }

    /// An endpoint that is up, waiting for one until `deadline` while a
    /// reconnection is under way; with `wait`, for as long as the deadline
    /// allows. The error says why the call was not sent (it did not run).
    async fn wait_for_endpoint(
        &self,
        method: &str,
        deadline: Instant,
        wait: bool,
    ) -> Result<Choice, Error> {
        let mut changed = self.changed.subscribe();
        loop {
            changed.borrow_and_update();
            if let Some(choice) = self.pick(&[]) {
                return Ok(choice);
            }
            let endpoints = self.endpoints();
            // Under way: a connection that just stopped taking calls (its
            // keeper is about to replace it), or a first attempt not yet failed.
            let reconnecting = endpoints.iter().any(|e| match e.current() {
                Link::Up(_) => true,
                Link::Down { attempt, .. } => attempt == 0,
            });
            if self.keeper.is_none() || !(wait || reconnecting) {
                return Err(not_sent(method, &endpoints));
            }
            match tokio::time::timeout_at(deadline, changed.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(not_sent(method, &endpoints)),
                Err(_) => {
                    let why = not_sent(method, &endpoints);
                    return Err(
                        Error::new(ErrorKind::Timeout, why.message().to_owned()).did_not_run()
                    );
                }
            }
        }
    }
}

/// Why a call found no endpoint up: the call was not sent.
fn not_sent(method: &str, endpoints: &[Arc<Endpoint>]) -> Error {
    let downs: Vec<_> = endpoints
        .iter()
        .map(|e| match e.current() {
            Link::Down { attempt, error } => (e.address.as_str(), attempt, error),
            Link::Up(c) if c.went_away() => (e.address.as_str(), 0, GOING_AWAY.into()),
            Link::Up(c) => (e.address.as_str(), 0, c.why_closed().into()),
        })
        .collect();
    let why = match downs.as_slice() {
        [(_, 0, error)] if &**error == GOING_AWAY => {
            format!(
                "`{method}` was not sent: the server is going away and a new connection is being made"
            )
        }
        [(_, attempt, error)] => format!(
            "`{method}` was not sent: the connection is down and reconnecting \
             (attempt {attempt}; last error: {error})"
        ),
        all => {
            let each: Vec<_> = all.iter().map(|(a, _, e)| format!("{a}: {e}")).collect();
            format!(
                "`{method}` was not sent: none of the {} endpoints is up, all reconnecting ({})",
                all.len(),
                each.join("; ")
            )
        }
    };
    Error::new(ErrorKind::ConnectionLost, why).did_not_run()
}
