//! Configuration of the server and the client: a TOML file, the environment and builder calls.
//!
//! The room: the public types and their accessors here; `builder` (the two
//! builders), `layer` (builder calls, environment, file, and how they
//! resolve), `table` (`[server]` and `[client]` as written), [`limits`]
//! (`[server.limits]`, `[client.reconnect]`), [`balance`] (`[client.balance]`), `tls`
//! (`[server.tls]`, `[client.tls]`) and `check` (every check and its error). It uses nothing that runs: only [`hello`](crate::hello)'s
//! smallest frame.
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
//! | `listen` | server | `"127.0.0.1:0"` | address to listen on, `"host:port"`, or a list of them; TLS when `[server.tls]` is present |
//! | `listen_plain` | server | `[]` | more addresses, always plaintext (Python peers on loopback); a plaintext TCP listener not on loopback is logged as a warning |
//! | `connect` | client | required | address of the server, `"host:port"`, or a list of them to balance over (see [`Balance`]) |
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
//! | `[client.reconnect]` | client | absent (no reconnect, unless balancing) | backoff and whether calls wait while disconnected; see [`Reconnect`] |
//! | `[client.balance]` | client | absent (one endpoint, dialed by name; `max_retries = 2`) | `policy`, `health_interval_ms`, `resolve_interval_ms`, `max_retries`; see [`Balance`] |
//! | `[server.tls]` | server | absent (plaintext) | `cert_file`, `key_file` (PEM: PKCS#8, PKCS#1 or SEC1), optional `client_ca_file` (require client certificates signed by these: mTLS), `min_version` (`"1.3"`, or `"1.2"` with extended master secret required), `cipher_suites` (only these; absent: all, AES-128-GCM first); see [`ServerTls`] |
//! | `[client.tls]` | client | absent (plaintext) | `ca_file` (absent: the platform's roots), `server_name` (absent: the host of `connect`), `cert_file` and `key_file` (mTLS), `min_version` (`"1.3"`, or `"1.2"` for a TLS 1.2 server, with extended master secret required), `cipher_suites` (only these, most preferred first; absent: all, AES-128-GCM first); see [`ClientTls`] |
//!
//! The TLS files are read when the server binds (and on
//! [`Listening::reload_tls`](crate::Listening::reload_tls)) or the client
//! connects, not when the config is built; relative paths are relative to
//! the config file (to the working directory for TOML text given to
//! `load_toml`).
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
use std::time::Duration;

pub mod balance;
mod builder;
mod check;
mod layer;
pub mod limits;
mod table;
mod tls;

pub use self::balance::{Balance, Policy};
pub use self::builder::{ClientConfigBuilder, ServerConfigBuilder};
pub use self::limits::{Limits, Reconnect};
pub use self::tls::{ClientTls, ServerTls, TlsVersion};

// For the HTTP gateway's `[http]` table.
#[cfg(feature = "http")]
pub(crate) use self::check::{address, invalid, positive, read_error};
#[cfg(feature = "http")]
pub(crate) use self::layer::read_key_file;
#[cfg(feature = "http")]
pub(crate) use self::table::read_table;
#[cfg(feature = "http")]
pub(crate) use self::tls::{min_version, suite_list};

use self::check::quoted;

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
    /// Whether a TLS session's exporter is mixed into the handshake's answers.
    channel_binding: bool,
}

/// A validated server configuration; see the [module docs](self) for the keys.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// TLS if `tls` is set; never empty.
    listen: Vec<String>,
    listen_plain: Vec<String>,
    tls: Option<ServerTls>,
    codecs: Vec<String>,
    python_compat: bool,
    limits: Limits,
    shared: Shared,
}

