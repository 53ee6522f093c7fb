//! HTTP Basic authentication: any user name, the configured password.
//!
//! ```text
//! Authorization: Basic base64("user:password")
//! ```
//!
//! The password is never compared byte by byte: the gateway keeps an
//! HMAC-SHA256 tag of it under a key drawn at start-up, and checks a
//! presented password by verifying its tag with [`Mac::verify_slice`], which
//! takes the same time whatever the bytes and whatever their length.
//!
//! A wrong password is logged (at most one line a second, with how many
//! were held back) and, after a few from one address, answered late: see
//! [`super::throttle`]. A right password is never delayed.
//!
//! ```text
//! WARN wrong HTTP password peer=10.0.0.7:51234 delay_ms=2000 suppressed=22564
//! ```

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use rpc_core::{Error, ErrorKind};
use sha2::Sha256;
use std::sync::Arc;

use crate::quiet::Every;

use super::Gateway;
use super::config::Password;
use super::reply::error_json;

/// Checks the password of a request; built once per listener.
pub(crate) struct Guard {
    /// HMAC-SHA256 keyed once with the start-up key: a check clones it, so
    /// each request hashes its password only, not the key's two pads.
    keyed: Hmac<Sha256>,
    tag: Vec<u8>,
    challenge: HeaderValue,
}

/// The `Authorization` value one connection's last request passed with:
/// a client on a kept-alive connection sends the same one every time, and
/// an identical value (compared in constant time, as it may come from
/// another client behind a proxy that shares the connection) needs no new
/// hash. Held per connection, so no lock is shared between connections.
#[derive(Debug, Default)]
pub(crate) struct Accepted(std::sync::Mutex<Option<HeaderValue>>);

impl Accepted {
    fn matches(&self, header: &HeaderValue) -> bool {
        use subtle::ConstantTimeEq as _;
        let last = self.0.lock().unwrap_or_else(|p| p.into_inner());
        last.as_ref().is_some_and(|last| {
            last.len() == header.len() && bool::from(last.as_bytes().ct_eq(header.as_bytes()))
        })
    }

    fn remember(&self, header: &HeaderValue) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(header.clone());
    }
}

/// Why a request was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No `Authorization` header.
    Missing,
    /// A header that is not `Basic base64(user:password)`.
    Malformed,
    /// The password is not the configured one.
    Wrong,
}

impl Guard {
    /// A guard accepting `password`, naming `realm` in its challenge.
    pub(crate) fn new(password: &Password, realm: &str) -> Result<Guard, Error> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("no randomness for the password check: {e}"),
            )
        })?;
        let challenge = HeaderValue::from_str(&format!(
            "Basic realm=\"{realm}\", charset=\"UTF-8\""
        ))
        .map_err(|_| Error::new(ErrorKind::Config, "the realm is not a valid header value"))?;
        let keyed = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).expect("HMAC takes any key");
        let mut tag = keyed.clone();
        tag.update(password.as_bytes());
        Ok(Guard {
            tag: tag.finalize().into_bytes().to_vec(),
            keyed,
            challenge,
        })
    }

    /// Whether `header` (the request's `Authorization`) carries the password.
    pub(crate) fn check(&self, header: Option<&HeaderValue>) -> Result<(), Refusal> {
        let header = header.ok_or(Refusal::Missing)?;
        let password = basic_password(header.as_bytes()).ok_or(Refusal::Malformed)?;
        let mut mac = self.keyed.clone();
        mac.update(&password);
        mac.verify_slice(&self.tag).map_err(|_| Refusal::Wrong)
    }
}

/// The password of a `Basic` credential: what follows the first `:` of the
/// decoded `user:password`.
fn basic_password(header: &[u8]) -> Option<Vec<u8>> {
    let (scheme, encoded) = header.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"basic ") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim_ascii())
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some(decoded[colon + 1..].to_vec())
}

/// Middleware: lets a request with the password through, answers any other
/// with 401 and a challenge before it reaches a handler.
pub(crate) async fn require_password(
    State(gateway): State<Arc<Gateway>>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let accepted = parts.extensions.get::<Arc<Accepted>>().map(Arc::as_ref);
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| *peer);
    match admit(&gateway, &mut parts.headers, accepted, peer).await {
        Ok(()) => next.run(Request::from_parts(parts, body)).await,
        Err(refusal) => refusal,
    }
}

