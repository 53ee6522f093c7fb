//! A client [`Transport`] for a Python `multiprocessing.connection.Listener`
//! server in the pattern: one call at a time, request then reply.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rpc_core::Error> {
//! use rpc_transport::ClientConfig;
//! let config = ClientConfig::builder()
//!     .connect("127.0.0.1:17001")
//!     .authkey("peekaboo")
//!     .codec("pickle") // or "py-json"
//!     .allow_legacy_auth(true) // a Python 3.11 server
//!     .build()
//!     .unwrap();
//! let client = rpc_transport::connect(&config).await?;
//! // CalculatorClient::new(client).add(2, 3).await? sends ('add', (2, 3), {})
//! # Ok(()) }
//! ```
//!
//! The pattern has no request ids, so replies are matched by order: a
//! caller holds the connection from sending its request until its reply
//! arrives, and others wait their turn (within their own timeout).
//!
//! # When a call fails
//!
//! - The Python method raised: with `pickle`, the server sends the pickled
//!   exception and the call fails with [`ErrorKind::Application`], its
//!   message naming the class and the exception's message.
//! - With `py-json`, the pattern's server cannot answer an exception (its
//!   `json.dumps(e)` raises inside the handler, so nothing is sent): the call
//!   fails with [`ErrorKind::Timeout`] at the call timeout, saying the Python
//!   side sent nothing.
//! - After a timeout, or a call dropped while it waited for its reply, the
//!   connection is unusable: a late reply would answer the next call. Every
//!   later call fails at once with [`ErrorKind::ConnectionLost`] saying so;
//!   connect again.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures::{SinkExt, StreamExt};
use rpc_core::client::{Outgoing, ResponseFuture};
use rpc_core::codec::{Codec, Inbound, OutRequest};
use rpc_core::{Error, ErrorKind, Response, Transport};
use tokio::sync::Mutex;
use tokio::time::{Instant, timeout_at};
use tokio_util::codec::Framed;

use crate::config::ClientConfig;
use crate::net::{self, Io};
use crate::wire::frame::FrameCodec;
use crate::wire::handshake::AuthOptions;
use crate::wire::session::{self, frame_error};

/// An authenticated connection to a Python server in the pattern;
/// implements [`Transport`].
#[derive(Debug)]
pub struct PythonConnection {
    state: Arc<Mutex<State>>,
    codec: &'static dyn Codec,
    call_timeout: Duration,
    /// The largest request sent (this side's `max_frame_bytes`).
    max_frame: usize,
}

struct State {
    framed: Framed<Box<dyn Io>, FrameCodec>,
    /// Why the connection can no longer carry calls, once it cannot.
    broken: Option<String>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl PythonConnection {
    /// Connects to `config.connect()` and authenticates; `config.codec()`
    /// must be `"pickle"` or `"py-json"`.
    pub async fn connect(config: &ClientConfig) -> Result<PythonConnection, Error> {
        let address = config.address()?;
        let stream = net::connect(address).await.map_err(|e| {
            Error::new(ErrorKind::Io, format!("cannot connect to {address}: {e}")).with_source(e)
        })?;
        PythonConnection::over(stream, config).await
    }

    /// Authenticates over an already connected stream.
    pub async fn over<S: Io>(io: S, config: &ClientConfig) -> Result<PythonConnection, Error> {
        let codec = super::codec(config.codec()).ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                format!(
                    "codec `{}` does not call Python servers; use `pickle` or `py-json`",
                    config.codec()
                ),
            )
        })?;
        let io: Box<dyn Io> = Box::new(io);
        let mut framed = Framed::new(io, FrameCodec::new(config.max_frame_bytes()));
        let opts = AuthOptions {
            timeout: config.handshake_timeout(),
            allow_legacy: config.allow_legacy_auth(),
        };
        session::connect(&mut framed, config.authkey().as_bytes(), &opts).await?;
        Ok(PythonConnection {
            state: Arc::new(Mutex::new(State {
                framed,
                broken: None,
            })),
            codec,
            call_timeout: config.call_timeout(),
            max_frame: config.max_frame_bytes(),
        })
    }
}

