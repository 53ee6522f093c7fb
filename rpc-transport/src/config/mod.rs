//! Configuration of the server and the client: a TOML file, the environment and builder calls.
//!
//! ```
//! use std::time::Duration;
//! use rpc_transport::config::{ClientConfig, ServerConfig};
//!
//! let file = r#"
//!     [server]
//!     listen = "127.0.0.1:17000"
//!     authkey = "peekaboo"
//!     codecs = ["json"]
//! "#;
//! let server = ServerConfig::builder().no_env().load_toml(file)?.build()?;
//! assert_eq!(server.listen(), "127.0.0.1:17000");
//! assert_eq!(server.codecs(), ["json"]);
//!
//! let client = ClientConfig::builder()
//!     .no_env()
//!     .connect("127.0.0.1:17000")
//!     .authkey("peekaboo")
//!     .call_timeout(Duration::from_secs(5))
//!     .build()?;
//! assert_eq!(client.codec(), "bincode");
//! # Ok::<(), rpc_transport::config::ConfigError>(())
//! ```
//!
//! # The file
//!
//! ```toml
//! [server]
//! listen = "127.0.0.1:17000"
//! authkey = "peekaboo"
//! codecs = ["bincode", "json"]
//!
//! [client]
//! connect = "127.0.0.1:17000"
//! authkey_file = "secret.key"
//! codec = "json"
//! ```
//!
//! | key | table | default | meaning |
//! |---|---|---|---|
//! | `listen` | server | `"127.0.0.1:0"` | address to listen on, `"host:port"` |
//! | `connect` | client | required | address of the server, `"host:port"` |
//! | `authkey` | both | required | shared secret of the handshake |
//! | `authkey_file` | both | — | file holding the secret instead; one trailing newline (`\n` or `\r\n`) is dropped; a relative path is relative to the config file |
//! | `codecs` | server | all of [`KNOWN_CODECS`] | codecs the server accepts |
//! | `codec` | client | `"bincode"` | codec the client speaks; `"pickle"` or `"py-json"` ([`PYTHON_CODECS`]) call a Python `multiprocessing` server in the pattern |
//! | `max_frame_bytes` | both | `16777216` (16 MiB) | largest frame sent or accepted, 1 KiB to 1 GiB |
//! | `handshake_timeout_ms` | both | `5000` | time allowed for the authkey handshake |
//! | `call_timeout_ms` | client | `30000` | time allowed for one call |
//! | `allow_legacy_auth` | both | `false` | accept the MD5 handshake of Python <= 3.11 peers |
//! | `python_compat` | server | `false` | serve stock Python `multiprocessing` clients (pickle and JSON forms) on the same port; the first frame after authentication is then awaited without a time limit, as a Python client sends it at its first call; see [`crate::python`] |
//! | `[server.limits]` | server | see [`Limits`] | connections, handshakes, calls in flight, batch size, invalid messages, idle timeout, shutdown grace |
//! | `[client.reconnect]` | client | absent (no reconnect) | backoff and whether calls wait while disconnected; see [`Reconnect`] |
//!
//! Unknown keys and unknown tables are errors. Known tables that one side does not read
//! (`[client]` for the server, `[server]` for the client) are skipped; `[http]` is read by
//! the HTTP gateway's own configuration (`http::HttpConfig`, with the `http` feature).
//!
//! # Precedence
//!
//! Builder calls beat the environment, the environment beats the file, the file beats the
//! defaults. The environment holds `RPC_AUTHKEY` (both sides) and `RPC_CODEC` (client only);
//! the builders read it through [`ServerConfigBuilder::env`], so tests can supply their own.

use std::fmt;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

pub mod limits;

pub use self::limits::{Limits, Reconnect};

/// Codec names this build understands, in the order a server prefers them.
pub const KNOWN_CODECS: &[&str] = &["bincode", "json"];

/// Codecs a client may name to call a Python `multiprocessing` server in the
/// pattern (see [`crate::python`]); a server's `codecs` never list them, as
/// `python_compat` decides whether Python peers are served.
pub const PYTHON_CODECS: &[&str] = &["pickle", "py-json"];

