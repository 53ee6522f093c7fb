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

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::header::{CONNECTION, CONTENT_LENGTH, EXPECT};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use bytes::BytesMut;
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
    let arrived = parts.extensions.get::<Arrived>().map(|Arrived(at)| *at);
    match read(&gateway, &parts, body, arrived).await {
        Ok(body) => next.run(Request::from_parts(parts, Body::from(body))).await,
        Err(refusal) => refusal,
    }
}

/// The body of the request whose head is `parts` (which `arrived` then,
/// if known), read whole if it is at most `max_body_bytes`; otherwise the
/// answer that refuses it, as the [module](self) describes.
pub(crate) async fn read<B>(
    gateway: &Gateway,
    parts: &Parts,
    body: B,
    arrived: Option<Instant>,
) -> Result<Bytes, Response>
where
    B: HttpBody<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let limit = gateway.max_body_bytes;
    let mut chunks = body;
    let read = match declared_length(&parts.headers) {
        Some(length) if length > limit => Err(Unread::Over(0)),
        _ => collect(&mut chunks, limit).await,
    };
    match read {
        Ok(body) => Ok(body),
        Err(Unread::Over(read)) => Err(over_limit(gateway, parts, chunks, read, arrived)),
        Err(Unread::Failed(e)) => {
            let message = format!("the request body could not be read: {e}");
            Err(refused(
                parts.uri.path(),
                Error::new(ErrorKind::Parse, message),
            ))
        }
    }
}

/// The body's `Content-Length`, if it has a valid one.
fn declared_length(headers: &HeaderMap) -> Option<usize> {
    let value = headers.get(CONTENT_LENGTH)?.to_str().ok()?;
    // A length past usize is over any limit.
    Some(value.parse::<u64>().ok()?.try_into().unwrap_or(usize::MAX))
}

/// The next chunk of data of `body`, skipping trailers; `None` at its end.
async fn next_chunk<B>(body: &mut B) -> Option<Result<Bytes, axum::Error>>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    loop {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await?;
        match frame {
            Ok(frame) => match frame.into_data() {
                Ok(data) => return Some(Ok(data)),
                Err(_trailers) => continue,
            },
            Err(e) => return Some(Err(axum::Error::new(e))),
        }
    }
}

/// The whole body, if it is at most `limit` bytes; a body that arrives in
/// one piece is not copied.
async fn collect<B>(chunks: &mut B, limit: usize) -> Result<Bytes, Unread>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    let mut first = None;
    let mut joined = BytesMut::new();
    let mut read = 0usize;
    while let Some(chunk) = next_chunk(chunks).await {
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
fn over_limit<B>(
    gateway: &Gateway,
    parts: &Parts,
    rest: B,
    read: usize,
    arrived: Option<Instant>,
) -> Response
where
    B: HttpBody<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
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
        let until = arrived.unwrap_or_else(Instant::now) + gateway.request_timeout;
        // The connection stays open until this ends: hyper reads the body
        // for as long as someone holds it.
        tokio::spawn(discard(rest, budget, until));
    }
    response
}

/// Reads `rest` and drops it, until it ends, `budget` bytes have been
/// read, or `until` has passed.
async fn discard<B>(mut rest: B, mut budget: usize, until: Instant)
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    let drain = async {
        while let Some(Ok(chunk)) = next_chunk(&mut rest).await {
            budget = budget.saturating_sub(chunk.len());
            if budget == 0 {
                return;
            }
        }
    };
    let _ = tokio::time::timeout_at(until.into(), drain).await;
}
