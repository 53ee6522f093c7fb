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
use crate::stream::Inbox;

/// A connection that can carry calls: implemented by `rpc-transport`'s
/// client connection, and by anything else that can (an in-memory channel in
/// tests, a pooled or reconnecting client).
pub trait Transport: Send + Sync + 'static {
    /// Encodes a request for `method` with `args` and sends it; the future
    /// resolves to the matching response, or fails with the connection's
    /// error, or with [`ErrorKind::Timeout`] once `timeout` (or the
    /// transport's default) has passed.
    ///
    /// The future may borrow `args` until it completes (a reconnecting
    /// transport encodes them once it has a connection); a transport that
    /// encodes them before returning can return a `'static` future.
    fn call<'a>(
        &'a self,
        method: &'a str,
        args: &'a (dyn erased_serde::Serialize + Sync),
        timeout: Option<Duration>,
    ) -> ResponseFuture<'a>;

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
        Error::new(ErrorKind::from_code(fault.code), fault.message.clone())
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
        }
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
            transport: self.transport.clone(),
            timeout: Some(timeout),
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

    fn send<'a, A: Serialize + Sync>(&'a self, method: &'a str, args: &'a A) -> ResponseFuture<'a> {
        self.transport.call(method, args, self.timeout)
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
