//! [`from_fn`]: a server layer written as one async function of the call
//! and what comes next, as axum's `middleware::from_fn`.

use std::future::Future;
use std::task::Poll;

use tower::{Layer, Service};

use super::{BoxError, Call, Next};
use crate::service::Reply;

/// A layer that runs `f(call, next)` for each call: `f` may look at the
/// call, await what it needs (a token lookup), refuse it by returning an
/// error, or pass it on with `next.run(call)`.
///
/// Give it to `Registry::layer` (or `Server::layer`) on its own: it wraps
/// the [`Next`] those pass, not another layer's service.
///
/// ```
/// use rpc_core::layer::{BoxError, Call, Next, from_fn};
/// use rpc_core::service::Reply;
/// use rpc_core::{Error, ErrorKind, Registry};
///
/// async fn only_with_a_token(call: Call, next: Next) -> Result<Reply, BoxError> {
///     match call.metadata().text("authorization") {
///         Some(token) if token.starts_with("Bearer ") => next.run(call).await,
///         _ => Err(Error::new(ErrorKind::Authentication, "send `authorization: Bearer …`").into()),
///     }
/// }
///
/// let mut registry = Registry::new();
/// registry.layer(from_fn(only_with_a_token));
/// ```
pub fn from_fn<F, Fut>(f: F) -> FromFnLayer<F>
where
    F: Fn(Call, Next) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Reply, BoxError>> + Send + 'static,
{
    FromFnLayer { f }
}

/// The layer [`from_fn`] makes.
#[derive(Clone, Debug)]
pub struct FromFnLayer<F> {
    f: F,
}

impl<F: Clone> Layer<Next> for FromFnLayer<F> {
    type Service = FromFn<F>;

    fn layer(&self, next: Next) -> FromFn<F> {
        FromFn {
            f: self.f.clone(),
            next,
        }
    }
}

/// The service a [`FromFnLayer`] makes.
#[derive(Clone, Debug)]
pub struct FromFn<F> {
    f: F,
    next: Next,
}

impl<F, Fut> Service<Call> for FromFn<F>
where
    F: Fn(Call, Next) -> Fut,
    Fut: Future<Output = Result<Reply, BoxError>>,
{
    type Response = Reply;
    type Error = BoxError;
    type Future = Fut;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: Call) -> Fut {
        (self.f)(call, self.next.clone())
    }
}
