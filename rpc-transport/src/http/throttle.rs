//! Failed HTTP passwords, counted per source address: after
//! [`FREE_FAILURES`] in a minute, each further failure from that address is
//! answered late, [`FIRST_DELAY`] doubling up to [`MAX_DELAY`].
//!
//! ```text
//! failures from 10.0.0.7 this minute:  1 … 5   6      7      8      9      10 …
//! their 401 is sent after:             0 ms    100 ms 200 ms 400 ms 800 ms 1.6 s, then 2 s
//! ```
//!
//! Only failures wait: a right password is answered at once, whatever the
//! address did before, so clients sharing an address with a guesser (behind
//! a NAT or a load balancer) are slowed only when they fail, and never
//! locked out. Addresses in `trusted_proxies` are not counted. IPv6
//! addresses count by their /64, which one host usually holds whole. The
//! table holds at most [`MAX_ADDRESSES`]; past it, expired entries go, then
//! the oldest.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures an address may have in a [`WINDOW`] before they are delayed.
pub(crate) const FREE_FAILURES: u32 = 5;

/// How long failures are remembered, counted from an address's first.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);

/// The delay of the first failure past [`FREE_FAILURES`].
pub(crate) const FIRST_DELAY: Duration = Duration::from_millis(100);

/// The longest delay a failure gets.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(2);

/// Addresses the table remembers at once.
pub(crate) const MAX_ADDRESSES: usize = 4096;

/// The failures of every address; one per gateway.
#[derive(Debug)]
pub(crate) struct Throttle {
    trusted: Vec<IpAddr>,
    max_delay: Duration,
    table: Mutex<HashMap<IpAddr, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    since: Instant,
    count: u32,
}

impl Throttle {
    /// A throttle exempting `trusted`, whose delays end by `max_delay` (the
    /// request timeout, so a delayed answer is still a 401, not a 504).
    pub(crate) fn new(trusted: &[IpAddr], max_delay: Duration) -> Throttle {
        Throttle {
            trusted: trusted.iter().map(|ip| ip.to_canonical()).collect(),
            max_delay: max_delay.min(MAX_DELAY),
            table: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a failed password from `peer`: how long to wait before
    /// answering it.
    pub(crate) fn failed(&self, peer: IpAddr, now: Instant) -> Duration {
        let peer = peer.to_canonical();
        if self.trusted.contains(&peer) {
            return Duration::ZERO;
        }
        let key = match peer {
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
            v4 => v4,
        };
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if table.len() >= MAX_ADDRESSES && !table.contains_key(&key) {
            make_room(&mut table, now);
        }
        let failures = table.entry(key).or_insert(Failures {
            since: now,
            count: 0,
        });
        if now.saturating_duration_since(failures.since) > WINDOW {
            *failures = Failures {
                since: now,
                count: 0,
            };
        }
        failures.count = failures.count.saturating_add(1);
        delay(failures.count).min(self.max_delay)
    }
}

/// The delay of an address's `count`th failure in a window.
fn delay(count: u32) -> Duration {
    match count.checked_sub(FREE_FAILURES + 1) {
        None => Duration::ZERO,
        Some(doublings) => FIRST_DELAY
            .saturating_mul(1 << doublings.min(16))
            .min(MAX_DELAY),
    }
}

/// Forgets expired entries; if none has, the oldest.
fn make_room(table: &mut HashMap<IpAddr, Failures>, now: Instant) {
    table.retain(|_, f| now.saturating_duration_since(f.since) <= WINDOW);
    if table.len() >= MAX_ADDRESSES {
        let oldest = table.iter().min_by_key(|(_, f)| f.since).map(|(ip, _)| *ip);
        if let Some(oldest) = oldest {
            table.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn failures_past_the_free_ones_wait_longer_up_to_the_cap() {
        let throttle = Throttle::new(&[], Duration::from_secs(30));
        let now = Instant::now();
        let delays: Vec<u128> = (0..12)
            .map(|_| throttle.failed(ip("10.0.0.7"), now).as_millis())
            .collect();
        assert_eq!(
            delays,
            [0, 0, 0, 0, 0, 100, 200, 400, 800, 1600, 2000, 2000]
        );
        assert_eq!(throttle.failed(ip("10.0.0.8"), now), Duration::ZERO);
    }

    #[test]
    fn failures_are_forgotten_after_the_window() {
        let throttle = Throttle::new(&[], Duration::from_secs(30));
        let now = Instant::now();
        for _ in 0..10 {
            throttle.failed(ip("10.0.0.7"), now);
        }
        let later = now + WINDOW + Duration::from_secs(1);
        assert_eq!(throttle.failed(ip("10.0.0.7"), later), Duration::ZERO);
    }

    #[test]
    fn trusted_proxies_are_not_delayed_and_the_cap_follows_the_timeout() {
        let throttle = Throttle::new(&[ip("10.0.0.1")], Duration::from_millis(300));
        let now = Instant::now();
        for _ in 0..20 {
            assert_eq!(throttle.failed(ip("10.0.0.1"), now), Duration::ZERO);
            assert_eq!(throttle.failed(ip("::ffff:10.0.0.1"), now), Duration::ZERO);
        }
        let last = (0..20).map(|_| throttle.failed(ip("10.0.0.2"), now)).last();
        assert_eq!(last, Some(Duration::from_millis(300)));
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_prefix() {
        let throttle = Throttle::new(&[], Duration::from_secs(30));
        let now = Instant::now();
        for i in 0..FREE_FAILURES {
            throttle.failed(ip(&format!("2001:db8::{i}")), now);
        }
        assert_eq!(throttle.failed(ip("2001:db8::ffff"), now), FIRST_DELAY);
        assert_eq!(throttle.failed(ip("2001:db8:0:1::1"), now), Duration::ZERO);
    }

    #[test]
    fn the_table_stays_within_its_size() {
        let throttle = Throttle::new(&[], Duration::from_secs(30));
        let now = Instant::now();
        for i in 0..(MAX_ADDRESSES as u32 + 100) {
            throttle.failed(IpAddr::from(i.to_be_bytes()), now);
        }
        assert_eq!(throttle.table.lock().unwrap().len(), MAX_ADDRESSES);
    }
}
