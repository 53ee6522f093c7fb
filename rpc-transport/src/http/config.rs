//! The `[http]` table: where the gateway listens, its password and its limits.
//!
//! ```
//! use std::time::Duration;
//! use rpc_transport::http::HttpConfig;
//!
//! let file = r#"
//!     [server]
//!     authkey = "peekaboo"
//!
//!     [http]
//!     listen = "127.0.0.1:8080"
//!     password = "a-different-secret"
//!     request_timeout_ms = 5000
//! "#;
//! let http = HttpConfig::builder().load_toml(file)?.build()?;
//! assert_eq!(http.listen(), "127.0.0.1:8080");
//! assert_eq!(http.request_timeout(), Duration::from_secs(5));
//! assert_eq!(http.max_body_bytes(), None); // the server's max_frame_bytes
//! # Ok::<(), rpc_transport::config::ConfigError>(())
//! ```
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `listen` | `"127.0.0.1:0"` | address to listen on, `"host:port"` |
//! | `password` | required | the HTTP Basic password (any user name); never the `[server]` authkey |
//! | `password_file` | — | file holding the password instead; one trailing newline is dropped; a relative path is relative to the config file |
//! | `max_body_bytes` | `[server] max_frame_bytes` | largest request body, 1 KiB to 1 GiB |
//! | `request_timeout_ms` | `30000` | time allowed for one request, reading the body included |
//! | `realm` | `"rpc"` | the realm named in `WWW-Authenticate` |
//! | `cors_origins` | `[]` | origins whose web pages may call, such as `["https://app.example"]`; a request with any other `Origin` header gets 403 |
//! | `allow_plaintext_password` | `false` | serve plain HTTP on a non-loopback address (the Basic password crosses the network in clear): only behind a proxy that terminates TLS |
//! | `[http.tls]` | absent (plain HTTP) | HTTPS: the keys of `[server.tls]`: `cert_file`, `key_file`, optional `client_ca_file` (mTLS), `min_version` (`"1.3"` or `"1.2"`), `cipher_suites`; ALPN `http/1.1` |
//!
//! Unknown keys are errors, worded as for the other tables.

use std::fmt;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::cors::canonical_origin;
use super::secure::HttpTlsTable;
use crate::config::{
    ConfigError, ServerTls, address, invalid, positive, read_error, read_key_file, read_table,
};

const DEFAULT_LISTEN: &str = "127.0.0.1:0";
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_millis(30_000);
const DEFAULT_REALM: &str = "rpc";
const BODY_BYTES: RangeInclusive<usize> = 1024..=1024 * 1024 * 1024;

/// The HTTP Basic password. Its `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(Vec<u8>);

impl Password {
    /// Wraps a password; an empty one is rejected when a config is built.
    pub fn new(password: impl Into<Vec<u8>>) -> Password {
        Password(password.into())
    }

    /// The password's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A validated `[http]` configuration; see the [module docs](self) for the keys.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    listen: String,
    password: Password,
    max_body_bytes: Option<usize>,
    request_timeout: Duration,
    realm: String,
    cors_origins: Vec<String>,
    tls: Option<ServerTls>,
    allow_plaintext_password: bool,
}

impl HttpConfig {
    /// A builder with every setting unset.
    pub fn builder() -> HttpConfigBuilder {
        HttpConfigBuilder::default()
    }

    /// Whether the file at `path` has an `[http]` table.
    pub fn file_has_table(path: impl AsRef<Path>) -> Result<bool, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| read_error(path, e))?;
        let doc: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Syntax {
            message: e.to_string().trim_end().to_owned(),
        })?;
        Ok(doc.contains_key("http"))
    }

    /// The address to listen on, as written (`"host:port"`).
    pub fn listen(&self) -> &str {
        &self.listen
    }

    /// The HTTP Basic password.
    pub fn password(&self) -> &Password {
        &self.password
    }

    /// The largest request body, if set; the gateway uses the server's
    /// `max_frame_bytes` otherwise.
    pub fn max_body_bytes(&self) -> Option<usize> {
        self.max_body_bytes
    }

    /// The time allowed for one request.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// The realm named in `WWW-Authenticate`.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The origins whose pages may call, as browsers write them in
    /// `Origin` (lower case, no default port).
    pub fn cors_origins(&self) -> &[String] {
        &self.cors_origins
    }

    /// The certificate of HTTPS (`[http.tls]`); `None`: plain HTTP.
    pub fn tls(&self) -> Option<&ServerTls> {
        self.tls.as_ref()
    }

    /// Whether plain HTTP may take the password on a non-loopback address.
    pub fn allows_plaintext_password(&self) -> bool {
        self.allow_plaintext_password
    }
}

