//! The server side of a service: the [`Service`] trait that `#[rpc_service]`
//! implements for its generated `…Server` adapter, and the static description
//! of a service's methods that the registry uses for lookup and introspection.

use std::future::Future;
use std::pin::Pin;

use crate::error::{Error, ErrorKind};
use crate::schema::SchemaFn;

/// A boxed, `Send` future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A started call: its arguments are decoded, and its handler runs when it
/// is first polled. Until then its arguments can be read
/// ([`Handling::args`]), by middleware for one (see [`crate::layer`]).
pub trait Handling: Future<Output = Reply> + Send {
    /// The decoded arguments, until the handler first runs; `None` after,
    /// or for a call that does not keep them.
    fn args(&self) -> Option<&(dyn erased_serde::Serialize + Sync)>;
}

/// What [`Service::call`] returns: a boxed [`Handling`].
pub type BoxCall = Pin<Box<dyn Handling>>;

pin_project_lite::pin_project! {
    /// A call whose handler, `run`, takes its decoded `args` on first poll.
    struct Deferred<A, F, Fut> {
        ready: Option<(A, F)>,
        #[pin]
        running: Option<Fut>,
    }
}

impl<A, F, Fut> Future for Deferred<A, F, Fut>
where
    F: FnOnce(A) -> Fut,
    Fut: Future<Output = Reply>,
{
    type Output = Reply;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Reply> {
        let mut this = self.project();
        if let Some((args, run)) = this.ready.take() {
            this.running.set(Some(run(args)));
        }
        match this.running.as_pin_mut() {
            Some(running) => running.poll(cx),
            None => std::task::Poll::Ready(Err(Error::new(
                ErrorKind::Internal,
                "a call was polled after it ended",
            )
            .into())),
        }
    }
}

impl<A, F, Fut> Handling for Deferred<A, F, Fut>
where
    A: serde::Serialize + Send + Sync,
    F: FnOnce(A) -> Fut + Send,
    Fut: Future<Output = Reply> + Send,
{
    fn args(&self) -> Option<&(dyn erased_serde::Serialize + Sync)> {
        self.ready
            .as_ref()
            .map(|(a, _)| a as &(dyn erased_serde::Serialize + Sync))
    }
}

/// A call of decoded `args`: `run` takes them when the call is first
/// polled, and [`Handling::args`] shows them until then; with `keep_args`
/// false, `run` takes them now and the call shows none (see
/// [`Service::start`]).
pub fn started<A, F, Fut>(keep_args: bool, args: A, run: F) -> BoxCall
where
    A: serde::Serialize + Send + Sync + 'static,
    F: FnOnce(A) -> Fut + Send + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    if keep_args {
        deferred(args, run)
    } else {
        boxed(run(args))
    }
}

/// A call of decoded `args`: `run` takes them when the call is first
/// polled, and [`Handling::args`] shows them until then.
pub fn deferred<A, F, Fut>(args: A, run: F) -> BoxCall
where
    A: serde::Serialize + Send + Sync + 'static,
    F: FnOnce(A) -> Fut + Send + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    Box::pin(Deferred {
        ready: Some((args, run)),
        running: None,
    })
}

/// A call that shows no arguments (a hand-written service's, or one that
/// already runs).
pub fn boxed(future: impl Future<Output = Reply> + Send + 'static) -> BoxCall {
    Box::pin(Opaque { future })
}

pin_project_lite::pin_project! {
    /// A future, as a call that shows no arguments.
    struct Opaque<F> {
        #[pin]
        future: F,
    }
}

impl<F: Future<Output = Reply>> Future for Opaque<F> {
    type Output = Reply;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Reply> {
        self.project().future.poll(cx)
    }
}

impl<F: Future<Output = Reply> + Send> Handling for Opaque<F> {
    fn args(&self) -> Option<&(dyn erased_serde::Serialize + Sync)> {
        None
    }
}

/// A value ready to be encoded by whichever codec the caller uses.
pub type Payload = Box<dyn erased_serde::Serialize + Send>;

