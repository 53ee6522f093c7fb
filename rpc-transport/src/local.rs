//! A client and a server in one process, with no socket: for unit tests of
//! a service, and for standing a fake service in for a client under test.
//!
//! The two ends are joined by an in-memory pipe, and everything else is as
//! over TCP: the authkey handshake, the hello, and every call encoded and
//! decoded with the chosen codec, so a type that the codec cannot carry
//! fails here as it would in production.
//!
//! ```
//! use rpc_core::{Registry, rpc_service};
//!
//! #[rpc_service]
//! pub trait Greeter {
//!     async fn hello(&self, name: String) -> String;
//! }
//!
//! struct Real;
//! impl Greeter for Real {
//!     async fn hello(&self, name: String) -> String {
//!         format!("hello, {name}")
//!     }
//! }
//!
//! /// What a client under test talks to instead of the real service.
//! struct Canned;
//! impl Greeter for Canned {
//!     async fn hello(&self, _name: String) -> String {
//!         "canned".into()
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), rpc_core::Error> {
//! // Unit-test the service itself, through the default codec.
//! let registry = Registry::new().with(GreeterServer::new(Real))?;
//! let greeter = GreeterClient::new(rpc_transport::local(registry, "bincode").await?);
//! assert_eq!(greeter.hello("you".into()).await?, "hello, you");
//!
//! // Hand the code under test a client whose server is a fake.
//! let fake = Registry::new().with(GreeterServer::new(Canned))?;
//! let greeter = GreeterClient::new(rpc_transport::local(fake, "json").await?);
//! assert_eq!(greeter.hello("you".into()).await?, "canned");
//! # Ok(()) }
//! ```

use rpc_core::{Client, Error, ErrorKind, Registry};

use crate::client::Connection;
use crate::config::{ClientConfig, ServerConfig};
use crate::server::Server;

/// How many bytes the pipe between the two ends buffers each way.
const PIPE_BYTES: usize = 64 * 1024;

/// A client of `registry`'s services, served in this process over an
/// in-memory pipe with `codec` (`"bincode"` or `"json"`). The server's task
/// ends when the last clone of the client is dropped.
pub async fn local(registry: Registry, codec: &str) -> Result<Client, Error> {
    let config_error = |e: crate::config::ConfigError| Error::new(ErrorKind::Config, e.to_string());
    // Both ends are ours: a fresh key keeps the handshake honest.
    let mut key = [0u8; 24];
    getrandom::fill(&mut key).map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
    let key: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let server = ServerConfig::builder()
        .no_env()
        .authkey(key.clone())
        .build()
        .map_err(config_error)?;
    let client = ClientConfig::builder()
        .no_env()
        .authkey(key)
        .codec(codec)
        .build()
        .map_err(config_error)?;
    let (near, far) = tokio::io::duplex(PIPE_BYTES);
    let server = Server::new(server, registry);
    tokio::spawn(async move {
        if let Err(e) = server.serve_stream(far, None).await {
            tracing::debug!(error = %e, "local server ended");
        }
    });
    Ok(Client::new(Connection::over(near, &client).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unknown_codec_is_refused_by_name() {
        let error = local(Registry::new(), "xml").await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config);
        assert!(error.message().contains("xml"), "{error}");
    }
}
