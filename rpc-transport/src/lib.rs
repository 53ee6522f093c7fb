//! Tokio transport of the rpc framework (docs written once the modules settle).

pub mod client;
pub mod config;
mod connection;
pub mod frame;
pub mod handshake;
pub mod hello;
pub mod net;
mod outbox;
pub mod server;
mod session;

pub use crate::client::{Connection, connect};
pub use crate::config::{ClientConfig, ServerConfig};
pub use crate::server::{Listening, Server};
