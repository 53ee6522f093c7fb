//! Serving one Python client after authentication: read a request, run it,
//! send its reply, and nothing else; the pattern's proxy reads exactly one
//! frame per call.
//!
//! An application error, an unknown method or bad arguments are answered
//! (a pickled exception, or the JSON error object) and the connection goes
//! on. A request that cannot be read as plain data (a pickle naming a global,
//! a memo bomb, a malformed frame) is answered with a `ValueError` saying
//! why, and the connection is closed.

use std::net::SocketAddr;

use bytes::BytesMut;
use futures::StreamExt;
use rpc_core::python::call::{self, Call, Form};
use rpc_core::python::pickle::Options;
use rpc_core::service::Reply;
use rpc_core::{Context, Error, ErrorKind, Registry};
use tokio_util::codec::Framed;
use tracing::debug;

use crate::frame::FrameCodec;
use crate::net::Io;
use crate::session::{self, frame_error};

/// Serves a Python client whose first request is `first`, until it closes
/// the connection (`Ok`) or sends what cannot be read (`Err`, after telling it).
pub(crate) async fn serve<S: Io>(
    mut framed: Framed<S, FrameCodec>,
    registry: &Registry,
    first: BytesMut,
    peer: Option<SocketAddr>,
) -> Result<(), Error> {
    let options = Options::default();
    let mut frame = first;
    loop {
        let (form, reply, refused) = match Call::read(&frame, &options.scaled_to(frame.len())) {
            Ok(call) => (call.form, answer(registry, call, peer).await, None),
            Err(refusal) => {
                let error = refusal.error;
                let reply = call::error_reply(refusal.form, error.kind(), error.message());
                (refusal.form, reply, refusal.close.then_some(error))
            }
        };
        let reply = within_limit(form, reply, framed.codec().max_frame_bytes());
        session::send_frame(&mut framed, reply).await?;
        if let Some(error) = refused {
            return Err(error);
        }
        frame = match framed.next().await {
            Some(Ok(frame)) => frame,
            Some(Err(e)) => return Err(frame_error(e)),
            None => {
                debug!("Python client closed the connection");
                return Ok(());
            }
        };
    }
}

/// Runs one call and encodes its reply in the request's form.
async fn answer(registry: &Registry, call: Call, peer: Option<SocketAddr>) -> Vec<u8> {
    let (form, method) = (call.form, call.method.clone());
    let started = registry.resolve(&method).and_then(|route| {
        let params = call.params(registry.method(route))?;
        registry.call(
            route,
            &mut <dyn erased_serde::Deserializer<'_>>::erase(params),
        )
    });
    let reply: Reply = match started {
        Ok(future) => Context::new().with_peer(peer).scope(future).await,
        Err(e) => Err(e.into()),
    };
    let encoded = match reply {
        Ok(result) => call::reply(form, &*result as &dyn erased_serde::Serialize),
        Err(fault) => return failure(form, &method, fault.kind, &fault.message),
    };
    encoded.unwrap_or_else(|e| failure(form, &method, e.kind(), e.message()))
}

/// An error reply whose message names the method and the error.
fn failure(form: Form, method: &str, kind: ErrorKind, message: &str) -> Vec<u8> {
    match kind {
        // These messages name the method already.
        ErrorKind::MethodNotFound | ErrorKind::InvalidParams => {
            call::error_reply(form, kind, message)
        }
        _ => call::error_reply(form, kind, &format!("`{method}` failed: {message}")),
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
