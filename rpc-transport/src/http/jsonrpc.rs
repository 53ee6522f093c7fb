//! `POST /rpc`: JSON-RPC 2.0, read and written by the framework's own
//! [`Json`] codec, so a request means the same over HTTP as over TCP.
//!
//! ```text
//! → POST /rpc  {"jsonrpc":"2.0","id":1,"method":"Calculator.add","params":{"x":2,"y":3}}
//! ← 200        {"jsonrpc":"2.0","id":1,"result":5}
//! → POST /rpc  [{"jsonrpc":"2.0","method":"KeyValue.set","params":["a",1]}]
//! ← 204        (notifications only)
//! → POST /rpc  {"jsonrpc":"2.0","id":1,"method":
//! ← 400        {"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"the request is not valid JSON: …"}}
//! ```
//!
//! A body is scanned before it is parsed: a batch of more than `max_batch`
//! calls is refused at its `max_batch + 1`th, unread past it. A body over
//! [`OFF_WORKER_BYTES`] is scanned and parsed on a blocking thread, so it
//! holds no runtime worker while other connections wait. A reply is never
//! larger than the server's `max_frame_bytes`; how a batch keeps to that is
//! in [`super::batch`].

use std::ops::Range;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use rpc_core::codec::{Codec, Id, Incoming, Json, Request};
use rpc_core::{Error, ErrorKind};

use super::Gateway;
use super::member::{Member, encode, encode_within, run};
use super::reply::{JSON, body_or_error, check_json, reply_too_large, status_of, too_many_members};

/// Bodies larger than this are scanned and parsed off the runtime's
/// workers. Below it the work takes well under a millisecond, less than
/// handing it to another thread would cost.
pub(crate) const OFF_WORKER_BYTES: usize = 1024 * 1024;

/// A body, read.
pub(crate) enum Read {
    One(Member),
    Batch(Vec<Member>),
}

/// Answers one `POST /rpc`.
pub(crate) async fn handle(
    State(gateway): State<Arc<Gateway>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match body_or_error(body) {
        Ok(body) => answer(&gateway, body).await,
        Err(e) => refuse(e),
    }
}

/// Answers the `POST /rpc` whose body is `body`, read whole.
pub(crate) async fn answer(gateway: &Gateway, body: Bytes) -> Response {
    let answer = match read(body, gateway.max_batch).await {
        Err(e) => return refuse(e),
        Ok(Read::One(Member::Invalid { id, error })) => {
            return json(StatusCode::BAD_REQUEST, encode(&id, &Err(error.into())));
        }
        Ok(Read::One(member)) => {
            let limit = gateway.max_reply_bytes;
            let (id, reply) = run(gateway, member).await;
            id.map(|id| encode_within(&id, &reply, limit).unwrap_or_else(|| too_large(&id, limit)))
        }
        Ok(Read::Batch(members)) => super::batch::answer(gateway, members).await,
    };
    match answer {
        Some(answer) => json(StatusCode::OK, answer),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

/// Scans and parses `body`, off the workers when it is large.
pub(crate) async fn read(body: Bytes, max_batch: usize) -> Result<Read, Error> {
    if body.len() <= OFF_WORKER_BYTES {
        return decode(&body, max_batch);
    }
    tokio::task::spawn_blocking(move || decode(&body, max_batch))
        .await
        .unwrap_or_else(|e| {
            Err(Error::new(
                ErrorKind::Internal,
                format!("reading the request failed: {e}"),
            ))
        })
}

fn decode(body: &Bytes, max_batch: usize) -> Result<Read, Error> {
    check_json(body, max_batch)?;
    match Json.decode_request_within(body, max_batch) {
        Incoming::Batch(items) if items.len() > max_batch => Err(too_many_members(max_batch)),
        Incoming::Batch(items) => Ok(Read::Batch(
            items.into_iter().map(|item| member(body, item)).collect(),
        )),
        // A body that is not JSON-RPC at all: answered with 400.
        Incoming::Invalid { id, error } => Ok(Read::One(Member::Invalid { id, error })),
        single => Ok(Read::One(member(body, single))),
    }
}

/// One call of `body`, owned.
fn member(body: &Bytes, item: Incoming<'_>) -> Member {
    let invalid = |message: &str| Member::Invalid {
        id: Id::Null,
        error: Error::new(ErrorKind::InvalidRequest, message),
    };
    match item {
        Incoming::Request(Request {
            id,
            method,
            deadline,
            params,
            metadata,
        }) => Member::Call {
            id,
            method: method.into_owned(),
            deadline,
            metadata,
            params: match within(body, params) {
                Some(range) => body.slice(range),
                None => Bytes::copy_from_slice(params),
            },
        },
        Incoming::Invalid { id, error } => Member::Invalid { id, error },
        Incoming::Batch(_) => invalid("a batch inside a batch"),
        _ => invalid("not a request"),
    }
}

/// Where `part` lies in `whole`, if it is a slice of it.
fn within(whole: &[u8], part: &[u8]) -> Option<Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    let end = start + part.len();
    (end <= whole.len()).then_some(start..end)
}

/// The response object of a single reply over the limit.
fn too_large(id: &Id, limit: usize) -> BytesMut {
    encode(id, &Err(reply_too_large(limit).into()))
}

/// A body that is not JSON-RPC at all: its status, and an error object.
pub(crate) fn refuse(error: Error) -> Response {
    let status = match error.kind() {
        ErrorKind::FrameTooLarge => status_of(ErrorKind::FrameTooLarge),
        ErrorKind::ShuttingDown => status_of(ErrorKind::ShuttingDown),
        _ => StatusCode::BAD_REQUEST,
    };
    json(status, encode(&Id::Null, &Err(error.into())))
}

fn json(status: StatusCode, body: BytesMut) -> Response {
    (status, [(CONTENT_TYPE, JSON)], body.freeze()).into_response()
}