/// Builds an [`HttpConfig`] from builder calls and a file; builder calls win.
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct HttpConfigBuilder {
    explicit: Layer,
    file: Layer,
}

#[derive(Clone, Debug, Default)]
struct Layer {
    listen: Option<String>,
    password: Option<Secret>,
    max_body_bytes: Option<usize>,
    request_timeout: Option<Duration>,
    realm: Option<String>,
    cors_origins: Option<Vec<String>>,
    tls: Option<ServerTls>,
    allow_plaintext_password: Option<bool>,
}

#[derive(Clone, Debug)]
enum Secret {
    Password(Password),
    File(PathBuf),
}

impl HttpConfigBuilder {
    /// Sets the address to listen on (`"host:port"`).
    pub fn listen(mut self, address: impl Into<String>) -> Self {
        self.explicit.listen = Some(address.into());
        self
    }

    /// Sets the password, overriding `password_file` and the file.
    pub fn password(mut self, password: impl Into<Vec<u8>>) -> Self {
        self.explicit.password = Some(Secret::Password(Password::new(password)));
        self
    }

    /// Reads the password from a file at build time, dropping one trailing newline.
    pub fn password_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.explicit.password = Some(Secret::File(path.into()));
        self
    }

    /// Sets the largest request body, from 1 KiB to 1 GiB.
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.explicit.max_body_bytes = Some(bytes);
        self
    }

    /// Sets the time allowed for one request.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.explicit.request_timeout = Some(timeout);
        self
    }

    /// Sets the realm named in `WWW-Authenticate`.
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.explicit.realm = Some(realm.into());
        self
    }

    /// Sets the origins whose web pages may call the gateway from a
    /// browser, such as `"https://app.example"`; replaces the file's list.
    pub fn cors_origins<S: Into<String>>(mut self, origins: impl IntoIterator<Item = S>) -> Self {
        self.explicit.cors_origins = Some(origins.into_iter().map(Into::into).collect());
        self
    }

    /// Serves HTTPS with this certificate (the settings of `[http.tls]`).
    pub fn tls(mut self, tls: ServerTls) -> Self {
        self.explicit.tls = Some(tls);
        self
    }

    /// Lets plain HTTP take the password on a non-loopback address (behind
    /// a proxy that terminates TLS); without it such a gateway refuses to bind.
    pub fn allow_plaintext_password(mut self, allow: bool) -> Self {
        self.explicit.allow_plaintext_password = Some(allow);
        self
    }

    /// Seeds the builder from the `[http]` table of a TOML file.
    pub fn load_file(self, path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| read_error(path, e))?;
        self.load(&text, path.parent().unwrap_or(Path::new("")))
    }

    /// Seeds the builder from the `[http]` table of TOML text; a relative
    /// `password_file` is relative to the working directory.
    pub fn load_toml(self, text: &str) -> Result<Self, ConfigError> {
        self.load(text, Path::new(""))
    }

    fn load(mut self, text: &str, base: &Path) -> Result<Self, ConfigError> {
        self.file = read_table::<HttpTable>(text, "http")?.into_layer(base)?;
        Ok(self)
    }

    /// Validates the settings; fails on a missing or empty password, a
    /// value out of range or a `cors_origins` entry that is not an origin.
    pub fn build(self) -> Result<HttpConfig, ConfigError> {
        let layer = self.explicit.or(self.file);
        let secret = layer.password.ok_or(ConfigError::Missing {
            table: "http",
            key: "password",
        })?;
        let timeout = layer.request_timeout.unwrap_or(DEFAULT_REQUEST_TIMEOUT);
        Ok(HttpConfig {
            listen: address("http.listen", layer.listen.unwrap_or(DEFAULT_LISTEN.into()))?,
            password: secret.load()?,
            max_body_bytes: layer.max_body_bytes.map(check_body_bytes).transpose()?,
            request_timeout: positive("http.request_timeout_ms", timeout)?,
            realm: check_realm(layer.realm.unwrap_or(DEFAULT_REALM.into()))?,
            cors_origins: check_origins(layer.cors_origins.unwrap_or_default())?,
            tls: layer.tls,
            allow_plaintext_password: layer.allow_plaintext_password.unwrap_or(false),
        })
    }
}