/// A validated client configuration; see the [module docs](self) for the keys.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Empty when not given.
    connect: Vec<String>,
    codec: String,
    call_timeout: Duration,
    reconnect: Option<Reconnect>,
    balance: Option<Balance>,
    tls: Option<ClientTls>,
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

    /// The (first) address to listen on, as written (`"host:port"`).
    pub fn listen(&self) -> &str {
        &self.listen[0]
    }

    /// Every address to listen on, as written, and whether it serves TLS:
    /// the `listen` ones first (TLS with `[server.tls]`), then `listen_plain`.
    pub fn listeners(&self) -> impl Iterator<Item = (&str, bool)> {
        let tls = self.tls.is_some();
        let listen = self.listen.iter().map(move |a| (a.as_str(), tls));
        listen.chain(self.listen_plain.iter().map(|a| (a.as_str(), false)))
    }

    /// The TLS settings of the `listen` addresses, if they serve TLS.
    pub fn tls(&self) -> Option<&ServerTls> {
        self.tls.as_ref()
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

    /// The (first) server's address, as written (`"host:port"`); empty if
    /// none was given (such a config serves `Connection::over` only).
    pub fn connect(&self) -> &str {
        self.connect.first().map_or("", String::as_str)
    }

    /// Every address in `connect`, as written: one, or several to balance over.
    pub fn endpoints(&self) -> &[String] {
        &self.connect
    }

    /// The (first) server's address, or the error to report when
    /// connecting without one.
    pub(crate) fn address(&self) -> Result<&str, rpc_core::Error> {
        let missing = ConfigError::Missing {
            table: "client",
            key: "connect",
        };
        self.connect
            .first()
            .map(String::as_str)
            .ok_or_else(|| rpc_core::Error::new(rpc_core::ErrorKind::Config, missing.to_string()))
    }

    /// `[client.balance]`, if the file or the builder gave it.
    pub fn balance(&self) -> Option<&Balance> {
        self.balance.as_ref()
    }

    /// How many times a call that is safe to repeat is sent again:
    /// `[client.balance]`'s `max_retries`, 2 without the table.
    pub fn max_retries(&self) -> u32 {
        self.balance
            .as_ref()
            .map_or(Balance::default().max_retries, |b| b.max_retries)
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

    /// The TLS settings, if the client connects with TLS.
    pub fn tls(&self) -> Option<&ClientTls> {
        self.tls.as_ref()
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

            /// Whether the handshake's answers cover the TLS session's
            /// exporter; always, unless a test build turned it off.
            #[doc(hidden)]
            pub fn channel_binding(&self) -> bool {
                self.shared.channel_binding
            }
        }
    };
}
shared_accessors!(ServerConfig);
shared_accessors!(ClientConfig);

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
    fn connect_may_list_several_endpoints_and_balance_them_as_the_table_says() {
        let one = client("[client]\nconnect = \"a:1\"\nauthkey = \"k\"").unwrap();
        assert_eq!(
            (one.connect(), one.endpoints()),
            ("a:1", &["a:1".to_owned()][..])
        );
        assert!(one.balance().is_none());
        assert_eq!(
            one.max_retries(),
            2,
            "the retry rules apply without the table"
        );
        let text = "[client]\nconnect = [\"a:1\", \"b:2\"]\nauthkey = \"k\"\n\
                    [client.balance]\npolicy = \"round_robin\"\nhealth_interval_ms = 250\nmax_retries = 0\n";
        let many = client(text).unwrap();
        assert_eq!(many.endpoints(), ["a:1", "b:2"]);
        assert_eq!(many.connect(), "a:1");
        let balance = many.balance().unwrap();
        assert_eq!(balance.policy, Policy::RoundRobin);
        assert_eq!(balance.health_interval, Duration::from_millis(250));
        assert_eq!(
            balance.resolve_interval,
            Balance::default().resolve_interval
        );
        assert_eq!(many.max_retries(), 0);
        let built = ClientConfig::builder()
            .no_env()
            .connect_all(["x:1", "y:2"])
            .authkey("k")
            .build()
            .unwrap();
        assert_eq!(built.endpoints(), ["x:1", "y:2"]);
    }

    #[test]
    fn a_bad_connect_list_or_balance_table_is_refused_naming_the_key() {
        let error = |body: &str| {
            client(&format!("[client]\nauthkey = \"k\"\n{body}"))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            error("connect = []"),
            "invalid value [] for `client.connect`; expected at least one address such as \"127.0.0.1:17000\""
        );
        assert!(error("connect = [\"a:1\", \" \"]").contains("`client.connect`"));
        let balance = |table: &str| error(&format!("connect = \"a:1\"\n[client.balance]\n{table}"));
        assert_eq!(
            balance("max_retries = 11"),
            "invalid value 11 for `client.balance.max_retries`; expected at most 10"
        );
        assert_eq!(
            balance("health_interval_ms = 0"),
            "invalid value 0 for `client.balance.health_interval_ms`; expected at least 1"
        );
        let policy = balance("policy = \"fastest\"");
        assert!(policy.contains("unknown variant `fastest`"), "{policy}");
        assert!(balance("retries = 1").contains("unknown field `retries`"));
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
    fn a_config_without_connect_builds_and_refuses_to_connect_naming_the_key() {
        let config = ClientConfig::builder()
            .no_env()
            .authkey("k")
            .build()
            .unwrap();
        assert_eq!(config.connect(), "");
        let error = config.address().unwrap_err();
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
    fn a_bad_codec_from_the_environment_is_reported_as_rpc_codec() {
        let vars = env(&[("RPC_AUTHKEY", "k"), ("RPC_CODEC", "xml")]);
        let error = ClientConfig::builder()
            .env(vars)
            .connect("h:1")
            .build()
            .unwrap_err()
            .to_string();
        assert!(error.contains("`RPC_CODEC`"), "{error}");
        assert!(!error.contains("client.codec"), "{error}");
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

    #[test]
    fn an_empty_cipher_suite_list_is_refused_not_read_as_all() {
        let e = server_error(
            "[server]\n[server.tls]\ncert_file = \"c\"\nkey_file = \"k\"\ncipher_suites = []\n",
        );
        assert!(e.contains("server.tls.cipher_suites"), "{e}");
        assert!(e.contains("at least one suite"), "{e}");
        let e = client("[client]\n[client.tls]\ncipher_suites = []\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("client.tls.cipher_suites"), "{e}");
        let listed = "[server]\nauthkey = \"k\"\n[server.tls]\ncert_file = \"c\"\nkey_file = \"k\"\n\
                      cipher_suites = [\"TLS13_AES_256_GCM_SHA384\"]\n";
        let tls = server(listed).unwrap().tls().unwrap().clone();
        assert_eq!(tls.suites(), ["TLS13_AES_256_GCM_SHA384"]);
    }

    #[test]
    fn a_client_offers_tls_1_3_alone_unless_its_table_says_1_2() {
        let tls = |extra: &str| {
            let text = format!(
                "[client]\nauthkey = \"k\"\nconnect = \"127.0.0.1:1\"\n[client.tls]\n{extra}"
            );
            client(&text).map(|c| c.tls().unwrap().min_version())
        };
        assert_eq!(tls("").unwrap(), TlsVersion::V1_3);
        assert_eq!(tls("min_version = \"1.2\"\n").unwrap(), TlsVersion::V1_2);
        let e = tls("min_version = \"1.1\"\n").unwrap_err().to_string();
        assert!(e.contains("client.tls.min_version"), "{e}");
        let e = server_error(
            "[server]\n[server.tls]\ncert_file = \"c\"\nkey_file = \"k\"\nmin_version = \"1.0\"\n",
        );
        assert!(e.contains("server.tls.min_version"), "{e}");
    }
}
