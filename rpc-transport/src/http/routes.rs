//! The gateway's routes and the layers around them, in the order they run:
//! [`outer`] first (around the router and `POST /rpc`'s own path alike),
//! then the router's.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::{get, post};
use tower::Layer;
use tower_http::catch_panic::{CatchPanic, CatchPanicLayer, DefaultResponseForPanic};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::timeout::{Timeout, TimeoutLayer};
use tower_http::trace::{Trace, TraceLayer};

use super::{
    ANSWER_MARGIN, Gateway, auth, body, caller, cors, drain, explorer, jsonrpc, ops, rest, ws,
    xmlrpc,
};

/// Every endpoint of `gateway`; the connection's service puts it inside
/// [`outer`] (see [`super::peer`]). A connection answers `POST /rpc` on its
/// own path, [`super::post_rpc`], with these layers' checks in this order;
/// its route stays here so that the router alone still serves every
/// endpoint.
///
/// So a connection never sends `POST /rpc` through this router: a layer or
/// check added here does not run for the gateway's busiest door. Add it to
/// [`super::post_rpc::answer`] as well (in the same order), or to [`outer`],
/// which wraps both paths.
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
}

/// The layers around every request, routed or not (see [`super::peer`]):
/// the trace, the panic catcher, then the request timeout.
///
/// Every layer here must be always ready: a connection calls a clone of
/// the stack for each request without polling it ready first (see
/// [`super::peer::WithPeer`]). A layer that pushes back through
/// `poll_ready` (a concurrency limit, a rate limit, a buffer) would be
/// called while not ready, which such layers refuse or panic on; limits
/// like those belong on the handler's path.
pub(super) type Outer<S> = Trace<
    CatchPanic<Timeout<S>, DefaultResponseForPanic>,
    SharedClassifier<ServerErrorsAsFailures>,
>;

/// `service` inside the [`Outer`] layers.
pub(super) fn outer<S>(gateway: &Gateway, service: S) -> Outer<S> {
    let service = TimeoutLayer::with_status_code(
        StatusCode::GATEWAY_TIMEOUT,
        gateway.request_timeout + ANSWER_MARGIN,
    )
    .layer(service);
    let service = CatchPanicLayer::new().layer(service);
    TraceLayer::new_for_http().layer(service)
}
