//! The client side of a call: the [`Transport`] trait a connection implements,
//! and the [`Client`] handle that generated clients wrap.
//!
//! A generated `CalculatorClient` holds a [`Client`]; `calc.add(2, 3)` becomes
//! [`Client::call`] with the method's argument struct, which the transport
//! encodes straight into its outgoing buffer. The transport resolves the
//! call with a [`Response`]: the reply frame and where its result lies in it,
//! decoded here, in the caller's task, into the method's return type.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{self, Codec};
/// Re-exported from [`crate::error`], where the codecs read it from too.
pub use crate::error::WireFault;
use crate::error::{CallError, Error, ErrorKind};
use crate::layer::{BoxError, Shared, into_error};
use crate::metadata::{MetaValue, Metadata};
use crate::service::MethodInfo;
use crate::stream::Inbox;

/// A connection that can carry calls: implemented by `rpc-transport`'s
/// client connection, and by anything else that can (an in-memory channel in
/// tests, a pooled or reconnecting client).
pub trait Transport: Send + Sync + 'static {
    /// Encodes a request for `call.method` with `call.args` and sends it; the future
    /// resolves to the matching response, or fails with the connection's
    /// error, or with [`ErrorKind::Timeout`] once `timeout` (or the
    /// transport's default) has passed.
    ///
    /// The future may borrow `args` until it completes (a reconnecting
    /// transport encodes them once it has a connection); a transport that
    /// encodes them before returning can return a `'static` future.
    ///
    /// `call` carries the method, its arguments, the timeout and the
    /// metadata to send (see [`Outgoing`]).
    fn call<'a>(&'a self, call: Outgoing<'a>) -> ResponseFuture<'a>;

    /// Whether this transport has ended for good: every call from now on
    /// fails at once. A transport that reconnects is never closed while it
    /// may reconnect. The default says never.
    fn is_closed(&self) -> bool {
        false
    }

    /// Completes once [`Transport::is_closed`] turns true; the default never.
    fn closed(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(std::future::pending())
    }
}

/// One call as a client sends it, before it is encoded: what a
/// [`Transport`] and a client layer (see [`Client::layer`]) see.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct Outgoing<'a> {
    /// `Service.method`, as sent.
    pub method: &'a str,
    /// The method's description, when a generated client makes the call:
    /// a retry policy can read `idempotent` in it.
    pub info: Option<&'static MethodInfo>,
    /// The method's argument struct.
    pub args: &'a (dyn erased_serde::Serialize + Sync),
    /// How long the caller waits; `None` for the transport's default.
    pub timeout: Option<Duration>,
    /// The metadata sent with the call.
    pub metadata: Option<&'a Metadata>,
}

impl<'a> Outgoing<'a> {
    /// A call of `method` with `args`, and nothing else set.
    pub fn new(method: &'a str, args: &'a (dyn erased_serde::Serialize + Sync)) -> Outgoing<'a> {
        Outgoing {
            method,
            info: None,
            args,
            timeout: None,
            metadata: None,
        }
    }

    /// Whether the method is marked `#[rpc(idempotent)]` (safe to send
    /// again); `false` when the call does not say.
    pub fn idempotent(&self) -> bool {
        self.info.is_some_and(|info| info.idempotent)
    }
}

impl std::fmt::Debug for Outgoing<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing")
            .field("method", &self.method)
            .field("idempotent", &self.idempotent())
            .field("timeout", &self.timeout)
            .field("metadata", &self.metadata)
            .finish_non_exhaustive()
    }
}

/// What [`Transport::call`] returns.
pub type ResponseFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response, Error>> + Send + 'a>>;

/// A reply as the transport received it: the frame, the codec that reads it,
/// and whether it holds a result or an error.
#[derive(Debug)]
pub struct Response {
    codec: &'static dyn Codec,
    frame: Bytes,
    outcome: Result<Range<usize>, WireFault>,
    /// The stream the result opened, for the `Stream<T>` in it to take.
    stream: std::sync::Mutex<Option<Arc<Inbox>>>,
}

