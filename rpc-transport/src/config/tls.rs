//! The `[server.tls]` and `[client.tls]` tables: which files make a TLS
//! listener or a TLS client, as plain settings. Nothing here reads a
//! certificate: [`crate::tls`] loads the files when a server binds or a
//! client connects (and again on [`Listening::reload_tls`](crate::Listening::reload_tls)).
//!
//! ```toml
//! [server]
//! listen = ["0.0.0.0:17000"]        # a string or a list; TLS when [server.tls] is present
//! listen_plain = ["127.0.0.1:17001"] # optional: plaintext listeners beside them (Python peers)
//!
//! [server.tls]
//! cert_file = "server.pem"          # certificate chain, PEM, the server's own first
//! key_file = "server.key"           # PEM: PKCS#8, PKCS#1 or SEC1
//! client_ca_file = "clients.pem"    # optional: require client certificates signed by these (mTLS)
//! min_version = "1.3"               # or "1.2" (then extended master secret is required)
//! # cipher_suites = ["TLS13_AES_256_GCM_SHA384"]  # optional: only these, most preferred first
//!
//! [client.tls]
//! ca_file = "ca.pem"                # the roots to trust; absent: the platform's roots
//! server_name = "rpc.internal"      # optional: otherwise the host part of `connect`
//! cert_file = "client.pem"          # optional, for mTLS, with key_file
//! key_file = "client.key"
//! min_version = "1.3"               # or "1.2", for a server that speaks TLS 1.2 (with extended master secret)
//! # cipher_suites = ["TLS13_AES_256_GCM_SHA384"]  # optional: only these, most preferred first
//! ```
//!
//! Without `cipher_suites`, every suite of rustls' ring provider is offered,
//! AES-128-GCM first (see [`crate::tls`]); the names are rustls' (IANA's).
//!
//! Relative paths are relative to the config file (to the working directory
//! for TOML text given to `load_toml`).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;
use super::check::invalid;

/// The oldest TLS version a server accepts, or a client offers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3; 1.2 only with extended master secret (RFC 7627).
    V1_2,
    /// TLS 1.3 only (the default).
    #[default]
    V1_3,
}

/// A server's certificate, key and, for mTLS, the CAs its clients' certificates must chain to.
///
/// ```
/// use rpc_transport::config::{ServerTls, TlsVersion};
/// let tls = ServerTls::new("server.pem", "server.key").client_ca_file("clients.pem");
/// assert_eq!(tls.min_version(), TlsVersion::V1_3);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerTls {
    cert_file: PathBuf,
    key_file: PathBuf,
    client_ca_file: Option<PathBuf>,
    min_version: TlsVersion,
    cipher_suites: Vec<String>,
}

impl ServerTls {
    /// A certificate chain and its key, both PEM files.
    pub fn new(cert_file: impl Into<PathBuf>, key_file: impl Into<PathBuf>) -> ServerTls {
        ServerTls {
            cert_file: cert_file.into(),
            key_file: key_file.into(),
            client_ca_file: None,
            min_version: TlsVersion::default(),
            cipher_suites: Vec::new(),
        }
    }

    /// Requires client certificates signed by the CAs in `path` (mTLS).
    pub fn client_ca_file(mut self, path: impl Into<PathBuf>) -> ServerTls {
        self.client_ca_file = Some(path.into());
        self
    }

    /// Sets the oldest version accepted.
    pub fn with_min_version(mut self, version: TlsVersion) -> ServerTls {
        self.min_version = version;
        self
    }

    /// Accepts only these cipher suites (rustls' names, such as
    /// `TLS13_AES_256_GCM_SHA384`); a name this build does not offer fails
    /// when the listener starts, listing the ones it does.
    pub fn cipher_suites<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.cipher_suites = names.into_iter().map(Into::into).collect();
        self
    }

    /// The certificate chain, PEM.
    pub fn cert_file(&self) -> &Path {
        &self.cert_file
    }

    /// The private key, PEM.
    pub fn key_file(&self) -> &Path {
        &self.key_file
    }

    /// The CAs a client's certificate must chain to; `None`: no client certificate asked.
    pub fn client_cas(&self) -> Option<&Path> {
        self.client_ca_file.as_deref()
    }

    /// The oldest version accepted.
    pub fn min_version(&self) -> TlsVersion {
        self.min_version
    }

    /// The cipher suites allowed; empty: every suite, AES-128-GCM first.
    pub fn suites(&self) -> &[String] {
        &self.cipher_suites
    }
}

/// What a client trusts, the name it expects, and its own certificate for mTLS.
///
/// ```
/// use rpc_transport::config::ClientTls;
/// let tls = ClientTls::new().ca_file("ca.pem").server_name("rpc.internal");
/// assert_eq!(tls.expected_name(), Some("rpc.internal"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientTls {
    ca_file: Option<PathBuf>,
    server_name: Option<String>,
    identity: Option<(PathBuf, PathBuf)>,
    min_version: TlsVersion,
    cipher_suites: Vec<String>,
}

