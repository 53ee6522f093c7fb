//! Browsers on other origins: the `[http] cors_origins` list decides which
//! web pages may call the gateway, and every other page is refused before
//! anything runs.
//!
//! ```text
//! → OPTIONS /rpc  Origin: https://app.example  Access-Control-Request-Method: POST
//! ← 204           Access-Control-Allow-Origin: https://app.example
//!                 Access-Control-Allow-Methods: GET, POST
//!                 Access-Control-Allow-Headers: authorization, content-type, x-rpc-timeout-ms
//!                 Access-Control-Allow-Credentials: true
//! → POST /rpc     Origin: https://evil.example  (any method, any path, a WebSocket upgrade too)
//! ← 403           {"jsonrpc":"2.0","id":null,"error":{…"requests from origin `https://evil.example` are refused…"}}
//! ```
//!
//! The gateway's own origin (`Origin` is `http://` or `https://` and the
//! request's `Host`: the explorer page at `GET /` calling `POST /rpc`) is
//! not cross-site and passes on to the password check without the list.
//!
//! Only a real preflight (an allowed `Origin` and an
//! `Access-Control-Request-Method`) is answered without credentials; any
//! other `OPTIONS` needs the password like every request. A request with no
//! `Origin` (curl, Python, another server) is not a browser's cross-site
//! request and passes on to the password check. A foreign `Origin` is
//! refused even with the right password: a browser that has cached the
//! Basic credentials would otherwise send them along with another site's
//! `text/plain` POST, which needs no preflight.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS,
    ACCESS_CONTROL_REQUEST_METHOD, HOST, ORIGIN, VARY,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rpc_core::{Error, ErrorKind};

use super::Gateway;
use super::refuse::refused;

const METHODS: HeaderValue = HeaderValue::from_static("GET, POST");
const HEADERS: HeaderValue =
    HeaderValue::from_static("authorization, content-type, x-rpc-timeout-ms");
/// How long a browser may reuse a preflight's answer: ten minutes.
const MAX_AGE: HeaderValue = HeaderValue::from_static("600");

/// Middleware: refuses a foreign `Origin` with 403, answers an allowed
/// origin's preflight with 204, and marks every answer to an allowed
/// origin with the `Access-Control-Allow-*` headers.
pub(crate) async fn check_origin(
    State(gateway): State<Arc<Gateway>>,
    request: Request,
    next: Next,
) -> Response {
    let allowance = match judge(&gateway, request.headers(), request.uri().path()) {
        Verdict::Foreign(refusal) => return refusal,
        Verdict::Pass => return next.run(request).await,
        Verdict::Listed(allowance) => allowance,
    };
    let mut response = if is_preflight(&request) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    allowance.mark(&mut response);
    response
}

/// A request from a listed origin: its answer gets the allow headers.
pub(crate) struct Allowance {
    origin: HeaderValue,
    /// The preflight's `Access-Control-Request-Headers`, if sent.
    asked: Option<HeaderValue>,
}

impl Allowance {
    /// Adds the `Access-Control-Allow-*` headers to `response`.
    pub(crate) fn mark(self, response: &mut Response) {
        allow(response.headers_mut(), self.origin, self.asked.as_ref());
    }
}

/// What the origin check decides for a request.
pub(crate) enum Verdict {
    /// No `Origin`, or the gateway's own: the request passes as it is.
    Pass,
    /// A listed origin: the request passes, its answer gets the headers.
    Listed(Allowance),
    /// A foreign origin: the 403 to answer.
    Foreign(Response),
}

/// The origin check of a request to `path` with `headers`.
pub(crate) fn judge(gateway: &Gateway, headers: &HeaderMap, path: &str) -> Verdict {
    let Some(origin) = headers.get(ORIGIN) else {
        return Verdict::Pass;
    };
    if same_origin(headers, origin) {
        return Verdict::Pass;
    }
    if !gateway
        .cors_origins
        .iter()
        .any(|o| o.as_bytes() == origin.as_bytes())
    {
        return Verdict::Foreign(foreign(path, origin));
    }
    Verdict::Listed(Allowance {
        origin: origin.clone(),
        asked: headers.get(ACCESS_CONTROL_REQUEST_HEADERS).cloned(),
    })
}

/// The headers a page may send: [`HEADERS`], and those of `asked` (a
/// preflight's `Access-Control-Request-Headers`) that carry call metadata:
/// every `x-rpc-*`, `traceparent` and `tracestate`.
fn allowed_headers(asked: Option<&HeaderValue>) -> HeaderValue {
    let Some(asked) = asked.and_then(|a| a.to_str().ok()) else {
        return HEADERS;
    };
    let metadata: Vec<String> = asked
        .split(',')
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| {
            name.starts_with(super::METADATA_PREFIX)
                || name == "traceparent"
                || name == "tracestate"
        })
        .collect();
    if metadata.is_empty() {
        return HEADERS;
    }
    let list = format!(
        "{}, {}",
        HEADERS.to_str().unwrap_or_default(),
        metadata.join(", ")
    );
    HeaderValue::from_str(&list).unwrap_or(HEADERS)
}

/// Whether `origin` is the gateway's own (`http://` or `https://` and the
/// request's `Host`): the explorer page at `GET /` calling `POST /rpc` and
/// `/metrics`. Browsers send `Origin` on such requests too; they still
/// need the password.
fn same_origin(headers: &HeaderMap, origin: &HeaderValue) -> bool {
    let (Some(host), Ok(origin)) = (headers.get(HOST), origin.to_str()) else {
        return false;
    };
    let host = host.as_bytes();
    ["http://", "https://"].iter().any(|scheme| {
        origin
            .strip_prefix(scheme)
            .is_some_and(|rest| rest.as_bytes() == host)
    })
}