impl Drop for Response {
    /// A stream the result opened but no `Stream<T>` took is cancelled.
    fn drop(&mut self) {
        let stream = self.stream.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(inbox) = stream.take() {
            inbox.cancel();
        }
    }
}

impl Response {
    /// A response read from `frame`; `outcome` locates the result or error in it.
    pub fn new(
        codec: &'static dyn Codec,
        frame: Bytes,
        outcome: Result<Range<usize>, WireFault>,
    ) -> Response {
        Response {
            codec,
            frame,
            outcome,
            stream: std::sync::Mutex::new(None),
        }
    }

    /// The same response, whose result opened the stream `inbox` receives.
    pub fn with_stream(self, inbox: Arc<Inbox>) -> Response {
        *self.stream.lock().unwrap_or_else(|p| p.into_inner()) = Some(inbox);
        self
    }

    /// The kind of the error this response carries, if it is one: what a
    /// client layer (a retry policy) looks at.
    pub fn error_kind(&self) -> Option<ErrorKind> {
        self.outcome
            .as_ref()
            .err()
            .map(|fault| ErrorKind::from_code(fault.code))
    }

    /// Whether this response refuses the call as not run (the did-not-run
    /// mark): it is safe to send again, whatever the method. What a retry
    /// policy should look at first.
    pub fn not_run(&self) -> bool {
        self.outcome.as_ref().is_err_and(|fault| fault.not_run)
    }

    /// Decodes the result of a method that cannot fail by itself.
    pub fn into_result<R: DeserializeOwned>(self) -> Result<R, Error> {
        match &self.outcome {
            Ok(range) => self.decode(range.clone()),
            Err(fault) => Err(self.fault_error(fault)),
        }
    }

    /// Decodes the result of a method declared `-> Result<R, E>`: its typed
    /// error arrives as [`CallError::Application`].
    pub fn into_fallible<R: DeserializeOwned, E: DeserializeOwned>(
        self,
    ) -> Result<R, CallError<E>> {
        let fault = match &self.outcome {
            Ok(range) => return Ok(self.decode(range.clone())?),
            Err(fault) => fault,
        };
        match (&fault.data, ErrorKind::from_code(fault.code)) {
            (Some(data), ErrorKind::Application) => {
                let e = self.decode(data.clone()).map_err(|e| {
                    Error::new(
                        ErrorKind::Parse,
                        format!("the application error did not decode: {}", e.message()),
                    )
                })?;
                Err(CallError::Application(e))
            }
            _ => Err(CallError::Rpc(self.fault_error(fault))),
        }
    }

    /// Decodes the value at `range`; [`crate::Bytes`] in it share the
    /// frame, and a [`crate::Stream`] in it takes the stream it opened.
    fn decode<T: DeserializeOwned>(&self, range: Range<usize>) -> Result<T, Error> {
        let decode = || {
            crate::blob::decoding_from(&self.frame, || {
                codec::decode(self.codec, &self.frame[range])
            })
        };
        let Some(inbox) = self.stream.lock().ok().and_then(|mut s| s.take()) else {
            return decode();
        };
        let (decoded, taken) = crate::stream::receiving(inbox.clone(), decode);
        if !taken {
            inbox.cancel();
        }
        decoded
    }

    fn fault_error(&self, fault: &WireFault) -> Error {
        fault.clone().into_error()
    }
}

/// A cheap, cloneable handle on a [`Transport`]; clones share the connection.
///
/// ```no_run
/// # async fn demo(client: rpc_core::Client) -> Result<(), rpc_core::Error> {
/// #[derive(serde::Serialize)]
/// struct AddArgs { x: i64, y: i64 }
/// let sum: i64 = client.call("Calculator.add", &AddArgs { x: 2, y: 3 }).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    transport: Arc<dyn Transport>,
    timeout: Option<Duration>,
    metadata: Option<Arc<Metadata>>,
    /// Why metadata given to [`Client::with_metadata`] was not taken: every
    /// call fails with it.
    refused: Option<Arc<str>>,
}

