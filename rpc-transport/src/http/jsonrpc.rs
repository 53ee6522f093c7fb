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
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, BytesMut};
use rpc_core::codec::{Codec, Id, Incoming, Json, Request};
use rpc_core::service::{Fault, Reply};
use rpc_core::{Error, ErrorKind};

use super::Gateway;
use super::reply::{
    Encoded, JSON, body_or_error, check_json, reply_too_large, status_of, too_many_members,
    write_json_within,
};

/// Bodies larger than this are scanned and parsed off the runtime's
/// workers. Below it the work takes well under a millisecond, less than
/// handing it to another thread would cost.
pub(crate) const OFF_WORKER_BYTES: usize = 1024 * 1024;

/// One call of a request, owning what it needs of the body.
pub(crate) enum Member {
    /// A call to run; `id: None` for a notification.
    Call {
        id: Option<Id>,
        method: String,
        deadline: Option<Duration>,
        /// The encoded arguments: a slice of the body, not a copy.
        params: Bytes,
    },
    /// Not a call: answered with `error`.
    Invalid { id: Id, error: Error },
}

impl Member {
    /// The id it is answered under; `None` for a notification.
    pub(crate) fn id(&self) -> Option<&Id> {
        match self {
            Member::Call { id, .. } => id.as_ref(),
            Member::Invalid { id, .. } => Some(id),
        }
    }
}

/// A body, read.
enum Read {
    One(Member),
    Batch(Vec<Member>),
}

/// Answers one `POST /rpc`.
pub(crate) async fn handle(
    State(gateway): State<Arc<Gateway>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let read = match body_or_error(body) {
        Ok(body) => read(body, gateway.max_batch).await,
        Err(e) => Err(e),
    };
    let answer = match read {
        Err(e) => return refuse(e),
        Ok(Read::One(Member::Invalid { id, error })) => {
            return json(StatusCode::BAD_REQUEST, encode(&id, &Err(error.into())));
        }
        Ok(Read::One(member)) => {
            let limit = gateway.max_reply_bytes;
            let (id, reply) = run(&gateway, member).await;
            id.map(|id| encode_within(&id, &reply, limit).unwrap_or_else(|| too_large(&id, limit)))
        }
        Ok(Read::Batch(members)) => super::batch::answer(&gateway, members).await,
    };
    match answer {
        Some(answer) => json(StatusCode::OK, answer),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

/// Scans and parses `body`, off the workers when it is large.
async fn read(body: Bytes, max_batch: usize) -> Result<Read, Error> {
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
        }) => Member::Call {
            id,
            method: method.into_owned(),
            deadline,
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

/// Runs one call: its id (`None` for a notification) and its reply.
pub(crate) async fn run(gateway: &Gateway, member: Member) -> (Option<Id>, Reply) {
    match member {
        Member::Invalid { id, error } => (Some(id), Err(error.into())),
        Member::Call {
            id,
            method,
            deadline,
            params,
        } => {
            let reply = gateway
                .call(&method, deadline, |registry, _| {
                    registry.dispatch_encoded(&method, &Json, &params)
                })
                .await;
            (id, reply)
        }
    }
}

/// The response object for `reply` if it is at most `limit` bytes; `None`
/// if it is larger, having held at most `limit` bytes of it. A result the
/// codec cannot encode (or whose `Serialize` panics) is answered as an
/// internal error instead.
pub(crate) fn encode_within(id: &Id, reply: &Reply, limit: usize) -> Option<BytesMut> {
    let Ok(value) = reply else {
        let out = encode(id, reply);
        return (out.len() <= limit).then_some(out);
    };
    // The codec writes the envelope (and so the id) as it does over TCP;
    // only the result is written here, with its size bounded as it is written.
    let mut out = encode(id, &Ok(Box::new(())));
    if !out.ends_with(b"null}") {
        return (out.len() <= limit).then_some(out);
    }
    out.truncate(out.len() - b"null}".len());
    let end = limit.saturating_sub(1);
    match write_json_within(&mut out, value, end) {
        Ok(()) => {
            out.put_u8(b'}');
            Some(out)
        }
        Err(Encoded::TooLarge) => None,
        Err(Encoded::Failed(error)) => {
            let out = encode(id, &Err(error.into()));
            (out.len() <= limit).then_some(out)
        }
    }
}

/// The response object of a single reply over the limit.
fn too_large(id: &Id, limit: usize) -> BytesMut {
    encode(id, &Err(reply_too_large(limit).into()))
}

/// The response object for `reply`; a result the codec cannot encode (or
/// whose `Serialize` panics) is answered as an internal error instead.
pub(crate) fn encode(id: &Id, reply: &Reply) -> BytesMut {
    let mut out = BytesMut::new();
    let encoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Json.encode_response(&mut out, id, reply)
    }));
    let error = match encoded {
        Ok(Ok(())) => return out,
        Ok(Err(e)) => e,
        Err(panic) => Error::new(
            ErrorKind::Internal,
            format!(
                "encoding the result panicked: {}",
                rpc_core::service::panic_message(&*panic)
            ),
        ),
    };
    out.clear();
    let fault: Reply = Err(Fault::from(error));
    if Json.encode_response(&mut out, id, &fault).is_err() {
        out.clear();
        out.extend_from_slice(
            br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"internal error"}}"#,
        );
    }
    out
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