/// Top-level tables a config file may hold; this module reads `[server]` and `[client]`.
const KNOWN_TABLES: &[&str] = &["server", "client", "http"];
const DEFAULT_LISTEN: &str = "127.0.0.1:0";
const DEFAULT_CODEC: &str = "bincode";
const DEFAULT_MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;
const MAX_FRAME_BYTES: RangeInclusive<usize> =
    crate::wire::hello::MIN_FRAME_BYTES..=1024 * 1024 * 1024;
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_millis(5_000);
const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_millis(30_000);

/// The shared secret both peers prove they know during the handshake.
///
/// ```
/// use rpc_transport::config::AuthKey;
///
/// let key = AuthKey::new("peekaboo");
/// assert_eq!(key.as_bytes(), b"peekaboo");
/// assert_eq!(format!("{key:?}"), "AuthKey(***)");
/// ```
#[derive(Clone)]
pub struct AuthKey(Vec<u8>);

impl AuthKey {
    /// Wraps a secret; an empty one is rejected when a config is built.
    pub fn new(key: impl Into<Vec<u8>>) -> Self {
        Self(key.into())
    }

    /// The secret's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthKey(***)")
    }
}

/// Why a configuration could not be loaded or built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file or an `authkey_file` could not be read.
    #[error("cannot read `{}`; check the path and its permissions", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// The text is not valid TOML.
    #[error("the config is not valid TOML; fix the syntax at the place shown:\n{message}")]
    Syntax {
        /// The TOML parser's report, with line and column.
        message: String,
    },
    /// The file has a top-level table no part of the framework reads.
    #[error(
        "unknown table `[{name}]`; the known tables are {}",
        quoted(KNOWN_TABLES)
    )]
    UnknownTable {
        /// The table's name.
        name: String,
    },
    /// A table holds an unknown key or a value of the wrong type.
    #[error("invalid `[{table}]` table: {detail}")]
    Table {
        /// `server` or `client`.
        table: &'static str,
        /// What is wrong, naming the key.
        detail: String,
    },
    /// A setting has a value outside what it accepts.
    #[error("invalid value {value} for `{key}`; expected {expected}")]
    InvalidValue {
        /// The setting, as `table.key`.
        key: String,
        /// The rejected value.
        value: String,
        /// What the setting accepts.
        expected: String,
    },
    /// No source supplied the authkey.
    #[error(
        "no authkey given; set `authkey` or `authkey_file` in the `[{table}]` table, \
         or the RPC_AUTHKEY environment variable"
    )]
    MissingAuthKey {
        /// `server` or `client`.
        table: &'static str,
    },
    /// A required setting has no default and no source supplied it.
    #[error("`{table}.{key}` is not set; write `{key}` in the `[{table}]` table or call `{key}`")]
    Missing {
        /// `server` or `client`.
        table: &'static str,
        /// The key.
        key: &'static str,
    },
    /// A table sets both `authkey` and `authkey_file`.
    #[error("both `authkey` and `authkey_file` are set in the `[{table}]` table; keep only one")]
    ConflictingKeys {
        /// `server` or `client`.
        table: &'static str,
    },
}

/// Settings both sides share.
#[derive(Clone, Debug)]
struct Shared {
    authkey: AuthKey,
    max_frame_bytes: usize,
    handshake_timeout: Duration,
    allow_legacy_auth: bool,
}

/// A validated server configuration; see the [module docs](self) for the keys.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    listen: String,
    codecs: Vec<String>,
    python_compat: bool,
    limits: Limits,
    shared: Shared,
}

/// A validated client configuration; see the [module docs](self) for the keys.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    connect: String,
    codec: String,
    call_timeout: Duration,
    reconnect: Option<Reconnect>,
    shared: Shared,
}

impl ServerConfig {
    /// A builder with every setting unset, reading the process environment.
    pub fn builder() -> ServerConfigBuilder {
        ServerConfigBuilder::default()
    }

