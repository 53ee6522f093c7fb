//! The checks every setting passes, and the errors they give: each names
//! the key, its table and what to write instead.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use super::{Balance, ConfigError, KNOWN_CODECS, Limits, MAX_FRAME_BYTES, Reconnect};

pub(super) fn check_frame_bytes(table: &str, bytes: usize) -> Result<usize, ConfigError> {
    if !MAX_FRAME_BYTES.contains(&bytes) {
        let (min, max) = MAX_FRAME_BYTES.into_inner();
        let expected = format!("a byte count from {min} (1 KiB) to {max} (1 GiB)");
        return Err(invalid(format!("{table}.max_frame_bytes"), bytes, expected));
    }
    Ok(bytes)
}

pub(crate) fn positive(key: &str, timeout: Duration) -> Result<Duration, ConfigError> {
    if timeout.is_zero() {
        return Err(invalid(key, 0, "a positive number of milliseconds"));
    }
    Ok(timeout)
}

pub(super) fn check_reconnect(policy: Reconnect) -> Result<Reconnect, ConfigError> {
    match policy.invalid() {
        Some((key, value)) => Err(invalid(
            format!("client.reconnect.{key}"),
            value,
            "at least 1",
        )),
        None => Ok(policy),
    }
}

pub(super) fn check_balance(balance: Balance) -> Result<Balance, ConfigError> {
    match balance.invalid() {
        Some((key, value, expected)) => {
            Err(invalid(format!("client.balance.{key}"), value, expected))
        }
        None => Ok(balance),
    }
}

pub(super) fn check_limits(limits: Limits) -> Result<Limits, ConfigError> {
    match limits.invalid() {
        Some((key, value)) => Err(invalid(format!("server.limits.{key}"), value, "at least 1")),
        None => Ok(limits),
    }
}

pub(crate) fn address(key: &str, address: String) -> Result<String, ConfigError> {
    if address.trim().is_empty() {
        let expected = "an address such as \"127.0.0.1:17000\"";
        return Err(invalid(key, format!("{address:?}"), expected));
    }
    Ok(address)
}

pub(super) fn check_codecs(codecs: Vec<String>) -> Result<Vec<String>, ConfigError> {
    if codecs.is_empty() {
        let expected = format!("at least one of {}", quoted(KNOWN_CODECS));
        return Err(invalid("server.codecs", "[]", expected));
    }
    codecs
        .into_iter()
        .map(|c| check_codec("server.codecs", c, KNOWN_CODECS))
        .collect()
}

pub(super) fn check_codec(key: &str, codec: String, known: &[&str]) -> Result<String, ConfigError> {
    if !known.contains(&codec.as_str()) {
        let expected = format!("one of {}", quoted(known));
        return Err(invalid(key, format!("{codec:?}"), expected));
    }
    Ok(codec)
}

pub(crate) fn invalid(
    key: impl Into<String>,
    value: impl fmt::Display,
    expected: impl Into<String>,
) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.into(),
        value: value.to_string(),
        expected: expected.into(),
    }
}

pub(crate) fn read_error(path: &Path, source: std::io::Error) -> ConfigError {
    ConfigError::Read {
        path: path.to_owned(),
        source,
    }
}

/// `a`, `b`, `c`
pub(super) fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
