//! Which endpoint takes a call: the [`Policy`]'s choice among the endpoints
//! that are up, preferring those the call has not tried yet.

use std::cell::Cell;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::endpoint::Endpoint;
use crate::client::connection::Connection;
use crate::config::Policy;

/// The chosen endpoint and the connection the call goes on.
pub(super) type Choice = (Arc<Endpoint>, Arc<Connection>);

/// Picks an endpoint that is up, by `policy`, among those not in `tried`;
/// if every endpoint that is up was tried, among all that are up.
pub(super) fn pick(
    endpoints: &[Arc<Endpoint>],
    policy: Policy,
    turn: &AtomicUsize,
    tried: &[usize],
) -> Option<Choice> {
    if let [only] = endpoints {
        return only.usable().map(|c| (only.clone(), c));
    }
    let fresh = |e: &Arc<Endpoint>| !tried.contains(&key(e));
    choose(endpoints, policy, turn, &fresh).or_else(|| choose(endpoints, policy, turn, &|_| true))
}

/// An endpoint's identity in a call's list of those it tried.
pub(super) fn key(endpoint: &Arc<Endpoint>) -> usize {
    Arc::as_ptr(endpoint) as usize
}

fn choose(
    endpoints: &[Arc<Endpoint>],
    policy: Policy,
    turn: &AtomicUsize,
    allowed: &dyn Fn(&Arc<Endpoint>) -> bool,
) -> Option<Choice> {
    let n = endpoints.len();
    let usable = |i: usize| {
        let e = &endpoints[i % n];
        allowed(e)
            .then(|| e.usable().map(|c| (e.clone(), c)))
            .flatten()
    };
    match policy {
        Policy::PickFirst => (0..n).find_map(usable),
        Policy::RoundRobin => {
            let start = turn.fetch_add(1, Ordering::Relaxed);
            (start..start + n).find_map(usable)
        }
        Policy::LeastRequest => {
            // Two distinct endpoints at random; the one with fewer calls in
            // flight. When neither is usable, the least loaded of the rest.
            let a = random() % n;
            let b = (a + 1 + random() % (n - 1).max(1)) % n;
            match (usable(a), usable(b)) {
                (Some(x), Some(y)) => Some(if y.0.in_flight() < x.0.in_flight() {
                    y
                } else {
                    x
                }),
                (Some(x), None) | (None, Some(x)) => Some(x),
                (None, None) => (0..n).filter_map(usable).min_by_key(|(e, _)| e.in_flight()),
            }
        }
    }
}

/// A fast thread-local pseudo-random number (xorshift64*), seeded once per
/// thread from the standard library's random hasher keys.
fn random() -> usize {
    thread_local! {
        static STATE: Cell<u64> = Cell::new(RandomState::new().hash_one(0u64) | 1);
    }
    STATE.with(|state| {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as usize
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_random_choices_cover_every_pair_of_distinct_endpoints() {
        for n in 2..6 {
            let mut seen = std::collections::HashSet::new();
            for _ in 0..10_000 {
                let a = random() % n;
                let b = (a + 1 + random() % (n - 1).max(1)) % n;
                assert_ne!(a, b);
                seen.insert((a, b));
            }
            assert_eq!(seen.len(), n * (n - 1), "{n}");
        }
    }
}