impl Layer {
    fn or(self, lower: Layer) -> Layer {
        Layer {
            listen: self.listen.or(lower.listen),
            password: self.password.or(lower.password),
            max_body_bytes: self.max_body_bytes.or(lower.max_body_bytes),
            request_timeout: self.request_timeout.or(lower.request_timeout),
            realm: self.realm.or(lower.realm),
            cors_origins: self.cors_origins.or(lower.cors_origins),
            tls: self.tls.or(lower.tls),
            allow_plaintext_password: self
                .allow_plaintext_password
                .or(lower.allow_plaintext_password),
        }
    }
}

impl Secret {
    fn load(self) -> Result<Password, ConfigError> {
        let (password, path) = match self {
            Secret::Password(p) => (p, None),
            Secret::File(path) => (Password::new(read_key_file(&path)?.as_bytes()), Some(path)),
        };
        if !password.0.is_empty() {
            return Ok(password);
        }
        Err(match path {
            Some(path) => invalid(
                "http.password_file",
                format!("`{}`", path.display()),
                "a non-empty file",
            ),
            None => invalid("http.password", "\"\"", "a non-empty password"),
        })
    }
}

/// The `[http]` table as written in the file.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpTable {
    listen: Option<String>,
    password: Option<String>,
    password_file: Option<PathBuf>,
    max_body_bytes: Option<usize>,
    request_timeout_ms: Option<u64>,
    realm: Option<String>,
    cors_origins: Option<Vec<String>>,
    tls: Option<HttpTlsTable>,
    allow_plaintext_password: Option<bool>,
}

impl HttpTable {
    fn into_layer(self, base: &Path) -> Result<Layer, ConfigError> {
        let password = match (self.password, self.password_file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Table {
                    table: "http",
                    detail: "both `password` and `password_file` are set; keep only one".into(),
                });
            }
            (Some(p), None) => Some(Secret::Password(Password::new(p))),
            (None, Some(path)) => Some(Secret::File(base.join(path))),
            (None, None) => None,
        };
        Ok(Layer {
            listen: self.listen,
            password,
            max_body_bytes: self.max_body_bytes,
            request_timeout: self.request_timeout_ms.map(Duration::from_millis),
            realm: self.realm,
            cors_origins: self.cors_origins,
            tls: self.tls.map(|tls| tls.resolve(base)).transpose()?,
            allow_plaintext_password: self.allow_plaintext_password,
        })
    }
}

fn check_body_bytes(bytes: usize) -> Result<usize, ConfigError> {
    if !BODY_BYTES.contains(&bytes) {
        let (min, max) = BODY_BYTES.into_inner();
        let expected = format!("a byte count from {min} (1 KiB) to {max} (1 GiB)");
        return Err(invalid("http.max_body_bytes", bytes, expected));
    }
    Ok(bytes)
}

/// The realm goes inside a quoted header value: printable ASCII, no quote or backslash.
fn check_realm(realm: String) -> Result<String, ConfigError> {
    let fits = |c: char| c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ';
    if realm.is_empty() || !realm.chars().all(fits) {
        let expected = "printable ASCII without `\"` or `\\`";
        return Err(invalid("http.realm", format!("{realm:?}"), expected));
    }
    Ok(realm)
}