impl Client {
    /// A handle on `transport`.
    pub fn new(transport: impl Transport) -> Client {
        Client::from_arc(Arc::new(transport))
    }

    /// A handle on a shared transport.
    pub fn from_arc(transport: Arc<dyn Transport>) -> Client {
        Client {
            transport,
            timeout: None,
            metadata: None,
            refused: None,
        }
    }

    /// A handle whose calls go through `layer` (a tower layer, or a
    /// `tower::ServiceBuilder` of several) and then through this handle's
    /// connection. A layer sees each call as an [`Outgoing`] before it is
    /// encoded; its errors reach the caller with their own kind (see
    /// [`crate::layer::into_error`]). The layer's service is shared by
    /// every clone of the new handle, so a rate limit limits them all.
    ///
    /// ```no_run
    /// # async fn demo(conn: rpc_core::Client) {
    /// use std::time::Duration;
    /// use tower::ServiceBuilder;
    /// let client = conn.layer(
    ///     ServiceBuilder::new()
    ///         .rate_limit(100, Duration::from_secs(1))
    ///         .concurrency_limit(8),
    /// );
    /// # }
    /// ```
    pub fn layer<L>(&self, layer: L) -> Client
    where
        L: tower::Layer<Client>,
        L::Service: for<'a> tower::Service<Outgoing<'a>, Response = Response> + Send + 'static,
        for<'a> <L::Service as tower::Service<Outgoing<'a>>>::Error: Into<BoxError>,
        for<'a> <L::Service as tower::Service<Outgoing<'a>>>::Future: Send,
    {
        let inner = Client::from_arc(self.transport.clone());
        let layered = Layered {
            service: Shared::new(layer.layer(inner)),
            below: self.transport.clone(),
        };
        Client {
            transport: Arc::new(layered),
            ..self.clone()
        }
    }

    /// A handle whose calls also carry `key: value` as metadata (see
    /// [`crate::metadata`]); clones keep it, and the connection is shared.
    /// Server handlers and layers read it from their
    /// [`Context`](crate::Context).
    ///
    /// A key that is not valid, or a map over the limits, makes every call
    /// of the new handle fail with `InvalidRequest` saying why
    /// ([`Client::try_with_metadata`] says at once).
    pub fn with_metadata(&self, key: &str, value: impl Into<MetaValue>) -> Client {
        match self.try_with_metadata(key, value) {
            Ok(client) => client,
            Err(e) => Client {
                refused: Some(e.message().into()),
                ..self.clone()
            },
        }
    }

    /// [`Client::with_metadata`], failing at once if the key is not valid or
    /// the map would pass its limits.
    pub fn try_with_metadata(
        &self,
        key: &str,
        value: impl Into<MetaValue>,
    ) -> Result<Client, Error> {
        let mut metadata = self.metadata.as_deref().cloned().unwrap_or_default();
        metadata.insert(key, value)?;
        Ok(Client {
            metadata: Some(Arc::new(metadata)),
            ..self.clone()
        })
    }

    /// The metadata this handle's calls carry.
    pub fn metadata(&self) -> Option<&Metadata> {
        self.metadata.as_deref()
    }

    /// Whether the connection has ended for good, so that every call fails
    /// at once (with `ConnectionLost`): time to build a new client, or to
    /// report the loss. A client with a `[client.reconnect]` policy is not
    /// closed while it may reconnect.
    pub fn is_closed(&self) -> bool {
        self.transport.is_closed()
    }

    /// Completes once [`Client::is_closed`] turns true.
    pub async fn closed(&self) {
        self.transport.closed().await
    }

    /// A handle whose calls time out after `timeout` instead of the
    /// transport's default; the connection is shared with `self`.
    pub fn with_timeout(&self, timeout: Duration) -> Client {
        Client {
            timeout: Some(timeout),
            ..self.clone()
        }
    }

