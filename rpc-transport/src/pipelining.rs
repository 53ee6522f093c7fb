//! When a batch of frames is cut into several writes: a connection with
//! many calls in flight sends its frames a few at a time, so that its peer
//! starts on the first ones while this side still works on the rest.
//!
//! Both sides write in batches: the server the replies to every request
//! one read brought, the client the requests of every caller one read woke.
//! One write a batch is the fewest system calls, but on a connection that
//! carries a deep pipeline it makes the two ends take turns: the peer
//! waits while this side handles the whole batch, then this side waits
//! while the peer handles it. Cut every [`CUT`] frames, the batch is on its
//! way in parts, and both ends work at once (64 calls in flight on one
//! connection: about 1.4 times the calls a second, in either codec).
//!
//! A cut costs a system call, and it buys nothing when the process has no
//! spare worker: its other connections keep it busy anyway (eight
//! connections of 64 calls in flight each: three quarters of the calls a
//! second, had their batches been cut). So batches are cut only while no
//! more connections than the runtime has worker threads pipeline deeply,
//! each connection counting itself in while it does ([`Deep`]).

use std::sync::atomic::{AtomicUsize, Ordering};

/// A batch is cut once this many of its frames are queued.
pub(crate) const CUT: usize = 12;

/// The connections of this process that pipeline deeply: a client's with
/// [`CUT`] calls in flight or more, a server's whose last read brought
/// that many requests (it stays counted until its next read or its end:
/// batches are then cut less often, which costs speed, never a frame).
/// Read by every cut, written only when a connection comes or goes.
static DEEP: AtomicUsize = AtomicUsize::new(0);

/// A connection's place in the count of those that pipeline deeply; it
/// leaves the count when dropped.
#[derive(Debug, Default)]
pub(crate) struct Deep(bool);

impl Deep {
    /// Counts the connection in or out.
    pub(crate) fn set(&mut self, deep: bool) {
        self.set_in(&DEEP, deep);
    }

    fn set_in(&mut self, count: &AtomicUsize, deep: bool) {
        if deep == self.0 {
            return;
        }
        self.0 = deep;
        match deep {
            true => count.fetch_add(1, Ordering::Relaxed),
            false => count.fetch_sub(1, Ordering::Relaxed),
        };
    }
}

impl Drop for Deep {
    fn drop(&mut self) {
        self.set(false);
    }
}

/// Whether a batch with [`CUT`] frames queued is written now: not while
/// more connections pipeline deeply than there are `workers`.
pub(crate) fn may_cut(workers: usize) -> bool {
    DEEP.load(Ordering::Relaxed) <= workers
}

/// The worker threads of the runtime this runs on (one outside of one).
pub(crate) fn workers() -> usize {
    tokio::runtime::Handle::try_current().map_or(1, |h| h.metrics().num_workers())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_counts_in_and_out_once() {
        let count = AtomicUsize::new(0);
        let (mut a, mut b) = (Deep::default(), Deep::default());
        a.set_in(&count, true);
        a.set_in(&count, true);
        assert_eq!(count.load(Ordering::Relaxed), 1);
        b.set_in(&count, true);
        assert_eq!(count.load(Ordering::Relaxed), 2);
        b.set_in(&count, false);
        b.set_in(&count, false);
        a.set_in(&count, false);
        assert_eq!(count.load(Ordering::Relaxed), 0);
    }
}
