//! [`Call`]: one call as a server layer sees it, and [`Next`]: what a
//! layer wraps (the layers added before it, down to the handler).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use futures::FutureExt as _;
use futures::future::Either;
use serde::de::DeserializeOwned;
use tower::Service;

use super::{BoxError, Shared, into_fault};
use crate::context::{Context, Scoped};
use crate::error::{Error, ErrorKind};
use crate::metadata::Metadata;
use crate::service::{BoxCall, BoxFuture, CallFuture, MethodInfo, Reply, ServiceInfo};

/// The layers a registry runs its calls through: the outermost layer's
/// service behind one `dyn`, so that a call through them boxes one future
/// (tower's `BoxService` would box the layer's future again).
pub(crate) type Stack = dyn Layers;

/// What [`Stack`] can do.
pub(crate) trait Layers: Send + Sync {
    /// Runs `call` through the layers, for a layer that wraps them.
    fn run(self: Arc<Self>, call: Call) -> BoxFuture<Result<Reply, BoxError>>;

    /// Runs `call` through the layers for the door: a layer's error becomes
    /// the call's fault, marked as not run if the handler had not started
    /// (`ran` still unset).
    fn reply(self: Arc<Self>, call: Call, ran: Arc<AtomicBool>) -> BoxCall;
}

impl<S> Layers for Shared<S>
where
    S: Service<Call, Response = Reply> + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    fn run(self: Arc<Self>, call: Call) -> BoxFuture<Result<Reply, BoxError>> {
        Box::pin(async move { self.call(call).await })
    }

    fn reply(self: Arc<Self>, call: Call, ran: Arc<AtomicBool>) -> BoxCall {
        crate::service::boxed(async move {
            let reply = match self.call(call).await {
                Ok(reply) => reply,
                Err(e) => Err(into_fault(e)),
            };
            // A layer that answered without passing the call on refused
            // it: the handler did not run.
            match reply {
                Err(fault) if !ran.load(Ordering::Acquire) => Err(fault.did_not_run()),
                reply => reply,
            }
        })
    }
}

/// One call, as a server layer sees it: which method, its [`Context`], and
/// its decoded arguments. Its handler has not run yet; passing it on to the
/// next service runs it, dropping it refuses it.
///
/// ```
/// # use rpc_core::layer::Call;
/// fn describe(call: &Call) -> String {
///     let who = call.context().peer().map_or("?".to_owned(), |p| p.to_string());
///     format!("{}.{} from {who}", call.service(), call.method())
/// }
/// ```
pub struct Call(Box<Parts>);

/// What a [`Call`] holds, boxed: a call moves through every layer's future,
/// and a pointer moves cheaper than the parts.
struct Parts {
    service: &'static ServiceInfo,
    method: &'static MethodInfo,
    context: Context,
    started: CallFuture,
    /// Set once the handler starts: a fault before it is a refusal.
    ran: Option<Arc<AtomicBool>>,
}

impl Call {
    /// A call of `service.method`, started (arguments decoded, handler not
    /// yet run), with `context`.
    pub fn new(
        service: &'static ServiceInfo,
        method: &'static MethodInfo,
        context: Context,
        started: CallFuture,
    ) -> Call {
        Call(Box::new(Parts {
            service,
            method,
            context,
            started,
            ran: None,
        }))
    }

    /// The same call, setting `ran` once its handler starts.
    pub(crate) fn watched(mut self, ran: Arc<AtomicBool>) -> Call {
        self.0.ran = Some(ran);
        self
    }

