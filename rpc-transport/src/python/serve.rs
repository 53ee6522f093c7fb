//! Serving one Python client after authentication: read a request, run it,
//! send its reply, and nothing else; the pattern's proxy reads exactly one
//! frame per call.
//!
//! An application error, an unknown method or bad arguments are answered
//! (a pickled exception, or the JSON error object) and the connection goes
//! on. A request that cannot be read as plain data (a pickle naming a global,
//! a memo bomb, a malformed frame) is answered with a `ValueError` saying
//! why, and the connection is closed. A method that streams is refused
//! before it runs, with an error naming the doors that carry streams.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures::StreamExt;
use rpc_core::python::call::{self, Call, Form};
use rpc_core::python::pickle::Options;
use rpc_core::service::{MethodInfo, Reply};
use rpc_core::{Context, Error, ErrorKind, Registry};
use tokio::sync::watch;
use tokio_util::codec::Framed;
use tracing::debug;

use crate::config::limits::Limits;
use crate::metrics::{Metrics, Transport};
use crate::net::Io;
use crate::wire::frame::FrameCodec;
use crate::wire::session::{self, frame_error};

/// What serving a Python peer needs from its server.
pub(crate) struct PythonPeer<'a> {
    pub(crate) registry: &'a Registry,
    pub(crate) metrics: &'a Metrics,
    pub(crate) limits: &'a Limits,
    /// Becomes `true` when the server starts shutting down.
    pub(crate) draining: watch::Receiver<bool>,
    pub(crate) peer: Option<SocketAddr>,
}

/// Serves a Python client whose first request is `first`, until it closes
/// the connection (`Ok`) or sends what cannot be read (`Err`, after telling it).
///
/// The pattern cannot take a notice, so shutdown closes an idle connection
/// and answers a request that arrives while draining with a
/// `ConnectionError` ("server shutting down") before closing; an idle
/// connection is closed after the idle timeout.
pub(crate) async fn serve<S: Io>(
    mut framed: Framed<S, FrameCodec>,
    first: BytesMut,
    mut python: PythonPeer<'_>,
) -> Result<(), Error> {
    let options = Options::default();
    let mut frame = first;
    // A frame read while a call ran: the next request, answered after it.
    let mut early: Option<BytesMut> = None;
    loop {
        let draining = *python.draining.borrow();
        let (form, reply, refused) = match Call::read(&frame, &options.scaled_to(frame.len())) {
            Ok(call) if draining => {
                let why = "the server is shutting down and did not run this call";
                let reply = call::error_reply(call.form, ErrorKind::ShuttingDown, why);
                (
                    call.form,
                    reply,
                    Some(Error::new(ErrorKind::ShuttingDown, why)),
                )
            }
            Ok(call) => {
                let form = call.form;
                match answer_while_connected(&mut framed, &python, call, &mut early).await {
                    Some(reply) => (form, reply?, None),
                    None => {
                        debug!("the Python client left during a call; the call is dropped");
                        return Ok(());
                    }
                }
            }
            Err(refusal) => {
                let error = refusal.error;
                let reply = call::error_reply(refusal.form, error.kind(), error.message());
                (refusal.form, reply, refusal.close.then_some(error))
            }
        };
        let reply = within_limit(form, reply, framed.codec().max_frame_bytes());
        let write_timeout = python.limits.write_timeout;
        match tokio::time::timeout(write_timeout, session::send_frame(&mut framed, reply)).await {
            Ok(sent) => sent?,
            Err(_) => {
                let why = format!(
                    "the Python client took none of its reply for {write_timeout:?} (write_timeout)"
                );
                return Err(Error::new(ErrorKind::ConnectionLost, why));
            }
        }
        if let Some(error) = refused {
            return Err(error);
        }
        if let Some(next) = early.take() {
            frame = next;
            continue;
        }
        let idle = python.limits.idle_timeout.unwrap_or(Duration::MAX);
        let next = tokio::select! {
            next = tokio::time::timeout(idle, framed.next()) => next,
            () = crate::shutdown::draining_started(&mut python.draining), if !draining => {
                debug!("closing an idle Python connection: the server is shutting down");
                return Ok(());
            }
        };
        frame = match next {
            Ok(Some(Ok(frame))) => frame,
            Ok(Some(Err(e))) => return Err(frame_error(e)),
            Ok(None) => {
                debug!("Python client closed the connection");
                return Ok(());
            }
            Err(_) => {
                debug!("closing an idle Python connection");
                return Ok(());
            }
        };
    }
}

