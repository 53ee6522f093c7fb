//! REST-style calls: `POST /{Service}/{method}` with a JSON body, and `GET`
//! with a query string for methods marked `#[rpc(idempotent)]`. The answer
//! is the bare JSON result, or an error with the status of its kind.
//!
//! ```text
//! → POST /Calculator/add  [2, 3]          ← 200 5
//! → POST /Calculator/add  {"x":2,"y":3}   ← 200 5
//! → GET  /Calculator/add?x=2&y=3          ← 200 5
//! → POST /Calculator/div  [1, 0]          ← 422 {"error":{"code":-32000,"message":"division by zero","data":"DivideByZero"}}
//! → GET  /Calculator/div?x=1&y=0          ← 405 (div is not idempotent)
//! ```
//!
//! A result larger than the server's `max_frame_bytes` is answered 413 with
//! an over-budget error, as over TCP. With `Accept: text/event-stream`,
//! the same calls answer with Server-Sent Events ([`super::sse`]); without
//! it, a method that streams is refused, naming the doors that carry
//! streams.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{ALLOW, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use rpc_core::codec::Json;
use rpc_core::service::{Fault, Reply};
use rpc_core::{Error, ErrorKind, Registry};

use super::Gateway;
use super::reply::{
    Encoded, JSON, body_or_error, check_json, error_json, error_response, reply_too_large,
    write_json_within,
};
use super::{query, sse};

/// `POST /{Service}/{method}`: the body is the arguments, by position (an
/// array) or by name (an object); an empty body is no arguments.
pub(crate) async fn post(
    State(gateway): State<Arc<Gateway>>,
    Path((service, method)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body_or_error(body).and_then(|b| check_json(&b, usize::MAX).map(|()| b)) {
        Ok(body) => body,
        Err(e) => return error_response(&e.into()),
    };
    let name = format!("{service}.{method}");
    let params: &[u8] = if body.trim_ascii().is_empty() {
        b"[]"
    } else {
        &body
    };
    let start = |registry: &Registry, _| registry.dispatch_encoded(&name, &Json, params);
    if sse::wanted(&headers) {
        return sse::respond(&gateway, &name, start).await;
    }
    let reply = gateway.call(&name, None, start).await;
    respond(reply, gateway.max_reply_bytes)
}

/// `GET /{Service}/{method}?x=2&y=3`, for idempotent methods only; each
/// query value is read as the type of its parameter.
pub(crate) async fn get(
    State(gateway): State<Arc<Gateway>>,
    Path((service, method)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let name = format!("{service}.{method}");
    if let Ok(route) = gateway.registry.resolve(&name) {
        if !gateway.registry.method(route).idempotent {
            return not_idempotent(&name);
        }
    }
    let pairs = match query::parse(query.as_deref().unwrap_or("")) {
        Ok(pairs) => pairs,
        Err(e) if e.kind() == ErrorKind::InvalidParams => {
            return error_response(&Error::invalid_params(&name, e.message()).into());
        }
        Err(e) => return error_response(&e.into()),
    };
    let start = |registry: &Registry, route| {
        let mut args = query::Args::new(&pairs);
        registry.call(
            route,
            &mut <dyn erased_serde::Deserializer<'_>>::erase(&mut args),
        )
    };
    if sse::wanted(&headers) {
        return sse::respond(&gateway, &name, start).await;
    }
    let reply = gateway.call(&name, None, start).await;
    respond(reply, gateway.max_reply_bytes)
}

/// The bare JSON result, or the error with its status; a result over
/// `limit` bytes (the server's `max_frame_bytes`) is an over-budget error,
/// found having encoded at most `limit` bytes of it.
fn respond(reply: Reply, limit: usize) -> Response {
    let encoded = reply.and_then(|value| {
        let mut json = BytesMut::new();
        match write_json_within(&mut json, &value, limit) {
            Ok(()) => Ok(json),
            Err(Encoded::TooLarge) => Err(reply_too_large(limit).into()),
            Err(Encoded::Failed(e)) => Err(Fault::from(e)),
        }
    });
    match encoded {
        Ok(json) => ([(CONTENT_TYPE, JSON)], json.freeze()).into_response(),
        Err(fault) => error_response(&fault),
    }
}

fn not_idempotent(name: &str) -> Response {
    let message = format!(
        "`{name}` is not marked #[rpc(idempotent)], so it cannot be called with GET; use POST"
    );
    let fault = Fault::from(Error::new(ErrorKind::InvalidRequest, message));
    let mut response = (StatusCode::METHOD_NOT_ALLOWED, error_json(&fault)).into_response();
    response
        .headers_mut()
        .insert(ALLOW, axum::http::HeaderValue::from_static("POST"));
    response
}