    /// Calls `method` with `args`, decoding the result as `R`.
    pub async fn call<A, R>(&self, method: &str, args: &A) -> Result<R, Error>
    where
        A: Serialize + Sync,
        R: DeserializeOwned,
    {
        self.send(method, args).await?.into_result()
    }

    /// Calls a method declared `-> Result<R, E>`.
    pub async fn call_fallible<A, R, E>(&self, method: &str, args: &A) -> Result<R, CallError<E>>
    where
        A: Serialize + Sync,
        R: DeserializeOwned,
        E: DeserializeOwned,
    {
        self.send(method, args).await?.into_fallible()
    }

    /// Calls the method `info` describes (generated clients do), so that
    /// client layers can see it.
    #[doc(hidden)]
    pub async fn call_described<A, R>(
        &self,
        info: &'static MethodInfo,
        method: &str,
        args: &A,
    ) -> Result<R, Error>
    where
        A: Serialize + Sync,
        R: DeserializeOwned,
    {
        self.send_described(Some(info), method, args)
            .await?
            .into_result()
    }

    /// [`Client::call_described`] for a method declared `-> Result<R, E>`.
    #[doc(hidden)]
    pub async fn call_fallible_described<A, R, E>(
        &self,
        info: &'static MethodInfo,
        method: &str,
        args: &A,
    ) -> Result<R, CallError<E>>
    where
        A: Serialize + Sync,
        R: DeserializeOwned,
        E: DeserializeOwned,
    {
        self.send_described(Some(info), method, args)
            .await?
            .into_fallible()
    }

    /// Sends `call` as it is (this handle's timeout and metadata are not
    /// added), and resolves to the raw response.
    pub fn request<'a>(&'a self, call: Outgoing<'a>) -> ResponseFuture<'a> {
        self.transport.call(call)
    }

    fn send<'a, A: Serialize + Sync>(&'a self, method: &'a str, args: &'a A) -> ResponseFuture<'a> {
        self.send_described(None, method, args)
    }

    fn send_described<'a, A: Serialize + Sync>(
        &'a self,
        info: Option<&'static MethodInfo>,
        method: &'a str,
        args: &'a A,
    ) -> ResponseFuture<'a> {
        if let Some(why) = &self.refused {
            let e = Error::new(ErrorKind::InvalidRequest, format!("{method}: {why}"));
            return Box::pin(std::future::ready(Err(e)));
        }
        self.transport.call(Outgoing {
            method,
            info,
            args,
            timeout: self.timeout,
            metadata: self.metadata.as_deref(),
        })
    }
}

/// A client's calls sent as they are: the innermost service of a client
/// layer (see [`Client::layer`]).
impl<'a> tower::Service<Outgoing<'a>> for Client {
    type Response = Response;
    type Error = Error;
    type Future = ResponseFuture<'a>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: Outgoing<'a>) -> ResponseFuture<'a> {
        let transport = self.transport.clone();
        Box::pin(async move { transport.call(call).await })
    }
}

/// A connection whose calls go through a layer's service first.
struct Layered<S> {
    service: Shared<S>,
    /// The connection under the layer, for [`Transport::is_closed`].
    below: Arc<dyn Transport>,
}

impl<S> Transport for Layered<S>
where
    S: for<'a> tower::Service<Outgoing<'a>, Response = Response> + Send + 'static,
    for<'a> <S as tower::Service<Outgoing<'a>>>::Error: Into<BoxError>,
    for<'a> <S as tower::Service<Outgoing<'a>>>::Future: Send,
{
    fn call<'a>(&'a self, call: Outgoing<'a>) -> ResponseFuture<'a> {
        Box::pin(async move { self.service.call(call).await.map_err(into_error) })
    }

    fn is_closed(&self) -> bool {
        self.below.is_closed()
    }

    fn closed(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        self.below.closed()
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
