//! [`Call`]: one call as a server layer sees it, and [`Next`]: what a
//! layer wraps (the layers added before it, down to the handler).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
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

/// The most bytes of JSON a layer may read a call's arguments as
/// ([`Call::args`], [`Call::arg`]): 1 MiB.
pub const ARGS_READ_LIMIT: usize = 1 << 20;

/// A buffer that refuses to grow past [`ARGS_READ_LIMIT`].
struct Capped(Vec<u8>);

impl std::io::Write for Capped {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + bytes.len() > ARGS_READ_LIMIT {
            return Err(std::io::ErrorKind::FileTooLarge.into());
        }
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The layers a registry runs its calls through: the outermost layer's
/// service behind one `dyn`, so that a call through them boxes one future
/// (tower's `BoxService` would box the layer's future again).
pub(crate) type Stack = dyn Layers;

/// What [`Stack`] can do.
pub(crate) trait Layers: Send + Sync {
    /// Runs `call` through the layers, for a layer that wraps them.
    fn run(self: Arc<Self>, call: Call) -> BoxFuture<Result<Reply, BoxError>>;

    /// Runs `call` through the layers for the door: a layer's error becomes
    /// the call's fault, marked as not run if and only if the handler can
    /// no longer start (see [`Watch`]).
    fn reply(self: Arc<Self>, call: Call, watch: Arc<Watch>) -> BoxCall;
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

    fn reply(self: Arc<Self>, call: Call, watch: Arc<Watch>) -> BoxCall {
        crate::service::boxed(async move {
            let reply = match self.call(call).await {
                Ok(reply) => reply,
                Err(e) => Err(into_fault(e)),
            };
            // A layer that answered without passing the call on refused
            // it: the handler did not run, and now never will. A fault once
            // the handler started never says so, whatever error it came
            // from (a downstream refusal a layer passed on, say).
            reply.map_err(|mut fault| {
                fault.not_run = watch.refuse();
                fault
            })
        })
    }
}

/// Whether a layered call's handler started: set by the handler as it
/// starts, or by the answer as it refuses, whichever comes first, so that
/// a call answered "did not run" cannot start afterwards (a layer that
/// passed it to another task, which runs it late).
#[derive(Debug, Default)]
pub(crate) struct Watch(AtomicU8);

const PENDING: u8 = 0;
const STARTED: u8 = 1;
const REFUSED: u8 = 2;

impl Watch {
    /// The handler may start: `false` if the call was answered as refused.
    fn start(&self) -> bool {
        match self
            .0
            .compare_exchange(PENDING, STARTED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(now) => now == STARTED,
        }
    }

    /// The answer is a refusal: `true` if the handler has not started (and
    /// now never will).
    fn refuse(&self) -> bool {
        match self
            .0
            .compare_exchange(PENDING, REFUSED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(now) => now == REFUSED,
        }
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
    /// Whether the handler started, for the did-not-run mark.
    watch: Option<Arc<Watch>>,
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
            watch: None,
        }))
    }

    /// The same call, telling `watch` when its handler starts.
    pub(crate) fn watched(mut self, watch: Arc<Watch>) -> Call {
        self.0.watch = Some(watch);
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
    /// reads as `null`. Read through JSON, within [`ARGS_READ_LIMIT`]
    /// bytes: larger arguments fail with `OverBudget`.
    pub fn args<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.args_json()?).map_err(|e| self.unreadable(e))
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
        let json = self.args_json()?;
        let all: Vec<&serde_json::value::RawValue> =
            serde_json::from_slice(&json).map_err(|e| self.unreadable(e))?;
        let one = all.get(position).map_or("null", |raw| raw.get());
        serde_json::from_str(one).map_err(|e| self.unreadable(e))
    }

    /// The arguments as JSON text, within [`ARGS_READ_LIMIT`] bytes: a
    /// layer reading a large argument costs at most that much more.
    fn args_json(&self) -> Result<Vec<u8>, Error> {
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
        let mut out = Capped(Vec::new());
        match serde_json::to_writer(&mut out, args) {
            Ok(()) => Ok(out.0),
            Err(e) if e.is_io() => Err(Error::new(
                ErrorKind::OverBudget,
                format!(
                    "the arguments of `{}.{}` take more than {ARGS_READ_LIMIT} bytes as JSON: \
                     too large for a layer to read",
                    self.service(),
                    self.method()
                ),
            )),
            Err(e) => Err(self.unreadable(e)),
        }
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
        if parts.watch.as_ref().is_some_and(|watch| !watch.start()) {
            // Answered as refused already: it must not run now.
            let late = Error::new(
                ErrorKind::Cancelled,
                "the call was answered as refused before its handler could start",
            );
            let never =
                CallFuture::new(crate::service::boxed(std::future::ready(Err(late.into()))));
            return parts.context.scope(never);
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
