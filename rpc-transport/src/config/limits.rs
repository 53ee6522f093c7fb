//! The server's limits and the client's reconnect policy: the nested
//! `[server.limits]` and `[client.reconnect]` tables of the config file.
//!
//! ```toml
//! [server.limits]
//! max_connections = 10000        # more are accepted and closed at once
//! max_pending_handshakes = 4096  # not yet authenticated, every listener together; past it the least advanced is shed
//! max_pending_per_ip = 2048      # of those, from one source address (trusted_proxies exempt)
//! trusted_proxies = []           # addresses exempt from per-address caps and password delays
//! first_answer_timeout_ms = 2000 # a TCP peer must answer the challenge within this
//! http_header_timeout_ms = 5000  # an HTTP connection must send a whole request head within this
//! max_in_flight = 1024           # calls running per connection; past it, reading pauses
//! max_queued_reply_bytes = 33554432 # reply bytes queued per connection; past it, reading pauses
//! max_batch = 1024               # calls in one JSON-RPC batch
//! max_invalid_messages = 64      # malformed or empty messages before the connection is closed
//! idle_timeout_ms = 600000       # a connection with no call and no byte for this long is closed; 0 = never
//! frame_timeout_ms = 30000       # a frame, once begun, must arrive whole within this
//! write_timeout_ms = 30000       # in each window this long, a peer must take 64 KiB of its replies (or all left)
//! shutdown_grace_ms = 10000      # how long calls in flight may finish at shutdown
//! max_streams = 64               # streams open per connection (either way); they do not count as calls in flight
//! stream_window_items = 4096     # the credit a stream the server receives starts with, in items…
//! stream_window_bytes = 262144   # …and in bytes: what one stalled stream may make it hold
//!
//! [client.reconnect]             # absent: a lost connection stays lost
//! initial_backoff_ms = 100
//! max_backoff_ms = 5000
//! wait = false                   # calls while disconnected: fail at once, or wait (up to their timeout)
//! ```
//!
//! Every limit is counted in messages as well as bytes: the frame limit
//! bounds one message's size, these bound how many a peer may have the
//! server hold at once or send in vain.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// What one server lets its peers cost it; see the [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Connections served at once, handshaking ones included; one more is
    /// closed right after `accept`, and the others are unaffected.
    pub max_connections: usize,
    /// Connections not yet authenticated, on every listener of the server
    /// together: TCP connections in the authkey handshake, and HTTP
    /// connections that have not sent a whole request. When one more
    /// arrives, one of them is shed (see [`crate::server`]), so a flood of
    /// silent peers cannot keep a real client out.
    pub max_pending_handshakes: usize,
    /// Of those, how many one source address may hold; past it, that
    /// address's own are shed first. Addresses in `trusted_proxies` are
    /// exempt.
    pub max_pending_per_ip: usize,
    /// Source addresses (a load balancer in front of the server) exempt from
    /// the per-address cap and from the delay after failed HTTP passwords:
    /// behind them every client shares one address.
    pub trusted_proxies: Vec<IpAddr>,
    /// How long a new TCP connection may take to answer the server's
    /// challenge before it is dropped as junk.
    #[serde(rename = "first_answer_timeout_ms", deserialize_with = "ms")]
    pub first_answer_timeout: Duration,
    /// How long an HTTP connection may take to send a whole request head
    /// (first request, and each next one on a kept-alive connection).
    #[serde(rename = "http_header_timeout_ms", deserialize_with = "ms")]
    pub http_header_timeout: Duration,
    /// Calls of one connection whose handlers have not stopped; at the
    /// limit the server stops reading that connection until one ends.
    pub max_in_flight: usize,
    /// Encoded reply bytes one connection may have waiting to be written;
    /// past it the server stops reading that connection until the peer
    /// takes them, as at `max_in_flight`.
    pub max_queued_reply_bytes: usize,
    /// Calls in one JSON-RPC batch; a larger batch is answered with one error.
    pub max_batch: usize,
    /// Messages that are not valid requests (empty frames included) one
    /// connection may send before it is closed.
    pub max_invalid_messages: u32,
    /// A connection with no call running and nothing read for this long is
    /// closed; `None` (`0` in the file) never.
    #[serde(rename = "idle_timeout_ms", deserialize_with = "optional_ms")]
    pub idle_timeout: Option<Duration>,
    /// A frame whose first bytes have arrived must arrive whole within this,
    /// or the connection is closed: a peer cannot hold a connection by
    /// trickling bytes.
    #[serde(rename = "frame_timeout_ms", deserialize_with = "ms")]
    pub frame_timeout: Duration,
    /// The window over which a peer's reading is measured: in each window
    /// of this length it must take at least 64 KiB of its replies (or all
    /// that is left), or the connection is closed. A peer that sends
    /// requests but never reads the answers holds at most
    /// `max_queued_reply_bytes` and this much time.
    #[serde(rename = "write_timeout_ms", deserialize_with = "ms")]
    pub write_timeout: Duration,
    /// At shutdown, how long calls in flight may take to finish before they
    /// are answered with a "server shutting down" error.
    #[serde(rename = "shutdown_grace_ms", deserialize_with = "ms")]
    pub shutdown_grace: Duration,
    /// Streams one connection may have open at once, either way. An open
    /// stream is not a call in flight, and keeps its connection from
    /// idling out.
    pub max_streams: usize,
    /// The credit, in items, each stream the server receives starts with
    /// (and is granted again as its handler takes them).
    pub stream_window_items: u32,
    /// The same in bytes: with `max_streams`, what a connection's streams
    /// may make the server hold.
    pub stream_window_bytes: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 10_000,
            max_pending_handshakes: 4096,
            max_pending_per_ip: 2048,
            trusted_proxies: Vec::new(),
            first_answer_timeout: Duration::from_secs(2),
            http_header_timeout: Duration::from_secs(5),
            max_in_flight: 1024,
            max_queued_reply_bytes: 32 * 1024 * 1024,
            max_batch: 1024,
            max_invalid_messages: 64,
            idle_timeout: Some(Duration::from_secs(600)),
            frame_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
            max_streams: 64,
            stream_window_items: rpc_core::stream::Window::DEFAULT.items,
            stream_window_bytes: rpc_core::stream::Window::DEFAULT.bytes,
        }
    }
}