    /// The service's name (`Calculator`).
    pub fn service(&self) -> &'static str {
        self.0.service.name
    }

    /// The method's name (`add`), however the caller named it.
    pub fn method(&self) -> &'static str {
        self.0.method.name
    }

    /// The method's description: its parameters, whether it is
    /// `idempotent`, whether it streams.
    pub fn info(&self) -> &'static MethodInfo {
        self.0.method
    }

    /// The service's description.
    pub fn service_info(&self) -> &'static ServiceInfo {
        self.0.service
    }

    /// The call's context: peer, deadline, door, metadata, TLS identity.
    pub fn context(&self) -> &Context {
        &self.0.context
    }

    /// The context, to change what the layers after this one and the
    /// handler see (say, metadata a layer adds once it checked a token).
    pub fn context_mut(&mut self) -> &mut Context {
        &mut self.0.context
    }

    /// The metadata the caller sent.
    pub fn metadata(&self) -> &Metadata {
        self.0.context.metadata()
    }

    /// All the arguments, read as `T`: a tuple or a sequence, in the
    /// method's order (`(i64, i64)` for `add(x, y)`), or a
    /// `serde_json::Value` array. A [`Stream`](crate::Stream) argument
    /// reads as `null`.
    pub fn args<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_value(self.args_json()?).map_err(|e| self.unreadable(e))
    }

    /// The argument called `name`, read as `T`.
    ///
    /// ```
    /// # use rpc_core::layer::Call;
    /// fn touches_admin_keys(call: &Call) -> bool {
    ///     call.arg::<String>("key").is_ok_and(|key| key.starts_with("admin/"))
    /// }
    /// ```
    pub fn arg<T: DeserializeOwned>(&self, name: &str) -> Result<T, Error> {
        let position = self
            .0
            .method
            .params
            .iter()
            .position(|p| p.name == name)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidParams,
                    format!("`{}` has no argument `{name}`", self.0.method.signature()),
                )
            })?;
        let value = match self.args_json()? {
            serde_json::Value::Array(mut all) if position < all.len() => all.swap_remove(position),
            _ => serde_json::Value::Null,
        };
        serde_json::from_value(value).map_err(|e| self.unreadable(e))
    }

    fn args_json(&self) -> Result<serde_json::Value, Error> {
        let args = self.0.started.args().ok_or_else(|| {
            Error::new(
                ErrorKind::Internal,
                format!(
                    "the arguments of `{}.{}` are not kept (a hand-written service's)",
                    self.service(),
                    self.method()
                ),
            )
        })?;
        serde_json::to_value(args).map_err(|e| self.unreadable(e))
    }

    fn unreadable(&self, e: serde_json::Error) -> Error {
        Error::new(
            ErrorKind::InvalidParams,
            format!(
                "the arguments of `{}.{}` do not read as asked: {e}",
                self.service(),
                self.method()
            ),
        )
    }

    /// The handler's run, with the call's context installed; from now on a
    /// fault is not a refusal.
    fn handle(self) -> Scoped<CallFuture> {
        let parts = *self.0;
        if let Some(ran) = &parts.ran {
            ran.store(true, Ordering::Release);
        }
        parts.context.scope(parts.started)
    }
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("service", &self.0.service.name)
            .field("method", &self.0.method.name)
            .field("context", &self.0.context)
            .finish_non_exhaustive()
    }
}

/// What a layer added with [`Registry::layer`](crate::Registry::layer)
/// wraps: the layers added before it, then the handler. It is always
/// ready, and cheap to clone.
#[derive(Clone, Default)]
pub struct Next {
    stack: Option<Arc<Stack>>,
}

impl Next {
    pub(crate) fn new(stack: Option<Arc<Stack>>) -> Next {
        Next { stack }
    }

    /// Passes `call` on: through the layers added before, then to the
    /// handler.
    ///
    /// (Not an `async fn`: its future would hold `call` twice, as the
    /// argument and inside the future it is moved into, and move both.)
    pub fn run(self, call: Call) -> impl Future<Output = Result<Reply, BoxError>> + Send + 'static {
        match self.stack {
            None => Either::Left(
                call.handle()
                    .map(Ok as fn(Reply) -> Result<Reply, BoxError>),
            ),
            Some(stack) => Either::Right(stack.run(call)),
        }
    }
}

impl Service<Call> for Next {
    type Response = Reply;
    type Error = BoxError;
    type Future = BoxFuture<Result<Reply, BoxError>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: Call) -> Self::Future {
        match &self.stack {
            Some(stack) => stack.clone().run(call),
            None => Box::pin(self.clone().run(call)),
        }
    }
}

impl std::fmt::Debug for Next {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.stack.is_some() {
            "layers"
        } else {
            "handler"
        };
        f.debug_tuple("Next").field(&what).finish()
    }
}
