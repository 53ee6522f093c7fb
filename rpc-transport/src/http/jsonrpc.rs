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

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use rpc_core::codec::{Codec, Id, Incoming, Json, Request};
use rpc_core::service::{Fault, Reply};
use rpc_core::{Error, ErrorKind};

use super::Gateway;
use super::reply::{JSON, body_or_error, check_json_depth, status_of};

/// Answers one `POST /rpc`.
pub(crate) async fn handle(
    State(gateway): State<Arc<Gateway>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body_or_error(body).and_then(|b| check_json_depth(&b).map(|()| b)) {
        Ok(body) => body,
        Err(e) => return refuse(e),
    };
    let answer = match Json.decode_request(&body) {
        Incoming::Invalid { id, error } => {
            return json(StatusCode::BAD_REQUEST, encode(&id, &Err(error.into())));
        }
        Incoming::Batch(items) if items.len() > gateway.max_batch => {
            let why = format!(
                "a batch of {} calls; at most {} are allowed",
                items.len(),
                gateway.max_batch
            );
            return refuse(Error::new(ErrorKind::InvalidRequest, why));
        }
        Incoming::Batch(items) => {
            let answers = futures::future::join_all(items.into_iter().map(|i| answer(&gateway, i)));
            let answers: Vec<BytesMut> = answers.await.into_iter().flatten().collect();
            if answers.is_empty() {
                None
            } else {
                let mut batch = BytesMut::new();
                Json.encode_batch(&mut batch, &answers);
                Some(batch)
            }
        }
        single => answer(&gateway, single).await,
    };
    match answer {
        Some(answer) => json(StatusCode::OK, answer),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

/// Runs one call of a request or batch; `None` for a notification.
async fn answer(gateway: &Gateway, item: Incoming<'_>) -> Option<BytesMut> {
    let request = match item {
        Incoming::Request(request) => request,
        Incoming::Invalid { id, error } => return Some(encode(&id, &Err(error.into()))),
        Incoming::Batch(_) => {
            let error = Error::new(ErrorKind::InvalidRequest, "a batch inside a batch");
            return Some(encode(&Id::Null, &Err(error.into())));
        }
        _ => {
            let error = Error::new(ErrorKind::InvalidRequest, "not a request");
            return Some(encode(&Id::Null, &Err(error.into())));
        }
    };
    let Request {
        id,
        method,
        deadline,
        params,
    } = request;
    let reply = gateway
        .call(&method, deadline, |registry, _| {
            registry.dispatch_encoded(&method, &Json, params)
        })
        .await;
    id.map(|id| encode(&id, &reply))
}

/// The response object for `reply`; a result the codec cannot encode (or
/// whose `Serialize` panics) is answered as an internal error instead.
fn encode(id: &Id, reply: &Reply) -> BytesMut {
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
fn refuse(error: Error) -> Response {
    let status = match error.kind() {
        ErrorKind::FrameTooLarge => status_of(ErrorKind::FrameTooLarge),
        _ => StatusCode::BAD_REQUEST,
    };
    json(status, encode(&Id::Null, &Err(error.into())))
}

fn json(status: StatusCode, body: BytesMut) -> Response {
    (status, [(CONTENT_TYPE, JSON)], body.freeze()).into_response()
}
