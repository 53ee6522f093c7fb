//! The builders: [`ServerConfigBuilder`] and [`ClientConfigBuilder`], whose
//! calls beat the environment, which beats the file, which beats the defaults.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::check::{
    address, check_balance, check_codec, check_codecs, check_limits, check_reconnect, invalid,
    positive, read_error,
};
use super::layer::{Env, KeySource, Layer};
use super::table::{ClientTable, ServerTable, read_table};
use super::{
    AuthKey, Balance, ClientConfig, ClientTls, ConfigError, DEFAULT_CALL_TIMEOUT, DEFAULT_CODEC,
    DEFAULT_LISTEN, KNOWN_CODECS, Limits, PYTHON_CODECS, Reconnect, ServerConfig, ServerTls,
    Shared,
};

/// Builds a [`ServerConfig`] from builder calls, the environment and a file, in that precedence.
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct ServerConfigBuilder {
    pub(super) explicit: Layer,
    pub(super) file: Layer,
    pub(super) env: Env,
}

/// Builds a [`ClientConfig`] from builder calls, the environment and a file, in that precedence.
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct ClientConfigBuilder {
    pub(super) explicit: Layer,
    pub(super) file: Layer,
    pub(super) env: Env,
}

impl ServerConfigBuilder {
    /// Sets the address to listen on (`"host:port"`); TLS if [`tls`](Self::tls) is set.
    pub fn listen(mut self, address: impl Into<String>) -> Self {
        self.explicit.listen = Some(vec![address.into()]);
        self
    }

    /// Sets several addresses to listen on, all TLS if [`tls`](Self::tls) is set.
    pub fn listen_all<S: Into<String>>(mut self, addresses: impl IntoIterator<Item = S>) -> Self {
        self.explicit.listen = Some(addresses.into_iter().map(Into::into).collect());
        self
    }

    /// Sets plaintext addresses to listen on beside the `listen` ones
    /// (for Python peers on loopback, which cannot speak TLS).
    pub fn listen_plain<S: Into<String>>(mut self, addresses: impl IntoIterator<Item = S>) -> Self {
        self.explicit.listen_plain = Some(addresses.into_iter().map(Into::into).collect());
        self
    }

    /// Serves TLS on the `listen` addresses; replaces the file's `[server.tls]`.
    pub fn tls(mut self, tls: ServerTls) -> Self {
        self.explicit.server_tls = Some(tls);
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
        let addresses = |key: &str, list: Vec<String>| -> Result<Vec<String>, ConfigError> {
            list.into_iter().map(|a| address(key, a)).collect()
        };
        let listen: Vec<String> = layer.listen.take().unwrap_or(vec![DEFAULT_LISTEN.into()]);
        if listen.is_empty() {
            return Err(super::check::invalid(
                "server.listen",
                "[]",
                "at least one address such as \"127.0.0.1:17000\"",
            ));
        }
        Ok(ServerConfig {
            shared: Shared::resolve("server", &mut layer)?,
            listen: addresses("server.listen", listen)?,
            listen_plain: addresses(
                "server.listen_plain",
                layer.listen_plain.unwrap_or_default(),
            )?,
            tls: layer.server_tls,
            codecs: check_codecs(layer.codecs.unwrap_or_else(all))?,
            python_compat: layer.python_compat.unwrap_or(false),
            limits: check_limits(layer.limits.unwrap_or_default())?,
        })
    }

    pub(super) fn load(mut self, text: &str, base: &Path) -> Result<Self, ConfigError> {
        self.file = read_table::<ServerTable>(text, "server")?.into_layer(base)?;
        Ok(self)
    }
}

impl ClientConfigBuilder {
    /// Sets the server's address (`"host:port"`).
    pub fn connect(mut self, address: impl Into<String>) -> Self {
        self.explicit.address = Some(vec![address.into()]);
        self
    }

    /// Sets several servers' addresses: the client balances its calls over
    /// them (see [`Balance`]).
    pub fn connect_all<S: Into<String>>(mut self, addresses: impl IntoIterator<Item = S>) -> Self {
        self.explicit.address = Some(addresses.into_iter().map(Into::into).collect());
        self
    }

    /// Balances, checks and retries as `balance` says; replaces the file's
    /// `[client.balance]`.
    pub fn balance(mut self, balance: Balance) -> Self {
        self.explicit.balance = Some(balance);
        self
    }

    /// Sets the codec, one of [`KNOWN_CODECS`] or [`PYTHON_CODECS`]; overrides `RPC_CODEC`.
    pub fn codec(mut self, codec: impl Into<String>) -> Self {
        self.explicit.codec = Some(codec.into());
        self
    }

    /// Connects with TLS; replaces the file's `[client.tls]`.
    pub fn tls(mut self, tls: ClientTls) -> Self {
        self.explicit.client_tls = Some(tls);
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

    /// Validates the settings; fails on a missing authkey or a value out of
    /// range. A config without `connect` serves [`Connection::over`](crate::Connection::over)
    /// only: connecting with it fails with the missing key named.
    pub fn build(self) -> Result<ClientConfig, ConfigError> {
        let env = Layer {
            authkey: self.env.authkey(),
            codec: self.env.get("RPC_CODEC"),
            ..Layer::default()
        };
        // A bad codec is reported under the name it was given by.
        let codec_key = match (&self.explicit.codec, &env.codec) {
            (None, Some(_)) => "RPC_CODEC",
            _ => "client.codec",
        };
        let mut layer = self.explicit.or(env).or(self.file);
        // Needed to connect, not to open a session over a stream of one's
        // own (`Connection::over`): checked when connecting.
        let connect = match layer.address.take() {
            Some(list) if list.is_empty() => {
                let expected = "at least one address such as \"127.0.0.1:17000\"";
                return Err(invalid("client.connect", "[]", expected));
            }
            Some(list) => list
                .into_iter()
                .map(|a| address("client.connect", a))
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        let call_timeout = layer.call_timeout.unwrap_or(DEFAULT_CALL_TIMEOUT);
        Ok(ClientConfig {
            shared: Shared::resolve("client", &mut layer)?,
            connect,
            codec: check_codec(
                codec_key,
                layer.codec.unwrap_or(DEFAULT_CODEC.into()),
                &[KNOWN_CODECS, PYTHON_CODECS].concat(),
            )?,
            call_timeout: positive("client.call_timeout_ms", call_timeout)?,
            reconnect: layer.reconnect.map(check_reconnect).transpose()?,
            balance: layer.balance.map(check_balance).transpose()?,
            tls: layer.client_tls,
        })
    }

    pub(super) fn load(mut self, text: &str, base: &Path) -> Result<Self, ConfigError> {
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

            /// Turns off the TLS channel binding of the authkey handshake, so
            /// that it passes through a relay that terminates TLS. Only for
            /// the test that proves the binding stops such a relay.
            #[doc(hidden)]
            pub fn without_channel_binding(mut self) -> Self {
                self.explicit.channel_binding = Some(false);
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

            /// Seeds the builder from TOML text; relative paths (`authkey_file`, the TLS
            /// files) are relative to the working directory.
            pub fn load_toml(self, text: &str) -> Result<Self, ConfigError> {
                self.load(text, Path::new(""))
            }
        }
    };
}
shared_setters!(ServerConfigBuilder);
shared_setters!(ClientConfigBuilder);
