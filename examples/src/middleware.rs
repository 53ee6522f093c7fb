//! The example servers' middleware, two flags that wrap every call from
//! every door (TCP, Python peers, HTTP) in a layer:
//!
//! - `--limit-rps N`: one window of `N` calls per second for the whole
//!   server; a call past it is refused at once with `RateLimited`
//!   (`rpc_core::layer::RefuseOverRateLayer`), and its handler does not run.
//! - `--admin-token TOKEN`: the server's privileged methods (`div` for the
//!   calculator, the writes for the key-value store) need the metadata
//!   `authorization: Bearer TOKEN` (over HTTP, the header
//!   `x-rpc-authorization`), checked by an async lookup in a [`TokenStore`]
//!   (`rpc_core::layer::from_fn`). No token is `Authentication`, a wrong
//!   one `PermissionDenied`; the other methods pass.
//!
//! ```sh
//! cargo run -p examples --bin calc-server -- --config examples/config/calc.toml \
//!     --limit-rps 100 --admin-token s3cret
//! ```
//!
//! Without a flag its layer is not installed. The last layer added runs
//! first, so the rate limit is added last: a call over the rate is refused
//! before it costs a token lookup.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use rpc_core::layer::{BoxError, Call, Next, RefuseOverRateLayer, from_fn};
use rpc_core::service::Reply;
use rpc_core::{Error, ErrorKind};
use rpc_transport::Server;
use tokio::sync::RwLock;

/// The example servers' middleware flags (part of [`crate::cli::Args`]).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct Flags {
    /// Refuse calls past N a second, counted over the whole server, with
    /// `RateLimited` (servers only).
    #[arg(long, value_name = "N")]
    pub limit_rps: Option<u32>,
    /// Let only callers sending the metadata `authorization: Bearer TOKEN`
    /// call the privileged methods (servers only).
    #[arg(long, value_name = "TOKEN")]
    pub admin_token: Option<String>,
}

impl Flags {
    /// `server` wrapped in the layers the flags ask for; `privileged` names
    /// the methods `--admin-token` guards.
    pub fn apply(&self, mut server: Server, privileged: &'static [&'static str]) -> Server {
        if let Some(token) = &self.admin_token {
            let admins = AdminsOnly {
                privileged,
                tokens: TokenStore::new([token.clone()]),
            };
            server = server.layer(from_fn(move |call, next| admins.clone().check(call, next)));
        }
        if let Some(calls) = self.limit_rps {
            server = server.layer(RefuseOverRateLayer::new(calls, Duration::from_secs(1)));
        }
        server
    }
}

/// The admins' tokens. A real server would ask a database or an identity
/// service, so the lookup is async; here the set is in memory, behind
/// tokio's `RwLock` so it could change while the server runs.
#[derive(Clone, Debug, Default)]
pub struct TokenStore {
    tokens: Arc<RwLock<HashSet<String>>>,
}

impl TokenStore {
    /// A store holding `tokens`.
    pub fn new(tokens: impl IntoIterator<Item = String>) -> TokenStore {
        TokenStore {
            tokens: Arc::new(RwLock::new(tokens.into_iter().collect())),
        }
    }

    /// Whether `token` is an admin's.
    pub async fn is_admin(&self, token: &str) -> bool {
        self.tokens.read().await.contains(token)
    }
}

/// The authorization layer's state: which methods it guards, whose tokens
/// open them.
#[derive(Clone, Debug)]
struct AdminsOnly {
    privileged: &'static [&'static str],
    tokens: TokenStore,
}

impl AdminsOnly {
    /// Passes `call` on if its method is not privileged or its bearer token
    /// is an admin's; refuses it otherwise (its handler does not run).
    async fn check(self, call: Call, next: Next) -> Result<Reply, BoxError> {
        if !self.privileged.contains(&call.method()) {
            return next.run(call).await;
        }
        let method = format!("{}.{}", call.service(), call.method());
        let bearer = call.metadata().text("authorization");
        let Some(token) = bearer.and_then(|b| b.strip_prefix("Bearer ")) else {
            return Err(Error::new(
                ErrorKind::Authentication,
                format!(
                    "`{method}` is for admins: send the metadata `authorization: Bearer TOKEN` \
                     (over HTTP, the header `x-rpc-authorization`)"
                ),
            )
            .into());
        };
        if !self.tokens.is_admin(token).await {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!("`{method}` is for admins, and the bearer token sent is not an admin's"),
            )
            .into());
        }
        next.run(call).await
    }
}