/// An `OPTIONS` asking which method it may use: what a browser sends, with
/// no credentials, before a request it must ask about.
fn is_preflight(request: &Request) -> bool {
    request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(ACCESS_CONTROL_REQUEST_METHOD)
}

fn allow(headers: &mut HeaderMap, origin: HeaderValue, asked: Option<&HeaderValue>) {
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(ACCESS_CONTROL_ALLOW_METHODS, METHODS);
    headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, allowed_headers(asked));
    headers.insert(
        ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    headers.insert(ACCESS_CONTROL_MAX_AGE, MAX_AGE);
    headers.append(VARY, HeaderValue::from_static("origin"));
}

/// 403, in the form the endpoint at `path` speaks.
fn foreign(path: &str, origin: &HeaderValue) -> Response {
    let message = format!(
        "requests from origin `{}` are refused; list it in [http] cors_origins to let its pages call",
        String::from_utf8_lossy(origin.as_bytes())
    );
    let mut response = refused(path, Error::new(ErrorKind::Authentication, message));
    *response.status_mut() = StatusCode::FORBIDDEN;
    response
}

/// `origin` as a browser writes it in `Origin`: a lower-case scheme (`http`
/// or `https`) and host, and the port only when it is not the scheme's
/// default. Fails with what an origin should look like.
pub(crate) fn canonical_origin(origin: &str) -> Result<String, String> {
    const EXPECTED: &str = "an origin such as \"https://app.example\" or \"http://localhost:8080\"";
    match origin {
        "*" => {
            return Err(format!(
                "{EXPECTED}; list each origin, a wildcard would let every site call"
            ));
        }
        "null" => {
            return Err(format!(
                "{EXPECTED}; `null` is the origin of every sandboxed page and local file"
            ));
        }
        _ => {}
    }
    let (scheme, authority) = origin.split_once("://").ok_or(EXPECTED)?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => "80",
        "https" => "443",
        _ => return Err(format!("{EXPECTED}; the scheme is http or https")),
    };
    if let Some((authority, _)) = authority.split_once(['/', '?', '#']) {
        return Err(format!(
            "{EXPECTED}, without a path: \"{scheme}://{authority}\""
        ));
    }
    let (host, port) = split_port(authority).ok_or(EXPECTED)?;
    let host_fits = |c: char| c.is_ascii_alphanumeric() || "-.[]:".contains(c);
    if host.is_empty() || !host.chars().all(host_fits) {
        return Err(EXPECTED.to_owned());
    }
    let host = host.to_ascii_lowercase();
    Ok(match port {
        Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// `host[:port]` (an IPv6 host in brackets) split in two; `None` if the
/// port is not a number from 1 to 65535.
fn split_port(authority: &str) -> Option<(&str, Option<&str>)> {
    let colon = match authority.rfind(']') {
        Some(end) => authority[end..].find(':').map(|i| end + i),
        None => authority.rfind(':'),
    };
    let Some(colon) = colon else {
        return Some((authority, None));
    };
    let port = &authority[colon + 1..];
    let number: u16 = port.parse().ok().filter(|&n| n > 0)?;
    (number.to_string() == port).then_some((&authority[..colon], Some(port)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preflight_may_ask_for_the_metadata_headers_only() {
        let asked = HeaderValue::from_static("X-RPC-Authorization, traceparent, x-evil, cookie");
        let allowed = allowed_headers(Some(&asked));
        assert_eq!(
            allowed.to_str().unwrap(),
            "authorization, content-type, x-rpc-timeout-ms, x-rpc-authorization, traceparent"
        );
        assert_eq!(allowed_headers(None), HEADERS);
    }

    #[test]
    fn the_gateway_s_own_origin_is_same_origin() {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("127.0.0.1:8080"));
        let own = HeaderValue::from_static("http://127.0.0.1:8080");
        assert!(same_origin(&headers, &own));
        let tls = HeaderValue::from_static("https://127.0.0.1:8080");
        assert!(same_origin(&headers, &tls));
        for other in ["http://127.0.0.1:8081", "https://evil.example", "null"] {
            assert!(!same_origin(&headers, &HeaderValue::from_static(other)));
        }
        assert!(!same_origin(&HeaderMap::new(), &own), "no Host, no match");
    }

    #[test]
    fn origins_are_written_as_browsers_send_them() {
        for (written, canonical) in [
            ("https://app.example", "https://app.example"),
            ("HTTPS://App.Example:443", "https://app.example"),
            ("http://localhost:8080", "http://localhost:8080"),
            ("http://127.0.0.1:80", "http://127.0.0.1"),
            ("http://[::1]:3000", "http://[::1]:3000"),
        ] {
            assert_eq!(canonical_origin(written).as_deref(), Ok(canonical));
        }
    }

    #[test]
    fn what_is_not_an_origin_is_refused_with_what_to_write() {
        let path = canonical_origin("https://app.example/").unwrap_err();
        assert!(
            path.ends_with("without a path: \"https://app.example\""),
            "{path}"
        );
        for bad in [
            "*",
            "null",
            "app.example",
            "ftp://app.example",
            "https://",
            "https://a:0",
            "https://a:99999",
            "https://a b",
        ] {
            let e = canonical_origin(bad).unwrap_err();
            assert!(e.starts_with("an origin such as"), "{bad}: {e}");
        }
    }
}
