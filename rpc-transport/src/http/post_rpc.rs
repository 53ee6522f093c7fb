//! `POST /rpc` taken straight from the connection, past the router: the
//! JSON-RPC door is the gateway's busiest, and the router's layers cost
//! more than the call (each boxes a future, and the router clones its
//! boxed services several times a request).
//!
//! The checks are the router's, called in the order its layers run (see
//! [`super::routes`]), each from the same function: the origin
//! ([`cors::judge`]), the drain ([`drain::refusal_of`]), the password
//! ([`auth::admit`], with the connection's accepted credential), the body
//! ([`body::read`], within `max_body_bytes`), the caller
//! ([`Caller::from_head`]), then the handler ([`jsonrpc::answer`]). The
//! trace, the panic catcher and the request timeout wrap both paths alike
//! ([`super::routes::outer`]). An answer is what the router would send, byte for byte (see
//! [`with_length`]).

use std::net::SocketAddr;
use std::time::Instant;

use axum::body::HttpBody;
use axum::http::header::CONTENT_LENGTH;
use axum::http::{HeaderValue, Request};
use axum::response::Response;
use hyper::body::Incoming;

use super::auth::Accepted;
use super::caller::Caller;
use super::refuse::refused;
use super::{Gateway, auth, body, cors, drain, jsonrpc};

/// The path this answers (with the method `POST`).
pub(super) const PATH: &str = "/rpc";

/// Answers one `POST /rpc` from `peer`, whose head arrived at `arrived`,
/// on a connection whose last accepted credential is `accepted`.
pub(super) async fn answer(
    gateway: &Gateway,
    peer: SocketAddr,
    accepted: &Accepted,
    arrived: Instant,
    request: Request<Incoming>,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let allowance = match cors::judge(gateway, &parts.headers, PATH) {
        cors::Verdict::Pass => None,
        cors::Verdict::Listed(allowance) => Some(allowance),
        cors::Verdict::Foreign(refusal) => return with_length(refusal),
    };
    let mut response = match drain::refusal_of(gateway, PATH) {
        Some(refusal) => refusal,
        None => {
            let admitted =
                auth::admit(gateway, &mut parts.headers, Some(accepted), Some(peer)).await;
            match admitted {
                Err(refusal) => refusal,
                Ok(()) => match body::read(gateway, &parts, body, Some(arrived)).await {
                    Err(refusal) => refusal,
                    Ok(body) => match Caller::from_head(Some(peer), arrived, &parts.headers) {
                        Err(e) => refused(PATH, e),
                        Ok(caller) => caller.scope(jsonrpc::answer(gateway, body)).await,
                    },
                },
            }
        }
    };
    drain::close_if_draining(gateway, &mut response);
    if let Some(allowance) = allowance {
        allowance.mark(&mut response);
    }
    with_length(response)
}

/// `response` with the `Content-Length` header the router (axum) gives an
/// answer whose length is known. hyper would write the same line itself,
/// but after a `connection: close` it adds, where the router's comes before.
fn with_length(mut response: Response) -> Response {
    if response.headers().contains_key(CONTENT_LENGTH) {
        return response;
    }
    if let Some(size) = response.body().size_hint().exact() {
        let length = HeaderValue::from(size);
        response.headers_mut().insert(CONTENT_LENGTH, length);
    }
    response
}