/// What a handler produced: the method's result, or a [`Fault`].
pub type Reply = Result<Payload, Fault>;

/// A failed call as it is sent back: the kind (which gives the wire code), a
/// message, and for application errors the typed error itself as `data`.
pub struct Fault {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// What went wrong, for people.
    pub message: String,
    /// The method's typed error, for [`ErrorKind::Application`].
    pub data: Option<Payload>,
    /// Refused before the handler started: the call did not run (sent as
    /// the did-not-run mark, protocol 2; see [`Error::did_not_run`]).
    pub not_run: bool,
}

impl Fault {
    /// An application error: `error` is sent as data, `message` describes it.
    pub fn application(message: String, error: Payload) -> Fault {
        Fault {
            kind: ErrorKind::Application,
            message,
            data: Some(error),
            not_run: false,
        }
    }

    /// The same fault, marked as a refusal made before the handler started.
    pub fn did_not_run(mut self) -> Fault {
        self.not_run = true;
        self
    }
}

impl From<Error> for Fault {
    fn from(e: Error) -> Fault {
        Fault {
            kind: e.kind(),
            message: e.message().to_owned(),
            data: None,
            not_run: e.not_run(),
        }
    }
}

impl std::fmt::Debug for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fault")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("data", &self.data.as_ref().map(|_| ".."))
            .field("not_run", &self.not_run)
            .finish()
    }
}

/// A service: a name, its methods, and a way to call one of them.
///
/// Implemented by the `…Server` adapter that `#[rpc_service]` generates; you
/// rarely implement it by hand. [`Service::call`] decodes the arguments from
/// whatever deserializer the transport supplies (a JSON-RPC `params` value, a
/// bincode frame, a URL query…), so one implementation serves every
/// transport.
pub trait Service: Send + Sync + 'static {
    /// The service's name and methods.
    fn info(&self) -> &'static ServiceInfo;

    /// Decodes the arguments of `method` from `args` and starts the call.
    ///
    /// Fails with [`ErrorKind::InvalidParams`] when the arguments do not
    /// decode, and [`ErrorKind::MethodNotFound`] when `method` is not one of
    /// [`ServiceInfo::methods`]. The call resolves to the handler's reply;
    /// the handler runs when it is first polled (build it with
    /// [`deferred`], or [`boxed`]).
    fn call(
        &self,
        method: &str,
        args: &mut dyn erased_serde::Deserializer<'_>,
    ) -> Result<BoxCall, Error>;

    /// [`Service::call`], told whether the call's decoded arguments must
    /// stay readable until it runs ([`Handling::args`], for middleware): a
    /// registry with no layers asks for no such thing, and a generated
    /// service then starts the handler's future as it is. The default
    /// ignores `keep_args`.
    fn start(
        &self,
        method: &str,
        args: &mut dyn erased_serde::Deserializer<'_>,
        keep_args: bool,
    ) -> Result<BoxCall, Error> {
        let _ = keep_args;
        self.call(method, args)
    }
}

/// The static description of a service.
#[derive(Debug)]
pub struct ServiceInfo {
    /// The name methods are addressed by: `Name.method`.
    pub name: &'static str,
    /// The trait's doc comment.
    pub doc: &'static str,
    /// Its methods, in declaration order.
    pub methods: &'static [MethodInfo],
}

/// The static description of one method.
#[derive(Debug)]
pub struct MethodInfo {
    /// The method's name.
    pub name: &'static str,
    /// Its doc comment.
    pub doc: &'static str,
    /// Its parameters, in order.
    pub params: &'static [ParamInfo],
    /// The success type, as written in the trait (`i64`, `()`, …).
    pub returns: &'static str,
    /// The application error type of a `-> Result<T, E>` method.
    pub error: Option<&'static str>,
    /// The JSON Schema of the success type, for the OpenRPC document
    /// ([`crate::discover`]).
    pub returns_schema: SchemaFn,
    /// The JSON Schema of [`MethodInfo::error`], when there is one.
    pub error_schema: Option<SchemaFn>,
    /// Marked `#[rpc(idempotent)]`: safe to repeat.
    pub idempotent: bool,
    /// A parameter is a [`crate::Stream`]: the client sends items.
    pub takes_stream: bool,
    /// The result is a [`crate::Stream`]: the server sends items.
    pub returns_stream: bool,
}

