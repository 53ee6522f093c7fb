//! Middleware: [`tower`] layers around every call, on the server and on the
//! client.
//!
//! # Server
//!
//! [`Registry::layer`](crate::Registry::layer) (and `Server::layer`, which
//! calls it) wraps **each call** in a layer, whatever door it came in by:
//! TCP with either codec, a Python peer, the HTTP gateway's JSON-RPC (each
//! member of a batch on its own), XML-RPC and REST, and a stream's call
//! when it opens. The service a layer wraps takes a [`Call`] (service and
//! method, its [`Context`](crate::Context) with the caller's metadata, and
//! its decoded arguments) and answers with the call's [`Reply`](crate::service::Reply) or a
//! [`BoxError`]: an error a layer returns reaches the caller with its own
//! kind ([`into_error`]: tower's `Elapsed` as `Timeout`, `Overloaded` as
//! `Overloaded`, an [`Error`](crate::Error) as itself).
//!
//! ```text
//! door → decode args → Call ─▶ last layer added ─▶ … ─▶ first layer added ─▶ Handler ─▶ handler
//!                      reply ◀──────────────────────────────────────────────────────────┘
//! ```
//!
//! Each `layer` call wraps everything added before it, so the last added
//! runs first (as axum's `Router::layer`); a `tower::ServiceBuilder` given
//! as one layer keeps its own order (its first runs first). A layer's
//! service is shared by every call of the server: its `poll_ready` and
//! `call` run one caller at a time, so tower's own layers that keep state
//! (`RateLimit`, `ConcurrencyLimit`) limit the whole server, and their
//! waiting in `poll_ready` makes calls wait. [`RefuseOverRate`] refuses
//! at once instead, with [`ErrorKind::RateLimited`](crate::ErrorKind).
//!
//! A layer's future runs inside the call's `Context::scope`, so
//! [`Context::current`](crate::Context::current) works in it as in the
//! handler. With no layer, a call goes straight to its handler and builds
//! no `Call`.
//!
//! # Client
//!
//! [`Client::layer`](crate::Client::layer) wraps a client's calls: a layer
//! there sees an [`Outgoing`](crate::client::Outgoing) call (method name,
//! its [`MethodInfo`](crate::service::MethodInfo) with `idempotent`, the
//! timeout, the metadata) before it is encoded. See [`crate::client`].

mod call;
mod fault;
mod from_fn;
mod rate;
mod shared;

pub use call::{ARGS_READ_LIMIT, Call, Next};
pub use fault::{into_error, into_fault};
pub use from_fn::{FromFn, FromFnLayer, from_fn};
pub use rate::{RefuseOverRate, RefuseOverRateLayer};
pub use shared::Shared;

pub(crate) use call::{Stack, Watch};

/// The error a layer may return: any error, boxed (tower's convention).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
