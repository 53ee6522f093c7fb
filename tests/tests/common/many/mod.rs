//! The many-servers tests' parts, for `many_haproxy.rs` and
//! `many_servers.rs` (each includes this folder with `#[path]`):
//! `process`: `ledger-server` processes with a journal each, stopped by
//! signal and restarted on their old ports; `load`: a mixed load of
//! idempotent `add` and non-idempotent `record` through one client;
//! `check`: every outcome against the journals (at most once, and exactly
//! once when the call returned ok); `haproxy`: HAProxy in front of them.
//!
//! Each file uses only part of it, hence the `dead_code` allowance.

#![allow(dead_code)]

mod check;
pub(crate) mod haproxy;
mod load;
pub(crate) mod process;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub(crate) use self::check::check;
pub(crate) use self::load::{Load, Method, Outcome};
pub(crate) use self::process::{LedgerServer, Stop, three};
use crate::common::{WAIT, within_for};

/// The calls' own timeout: longer than any failover, shorter than the
/// bound on the load's end.
pub(crate) const CALL_TIMEOUT_MS: u64 = 15_000;

/// How `[client.reconnect]` reads in the tests: fast, and calls made while
/// the link is down wait for it.
pub(crate) const RECONNECT: &str =
    "[client.reconnect]\ninitial_backoff_ms = 20\nmax_backoff_ms = 200\nwait = true\n";

/// A directory under the temp directory for configs and journals, removed
/// when dropped.
pub(crate) struct Scratch {
    /// Where it is.
    pub(crate) dir: PathBuf,
}

impl Scratch {
    /// A fresh, empty directory.
    pub(crate) fn new(what: &str) -> Scratch {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("rpc-{what}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating a scratch directory");
        Scratch { dir }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits (bounded by [`WAIT`]) until `condition` holds, polling every 20 ms.
pub(crate) async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    within_for(WAIT, what, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}
