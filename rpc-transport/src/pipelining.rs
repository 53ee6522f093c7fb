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
//! each connection counting itself in while it does ([`Deep`]); any
//! connection cuts then, counted or not. The count is a guess at how busy
//! the process is: wrong, it costs speed, never a frame.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A batch is cut once this many of its frames are queued.
pub(crate) const CUT: usize = 12;

/// A client's connection counted in stays in down to this many calls in
/// flight: one that hovers about [`CUT`] does not move the count each call.
const CUT_OUT: usize = CUT / 2;

/// A server's connection counted in leaves the count when no read has
/// brought [`CUT`] requests for this long.
pub(crate) const QUIET: Duration = Duration::from_millis(100);

/// The connections of this process that pipeline deeply: a client's with
/// [`CUT`] calls in flight or more (until fewer than [`CUT_OUT`]), a
/// server's from the read after one that brought that many requests
/// until [`QUIET`] passes without another such read, or it ends.
/// Read by every cut; written when a connection starts or stops
/// pipelining deeply.
///
/// A client and a server in one process both count: a deep pipeline from
/// a process to itself counts twice.
static DEEP: AtomicUsize = AtomicUsize::new(0);

/// A connection's place in the count of those that pipeline deeply; it
/// leaves the count when dropped.
#[derive(Debug)]
pub(crate) struct Deep {
    counted: bool,
    count: &'static AtomicUsize,
}

impl Default for Deep {
    fn default() -> Deep {
        Deep::in_count(&DEEP)
    }
}

impl Deep {
    /// A connection not yet counted in `count`.
    fn in_count(count: &'static AtomicUsize) -> Deep {
        Deep {
            counted: false,
            count,
        }
    }

    /// Whether the connection is counted in.
    pub(crate) fn is_counted(&self) -> bool {
        self.counted
    }

    /// Counts the connection in or out.
    pub(crate) fn set(&mut self, deep: bool) {
        if deep == self.counted {
            return;
        }
        self.counted = deep;
        match deep {
            true => self.count.fetch_add(1, Ordering::Relaxed),
            false => self.count.fetch_sub(1, Ordering::Relaxed),
        };
    }

    /// Counts a client's connection in or out by its calls in flight.
    pub(crate) fn in_flight(&mut self, calls: usize) {
        let deep = match self.counted {
            true => calls >= CUT_OUT,
            false => calls >= CUT,
        };
        self.set(deep);
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
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let (mut a, mut b) = (Deep::in_count(&COUNT), Deep::in_count(&COUNT));
        a.set(true);
        a.set(true);
        assert_eq!(COUNT.load(Ordering::Relaxed), 1);
        b.set(true);
        assert_eq!(COUNT.load(Ordering::Relaxed), 2);
        b.set(false);
        b.set(false);
        assert_eq!(COUNT.load(Ordering::Relaxed), 1);
        drop(a);
        drop(b);
        assert_eq!(COUNT.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_client_counts_in_at_a_dozen_calls_and_out_below_half_that() {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let mut deep = Deep::in_count(&COUNT);
        let counted = |deep: &mut Deep, calls| {
            deep.in_flight(calls);
            COUNT.load(Ordering::Relaxed)
        };
        assert_eq!(counted(&mut deep, CUT - 1), 0);
        assert_eq!(counted(&mut deep, CUT), 1);
        assert_eq!(counted(&mut deep, CUT_OUT), 1);
        assert_eq!(counted(&mut deep, CUT - 1), 1);
        assert_eq!(counted(&mut deep, CUT_OUT - 1), 0);
        assert_eq!(counted(&mut deep, CUT - 1), 0);
    }
}