/// The password check of one request with `headers`, on a connection that
/// remembers its last accepted credential in `accepted`, from `peer`: on
/// success the `Authorization` header is taken out of `headers`; otherwise
/// the 401 to answer, after a wrong password's delay.
pub(crate) async fn admit(
    gateway: &Gateway,
    headers: &mut HeaderMap,
    accepted: Option<&Accepted>,
    peer: Option<SocketAddr>,
) -> Result<(), Response> {
    let header = headers.get(AUTHORIZATION);
    let known = header.zip(accepted).is_some_and(|(h, a)| a.matches(h));
    let checked = match known {
        true => Ok(()),
        false => gateway.guard.check(header),
    };
    if let (Ok(()), false, Some(header), Some(accepted)) = (&checked, known, header, accepted) {
        accepted.remember(header);
    }
    let refusal = match checked {
        Ok(()) => {
            // The gateway's own credential: not for the handler's metadata
            // (a token for the handler travels as `x-rpc-authorization`).
            headers.remove(AUTHORIZATION);
            return Ok(());
        }
        Err(refusal) => refusal,
    };
    if refusal == Refusal::Wrong {
        wrong_password(gateway, peer).await;
    }
    let message = match refusal {
        Refusal::Missing => {
            "this endpoint needs HTTP Basic credentials (any user name, the [http] password)"
        }
        Refusal::Malformed => "the Authorization header is not HTTP Basic credentials",
        Refusal::Wrong => "wrong password",
    };
    let error = Error::new(ErrorKind::Authentication, message);
    let mut response = (StatusCode::UNAUTHORIZED, error_json(&error.into())).into_response();
    response
        .headers_mut()
        .insert(WWW_AUTHENTICATE, gateway.guard.challenge.clone());
    Err(response)
}

/// Logs a wrong password (rate-limited) and waits out its delay.
async fn wrong_password(gateway: &Gateway, peer: Option<SocketAddr>) {
    static WRONG: Every = Every::second();
    let delay = peer.map_or(Duration::ZERO, |peer| {
        gateway.throttle.failed(peer.ip(), Instant::now())
    });
    if let Some(suppressed) = WRONG.ready() {
        let peer = peer.map_or_else(|| "unknown".to_owned(), |p| p.to_string());
        let delay_ms = delay.as_millis();
        tracing::warn!(%peer, delay_ms, suppressed, "wrong HTTP password");
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user_password: &str) -> HeaderValue {
        let encoded = base64::engine::general_purpose::STANDARD.encode(user_password);
        HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
    }

    fn guard() -> Guard {
        Guard::new(&Password::new("s3cret:with:colons"), "rpc").unwrap()
    }

    #[test]
    fn a_connection_remembers_only_the_exact_credential_it_passed_with() {
        let accepted = Accepted::default();
        let right = basic("me:s3cret:with:colons");
        assert!(!accepted.matches(&right), "nothing is known before a check");
        accepted.remember(&right);
        assert!(accepted.matches(&right));
        // Another user name, a longer or shorter value, one byte off: hashed again.
        for other in [
            basic("you:s3cret:with:colons"),
            basic("me:s3cret:with:colonsX"),
            basic("me:s3cret:with:colon"),
            HeaderValue::from_static("Basic bWU6czNjcmV0OndpdGg6Y29sb25x"),
        ] {
            assert!(!accepted.matches(&other), "{other:?}");
        }
    }

    #[test]
    fn any_user_with_the_password_passes() {
        let g = guard();
        assert_eq!(g.check(Some(&basic("rpc:s3cret:with:colons"))), Ok(()));
        assert_eq!(g.check(Some(&basic(":s3cret:with:colons"))), Ok(()));
    }

    #[test]
    fn wrong_missing_and_malformed_credentials_fail() {
        let g = guard();
        assert_eq!(g.check(None), Err(Refusal::Missing));
        assert_eq!(g.check(Some(&basic("rpc:s3cret"))), Err(Refusal::Wrong));
        assert_eq!(g.check(Some(&basic("rpc:"))), Err(Refusal::Wrong));
        assert_eq!(g.check(Some(&basic("no-colon"))), Err(Refusal::Malformed));
        let bearer = HeaderValue::from_static("Bearer abc");
        assert_eq!(g.check(Some(&bearer)), Err(Refusal::Malformed));
        let junk = HeaderValue::from_static("Basic !!!");
        assert_eq!(g.check(Some(&junk)), Err(Refusal::Malformed));
        let short = HeaderValue::from_static("Ba");
        assert_eq!(g.check(Some(&short)), Err(Refusal::Malformed));
    }
}
