//! The load: tasks calling `add` and `record` through one client, each
//! call with a fresh token, every outcome kept.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rpc_core::{Error, ErrorKind};
use tests::ledger::LedgerClient;
use tokio::task::JoinHandle;

use crate::common::within_for;

/// How long the load's tasks may take to return once told to stop.
const FINISH_WAIT: Duration = Duration::from_secs(25);

/// Which method a call was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    /// `add(token, 1)`: idempotent.
    Add,
    /// `record(token)`: not idempotent.
    Record,
}

/// How one call ended.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// The call's unique token.
    pub(crate) token: u64,
    /// Its method.
    pub(crate) method: Method,
    /// `None`: ok; else the error's kind, did-not-run mark and message.
    pub(crate) failed: Option<(ErrorKind, bool, String)>,
}

impl Outcome {
    fn of<T>(token: u64, method: Method, result: Result<T, Error>) -> Outcome {
        Outcome {
            token,
            method,
            failed: result
                .err()
                .map(|e| (e.kind(), e.not_run(), e.message().to_owned())),
        }
    }
}

/// Tasks calling through one client until told to stop: each takes a
/// fresh token per call, and every third token is a `record`, the others
/// an `add(token, 1)`.
pub(crate) struct Load {
    tasks: Vec<JoinHandle<Vec<Outcome>>>,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    tokens: Arc<AtomicU64>,
}

impl Load {
    /// Starts `tasks` tasks over `client`; `record_every`: every how many
    /// tokens is a `record` (0: never).
    pub(crate) fn start(client: &rpc_core::Client, tasks: usize, record_every: u64) -> Load {
        let mut load = Load {
            tasks: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            done: Arc::new(AtomicU64::new(0)),
            tokens: Arc::new(AtomicU64::new(1)),
        };
        for _ in 0..tasks {
            let ledger = LedgerClient::new(client.clone());
            let (stop, done, tokens) = (load.stop.clone(), load.done.clone(), load.tokens.clone());
            load.tasks.push(tokio::spawn(async move {
                let mut outcomes = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let token = tokens.fetch_add(1, Ordering::Relaxed);
                    let method = if record_every != 0 && token % record_every == 0 {
                        Method::Record
                    } else {
                        Method::Add
                    };
                    outcomes.push(call(&ledger, token, method).await);
                    done.fetch_add(1, Ordering::Relaxed);
                }
                outcomes
            }));
        }
        load
    }

    /// Calls that have returned so far.
    pub(crate) fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Waits (bounded by `limit`) until `more` calls have returned from now.
    pub(crate) async fn progress(&self, more: u64, limit: Duration, what: &str) {
        let target = self.done() + more;
        within_for(limit, what, async {
            while self.done() < target {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
    }

    /// One `record` through `client` (another connection, say) with a
    /// fresh token of this load's; check its outcome with the load's.
    pub(crate) async fn record_through(&self, client: &rpc_core::Client) -> Outcome {
        let token = self.tokens.fetch_add(1, Ordering::Relaxed);
        call(&LedgerClient::new(client.clone()), token, Method::Record).await
    }

    /// Stops the tasks and returns every outcome, with how many tokens were
    /// handed out (each must have an outcome).
    pub(crate) async fn finish(self) -> (Vec<Outcome>, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let mut outcomes = Vec::new();
        for task in self.tasks {
            let mine = within_for(FINISH_WAIT, "the load's tasks to return", task)
                .await
                .expect("a load task panicked");
            outcomes.extend(mine);
        }
        (outcomes, self.tokens.load(Ordering::Relaxed) - 1)
    }
}

/// Calls `record(token)` or `add(token, 1)` (checking the answer).
async fn call(ledger: &LedgerClient, token: u64, method: Method) -> Outcome {
    if method == Method::Record {
        let result = ledger.record(token).await;
        if let Ok(echo) = &result {
            assert_eq!(*echo, token, "record echoes its token");
        }
        Outcome::of(token, Method::Record, result)
    } else {
        let x = i64::try_from(token).expect("a small token");
        let result = ledger.add(x, 1).await;
        if let Ok(sum) = &result {
            assert_eq!(*sum, x + 1, "add({x}, 1)");
        }
        Outcome::of(token, Method::Add, result)
    }
}