impl ClientTls {
    /// TLS trusting the platform's roots, expecting the host of `connect`.
    pub fn new() -> ClientTls {
        ClientTls::default()
    }

    /// Trusts the CAs in `path` (PEM) instead of the platform's roots.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> ClientTls {
        self.ca_file = Some(path.into());
        self
    }

    /// Expects the server's certificate to name `name`.
    pub fn server_name(mut self, name: impl Into<String>) -> ClientTls {
        self.server_name = Some(name.into());
        self
    }

    /// Presents this certificate chain and key (PEM files) to the server (mTLS).
    pub fn identity(mut self, cert_file: impl Into<PathBuf>, key_file: impl Into<PathBuf>) -> Self {
        self.identity = Some((cert_file.into(), key_file.into()));
        self
    }

    /// Sets the oldest version offered: TLS 1.3 alone by default,
    /// [`TlsVersion::V1_2`] for a server that speaks TLS 1.2 (then with
    /// extended master secret required).
    pub fn with_min_version(mut self, version: TlsVersion) -> ClientTls {
        self.min_version = version;
        self
    }

    /// Offers only these cipher suites, most preferred first (rustls' names,
    /// such as `TLS13_AES_256_GCM_SHA384`); a name this build does not offer
    /// fails when the client connects, listing the ones it does.
    pub fn cipher_suites<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.cipher_suites = names.into_iter().map(Into::into).collect();
        self
    }

    /// The CAs trusted; `None`: the platform's roots.
    pub fn trusted(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    /// The name expected; `None`: the host part of `connect`.
    pub fn expected_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// The certificate chain and key presented, if any.
    pub fn client_identity(&self) -> Option<(&Path, &Path)> {
        self.identity
            .as_ref()
            .map(|(c, k)| (c.as_path(), k.as_path()))
    }

    /// The oldest version offered.
    pub fn min_version(&self) -> TlsVersion {
        self.min_version
    }

    /// The cipher suites offered, most preferred first; empty: every suite,
    /// AES-128-GCM first.
    pub fn suites(&self) -> &[String] {
        &self.cipher_suites
    }
}

/// `[server.tls]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ServerTlsTable {
    cert_file: PathBuf,
    key_file: PathBuf,
    client_ca_file: Option<PathBuf>,
    min_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
}

impl ServerTlsTable {
    pub(super) fn resolve(self, base: &Path) -> Result<ServerTls, ConfigError> {
        let min_version = min_version(self.min_version.as_deref(), "server.tls")?;
        Ok(ServerTls {
            cert_file: base.join(self.cert_file),
            key_file: base.join(self.key_file),
            client_ca_file: self.client_ca_file.map(|p| base.join(p)),
            min_version,
            cipher_suites: suite_list(self.cipher_suites, "server.tls")?,
        })
    }
}

/// `[client.tls]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClientTlsTable {
    ca_file: Option<PathBuf>,
    server_name: Option<String>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    min_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
}

impl ClientTlsTable {
    pub(super) fn resolve(self, base: &Path) -> Result<ClientTls, ConfigError> {
        let identity = match (self.cert_file, self.key_file) {
            (Some(cert), Some(key)) => Some((base.join(cert), base.join(key))),
            (None, None) => None,
            (cert, _) => {
                let (set, unset) = match cert {
                    Some(_) => ("cert_file", "key_file"),
                    None => ("key_file", "cert_file"),
                };
                let expected = format!("`{unset}` as well: a client certificate needs both");
                return Err(invalid(format!("client.tls.{set}"), "alone", expected));
            }
        };
        Ok(ClientTls {
            ca_file: self.ca_file.map(|p| base.join(p)),
            server_name: self.server_name,
            identity,
            min_version: min_version(self.min_version.as_deref(), "client.tls")?,
            cipher_suites: suite_list(self.cipher_suites, "client.tls")?,
        })
    }
}

/// `min_version` as written under `table`: absent is TLS 1.3.
pub(crate) fn min_version(written: Option<&str>, table: &str) -> Result<TlsVersion, ConfigError> {
    match written {
        None | Some("1.3") => Ok(TlsVersion::V1_3),
        Some("1.2") => Ok(TlsVersion::V1_2),
        Some(other) => Err(invalid(
            format!("{table}.min_version"),
            format!("{other:?}"),
            "\"1.3\" (the default) or \"1.2\"",
        )),
    }
}

/// `cipher_suites` as written under `table`: absent is every suite, and an
/// empty list is refused rather than read as that.
pub(crate) fn suite_list(
    list: Option<Vec<String>>,
    table: &str,
) -> Result<Vec<String>, ConfigError> {
    match list {
        Some(list) if list.is_empty() => Err(invalid(
            format!("{table}.cipher_suites"),
            "[]",
            "at least one suite, such as \"TLS13_AES_256_GCM_SHA384\" (leave the key out for all of them)",
        )),
        list => Ok(list.unwrap_or_default()),
    }
}

/// `listen` as written: one address or several.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub(super) fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(address) => vec![address],
            OneOrMany::Many(addresses) => addresses,
        }
    }
}
