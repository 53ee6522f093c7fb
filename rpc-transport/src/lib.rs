//! Tokio transport of the rpc framework (docs written once the modules settle).

pub mod config;
pub mod frame;
pub mod handshake;