    /// Loads the `[server]` table of a file, with the environment applied over it.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        Self::builder().load_file(path)?.build()
    }

    /// The address to listen on, as written (`"host:port"`).
    pub fn listen(&self) -> &str {
        &self.listen
    }

    /// The codecs the server accepts, in order of preference.
    pub fn codecs(&self) -> &[String] {
        &self.codecs
    }

    /// Whether stock Python `multiprocessing` clients are served.
    pub fn python_compat(&self) -> bool {
        self.python_compat
    }

    /// What the server lets its peers cost it.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

impl ClientConfig {
    /// A builder with every setting unset, reading the process environment.
    pub fn builder() -> ClientConfigBuilder {
        ClientConfigBuilder::default()
    }

    /// Loads the `[client]` table of a file, with the environment applied over it.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        Self::builder().load_file(path)?.build()
    }

    /// The server's address, as written (`"host:port"`).
    pub fn connect(&self) -> &str {
        &self.connect
    }

    /// The codec the client speaks.
    pub fn codec(&self) -> &str {
        &self.codec
    }

    /// The time allowed for one call.
    pub fn call_timeout(&self) -> Duration {
        self.call_timeout
    }

    /// How to reconnect after the connection drops; `None`: a lost connection stays lost.
    pub fn reconnect(&self) -> Option<&Reconnect> {
        self.reconnect.as_ref()
    }
}

/// Accessors of the settings both sides share.
macro_rules! shared_accessors {
    ($Config:ty) => {
        impl $Config {
            /// The shared secret of the handshake.
            pub fn authkey(&self) -> &AuthKey {
                &self.shared.authkey
            }

            /// The largest frame sent or accepted, in bytes.
            pub fn max_frame_bytes(&self) -> usize {
                self.shared.max_frame_bytes
            }

            /// The time allowed for the authkey handshake.
            pub fn handshake_timeout(&self) -> Duration {
                self.shared.handshake_timeout
            }

            /// Whether the MD5 handshake of Python <= 3.11 peers is accepted.
            pub fn allow_legacy_auth(&self) -> bool {
                self.shared.allow_legacy_auth
            }
        }
    };
}
shared_accessors!(ServerConfig);
shared_accessors!(ClientConfig);

/// Builds a [`ServerConfig`] from builder calls, the environment and a file, in that precedence.
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct ServerConfigBuilder {
    explicit: Layer,
    file: Layer,
    env: Env,
}

/// Builds a [`ClientConfig`] from builder calls, the environment and a file, in that precedence.
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct ClientConfigBuilder {
    explicit: Layer,
    file: Layer,
    env: Env,
}

impl ServerConfigBuilder {
    /// Sets the address to listen on (`"host:port"`).
    pub fn listen(mut self, address: impl Into<String>) -> Self {
        self.explicit.address = Some(address.into());
        self
    }

    /// Sets the accepted codecs, each one of [`KNOWN_CODECS`].
    pub fn codecs<S: Into<String>>(mut self, codecs: impl IntoIterator<Item = S>) -> Self {
        self.explicit.codecs = Some(codecs.into_iter().map(Into::into).collect());
        self
    }

    /// Sets whether stock Python `multiprocessing` clients are served.
    pub fn python_compat(mut self, enabled: bool) -> Self {
        self.explicit.python_compat = Some(enabled);
        self
    }

    /// Sets every limit at once, replacing the file's `[server.limits]`.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.explicit.limits = Some(limits);
        self
    }

    /// Validates the settings; fails on a missing authkey or a value out of range.
    pub fn build(self) -> Result<ServerConfig, ConfigError> {
        let env = Layer {
            authkey: self.env.authkey(),
            ..Layer::default()
        };
        let mut layer = self.explicit.or(env).or(self.file);
        let all = || KNOWN_CODECS.iter().map(|c| c.to_string()).collect();
        Ok(ServerConfig {
            shared: Shared::resolve("server", &mut layer)?,
            listen: address(
                "server.listen",
                layer.address.unwrap_or(DEFAULT_LISTEN.into()),
            )?,
            codecs: check_codecs(layer.codecs.unwrap_or_else(all))?,
            python_compat: layer.python_compat.unwrap_or(false),
            limits: check_limits(layer.limits.unwrap_or_default())?,
        })
    }

    fn load(mut self, text: &str, base: &Path) -> Result<Self, ConfigError> {
        self.file = read_table::<ServerTable>(text, "server")?.into_layer(base)?;
        Ok(self)
    }
}

