//! A request refused before its call (draining, a body too large or not
//! readable, a CORS or authentication refusal), answered in the form of the
//! endpoint it was sent to. Uses the endpoints' own error writers; none of
//! them uses this.

use axum::response::Response;
use rpc_core::Error;

use super::reply::error_response;

/// A request refused before its call, answered in the form the endpoint
/// at `path` speaks: a JSON-RPC error object for `/rpc`, a fault for
/// `/RPC2`, the REST error elsewhere, each with the status it gives the
/// error's kind.
pub(crate) fn refused(path: &str, error: Error) -> Response {
    match path {
        "/rpc" => super::jsonrpc::refuse(error),
        "/RPC2" => super::xmlrpc::refuse(error),
        _ => error_response(&error.into()),
    }
}