impl Limits {
    /// The window a stream the server receives starts with.
    pub fn stream_window(&self) -> rpc_core::stream::Window {
        rpc_core::stream::Window {
            items: self.stream_window_items,
            bytes: self.stream_window_bytes,
        }
    }

    /// The first limit that cannot work, as `(key, value)`.
    pub(crate) fn invalid(&self) -> Option<(&'static str, usize)> {
        let ms = |d: Duration| usize::try_from(d.as_millis()).unwrap_or(usize::MAX);
        [
            ("write_timeout_ms", ms(self.write_timeout)),
            ("shutdown_grace_ms", ms(self.shutdown_grace)),
            ("first_answer_timeout_ms", ms(self.first_answer_timeout)),
            ("http_header_timeout_ms", ms(self.http_header_timeout)),
            ("frame_timeout_ms", ms(self.frame_timeout)),
            ("max_connections", self.max_connections),
            ("max_pending_handshakes", self.max_pending_handshakes),
            ("max_pending_per_ip", self.max_pending_per_ip),
            ("max_in_flight", self.max_in_flight),
            ("max_queued_reply_bytes", self.max_queued_reply_bytes),
            ("max_batch", self.max_batch),
            ("max_streams", self.max_streams),
            ("stream_window_items", self.stream_window_items as usize),
            ("stream_window_bytes", self.stream_window_bytes as usize),
        ]
        .into_iter()
        .find(|&(_, value)| value == 0)
    }
}

/// How a client reconnects after its connection drops; see the [module docs](self).
///
/// Calls in flight when the connection drops fail with "connection lost";
/// the client never sends a call twice (at most once).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Reconnect {
    /// The wait before the first attempt; it doubles after each failure.
    #[serde(rename = "initial_backoff_ms", deserialize_with = "ms")]
    pub initial_backoff: Duration,
    /// The longest wait between attempts.
    #[serde(rename = "max_backoff_ms", deserialize_with = "ms")]
    pub max_backoff: Duration,
    /// Whether a call made while disconnected waits for the connection (up
    /// to its timeout) instead of failing at once.
    pub wait: bool,
}

impl Default for Reconnect {
    fn default() -> Reconnect {
        Reconnect {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            wait: false,
        }
    }
}

impl Reconnect {
    /// The first setting that cannot work, as `(key, value)`.
    pub(crate) fn invalid(&self) -> Option<(&'static str, usize)> {
        let ms = |d: Duration| usize::try_from(d.as_millis()).unwrap_or(usize::MAX);
        [
            ("initial_backoff_ms", ms(self.initial_backoff)),
            ("max_backoff_ms", ms(self.max_backoff)),
        ]
        .into_iter()
        .find(|&(_, value)| value == 0)
    }

    /// The wait before attempt `attempt` (0-based): doubling from
    /// `initial_backoff` up to `max_backoff`, less up to half of it at
    /// random, so clients dropped together do not return together.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let full = self
            .initial_backoff
            .saturating_mul(1 << attempt.min(16))
            .min(self.max_backoff);
        let mut random = [0u8; 2];
        // Without randomness the wait is merely not jittered.
        let _ = getrandom::fill(&mut random);
        let fraction = f64::from(u16::from_le_bytes(random)) / f64::from(u16::MAX);
        full.mul_f64(1.0 - fraction / 2.0)
    }
}

fn ms<'de, D: Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
    u64::deserialize(de).map(Duration::from_millis)
}

fn optional_ms<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Duration>, D::Error> {
    ms(de).map(|d| (!d.is_zero()).then_some(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_ceiling_with_at_most_half_taken_off() {
        let policy = Reconnect::default();
        for (attempt, full) in [(0, 100), (1, 200), (3, 800), (10, 5000), (40, 5000)] {
            let wait = policy.backoff(attempt);
            let full = Duration::from_millis(full);
            assert!(wait <= full && wait >= full / 2, "{attempt}: {wait:?}");
        }
    }

    #[test]
    fn a_zero_limit_is_reported_by_name() {
        let limits = Limits {
            max_in_flight: 0,
            ..Limits::default()
        };
        assert_eq!(limits.invalid(), Some(("max_in_flight", 0)));
        assert_eq!(Limits::default().invalid(), None);
    }
}
