//! Encoding what the gateway sends back: results and errors as JSON, the
//! status that goes with each error, and the JSON nesting bound of bodies.

use std::panic::AssertUnwindSafe;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rpc_core::service::{Fault, panic_message};
use rpc_core::{Error, ErrorKind};

/// How deep a JSON body may nest (arrays and objects), and an XML-RPC value.
pub(crate) const MAX_DEPTH: usize = 64;

/// `application/json`.
pub(crate) const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Serializes `value` as JSON; a value that fails to encode, or panics while
/// encoding, is an internal error rather than a lost connection.
pub(crate) fn to_json(value: &dyn erased_serde::Serialize) -> Result<Vec<u8>, Error> {
    let encoded = std::panic::catch_unwind(AssertUnwindSafe(|| serde_json::to_vec(value)));
    match encoded {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => Err(Error::new(
            ErrorKind::Internal,
            format!("the result could not be encoded as JSON: {e}"),
        )),
        Err(panic) => Err(Error::new(
            ErrorKind::Internal,
            format!("encoding the result panicked: {}", panic_message(&*panic)),
        )),
    }
}

/// `{"error":{"code":…,"message":…,"data":…}}`, the body of every JSON
/// error outside JSON-RPC; `data` only for application errors.
pub(crate) fn error_json(fault: &Fault) -> Response {
    let data = fault.data.as_ref().and_then(|d| to_json(d).ok());
    let mut body = format!(r#"{{"error":{{"code":{},"message":"#, fault.kind.code()).into_bytes();
    body.extend(serde_json::to_vec(&fault.message).unwrap_or_else(|_| b"\"\"".to_vec()));
    if let Some(data) = data {
        body.extend_from_slice(br#","data":"#);
        body.extend(data);
    }
    body.extend_from_slice(b"}}");
    ([(CONTENT_TYPE, JSON)], body).into_response()
}

/// The HTTP status of a failure of `kind`.
pub(crate) fn status_of(kind: ErrorKind) -> StatusCode {
    StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// An error response with the status of its kind.
pub(crate) fn error_response(fault: &Fault) -> Response {
    (status_of(fault.kind), error_json(fault)).into_response()
}

/// The body, or the error that reading it gave (too large, cut short).
pub(crate) fn body_or_error(body: Result<Bytes, BytesRejection>) -> Result<Bytes, Error> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            Error::new(
                ErrorKind::Parse,
                format!(
                    "the request body could not be read: {}",
                    rejection.body_text()
                ),
            )
        }
    })
}

/// Fails if `json` nests arrays and objects deeper than [`MAX_DEPTH`]; run
/// before parsing, so no parser recurses on a hostile body.
pub(crate) fn check_json_depth(json: &[u8]) -> Result<(), Error> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(Error::new(
                        ErrorKind::InvalidRequest,
                        format!("the body nests deeper than {MAX_DEPTH} levels"),
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Middleware: the body limit layer answers an oversized body with plain
/// text before any handler runs; say the same in the gateway's JSON.
pub(crate) async fn explain_too_large(response: Response) -> Response {
    let plain = response
        .headers()
        .get(CONTENT_TYPE)
        .is_none_or(|t| t.as_bytes().starts_with(b"text/plain"));
    if response.status() != StatusCode::PAYLOAD_TOO_LARGE || !plain {
        return response;
    }
    error_response(&too_large().into())
}

fn too_large() -> Error {
    Error::new(
        ErrorKind::FrameTooLarge,
        "the request body is larger than the gateway's limit (`max_body_bytes` in [http])",
    )
}
