//! Opening a client's connections before the window: [`AT_ONCE`] at a
//! time, and only after checking that the process may hold them
//! ([`check_fd_limit`]).
//!
//! Scenario `many` opens 2,000 connections. All at once, their SYNs would
//! overflow the server's accept backlog (tokio's listeners ask for 1024),
//! and each refused SYN costs a retransmission a second later; and every
//! one would be a pending handshake on the server at the same moment. A
//! few dozen at a time keep both short and still open 2,000 connections
//! in well under a second on loopback.

use std::future::Future;

use futures::{StreamExt, TryStreamExt};

/// Connections being opened at once.
pub const AT_ONCE: usize = 64;

/// Descriptors a process needs beyond its connections (stdio, the runtime's
/// epoll and wakers, files).
const SPARE_FDS: u64 = 64;

/// Opens `n` connections with `open(i)`, [`AT_ONCE`] at a time; fails
/// with the first error.
pub async fn all<T, E, F, Fut>(n: usize, open: F) -> Result<Vec<T>, E>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    futures::stream::iter(0..n)
        .map(open)
        .buffer_unordered(AT_ONCE)
        .try_collect()
        .await
}

/// Fails, saying what to do, if this process may not open `sockets` more
/// descriptors: the soft `RLIMIT_NOFILE`, read from `/proc/self/limits`
/// (Linux; elsewhere nothing is checked). Raising it needs `setrlimit`,
/// which std does not offer and this crate does not call (no `libc`, no
/// unsafe code): run the benchmark under `ulimit -n 8192` (or more) where
/// the default is 1024. The server needs as many.
pub fn check_fd_limit(sockets: usize) -> Result<(), String> {
    let Some(soft) = soft_nofile() else {
        return Ok(());
    };
    let needed = sockets as u64 + SPARE_FDS;
    if soft < needed {
        return Err(format!(
            "{sockets} connections need {needed} file descriptors, the limit is {soft}: \
             raise it (`ulimit -n 8192`) in the shell that runs the benchmark"
        ));
    }
    Ok(())
}

/// The soft limit on open files, if `/proc/self/limits` says.
fn soft_nofile() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    // "unlimited" parses as nothing: no limit to check.
    soft.parse().ok()
}
