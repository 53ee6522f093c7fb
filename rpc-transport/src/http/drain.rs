//! Requests during the drain: once the server is shutting down, a request
//! that arrives (on a kept-alive connection, or a new one before the
//! listener closes) is answered 503 with `Connection: close`, in the form
//! its endpoint speaks; `/healthz` and `/metrics` still answer, and close too.
//!
//! ```text
//! → POST /rpc …          ← 503 Connection: close  {"jsonrpc":"2.0","id":null,"error":{"code":-32003,…}}
//! → GET /Calculator/add  ← 503 Connection: close  {"error":{"code":-32003,…}}
//! ```
//!
//! A request already past this point when the drain begins runs on: its
//! call is refused if it has not started, or gets the shutdown grace to
//! finish (see [`super::call`]); its answer closes the connection too.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::http::header::CONNECTION;
use axum::middleware::Next;
use axum::response::Response;
use rpc_core::{Error, ErrorKind};

use super::Gateway;
use super::refuse::refused;

/// Middleware: refuses requests while the server drains, and closes the
/// connection after any answer sent during the drain.
pub(crate) async fn refuse_while_draining(
    State(gateway): State<Arc<Gateway>>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = match refusal_of(&gateway, request.uri().path()) {
        Some(refusal) => refusal,
        None => next.run(request).await,
    };
    close_if_draining(&gateway, &mut response);
    response
}

/// The 503 for a request to `path` while the server drains; `None` if it
/// may run.
pub(crate) fn refusal_of(gateway: &Gateway, path: &str) -> Option<Response> {
    if !gateway.server.is_draining() {
        return None;
    }
    match path {
        "/healthz" | "/metrics" => None,
        path => Some(refused(path, refusal())),
    }
}

/// Marks `response` to close its connection if the server is draining.
pub(crate) fn close_if_draining(gateway: &Gateway, response: &mut Response) {
    if gateway.server.is_draining() {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
}

fn refusal() -> Error {
    Error::new(
        ErrorKind::ShuttingDown,
        "the server is shutting down; the request was not started",
    )
}
