//! The `[server]` and `[client]` tables as written in the file, read into
//! a [`Layer`](super::layer::Layer) each.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::layer::{KeySource, Layer};
use super::tls::{ClientTlsTable, OneOrMany, ServerTlsTable};
use super::{AuthKey, Balance, ConfigError, KNOWN_TABLES, Limits, Reconnect};

/// The `[server]` table as written in the file.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ServerTable {
    pub(super) listen: Option<OneOrMany>,
    pub(super) listen_plain: Option<Vec<String>>,
    pub(super) authkey: Option<String>,
    pub(super) authkey_file: Option<PathBuf>,
    pub(super) codecs: Option<Vec<String>>,
    pub(super) max_frame_bytes: Option<usize>,
    pub(super) handshake_timeout_ms: Option<u64>,
    pub(super) allow_legacy_auth: Option<bool>,
    pub(super) python_compat: Option<bool>,
    pub(super) limits: Option<Limits>,
    pub(super) tls: Option<ServerTlsTable>,
}

/// The `[client]` table as written in the file.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClientTable {
    pub(super) connect: Option<OneOrMany>,
    pub(super) authkey: Option<String>,
    pub(super) authkey_file: Option<PathBuf>,
    pub(super) codec: Option<String>,
    pub(super) call_timeout_ms: Option<u64>,
    pub(super) max_frame_bytes: Option<usize>,
    pub(super) handshake_timeout_ms: Option<u64>,
    pub(super) allow_legacy_auth: Option<bool>,
    pub(super) reconnect: Option<Reconnect>,
    pub(super) balance: Option<Balance>,
    pub(super) tls: Option<ClientTlsTable>,
}

impl ServerTable {
    pub(super) fn into_layer(self, base: &Path) -> Result<Layer, ConfigError> {
        Ok(Layer {
            listen: self.listen.map(OneOrMany::into_vec),
            listen_plain: self.listen_plain,
            server_tls: self.tls.map(|t| t.resolve(base)).transpose()?,
            authkey: key_source("server", self.authkey, self.authkey_file, base)?,
            codecs: self.codecs,
            max_frame_bytes: self.max_frame_bytes,
            handshake_timeout: self.handshake_timeout_ms.map(Duration::from_millis),
            allow_legacy_auth: self.allow_legacy_auth,
            python_compat: self.python_compat,
            limits: self.limits,
            ..Layer::default()
        })
    }
}

impl ClientTable {
    pub(super) fn into_layer(self, base: &Path) -> Result<Layer, ConfigError> {
        Ok(Layer {
            address: self.connect.map(OneOrMany::into_vec),
            authkey: key_source("client", self.authkey, self.authkey_file, base)?,
            codec: self.codec,
            call_timeout: self.call_timeout_ms.map(Duration::from_millis),
            max_frame_bytes: self.max_frame_bytes,
            handshake_timeout: self.handshake_timeout_ms.map(Duration::from_millis),
            allow_legacy_auth: self.allow_legacy_auth,
            reconnect: self.reconnect,
            balance: self.balance,
            client_tls: self.tls.map(|t| t.resolve(base)).transpose()?,
            ..Layer::default()
        })
    }
}

/// Parses `text` and returns its `[table]` (empty if absent), rejecting unknown tables.
pub(crate) fn read_table<T: DeserializeOwned + Default>(
    text: &str,
    table: &'static str,
) -> Result<T, ConfigError> {
    let mut doc: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Syntax {
        message: e.to_string().trim_end().to_owned(),
    })?;
    if let Some(name) = doc.keys().find(|k| !KNOWN_TABLES.contains(&k.as_str())) {
        return Err(ConfigError::UnknownTable { name: name.clone() });
    }
    let Some(value) = doc.remove(table) else {
        return Ok(T::default());
    };
    // toml puts the key on a second line ("...\nin `codecs`"); keep the message on one.
    let detail = |e: toml::de::Error| e.to_string().trim_end().replace('\n', " ");
    value.try_into().map_err(|e| ConfigError::Table {
        table,
        detail: detail(e),
    })
}

pub(super) fn key_source(
    table: &'static str,
    key: Option<String>,
    file: Option<PathBuf>,
    base: &Path,
) -> Result<Option<KeySource>, ConfigError> {
    match (key, file) {
        (Some(_), Some(_)) => Err(ConfigError::ConflictingKeys { table }),
        (Some(key), None) => Ok(Some(KeySource::Key(AuthKey::new(key)))),
        (None, Some(path)) => Ok(Some(KeySource::File(base.join(path)))),
        (None, None) => Ok(None),
    }
}