/// Runs `call` while watching the connection: `None` if the client left
/// first (the call is dropped, and with it anything it held, such as a
/// middleware permit); a frame the client sent meanwhile is kept in
/// `early`, and the connection is not read again until the reply is sent.
async fn answer_while_connected<S: Io>(
    framed: &mut Framed<S, FrameCodec>,
    python: &PythonPeer<'_>,
    call: Call,
    early: &mut Option<BytesMut>,
) -> Option<Result<Vec<u8>, Error>> {
    let answer = python.answer(call);
    tokio::pin!(answer);
    loop {
        tokio::select! {
            reply = &mut answer => return Some(Ok(reply)),
            next = framed.next(), if early.is_none() => match next {
                Some(Ok(frame)) => *early = Some(frame),
                Some(Err(e)) => return Some(Err(frame_error(e))),
                None => return None,
            },
        }
    }
}

impl PythonPeer<'_> {
    /// Runs one call, counts it, and encodes its reply in the request's form.
    async fn answer(&self, mut call: Call) -> Vec<u8> {
        let started = Instant::now();
        let route = self.registry.resolve(&call.method);
        // Messages name the method as `Service.method`, however it was called.
        if let Ok(route) = route {
            let service = self.registry.service(route).name;
            call.method = format!("{service}.{}", self.registry.method(route).name);
        }
        let (form, method) = (call.form, call.method.clone());
        let running = route
            .as_ref()
            .map_err(|e| Error::new(e.kind(), e.message()));
        // The context is installed while the arguments are decoded too.
        let mut context = Context::new().with_peer(self.peer).with_transport("python");
        let running = running.and_then(|&route| {
            refuse_streams(self.registry.method(route))?;
            let params = call.params(self.registry.method(route))?;
            context.within(|| {
                self.registry.call(
                    route,
                    &mut <dyn erased_serde::Deserializer<'_>>::erase(params),
                )
            })
        });
        let reply: Reply = match (running, &route) {
            (Ok(future), Ok(route)) => {
                let future = self.registry.layered(*route, future, &context);
                context.scope(future).await
            }
            (Ok(_), Err(e)) => Err(Error::new(e.kind(), e.message()).into()),
            (Err(e), _) => Err(e.into()),
        };
        let outcome = reply.as_ref().map(drop).map_err(|fault| fault.kind);
        let route = route.ok();
        self.metrics
            .record_call(Transport::Python, route, outcome, started.elapsed());
        let encoded = match reply {
            Ok(result) => call::reply(form, &*result as &dyn erased_serde::Serialize),
            Err(fault) => {
                let data = fault
                    .data
                    .as_deref()
                    .map(|d| d as &dyn erased_serde::Serialize);
                return failure(form, &method, fault.kind, &fault.message, data);
            }
        };
        encoded.unwrap_or_else(|e| failure(form, &method, e.kind(), e.message(), None))
    }
}

/// Fails for a method whose calls carry a stream: the pattern reads one
/// reply per call, so the error names the doors that can carry it (its
/// message is prefixed with the method's name by [`failure`]).
fn refuse_streams(info: &MethodInfo) -> Result<(), Error> {
    if !info.streams() {
        return Ok(());
    }
    let way = if info.returns_stream {
        "returns"
    } else {
        "takes"
    };
    Err(Error::new(
        ErrorKind::InvalidRequest,
        format!(
            "it {way} a stream, which a multiprocessing peer cannot carry; {}",
            rpc_core::stream::DOORS
        ),
    ))
}

/// An error reply whose message names the method and the error, with a
/// typed error's data (`e.data` for the Python caller).
fn failure(
    form: Form,
    method: &str,
    kind: ErrorKind,
    message: &str,
    data: Option<&dyn erased_serde::Serialize>,
) -> Vec<u8> {
    match kind {
        // These messages name the method already.
        ErrorKind::MethodNotFound | ErrorKind::InvalidParams | ErrorKind::HandlerPanic => {
            call::error_reply_with(form, kind, message, data)
        }
        _ => {
            let message = format!("`{method}` failed: {message}");
            call::error_reply_with(form, kind, &message, data)
        }
    }
}

/// `reply`, or an error in its place if it is over the frame limit (a
/// Python client reads any size, but this server sends no more than it
/// accepts).
fn within_limit(form: Form, reply: Vec<u8>, limit: usize) -> Vec<u8> {
    if reply.len() <= limit {
        return reply;
    }
    let why = format!(
        "the reply is {} bytes, over this server's max_frame_bytes of {limit}",
        reply.len()
    );
    call::error_reply(form, ErrorKind::FrameTooLarge, &why)
}
