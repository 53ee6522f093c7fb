//! The calls of one connection still running after their first poll: by
//! request id, to cancel them or answer them at shutdown, and how a call's
//! end is counted.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use rpc_core::codec::Id;
use rpc_core::registry::Route;
use rpc_core::service::Reply;
use rpc_core::{Error, ErrorKind};
use tokio::task::{AbortHandle, JoinSet};
use tracing::debug;

use super::replies::Replies;
use crate::metrics::{Metrics, Transport};

/// The calls of one connection that outlived their first poll.
#[derive(Default)]
pub(super) struct Calls {
    pub(super) tasks: JoinSet<()>,
    /// Running calls by request id, to cancel them or answer them at shutdown.
    pub(super) by_id: HashMap<Id, Running>,
    /// The request id of each task, to forget it when it ends.
    pub(super) ids: HashMap<tokio::task::Id, Id>,
    /// Members of running batches still waiting on their handlers: each
    /// counts against `max_in_flight` like a call of its own.
    pub(super) batch_members: Arc<AtomicUsize>,
}

pub(super) struct Running {
    pub(super) task: AbortHandle,
    pub(super) route: Route,
    pub(super) started: Instant,
    /// Set by whoever answers the call first: the call itself, a cancel, or
    /// the end of the shutdown grace period. The others stay silent.
    pub(super) answered: Arc<AtomicBool>,
}

impl Calls {
    /// Calls whose handlers have not stopped: tasks, and the members of
    /// batches still waiting on theirs.
    pub(super) fn running(&self) -> usize {
        self.tasks.len() + self.batch_members.load(Ordering::Relaxed)
    }

    /// Forgets a spawned call that ended (or was cancelled).
    pub(super) fn ended(&mut self, ended: Result<(tokio::task::Id, ()), tokio::task::JoinError>) {
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
    pub(super) fn cancel(&mut self, id: &Id, metrics: &Metrics) {
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
    pub(super) fn shut_down(&mut self, replies: &Replies, metrics: &Metrics) {
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

/// A call refused because the server is draining: it did not run.
pub(super) fn not_started() -> Error {
    Error::new(
        ErrorKind::ShuttingDown,
        "the server is shutting down and did not run this call; send it again elsewhere",
    )
    .did_not_run()
}

pub(super) fn shutting_down() -> Error {
    Error::new(
        ErrorKind::ShuttingDown,
        "the server is shutting down and did not run or finish this call",
    )
}

/// A reply as the metrics count it.
pub(super) fn outcome(reply: &Reply) -> Result<(), ErrorKind> {
    reply.as_ref().map(drop).map_err(|fault| fault.kind)
}

/// Counts a finished call and logs it at debug level.
pub(super) fn record(
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
