//! Whether the work a large frame starts leaves the worker thread while it
//! runs: learned per connection from how long its last large frame took.
//!
//! Decoding a large frame and polling its call once can take long (a
//! megabyte of JSON: milliseconds), and meanwhile the worker's other
//! connections wait. `block_in_place` hands them to another thread first,
//! but the handoff itself costs a thread switch (a 1 MiB echo on a 2-core
//! VM: about 115 µs of its 756 µs round trip), and most large frames do
//! not need it: a bincode payload is handled without a copy in 7-9 µs
//! (timed over TLS, where the frame is the same once decrypted).
//!
//! So a connection's first large frame leaves the worker, as any large
//! frame did before, and each one is timed. The next runs in place when
//! the connection's time per byte, scaled to its length, comes under
//! [`LONG_TURN`], and only if it is at most [`MOST_IN_PLACE`] long: a frame
//! that then takes long sends the next ones back off the worker, and its
//! time per byte counts until quick frames have halved it down again, one
//! halving each. A peer that mixes cheap and costly large frames (a cheap
//! one can be a frame of an unknown kind) gets one costly frame in place
//! for as many cheap ones as halvings its cost needs, and a costly frame in
//! place holds the worker no longer than a 4 MiB one takes: four times what
//! a frame just under 1 MiB, always handled in place, could already take.

use std::time::{Duration, Instant};

/// Frames this large may take long: they are timed, and leave the worker
/// unless the last one was quick.
pub(super) const LARGE_FRAME: usize = 1024 * 1024;

/// What a turn may take in place before it holds up the worker's other
/// connections too long.
pub(super) const LONG_TURN: Duration = Duration::from_micros(250);

/// Frames longer than this always leave the worker.
pub(super) const MOST_IN_PLACE: usize = 4 * LARGE_FRAME;

/// What a connection learned from its large frames.
#[derive(Debug, Default)]
pub(super) struct LargeFrames {
    /// Their time per KiB, in nanoseconds: the last one's, or half the one
    /// before if that was more (slowness fades by halves); `None` before
    /// the first.
    nanos_per_kib: Option<u64>,
}

impl LargeFrames {
    /// Runs `work`, the handling of a frame of `len` bytes: in place if it
    /// is small or its predicted time is short, else off the worker; large
    /// frames are timed either way.
    pub(super) fn run<T>(&mut self, len: usize, work: impl FnOnce() -> T) -> T {
        if len < LARGE_FRAME {
            return work();
        }
        let timed = move || {
            let started = Instant::now();
            let out = work();
            (out, started.elapsed())
        };
        let (out, took) = match self.in_place(len) {
            true => timed(),
            false => blocking(timed),
        };
        self.learn(len, took);
        out
    }

    /// Whether a large frame of `len` bytes is predicted to be quick.
    fn in_place(&self, len: usize) -> bool {
        len <= MOST_IN_PLACE
            && self.nanos_per_kib.is_some_and(|rate| {
                let kib = (len as u64).div_ceil(1024);
                kib.saturating_mul(rate) < LONG_TURN.as_nanos() as u64
            })
    }

    /// Notes that a large frame of `len` bytes took `took`.
    fn learn(&mut self, len: usize, took: Duration) {
        let kib = (len as u64).div_ceil(1024).max(1);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let rate = nanos.div_ceil(kib);
        let before = self.nanos_per_kib.map_or(0, |r| r / 2);
        self.nanos_per_kib = Some(rate.max(before));
    }
}

/// Runs `f`, which may take a while, telling a multi-threaded runtime to
/// hand this worker's other tasks to another thread meanwhile.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_large_frame_leaves_the_worker_and_quick_ones_then_stay() {
        let mut frames = LargeFrames::default();
        assert!(!frames.in_place(LARGE_FRAME), "nothing learned yet");
        frames.learn(LARGE_FRAME, Duration::from_micros(100));
        assert!(frames.in_place(LARGE_FRAME));
        // Scaled to the length: four times as long is 400 µs.
        assert!(!frames.in_place(4 * LARGE_FRAME));
    }

    #[test]
    fn a_large_frame_that_took_long_sends_the_next_ones_off_the_worker() {
        let mut frames = LargeFrames::default();
        frames.learn(LARGE_FRAME, Duration::from_micros(20));
        frames.learn(LARGE_FRAME, Duration::from_millis(3));
        // 3 ms is twelve times the 250 µs a turn may take: four quick
        // frames halve it under.
        for quick in 0..4 {
            assert!(!frames.in_place(LARGE_FRAME), "after {quick} quick ones");
            frames.learn(LARGE_FRAME, Duration::from_micros(20));
        }
        assert!(frames.in_place(LARGE_FRAME));
    }

    #[test]
    fn frames_past_four_mib_always_leave_the_worker() {
        let mut frames = LargeFrames::default();
        frames.learn(LARGE_FRAME, Duration::from_nanos(1));
        assert!(frames.in_place(MOST_IN_PLACE));
        assert!(!frames.in_place(MOST_IN_PLACE + 1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn frames_are_timed_whether_or_not_they_leave_the_worker() {
        let mut frames = LargeFrames::default();
        assert_eq!(frames.run(LARGE_FRAME - 1, || 1), 1);
        assert_eq!(frames.nanos_per_kib, None, "small frames are not timed");
        assert_eq!(frames.run(LARGE_FRAME, || 2), 2, "off the worker");
        assert!(frames.nanos_per_kib.is_some(), "large frames are");
        let slow = || std::thread::sleep(Duration::from_millis(2));
        frames.run(LARGE_FRAME, slow);
        assert!(!frames.in_place(LARGE_FRAME), "{frames:?}");
    }
}