/// Each origin as browsers write it; a wrong one is named, with what to write.
fn check_origins(origins: Vec<String>) -> Result<Vec<String>, ConfigError> {
    origins
        .iter()
        .map(|origin| {
            canonical_origin(origin)
                .map_err(|expected| invalid("http.cors_origins", format!("{origin:?}"), expected))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(text: &str) -> Result<HttpConfig, ConfigError> {
        HttpConfig::builder().load_toml(text)?.build()
    }

    #[test]
    fn a_missing_password_is_named() {
        let e = build("[http]\nlisten = \"127.0.0.1:0\"\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "`http.password` is not set; write `password` in the `[http]` table or call `password`"
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = build("[http]\npassword = \"x\"\npasswd = \"y\"\n").unwrap_err();
        assert!(e.to_string().contains("passwd"), "{e}");
    }

    #[test]
    fn password_and_password_file_conflict() {
        let e = build("[http]\npassword = \"x\"\npassword_file = \"p\"\n").unwrap_err();
        assert!(e.to_string().contains("keep only one"), "{e}");
    }

    #[test]
    fn builder_calls_beat_the_file() {
        let c = HttpConfig::builder()
            .load_toml("[http]\npassword = \"from-file\"\nmax_body_bytes = 4096\n")
            .unwrap()
            .password("explicit")
            .build()
            .unwrap();
        assert_eq!(c.password().as_bytes(), b"explicit");
        assert_eq!(c.max_body_bytes(), Some(4096));
        assert_eq!(format!("{:?}", c.password()), "Password(***)");
    }

    #[test]
    fn password_file_is_relative_to_the_config_file_and_loses_one_newline() {
        let dir = std::env::temp_dir().join(format!("rpc-http-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("http.secret"), "from-file\r\n").unwrap();
        let config = dir.join("rpc.toml");
        std::fs::write(&config, "[http]\npassword_file = \"http.secret\"\n").unwrap();
        let built = HttpConfig::builder().load_file(&config).unwrap().build();
        std::fs::write(dir.join("http.secret"), "\n").unwrap();
        let empty = HttpConfig::builder().load_file(&config).unwrap().build();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(built.unwrap().password().as_bytes(), b"from-file");
        assert!(empty.unwrap_err().to_string().contains("a non-empty file"));
    }

    #[test]
    fn http_tls_takes_the_keys_of_server_tls_relative_to_the_config_file() {
        let text = "[http]\npassword = \"x\"\nallow_plaintext_password = true\n\
                    [http.tls]\ncert_file = \"s.pem\"\nkey_file = \"s.key\"\nmin_version = \"1.2\"\n\
                    cipher_suites = [\"TLS13_AES_256_GCM_SHA384\"]\n";
        let c = HttpConfig::builder()
            .load(text, Path::new("/etc/rpc"))
            .unwrap()
            .build()
            .unwrap();
        let tls = c.tls().unwrap();
        assert_eq!(tls.cert_file(), Path::new("/etc/rpc/s.pem"));
        assert_eq!(tls.min_version(), crate::config::TlsVersion::V1_2);
        assert_eq!(tls.suites(), ["TLS13_AES_256_GCM_SHA384"]);
        assert!(c.allows_plaintext_password());
        let e = build("[http]\npassword = \"x\"\n[http.tls]\ncert_file = \"a\"\nkey_file = \"b\"\ncipher_suites = []\n")
            .unwrap_err();
        assert!(e.to_string().contains("http.tls.cipher_suites"), "{e}");
        let e = build("[http]\npassword = \"x\"\n[http.tls]\ncert_file = \"a\"\nkey_file = \"b\"\nmin_version = \"1.1\"\n")
            .unwrap_err();
        assert!(e.to_string().contains("http.tls.min_version"), "{e}");
        assert!(build("[http]\npassword = \"x\"\n").unwrap().tls().is_none());
    }

    #[test]
    fn limits_are_checked() {
        let e = build("[http]\npassword = \"x\"\nmax_body_bytes = 10\n").unwrap_err();
        assert!(e.to_string().contains("http.max_body_bytes"), "{e}");
        let e = build("[http]\npassword = \"x\"\nrequest_timeout_ms = 0\n").unwrap_err();
        assert!(e.to_string().contains("http.request_timeout_ms"), "{e}");
        let e = build("[http]\npassword = \"x\"\nrealm = \"a\\\"b\"\n").unwrap_err();
        assert!(e.to_string().contains("http.realm"), "{e}");
    }

    #[test]
    fn cors_origins_are_read_as_browsers_write_them_and_a_bad_one_is_named() {
        let c = build("[http]\npassword = \"x\"\ncors_origins = [\"HTTPS://App.Example:443\"]\n");
        assert_eq!(c.unwrap().cors_origins(), ["https://app.example"]);
        let e = build("[http]\npassword = \"x\"\ncors_origins = [\"https://app.example/\"]\n")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid value \"https://app.example/\" for `http.cors_origins`; expected an origin such as \
             \"https://app.example\" or \"http://localhost:8080\", without a path: \"https://app.example\""
        );
        let e = build("[http]\npassword = \"x\"\ncors_origins = [\"*\"]\n").unwrap_err();
        assert!(e.to_string().contains("http.cors_origins"), "{e}");
        assert!(
            build("[http]\npassword = \"x\"\n")
                .unwrap()
                .cors_origins()
                .is_empty()
        );
    }
}
