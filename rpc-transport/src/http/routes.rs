//! The gateway's routes and the layers around them, in the order they run.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use super::{
    ANSWER_MARGIN, Gateway, auth, body, caller, cors, drain, explorer, jsonrpc, ops, rest, ws,
    xmlrpc,
};

/// Every endpoint of `gateway`.
pub(super) fn router(gateway: &Arc<Gateway>) -> Router {
    let limit = gateway.max_body_bytes;
    // Layers added later run first: the password is checked before the
    // body is read, so a caller without it learns nothing, not even the
    // limit; a foreign origin is refused before anything else.
    let with_password = Router::new()
        .route("/", get(explorer::index))
        .route("/openrpc.json", get(explorer::openrpc))
        .route("/metrics", get(ops::metrics))
        .route("/rpc", post(jsonrpc::handle).get(ws::upgrade))
        .route("/RPC2", post(xmlrpc::handle))
        .route("/{service}/{method}", get(rest::get).post(rest::post))
        .route_layer(middleware::from_fn(caller::identify))
        .route_layer(middleware::from_fn_with_state(
            gateway.clone(),
            body::read_within,
        ))
        .route_layer(middleware::from_fn_with_state(
            gateway.clone(),
            auth::require_password,
        ));
    Router::new()
        .route("/healthz", get(ops::healthz))
        .merge(with_password)
        .fallback(ops::not_found)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(
            gateway.clone(),
            drain::refuse_while_draining,
        ))
        .layer(middleware::from_fn_with_state(
            gateway.clone(),
            cors::check_origin,
        ))
        .with_state(gateway.clone())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            gateway.request_timeout + ANSWER_MARGIN,
        ))
        .layer(CatchPanicLayer::new())
        .layer(TraceLayer::new_for_http())
}