impl ClientConfigBuilder {
    /// Sets the server's address (`"host:port"`).
    pub fn connect(mut self, address: impl Into<String>) -> Self {
        self.explicit.address = Some(address.into());
        self
    }

    /// Sets the codec, one of [`KNOWN_CODECS`] or [`PYTHON_CODECS`]; overrides `RPC_CODEC`.
    pub fn codec(mut self, codec: impl Into<String>) -> Self {
        self.explicit.codec = Some(codec.into());
        self
    }

    /// Sets the time allowed for one call.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.explicit.call_timeout = Some(timeout);
        self
    }

    /// Reconnects after the connection drops, as `policy` says; replaces
    /// the file's `[client.reconnect]`.
    pub fn reconnect(mut self, policy: Reconnect) -> Self {
        self.explicit.reconnect = Some(policy);
        self
    }

    /// Validates the settings; fails on a missing authkey or address, or a value out of range.
    pub fn build(self) -> Result<ClientConfig, ConfigError> {
        let env = Layer {
            authkey: self.env.authkey(),
            codec: self.env.get("RPC_CODEC"),
            ..Layer::default()
        };
        let mut layer = self.explicit.or(env).or(self.file);
        let connect = layer.address.take();
        let connect = connect.ok_or(ConfigError::Missing {
            table: "client",
            key: "connect",
        })?;
        let call_timeout = layer.call_timeout.unwrap_or(DEFAULT_CALL_TIMEOUT);
        Ok(ClientConfig {
            shared: Shared::resolve("client", &mut layer)?,
            connect: address("client.connect", connect)?,
            codec: check_codec(
                "client.codec",
                layer.codec.unwrap_or(DEFAULT_CODEC.into()),
                &[KNOWN_CODECS, PYTHON_CODECS].concat(),
            )?,
            call_timeout: positive("client.call_timeout_ms", call_timeout)?,
            reconnect: layer.reconnect.map(check_reconnect).transpose()?,
        })
    }

    fn load(mut self, text: &str, base: &Path) -> Result<Self, ConfigError> {
        self.file = read_table::<ClientTable>(text, "client")?.into_layer(base)?;
        Ok(self)
    }
}

/// Setters both builders share. Each records a builder call, which beats the env and the file.
macro_rules! shared_setters {
    ($Builder:ty) => {
        impl $Builder {
            /// Sets the authkey, overriding `authkey_file`, `RPC_AUTHKEY` and the file.
            pub fn authkey(mut self, key: impl Into<Vec<u8>>) -> Self {
                self.explicit.authkey = Some(KeySource::Key(AuthKey::new(key)));
                self
            }

            /// Reads the authkey from a file at build time, dropping one trailing newline.
            pub fn authkey_file(mut self, path: impl Into<PathBuf>) -> Self {
                self.explicit.authkey = Some(KeySource::File(path.into()));
                self
            }

            /// Sets the largest frame sent or accepted, from 1 KiB to 1 GiB.
            pub fn max_frame_bytes(mut self, bytes: usize) -> Self {
                self.explicit.max_frame_bytes = Some(bytes);
                self
            }

            /// Sets the time allowed for the authkey handshake.
            pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
                self.explicit.handshake_timeout = Some(timeout);
                self
            }

            /// Sets whether the MD5 handshake of Python <= 3.11 peers is accepted.
            pub fn allow_legacy_auth(mut self, allow: bool) -> Self {
                self.explicit.allow_legacy_auth = Some(allow);
                self
            }

            /// Reads `RPC_*` variables through `lookup` instead of the process environment.
            ///
            /// ```
            /// # use rpc_transport::config::ServerConfig;
            /// let config = ServerConfig::builder()
            ///     .env(|name| (name == "RPC_AUTHKEY").then(|| "peekaboo".to_string()))
            ///     .build()?;
            /// assert_eq!(config.authkey().as_bytes(), b"peekaboo");
            /// # Ok::<(), rpc_transport::config::ConfigError>(())
            /// ```
            pub fn env(
                mut self,
                lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
            ) -> Self {
                self.env = Env(Arc::new(lookup));
                self
            }

            /// Ignores the environment.
            pub fn no_env(self) -> Self {
                self.env(|_| None)
            }

            /// Seeds the builder from a TOML file, replacing any file loaded before.
            pub fn load_file(self, path: impl AsRef<Path>) -> Result<Self, ConfigError> {
                let path = path.as_ref();
                let text = std::fs::read_to_string(path).map_err(|e| read_error(path, e))?;
                self.load(&text, path.parent().unwrap_or(Path::new("")))
            }

            /// Seeds the builder from TOML text; a relative `authkey_file` is relative to the
            /// working directory.
            pub fn load_toml(self, text: &str) -> Result<Self, ConfigError> {
                self.load(text, Path::new(""))
            }
        }
    };
}
shared_setters!(ServerConfigBuilder);
shared_setters!(ClientConfigBuilder);

