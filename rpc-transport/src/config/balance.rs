//! `[client.balance]`: how a client with several endpoints spreads its
//! calls, checks their health, re-resolves their names and retries.
//!
//! ```toml
//! [client]
//! connect = ["10.0.0.1:17000", "10.0.0.2:17000"]   # or one name that resolves to several
//!
//! [client.balance]
//! policy = "least_request"     # or "round_robin", "pick_first"
//! health_interval_ms = 1000    # ping idle connections; a failed ping ejects the endpoint
//! resolve_interval_ms = 30000  # re-resolve names (a Kubernetes headless Service, say)
//! max_retries = 2              # for calls that are safe to repeat, within their deadline
//! ```

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// The most retries a call may be given: each retry is a new attempt on
/// the servers, so a large number multiplies load when they are in trouble.
pub const MAX_RETRIES: u32 = 10;

/// `[client.balance]`; see the [module docs](self). Its `max_retries` also
/// applies, at its default, to a client without the table.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Balance {
    /// Which endpoint takes a call.
    pub policy: Policy,
    /// How often an idle connection is pinged; a ping unanswered within
    /// this long ejects its endpoint.
    #[serde(rename = "health_interval_ms", deserialize_with = "ms")]
    pub health_interval: Duration,
    /// How often the names in `connect` are resolved again; endpoints that
    /// appear are added, those that vanish are drained.
    #[serde(rename = "resolve_interval_ms", deserialize_with = "ms")]
    pub resolve_interval: Duration,
    /// How many times a call that is safe to repeat is sent again (at most
    /// [`MAX_RETRIES`]): one refused without running, whatever the method,
    /// or an idempotent one whose connection was lost.
    pub max_retries: u32,
}

/// Which endpoint takes a call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// The power of two random choices: of two endpoints picked at random,
    /// the one with fewer calls in flight (counted, not estimated).
    #[default]
    LeastRequest,
    /// Each endpoint in turn.
    RoundRobin,
    /// The first endpoint that is up, in `connect` order: the others stand by.
    PickFirst,
}

impl Default for Balance {
    fn default() -> Balance {
        Balance {
            policy: Policy::LeastRequest,
            health_interval: Duration::from_secs(1),
            resolve_interval: Duration::from_secs(30),
            max_retries: 2,
        }
    }
}

impl Balance {
    /// The first setting that cannot work, as `(key, value, expected)`.
    pub(crate) fn invalid(&self) -> Option<(&'static str, u128, &'static str)> {
        let positive = "at least 1";
        if self.health_interval.is_zero() {
            return Some(("health_interval_ms", 0, positive));
        }
        if self.resolve_interval.is_zero() {
            return Some(("resolve_interval_ms", 0, positive));
        }
        (self.max_retries > MAX_RETRIES).then_some((
            "max_retries",
            u128::from(self.max_retries),
            "at most 10",
        ))
    }
}

fn ms<'de, D: Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
    u64::deserialize(de).map(Duration::from_millis)
}
