//! The ledger: an idempotent `add` and a non-idempotent `record` that
//! appends its token to a journal file before it replies. Served by the
//! `ledger-server` binary for the many-servers tests (`many_haproxy.rs`,
//! `many_servers.rs`): after a run, the journals of every server together
//! must hold each token at most once, and every token whose call returned
//! ok exactly once.
//!
//! A journal line is written and flushed before the reply is queued, so a
//! server killed after it replied has the line; one killed between the
//! line and the reply has it too, and its caller sees `ConnectionLost`
//! ("may or may not have run"). The process reads two variables:
//!
//! | variable | meaning |
//! |---|---|
//! | `LEDGER_JOURNAL` | the journal file (appended to; required) |
//! | `LEDGER_DELAY_MS` | a sleep in `add`, and in `record` between its line and its reply (default 0) |

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rpc_core::rpc_service;

/// Sums that may be repeated, and tokens that must be recorded at most once.
#[rpc_service]
pub trait Ledger {
    /// Adds two numbers (after the server's delay, if any): safe to repeat.
    #[rpc(idempotent)]
    async fn add(&self, x: i64, y: i64) -> i64;

    /// Appends `token` to the journal, then returns it: not safe to repeat.
    async fn record(&self, token: u64) -> u64;

    /// Sleeps `ms`, then returns it: a call that keeps a draining server
    /// busy.
    #[rpc(idempotent)]
    async fn hold(&self, ms: u64) -> u64;
}

/// The ledger's implementation: a journal file and a delay.
#[derive(Clone, Debug)]
pub struct Journal {
    file: Arc<Mutex<File>>,
    delay: Duration,
}

impl Journal {
    /// Appends to the file at `path` (created if missing); `add` and
    /// `record` sleep `delay`.
    pub fn open(path: &Path, delay: Duration) -> std::io::Result<Journal> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Journal {
            file: Arc::new(Mutex::new(file)),
            delay,
        })
    }

    /// [`Journal::open`] with the file named by `LEDGER_JOURNAL` and the
    /// delay by `LEDGER_DELAY_MS`.
    pub fn from_env() -> Result<Journal, String> {
        let path = std::env::var_os("LEDGER_JOURNAL")
            .ok_or("LEDGER_JOURNAL is not set: name the journal file")?;
        let delay = match std::env::var("LEDGER_DELAY_MS") {
            Ok(ms) => ms
                .parse()
                .map_err(|e| format!("LEDGER_DELAY_MS={ms:?} is not a number of ms: {e}"))?,
            Err(_) => 0,
        };
        Journal::open(Path::new(&path), Duration::from_millis(delay))
            .map_err(|e| format!("opening the journal {}: {e}", Path::new(&path).display()))
    }

    /// Writes `token`'s line in one `write` (the file is in append mode)
    /// and flushes it.
    fn append(&self, token: u64) -> std::io::Result<()> {
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.write_all(format!("{token}\n").as_bytes())?;
        file.flush()
    }

    async fn pause(&self) {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
    }
}

impl Ledger for Journal {
    async fn add(&self, x: i64, y: i64) -> i64 {
        self.pause().await;
        x.wrapping_add(y)
    }

    async fn record(&self, token: u64) -> u64 {
        // A journal that cannot be written must not look like a recorded
        // token: the handler panics, and the caller sees HandlerPanic.
        self.append(token)
            .unwrap_or_else(|e| panic!("the journal could not be written: {e}"));
        self.pause().await;
        token
    }

    async fn hold(&self, ms: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    }
}

/// The tokens in a journal's text, one per line, in order.
pub fn tokens(journal: &str) -> Vec<u64> {
    journal
        .lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            line.parse()
                .unwrap_or_else(|e| panic!("journal line {line:?}: {e}"))
        })
        .collect()
}
