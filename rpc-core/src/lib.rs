//! The contract of the rpc framework, with no I/O: the envelope, the errors,
//! the codecs, the service trait, the registry and the client-call trait.
//!
//! # Example
//!
//! ```ignore
//! #[rpc_core::rpc_service]
//! pub trait Calculator {
//!     /// Adds two numbers.
//!     async fn add(&self, x: i64, y: i64) -> i64;
//! }
//! ```
//!
//! # Layout
//!
//! The framework is three crates, data flowing one way (core at the bottom):
//!
//! | crate | holds |
//! |---|---|
//! | `rpc-core` (this) | [`error`] (the [`Error`] type, the one table of codes, and the [`WireFault`](error::WireFault) a failed call carries), [`codec`] (the [`Codec`] trait, [`codec::Bincode`], [`codec::Json`]), [`service`] (the [`Service`] trait a generated server implements), [`registry`] ([`Registry`]: several services, dispatch by name), [`client`] ([`Transport`], the [`Client`] handle a generated client wraps), [`context`] (the running call's [`Context`]), [`value`] (the dynamic [`Value`]), [`stream`] ([`Stream`]: items sent one way beside a call, with per-stream credit), [`blob`] ([`Bytes`], bulk data sliced from the frame, and written by reference; in JSON, its base64 written in place by the crate's writer), [`budget`] (the memory a decoded value may take), [`mismatch`] (why a value did not travel, in words; [`check_codecs`] finds it in a unit test), [`finite`] (NaN and ±infinity, which JSON cannot carry, refused with their place), [`python`] (safe pickle, the Python pattern's calls and replies, the `pickle` and `py-json` codecs), [`layer`] (middleware: tower layers around every call on the server — the [`Call`](layer::Call) a layer sees — and on the client, the refusing rate limit, a layer's error as the caller's kind), [`metadata`] ([`Metadata`]: per-call string or bytes values, bounded), [`trace`] (W3C `traceparent` in the metadata), [`schema`] (a parameter's, result's or error's JSON Schema: built in, from `schemars` with the `schema` feature, or the Rust type's name), [`discover`] (the OpenRPC document that `rpc.discover` answers) |
//! | `rpc-macros` | `#[rpc_service]`: parse → validate → generate |
//! | `rpc-transport` | tokio: framing, the authkey handshake, the hello, server (limits, graceful shutdown), client connection (cancel, reconnect), metrics, configuration, Python peers, the HTTP gateway (feature `http`) |
//!
//! A call's path, each step in one place:
//!
//! ```text
//! calc.add(2, 3)                      generated CalculatorClient (rpc-macros)
//!   → Client::call                    client.rs: args struct, erased, as an Outgoing call (through Client::layer's layers, if any)
//!   → Transport::call                 rpc-transport: encode into the write buffer, register the waiter
//!   → Codec::encode_request           codec/: envelope + args, one pass
//!   → frame, socket                   rpc-transport: 4-byte length prefix
//!   → Codec::decode_request           server connection reads the envelope
//!   → Registry::dispatch              registry.rs: name → service, args decoded by the generated Service::call
//!   → Registry::layered               layer/: the middleware, if any, sees the Call (args decoded, handler not run)
//!   → handler                         the user's impl, inside Context::scope
//!   ← Codec::encode_response          result or Fault, straight into the write buffer
//!   ← Codec::decode_response          client reader: id → waiter
//!   ← Response::into_result           caller's task decodes the typed result
//! ```
//!
//! Generated code names only `::rpc_core::…` and `::core::…` paths; what it
//! needs beyond the public API lives in the hidden `__private` module.

pub mod blob;
pub mod budget;
pub mod client;
pub mod codec;
pub mod context;
pub mod discover;
pub mod error;
mod explain;
pub mod finite;
pub mod layer;
pub mod metadata;
pub mod mismatch;
pub mod python;
pub mod registry;
pub mod schema;
pub mod service;
pub mod stream;
pub mod trace;
pub mod value;

pub use crate::blob::Bytes;
pub use crate::client::{Client, Response, Transport};
pub use crate::codec::Codec;
pub use crate::context::Context;
pub use crate::error::{CallError, Error, ErrorKind};
pub use crate::metadata::{MetaValue, Metadata};
pub use crate::mismatch::check_codecs;
pub use crate::registry::Registry;
pub use crate::service::{CallFuture, Service};
pub use crate::stream::Stream;
pub use crate::value::Value;

#[cfg(feature = "macros")]
pub use rpc_macros::rpc_service;

#[doc(hidden)]
pub mod __private;