impl Transport for PythonConnection {
    fn call<'a>(&'a self, call: Outgoing<'a>) -> ResponseFuture<'a> {
        let (method, args) = (call.method, call.args);
        if call.metadata.is_some_and(|m| !m.is_empty()) {
            let e = Error::new(
                ErrorKind::InvalidRequest,
                format!(
                    "`{method}` carries metadata, which the multiprocessing pattern a Python \
                     server speaks cannot carry"
                ),
            );
            return Box::pin(std::future::ready(Err(e)));
        }
        let timeout = call.timeout.unwrap_or(self.call_timeout);
        let request = OutRequest {
            id: 0,
            method,
            deadline: None,
            args,
            metadata: None,
        };
        let mut frame = BytesMut::new();
        let encoded = self
            .codec
            .encode_request(&mut frame, &request)
            .and_then(|()| self.check_size(method, frame.len()));
        let (state, codec, method) = (self.state.clone(), self.codec, method.to_owned());
        Box::pin(async move {
            encoded?;
            let call = Call {
                method,
                timeout,
                deadline: Instant::now() + timeout,
                codec,
            };
            let mut state = timeout_at(call.deadline, state.lock())
                .await
                .map_err(|_| call.timed_out("while an earlier call held the connection"))?;
            state.exchange(frame, &call).await
        })
    }
}

/// One call, as the connection carries it.
struct Call {
    method: String,
    timeout: Duration,
    deadline: Instant,
    codec: &'static dyn Codec,
}

impl State {
    /// Sends the request and reads its reply, leaving the connection
    /// broken unless the reply was read.
    async fn exchange(&mut self, frame: BytesMut, call: &Call) -> Result<Response, Error> {
        if let Some(why) = &self.broken {
            return Err(Error::new(ErrorKind::ConnectionLost, why.clone()));
        }
        // Broken until the reply is in: a call dropped half way leaves a
        // reply in flight that would answer the next call.
        self.broken = Some(format!(
            "a call to `{}` was dropped before its reply arrived, \
             so replies no longer match calls; connect again",
            call.method
        ));
        let reply = round_trip(&mut self.framed, frame, call.deadline).await;
        let response = reply
            .map_err(|failure| call.failed(failure))
            .and_then(|frame| call.response(frame));
        self.broken = match &response {
            Ok(_) => None,
            Err(e) => Some(format!(
                "an earlier call to `{}` failed ({e}); connect again",
                call.method
            )),
        };
        response
    }
}

impl Call {
    fn response(&self, frame: BytesMut) -> Result<Response, Error> {
        match self.codec.decode_response(&frame)? {
            Inbound::Response { outcome, .. } => {
                Ok(Response::new(self.codec, frame.freeze(), outcome))
            }
            other => Err(Error::new(
                ErrorKind::Protocol,
                format!("unexpected reply from the Python server: {other:?}"),
            )),
        }
    }

    fn failed(&self, failure: Failure) -> Error {
        let json_hint = if self.codec.name() == "py-json" {
            "; a Python JSON server in the pattern sends nothing when the method raises, \
             because json.dumps cannot encode the exception"
        } else {
            ""
        };
        match failure {
            Failure::Timeout => {
                self.timed_out(&format!("the Python server sent nothing{json_hint}"))
            }
            Failure::Closed => Error::new(
                ErrorKind::ConnectionLost,
                format!(
                    "the Python server closed the connection without replying to `{}`{json_hint}",
                    self.method
                ),
            ),
            Failure::Frame(e) => e,
        }
    }

    fn timed_out(&self, why: &str) -> Error {
        let timed_out = Error::timed_out(&self.method, self.timeout);
        Error::new(
            ErrorKind::Timeout,
            format!("{}: {why}", timed_out.message()),
        )
    }
}

impl PythonConnection {
    /// Refuses a request over the frame limit before it is sent, so the
    /// connection stays usable.
    fn check_size(&self, method: &str, len: usize) -> Result<(), Error> {
        if len <= self.max_frame {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::FrameTooLarge,
            format!(
                "the request to `{method}` is {len} bytes, over max_frame_bytes ({})",
                self.max_frame
            ),
        ))
    }
}

/// How a round trip failed.
enum Failure {
    Timeout,
    Closed,
    Frame(Error),
}

/// Writes the request and reads one frame back, both by `deadline`.
async fn round_trip(
    framed: &mut Framed<Box<dyn Io>, FrameCodec>,
    frame: BytesMut,
    deadline: Instant,
) -> Result<BytesMut, Failure> {
    let sent = timeout_at(deadline, framed.send(frame.freeze())).await;
    sent.map_err(|_| Failure::Timeout)?
        .map_err(|e| Failure::Frame(frame_error(e)))?;
    match timeout_at(deadline, framed.next()).await {
        Ok(Some(Ok(reply))) => Ok(reply),
        Ok(Some(Err(e))) => Err(Failure::Frame(frame_error(e))),
        Ok(None) => Err(Failure::Closed),
        Err(_) => Err(Failure::Timeout),
    }
}
