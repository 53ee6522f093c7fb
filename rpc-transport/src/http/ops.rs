//! Operations endpoints: `/healthz`, `/metrics`, the `/` index, and the
//! answer for any other path.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rpc_core::service::Fault;
use rpc_core::{Error, ErrorKind};
use serde_json::json;

use super::Gateway;
use super::reply::{JSON, error_json};

/// `GET /healthz`: 200 while serving, 503 once draining.
pub(crate) async fn healthz(State(gateway): State<Arc<Gateway>>) -> Response {
    if gateway.server.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else {
        (StatusCode::OK, "serving\n").into_response()
    }
}

/// `GET /metrics`: the server's counters in the Prometheus text format.
pub(crate) async fn metrics(State(gateway): State<Arc<Gateway>>) -> Response {
    let mut text = String::new();
    gateway.metrics.render_prometheus(&mut text);
    let version = HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");
    ([(CONTENT_TYPE, version)], text).into_response()
}

/// `GET /`: every service with its methods, their parameters and docs.
pub(crate) async fn index(State(gateway): State<Arc<Gateway>>) -> Response {
    let services: Vec<_> = gateway
        .registry
        .services()
        .map(|s| {
            let methods: Vec<_> = s
                .methods
                .iter()
                .map(|m| {
                    let params: Vec<_> = m
                        .params
                        .iter()
                        .map(|p| json!({"name": p.name, "type": p.ty}))
                        .collect();
                    json!({
                        "name": m.name,
                        "path": format!("/{}/{}", s.name, m.name),
                        "signature": m.signature(),
                        "params": params,
                        "returns": m.returns,
                        "error": m.error,
                        "idempotent": m.idempotent,
                        "doc": m.doc,
                    })
                })
                .collect();
            json!({"name": s.name, "doc": s.doc, "methods": methods})
        })
        .collect();
    let index = json!({
        "services": services,
        "endpoints": {
            "jsonrpc": "/rpc",
            "xmlrpc": "/RPC2",
            "rest": "/{Service}/{method}",
            "health": "/healthz",
            "metrics": "/metrics",
        },
    });
    ([(CONTENT_TYPE, JSON)], index.to_string()).into_response()
}

/// Any other path: 404, with a pointer to the index.
pub(crate) async fn not_found(uri: Uri) -> Response {
    let message = format!(
        "no endpoint at `{}`; GET / lists the services, POST /rpc takes JSON-RPC, POST /RPC2 XML-RPC",
        uri.path()
    );
    let fault = Fault::from(Error::new(ErrorKind::MethodNotFound, message));
    (StatusCode::NOT_FOUND, error_json(&fault)).into_response()
}
