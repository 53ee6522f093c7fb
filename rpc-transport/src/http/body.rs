//! Reading a request body within `max_body_bytes`, and refusing one over it
//! so that the client hears the refusal.
//!
//! A body declared (`Content-Length`) or found (chunked) to be over the
//! limit is answered at once with 413, in the form its endpoint speaks, and
//! `Connection: close`. Most clients send the whole body before they read
//! an answer, and a server that closes with their bytes unread makes the
//! kernel reset the connection: they get a broken pipe, not the 413. So
//! the rest of the body is read and thrown away first, until it ends, until
//! `max_body_bytes` more than the limit has arrived, or until
//! `request_timeout_ms` after the request arrived, whichever comes first:
//!
//! ```text
//! → POST /rpc  Content-Length: 17825792           (limit 16777216)
//! ← 413 Connection: close  {"jsonrpc":"2.0","id":null,"error":{"code":-32005,…}}
//! → … 17825792 bytes, read and dropped …
//! ← FIN
//! ```
//!
//! A client that sent `Expect: 100-continue` has sent no body yet and is
//! told 413 instead of `100 Continue`; nothing is read.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, BodyDataStream, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{CONNECTION, CONTENT_LENGTH, EXPECT};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use bytes::BytesMut;
use futures::StreamExt;
use rpc_core::{Error, ErrorKind};

use super::Gateway;
use super::caller::Arrived;
use super::refuse::refused;
use super::reply::too_large;

/// Why a body was not read whole.
enum Unread {
    /// It is over the limit; this much of it has been read.
    Over(usize),
    /// The connection failed while it was read.
    Failed(axum::Error),
}

/// Middleware: reads the body (at most `max_body_bytes`) before the
/// handler runs, and refuses a larger one as the [module](self) describes.
pub(crate) async fn read_within(
    State(gateway): State<Arc<Gateway>>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let limit = gateway.max_body_bytes;
    let mut chunks = body.into_data_stream();
    let read = match declared_length(&parts.headers) {
        Some(length) if length > limit => Err(Unread::Over(0)),
        _ => collect(&mut chunks, limit).await,
    };
    match read {
        Ok(body) => next.run(Request::from_parts(parts, Body::from(body))).await,
        Err(Unread::Over(read)) => over_limit(&gateway, &parts, chunks, read),
        Err(Unread::Failed(e)) => {
            let message = format!("the request body could not be read: {e}");
            refused(parts.uri.path(), Error::new(ErrorKind::Parse, message))
        }
    }
}

/// The body's `Content-Length`, if it has a valid one.
fn declared_length(headers: &HeaderMap) -> Option<usize> {
    let value = headers.get(CONTENT_LENGTH)?.to_str().ok()?;
    // A length past usize is over any limit.
    Some(value.parse::<u64>().ok()?.try_into().unwrap_or(usize::MAX))
}

/// The whole body, if it is at most `limit` bytes; a body that arrives in
/// one piece is not copied.
async fn collect(chunks: &mut BodyDataStream, limit: usize) -> Result<Bytes, Unread> {
    let mut first = None;
    let mut joined = BytesMut::new();
    let mut read = 0usize;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(Unread::Failed)?;
        read = read.saturating_add(chunk.len());
        if read > limit {
            return Err(Unread::Over(read));
        }
        match &first {
            None => first = Some(chunk),
            Some(first) => {
                if joined.is_empty() {
                    joined.extend_from_slice(first);
                }
                joined.extend_from_slice(&chunk);
            }
        }
    }
    Ok(match first {
        Some(only) if joined.is_empty() => only,
        _ => joined.freeze(),
    })
}

/// The 413 for a body over the limit, of which `read` bytes have been
/// read; what is left is read and dropped while the answer goes out.
fn over_limit(gateway: &Gateway, parts: &Parts, rest: BodyDataStream, read: usize) -> Response {
    let mut response = refused(parts.uri.path(), too_large());
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    let waits_for_continue = parts
        .headers
        .get(EXPECT)
        .is_some_and(|e| e.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if read > 0 || !waits_for_continue {
        let budget = gateway
            .max_body_bytes
            .saturating_mul(2)
            .saturating_sub(read);
        let arrived = parts
            .extensions
            .get::<Arrived>()
            .map_or_else(Instant::now, |Arrived(at)| *at);
        let until = arrived + gateway.request_timeout;
        // The connection stays open until this ends: hyper reads the body
        // for as long as someone holds it.
        tokio::spawn(discard(rest, budget, until));
    }
    response
}

/// Reads `rest` and drops it, until it ends, `budget` bytes have been
/// read, or `until` has passed.
async fn discard(mut rest: BodyDataStream, mut budget: usize, until: Instant) {
    let drain = async {
        while let Some(Ok(chunk)) = rest.next().await {
            budget = budget.saturating_sub(chunk.len());
            if budget == 0 {
                return;
            }
        }
    };
    let _ = tokio::time::timeout_at(until.into(), drain).await;
}
