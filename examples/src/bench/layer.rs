//! Server layers `rpc-bench server --layer KIND` installs, to price the
//! middleware stack: each does no work of its own, but is a real service
//! the compiler cannot remove (tower's `Identity` would vanish), so the
//! figure is the cost of running a call through one layer.

use clap::ValueEnum;
use rpc_core::Registry;
use rpc_core::layer::{BoxError, Call, Next, from_fn};
use rpc_core::service::Reply;

/// A layer kind of `--layer`; given n times, n layers are stacked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BenchLayer {
    /// `from_fn(|call, next| next.run(call))`: passes every call on, as a
    /// user's first `from_fn` layer would before it does anything.
    Noop,
}

impl BenchLayer {
    /// Adds this layer to `registry` (the last added runs first).
    pub fn install(self, registry: &mut Registry) {
        match self {
            BenchLayer::Noop => registry.layer(from_fn(pass_on)),
        };
    }
}

/// Runs the call through what comes next, unchanged.
async fn pass_on(call: Call, next: Next) -> Result<Reply, BoxError> {
    next.run(call).await
}