/// One parameter: its name and its type as written.
#[derive(Debug)]
pub struct ParamInfo {
    /// The parameter's name.
    pub name: &'static str,
    /// Its type, as written in the trait.
    pub ty: &'static str,
    /// Its JSON Schema, for the OpenRPC document ([`crate::discover`]).
    pub schema: SchemaFn,
}

impl ServiceInfo {
    /// The method called `name`.
    pub fn method(&self, name: &str) -> Option<&'static MethodInfo> {
        self.methods.iter().find(|m| m.name == name)
    }
}

impl MethodInfo {
    /// Whether the call carries a stream either way.
    pub fn streams(&self) -> bool {
        self.takes_stream || self.returns_stream
    }

    /// `name(x: i64, y: i64) -> i64`, as shown in errors and introspection.
    pub fn signature(&self) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|p| format!("{}: {}", p.name, p.ty))
            .collect();
        let mut s = format!("{}({}) -> ", self.name, params.join(", "));
        match self.error {
            Some(e) => s.push_str(&format!("Result<{}, {e}>", self.returns)),
            None => s.push_str(self.returns),
        }
        s
    }
}

/// A started call: the handler's future, with panics turned into a
/// [`ErrorKind::HandlerPanic`] fault carrying the method's name and the
/// panic's message ("`Calculator.add`: boom"), at once.
#[must_use = "a call does nothing unless polled"]
pub struct CallFuture {
    inner: Option<BoxCall>,
    /// Its faults may carry the did-not-run mark (the layers' answer,
    /// which sets it); a handler's never do.
    marks: bool,
    /// The service and method, for the panic's message.
    method: Option<(&'static str, &'static str)>,
}

impl CallFuture {
    /// Guards `future`.
    pub fn new(future: BoxCall) -> CallFuture {
        CallFuture {
            inner: Some(future),
            marks: false,
            method: None,
        }
    }

    /// Guards `future`, the middleware's answer to a call, whose faults say
    /// themselves whether the handler ran (the did-not-run mark).
    pub(crate) fn marking(future: BoxCall) -> CallFuture {
        CallFuture {
            marks: true,
            ..CallFuture::new(future)
        }
    }

    /// The call's decoded arguments, until its handler first runs.
    pub fn args(&self) -> Option<&(dyn erased_serde::Serialize + Sync)> {
        self.inner.as_ref().and_then(|call| call.args())
    }

    /// Names the method it runs (`service.method`) in a panic's message.
    pub fn of(mut self, service: &'static str, method: &'static str) -> CallFuture {
        self.method = Some((service, method));
        self
    }
}

impl Future for CallFuture {
    type Output = Reply;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Reply> {
        let Some(inner) = self.inner.as_mut() else {
            return std::task::Poll::Ready(Err(Error::new(
                ErrorKind::Internal,
                "a call was polled after it ended",
            )
            .into()));
        };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Ok(std::task::Poll::Ready(mut reply)) => {
                self.inner = None;
                if let (Err(fault), false) = (&mut reply, self.marks) {
                    // The handler ran: whatever error it passed on (a
                    // downstream refusal), this call did run.
                    fault.not_run = false;
                }
                std::task::Poll::Ready(reply)
            }
            Err(panic) => {
                // The future is in an unknown state after a panic: drop it.
                self.inner = None;
                let why = panic_message(&*panic);
                let message = match self.method {
                    Some((service, method)) => format!("`{service}.{method}`: {why}"),
                    None => why.to_owned(),
                };
                std::task::Poll::Ready(Err(Error::new(ErrorKind::HandlerPanic, message).into()))
            }
        }
    }
}

impl std::fmt::Debug for CallFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallFuture").finish_non_exhaustive()
    }
}

/// The text of a panic's payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "a non-string panic payload"
    }
}
