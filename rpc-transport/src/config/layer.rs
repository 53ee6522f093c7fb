//! The layers a configuration is resolved from (builder calls, the
//! environment, the file), each a [`Layer`] of optional settings, and where
//! the authkey comes from.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::check::{check_frame_bytes, invalid, positive, read_error};
use super::{
    AuthKey, Balance, ClientTls, ConfigError, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_FRAME_BYTES,
    Limits, Reconnect, ServerTls, Shared,
};

impl Shared {
    pub(super) fn resolve(table: &'static str, layer: &mut Layer) -> Result<Self, ConfigError> {
        let key = layer
            .authkey
            .take()
            .ok_or(ConfigError::MissingAuthKey { table })?;
        let frame_bytes = layer.max_frame_bytes.unwrap_or(DEFAULT_MAX_FRAME_BYTES);
        let handshake_key = format!("{table}.handshake_timeout_ms");
        let handshake_timeout = layer.handshake_timeout.unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT);
        Ok(Self {
            authkey: key.load(table)?,
            max_frame_bytes: check_frame_bytes(table, frame_bytes)?,
            handshake_timeout: positive(&handshake_key, handshake_timeout)?,
            allow_legacy_auth: layer.allow_legacy_auth.unwrap_or(false),
            channel_binding: layer.channel_binding.unwrap_or(true),
        })
    }
}

/// Where the builders read `RPC_*` variables; the process environment unless replaced.
#[derive(Clone)]
pub(super) struct Env(pub(super) Arc<Lookup>);

pub(super) type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

impl Env {
    pub(super) fn get(&self, name: &str) -> Option<String> {
        (self.0)(name)
    }

    pub(super) fn authkey(&self) -> Option<KeySource> {
        self.get("RPC_AUTHKEY")
            .map(|key| KeySource::Key(AuthKey::new(key)))
    }
}

impl Default for Env {
    fn default() -> Self {
        Self(Arc::new(|name| std::env::var(name).ok()))
    }
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Env(..)")
    }
}

/// Settings from one source (builder calls, the environment or the file); `None` = not set.
#[derive(Clone, Debug, Default)]
pub(super) struct Layer {
    /// The client's `connect`, one address or several.
    pub(super) address: Option<Vec<String>>,
    /// The server's `listen`, one address or several.
    pub(super) listen: Option<Vec<String>>,
    pub(super) listen_plain: Option<Vec<String>>,
    pub(super) server_tls: Option<ServerTls>,
    pub(super) client_tls: Option<ClientTls>,
    /// Off only in test builds (the hidden `without_channel_binding`).
    pub(super) channel_binding: Option<bool>,
    pub(super) authkey: Option<KeySource>,
    pub(super) codecs: Option<Vec<String>>,
    pub(super) codec: Option<String>,
    pub(super) max_frame_bytes: Option<usize>,
    pub(super) handshake_timeout: Option<Duration>,
    pub(super) call_timeout: Option<Duration>,
    pub(super) allow_legacy_auth: Option<bool>,
    pub(super) python_compat: Option<bool>,
    pub(super) limits: Option<Limits>,
    pub(super) reconnect: Option<Reconnect>,
    pub(super) balance: Option<Balance>,
}

impl Layer {
    /// Fills the settings `self` leaves unset from `lower`.
    pub(super) fn or(self, lower: Layer) -> Layer {
        Layer {
            address: self.address.or(lower.address),
            listen: self.listen.or(lower.listen),
            listen_plain: self.listen_plain.or(lower.listen_plain),
            server_tls: self.server_tls.or(lower.server_tls),
            client_tls: self.client_tls.or(lower.client_tls),
            channel_binding: self.channel_binding.or(lower.channel_binding),
            authkey: self.authkey.or(lower.authkey),
            codecs: self.codecs.or(lower.codecs),
            codec: self.codec.or(lower.codec),
            max_frame_bytes: self.max_frame_bytes.or(lower.max_frame_bytes),
            handshake_timeout: self.handshake_timeout.or(lower.handshake_timeout),
            call_timeout: self.call_timeout.or(lower.call_timeout),
            allow_legacy_auth: self.allow_legacy_auth.or(lower.allow_legacy_auth),
            python_compat: self.python_compat.or(lower.python_compat),
            limits: self.limits.or(lower.limits),
            reconnect: self.reconnect.or(lower.reconnect),
            balance: self.balance.or(lower.balance),
        }
    }
}

/// The authkey itself, or the file to read it from when the config is built.
#[derive(Clone, Debug)]
pub(super) enum KeySource {
    Key(AuthKey),
    File(PathBuf),
}

impl KeySource {
    pub(super) fn load(self, table: &str) -> Result<AuthKey, ConfigError> {
        let (key, path) = match self {
            KeySource::Key(key) => (key, None),
            KeySource::File(path) => (read_key_file(&path)?, Some(path)),
        };
        if !key.0.is_empty() {
            return Ok(key);
        }
        Err(match path {
            Some(path) => invalid(
                format!("{table}.authkey_file"),
                format!("`{}`", path.display()),
                "a non-empty file",
            ),
            None => invalid(format!("{table}.authkey"), "\"\"", "a non-empty key"),
        })
    }
}

pub(crate) fn read_key_file(path: &Path) -> Result<AuthKey, ConfigError> {
    let mut key = std::fs::read(path).map_err(|e| read_error(path, e))?;
    if key.ends_with(b"\n") {
        key.pop();
        if key.ends_with(b"\r") {
            key.pop();
        }
    }
    Ok(AuthKey(key))
}