impl Shared {
    fn resolve(table: &'static str, layer: &mut Layer) -> Result<Self, ConfigError> {
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
        })
    }
}

/// Where the builders read `RPC_*` variables; the process environment unless replaced.
#[derive(Clone)]
struct Env(Arc<Lookup>);

type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

impl Env {
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name)
    }

    fn authkey(&self) -> Option<KeySource> {
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
struct Layer {
    address: Option<String>,
    authkey: Option<KeySource>,
    codecs: Option<Vec<String>>,
    codec: Option<String>,
    max_frame_bytes: Option<usize>,
    handshake_timeout: Option<Duration>,
    call_timeout: Option<Duration>,
    allow_legacy_auth: Option<bool>,
    python_compat: Option<bool>,
    limits: Option<Limits>,
    reconnect: Option<Reconnect>,
}

impl Layer {
    /// Fills the settings `self` leaves unset from `lower`.
    fn or(self, lower: Layer) -> Layer {
        Layer {
            address: self.address.or(lower.address),
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
        }
    }
}

/// The authkey itself, or the file to read it from when the config is built.
#[derive(Clone, Debug)]
enum KeySource {
    Key(AuthKey),
    File(PathBuf),
}

impl KeySource {
    fn load(self, table: &str) -> Result<AuthKey, ConfigError> {
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

/// The `[server]` table as written in the file.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerTable {
    listen: Option<String>,
    authkey: Option<String>,
    authkey_file: Option<PathBuf>,
    codecs: Option<Vec<String>>,
    max_frame_bytes: Option<usize>,
    handshake_timeout_ms: Option<u64>,
    allow_legacy_auth: Option<bool>,
    python_compat: Option<bool>,
    limits: Option<Limits>,
}

/// The `[client]` table as written in the file.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientTable {
    connect: Option<String>,
    authkey: Option<String>,
    authkey_file: Option<PathBuf>,
    codec: Option<String>,
    call_timeout_ms: Option<u64>,
    max_frame_bytes: Option<usize>,
    handshake_timeout_ms: Option<u64>,
    allow_legacy_auth: Option<bool>,
    reconnect: Option<Reconnect>,
}

impl ServerTable {
    fn into_layer(self, base: &Path) -> Result<Layer, ConfigError> {
        Ok(Layer {
            address: self.listen,
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
    fn into_layer(self, base: &Path) -> Result<Layer, ConfigError> {
        Ok(Layer {
            address: self.connect,
            authkey: key_source("client", self.authkey, self.authkey_file, base)?,
            codec: self.codec,
            call_timeout: self.call_timeout_ms.map(Duration::from_millis),
            max_frame_bytes: self.max_frame_bytes,
            handshake_timeout: self.handshake_timeout_ms.map(Duration::from_millis),
            allow_legacy_auth: self.allow_legacy_auth,
            reconnect: self.reconnect,
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

fn key_source(
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

fn check_frame_bytes(table: &str, bytes: usize) -> Result<usize, ConfigError> {
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

fn check_reconnect(policy: Reconnect) -> Result<Reconnect, ConfigError> {
    match policy.invalid() {
        Some((key, value)) => Err(invalid(
            format!("client.reconnect.{key}"),
            value,
            "at least 1",
        )),
        None => Ok(policy),
    }
}

fn check_limits(limits: Limits) -> Result<Limits, ConfigError> {
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

fn check_codecs(codecs: Vec<String>) -> Result<Vec<String>, ConfigError> {
    if codecs.is_empty() {
        let expected = format!("at least one of {}", quoted(KNOWN_CODECS));
        return Err(invalid("server.codecs", "[]", expected));
    }
    codecs
        .into_iter()
        .map(|c| check_codec("server.codecs", c, KNOWN_CODECS))
        .collect()
}

fn check_codec(key: &str, codec: String, known: &[&str]) -> Result<String, ConfigError> {
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
fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: &str = r#"
        [server]
        listen = "0.0.0.0:17000"
        authkey = "file-key"
        codecs = ["json"]
        max_frame_bytes = 2048
        handshake_timeout_ms = 100
        allow_legacy_auth = true
        python_compat = true

        [client]
        connect = "10.0.0.1:17000"
        authkey = "file-key"
        codec = "json"
        call_timeout_ms = 200
    "#;

    fn env(vars: &'static [(&str, &str)]) -> impl Fn(&str) -> Option<String> + Send + Sync {
        |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    fn server(toml: &str) -> Result<ServerConfig, ConfigError> {
        ServerConfig::builder().no_env().load_toml(toml)?.build()
    }

    fn client(toml: &str) -> Result<ClientConfig, ConfigError> {
        ClientConfig::builder().no_env().load_toml(toml)?.build()
    }

    fn server_error(toml: &str) -> String {
        server(toml).unwrap_err().to_string()
    }

    /// A file under the temp dir, removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(name: &str, contents: &[u8]) -> Self {
            let path = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
            std::fs::write(&path, contents).unwrap();
            Self(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn defaults_fill_what_is_not_set() {
        let s = server("[server]\nauthkey = \"k\"").unwrap();
        assert_eq!(s.listen(), "127.0.0.1:0");
        assert_eq!(s.codecs(), KNOWN_CODECS);
        assert_eq!(s.max_frame_bytes(), 16 * 1024 * 1024);
        assert_eq!(s.handshake_timeout(), Duration::from_secs(5));
        assert!(!s.allow_legacy_auth() && !s.python_compat());
        let c = client("[client]\nconnect = \"h:1\"\nauthkey = \"k\"").unwrap();
        assert_eq!(c.codec(), "bincode");
        assert_eq!(c.call_timeout(), Duration::from_secs(30));
        assert_eq!(c.max_frame_bytes(), 16 * 1024 * 1024);
    }

    #[test]
    fn file_values_are_read_and_both_sides_load_one_file() {
        let s = server(BOTH).unwrap();
        assert_eq!(s.listen(), "0.0.0.0:17000");
        assert_eq!(s.authkey().as_bytes(), b"file-key");
        assert_eq!(s.codecs(), ["json"]);
        assert_eq!(s.max_frame_bytes(), 2048);
        assert_eq!(s.handshake_timeout(), Duration::from_millis(100));
        assert!(s.allow_legacy_auth() && s.python_compat());
        let c = client(BOTH).unwrap();
        assert_eq!((c.connect(), c.codec()), ("10.0.0.1:17000", "json"));
        assert_eq!(c.call_timeout(), Duration::from_millis(200));
    }

    #[test]
    fn env_beats_file() {
        let vars = env(&[("RPC_AUTHKEY", "env-key"), ("RPC_CODEC", "bincode")]);
        let c = ClientConfig::builder().env(vars).load_toml(BOTH).unwrap();
        let c = c.build().unwrap();
        assert_eq!(c.authkey().as_bytes(), b"env-key");
        assert_eq!(c.codec(), "bincode");
    }

    #[test]
    fn builder_beats_env() {
        let vars = env(&[("RPC_AUTHKEY", "env-key"), ("RPC_CODEC", "bincode")]);
        let c = ClientConfig::builder().env(vars).load_toml(BOTH).unwrap();
        let c = c.authkey("explicit").codec("json").build().unwrap();
        assert_eq!(c.authkey().as_bytes(), b"explicit");
        assert_eq!(c.codec(), "json");
    }

    #[test]
    fn nested_limit_and_reconnect_tables_are_read_and_checked() {
        let text = "[server]\nauthkey = \"k\"\n[server.limits]\nmax_in_flight = 4\nidle_timeout_ms = 0\n\
                    [client]\nconnect = \"a:1\"\nauthkey = \"k\"\n[client.reconnect]\nwait = true\n";
        let s = server(text).unwrap();
        assert_eq!(s.limits().max_in_flight, 4);
        assert_eq!(s.limits().idle_timeout, None);
        assert_eq!(s.limits().max_batch, Limits::default().max_batch);
        let c = client(text).unwrap();
        assert!(c.reconnect().is_some_and(|r| r.wait));
        assert!(client(BOTH).unwrap().reconnect().is_none());
        let zero = "[server]\nauthkey = \"k\"\n[server.limits]\nmax_batch = 0\n";
        assert_eq!(
            server_error(zero),
            "invalid value 0 for `server.limits.max_batch`; expected at least 1"
        );
        let stall = "[server]\nauthkey = \"k\"\n[server.limits]\nwrite_timeout_ms = 0\n";
        assert_eq!(
            server_error(stall),
            "invalid value 0 for `server.limits.write_timeout_ms`; expected at least 1"
        );
        let spin = "[client]\nconnect = \"a:1\"\nauthkey = \"k\"\n[client.reconnect]\nmax_backoff_ms = 0\n";
        let error = client(spin).unwrap_err().to_string();
        assert_eq!(
            error,
            "invalid value 0 for `client.reconnect.max_backoff_ms`; expected at least 1"
        );
        let unknown = "[server]\nauthkey = \"k\"\n[server.limits]\nmax_calls = 1\n";
        assert!(
            server_error(unknown).contains("max_calls"),
            "{}",
            server_error(unknown)
        );
    }

    #[test]
    fn rpc_codec_applies_to_the_client_only() {
        let vars = env(&[("RPC_AUTHKEY", "k"), ("RPC_CODEC", "pickle")]);
        let s = ServerConfig::builder().env(vars).build().unwrap();
        assert_eq!(s.codecs(), KNOWN_CODECS);
        let vars = env(&[("RPC_AUTHKEY", "k"), ("RPC_CODEC", "json")]);
        let c = ClientConfig::builder()
            .env(vars)
            .connect("h:1")
            .build()
            .unwrap();
        assert_eq!(c.codec(), "json");
    }

    #[test]
    fn authkey_file_drops_one_trailing_newline() {
        for (contents, key) in [
            (&b"s3cret\n"[..], &b"s3cret"[..]),
            (b"s3cret\r\n", b"s3cret"),
            (b"k\n\n", b"k\n"),
        ] {
            let file = TempFile::new("rpc-config-authkey", contents);
            let toml = format!(
                "[server]\nauthkey_file = {:?}",
                file.0.display().to_string()
            );
            assert_eq!(server(&toml).unwrap().authkey().as_bytes(), key);
        }
    }

    #[test]
    fn unreadable_authkey_file_names_the_path() {
        let error = ServerConfig::builder()
            .no_env()
            .authkey_file("/no/such/key")
            .build();
        let error = error.unwrap_err().to_string();
        assert!(error.contains("/no/such/key"), "{error}");
    }

    #[test]
    fn config_file_relative_authkey_file_and_from_file() {
        let key = TempFile::new("rpc-config-key", b"from-file\n");
        let name = key.0.file_name().unwrap().to_str().unwrap();
        let toml = format!("[server]\nauthkey_file = \"{name}\"");
        let config = TempFile::new("rpc-config.toml", toml.as_bytes());
        let s = ServerConfig::builder()
            .no_env()
            .load_file(&config.0)
            .unwrap();
        assert_eq!(s.build().unwrap().authkey().as_bytes(), b"from-file");
        let missing = ServerConfig::from_file("/no/such/rpc.toml").unwrap_err();
        assert!(
            missing.to_string().contains("/no/such/rpc.toml"),
            "{missing}"
        );
    }

    #[test]
    fn missing_authkey_names_every_source() {
        let error = server_error("[server]\nlisten = \"h:1\"");
        for source in ["`authkey`", "`authkey_file`", "RPC_AUTHKEY"] {
            assert!(error.contains(source), "{error}");
        }
        let error = ServerConfig::builder()
            .no_env()
            .authkey("")
            .build()
            .unwrap_err();
        assert!(matches!(error, ConfigError::InvalidValue { .. }), "{error}");
    }

    #[test]
    fn missing_connect_is_rejected() {
        let error = ClientConfig::builder()
            .no_env()
            .authkey("k")
            .build()
            .unwrap_err();
        assert!(error.to_string().contains("client.connect"), "{error}");
    }

    #[test]
    fn authkey_and_authkey_file_conflict() {
        let error = server(
            r#"[server]
            authkey = "k"
            authkey_file = "k.txt""#,
        )
        .unwrap_err();
        assert!(
            matches!(error, ConfigError::ConflictingKeys { table: "server" }),
            "{error}"
        );
    }

    #[test]
    fn unknown_key_is_named_with_its_table() {
        let error = server_error("[server]\nauthkey = \"k\"\ncolour = \"red\"");
        assert!(
            error.contains("`[server]`") && error.contains("`colour`"),
            "{error}"
        );
    }

    #[test]
    fn unknown_table_is_rejected() {
        let error = server_error("[server]\nauthkey = \"k\"\n[serevr]\n");
        assert!(
            error.contains("`[serevr]`") && error.contains("`http`"),
            "{error}"
        );
    }

    #[test]
    fn http_table_is_ignored_by_both_sides() {
        let toml = format!("{BOTH}\n[http]\nanything = 1\n");
        assert!(server(&toml).is_ok() && client(&toml).is_ok());
    }

    #[test]
    fn syntax_error_carries_the_line() {
        let error = server_error("[server]\nlisten = \n");
        assert!(error.contains("line 2"), "{error}");
    }

    #[test]
    fn unknown_codec_lists_the_known_ones() {
        let error = server_error("[server]\nauthkey = \"k\"\ncodecs = [\"json\", \"pickle\"]");
        assert!(
            error.contains("\"pickle\"") && error.contains("`bincode`, `json`"),
            "{error}"
        );
        let error = ClientConfig::builder()
            .no_env()
            .connect("h:1")
            .authkey("k")
            .codec("xml");
        assert!(
            error
                .build()
                .unwrap_err()
                .to_string()
                .contains("client.codec")
        );
    }

    #[test]
    fn a_client_may_name_a_python_codec_and_a_server_may_not() {
        for codec in PYTHON_CODECS {
            let c = client(&format!(
                "[client]\nconnect = \"h:1\"\nauthkey = \"k\"\ncodec = \"{codec}\""
            ));
            assert_eq!(c.unwrap().codec(), *codec);
        }
        let error = server_error("[server]\nauthkey = \"k\"\ncodecs = [\"py-json\"]");
        assert!(error.contains("one of `bincode`, `json`"), "{error}");
    }

    #[test]
    fn max_frame_bytes_out_of_range_names_key_and_value() {
        for bytes in ["0", "1073741825", "-1"] {
            let error = server_error(&format!(
                "[server]\nauthkey = \"k\"\nmax_frame_bytes = {bytes}"
            ));
            assert!(
                error.contains("max_frame_bytes") && error.contains(bytes),
                "{error}"
            );
        }
        let builder = ServerConfig::builder().no_env().authkey("k");
        assert!(builder.max_frame_bytes(1 << 40).build().is_err());
    }

    #[test]
    fn zero_timeout_is_rejected() {
        let error = server_error("[server]\nauthkey = \"k\"\nhandshake_timeout_ms = 0");
        assert!(error.contains("server.handshake_timeout_ms"), "{error}");
        let builder = ClientConfig::builder().no_env().connect("h:1").authkey("k");
        assert!(builder.call_timeout(Duration::ZERO).build().is_err());
    }

    #[test]
    fn authkey_debug_hides_the_secret() {
        let s = ServerConfig::builder()
            .no_env()
            .authkey("peekaboo")
            .build()
            .unwrap();
        assert!(!format!("{s:?}").contains("peekaboo"));
    }
}
