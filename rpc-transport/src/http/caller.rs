//! Who is calling and how long they wait, for the [`Context`] of every call
//! a request makes: the peer is the connection's address, and the deadline
//! is counted from the moment the request's head arrived.
//!
//! ```text
//! → POST /Inventory/reserve  x-rpc-timeout-ms: 1000     the call gets at most 1 s
//! → POST /rpc  {"jsonrpc":"2.0","id":1,"method":"Inventory.reserve","params":[…],"deadline_ms":1000}
//! ```
//!
//! A call gets the shortest of the header's `x-rpc-timeout-ms`, the
//! JSON-RPC request's own `deadline_ms` and `request_timeout_ms`; the
//! handler sees the end of that time as [`Context::deadline`], and is
//! answered as timed out when it passes. A header that is not a positive
//! whole number of milliseconds is refused with 400.
//!
//! The call's metadata ([`rpc_core::Metadata`]) comes from headers:
//! `traceparent` and `tracestate` as they are, and each `x-rpc-<key>` as
//! `<key>` (`x-rpc-authorization: Bearer …` reaches the handler as
//! `authorization`; the `Authorization` header itself carries the
//! gateway's password and is not passed on). `x-rpc-timeout-ms` is the
//! timeout, not metadata. A JSON-RPC request object's own `"meta"` is set
//! over them for that call. Metadata over its limits, or a key that is not
//! valid, is refused with 400 before any call runs.
//!
//! The caller is installed for the handling of each request (like
//! [`Context`] for a handler), so that every endpoint's calls reach
//! [`Gateway::call`](super::Gateway) with it, whatever their route.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;

use rpc_core::metadata::Read as MetaRead;
use rpc_core::{Context, Error, ErrorKind, Metadata};

use super::refuse::refused;
use crate::server::trace::continue_trace;

/// The header a caller names its timeout with, in milliseconds.
pub const TIMEOUT_HEADER: &str = "x-rpc-timeout-ms";

/// The prefix of the headers that carry metadata: `x-rpc-<key>`.
pub const METADATA_PREFIX: &str = "x-rpc-";

/// Headers passed on as metadata under their own name (W3C trace context).
const AS_IS: &[&str] = &["traceparent", "tracestate"];

tokio::task_local! {
    static CALLER: Caller;
}

/// When a request's head arrived; put in every request by the connection.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Arrived(pub(crate) Instant);

/// The caller of one request.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    peer: Option<SocketAddr>,
    arrived: Instant,
    /// `x-rpc-timeout-ms`, if sent.
    timeout: Option<Duration>,
    /// What the headers carry for the call's metadata.
    metadata: Option<Arc<Metadata>>,
    /// The door: `"http"`, or the streaming door that renewed it.
    transport: &'static str,
}

impl Caller {
    /// The caller of the request being handled on this task; outside one,
    /// an unknown caller whose request arrives now.
    pub(crate) fn current() -> Caller {
        CALLER.try_with(Caller::clone).unwrap_or(Caller {
            peer: None,
            arrived: Instant::now(),
            timeout: None,
            metadata: None,
            transport: "http",
        })
    }

    /// The same caller with a request arriving now: for each message of a
    /// WebSocket, whose calls count their time from their own arrival.
    pub(crate) fn renewed(&self) -> Caller {
        Caller {
            arrived: Instant::now(),
            ..self.clone()
        }
    }

    /// The same caller, with a call's own metadata (a request object's
    /// `"meta"`) set over the headers'.
    pub(crate) fn with_own(self, own: Option<Metadata>) -> Result<Caller, Error> {
        let Some(own) = own else { return Ok(self) };
        let metadata = match &self.metadata {
            None => own,
            Some(headers) => headers.merged(&own)?,
        };
        Ok(Caller {
            metadata: Some(Arc::new(metadata)),
            ..self
        })
    }

    /// The same caller, coming in by `transport` (`"sse"`, `"websocket"`).
    pub(crate) fn by(self, transport: &'static str) -> Caller {
        Caller { transport, ..self }
    }

    /// Runs `future` with this caller installed, as [`identify`] does for
    /// a request.
    pub(crate) async fn scope<F: std::future::Future>(self, future: F) -> F::Output {
        CALLER.scope(self, future).await
    }

    /// How long a call may take and when that ends: the shortest of the
    /// caller's timeout, the call's own `deadline` and `request_timeout`.
    pub(crate) fn limit(
        &self,
        deadline: Option<Duration>,
        request_timeout: Duration,
    ) -> (Duration, Instant) {
        let limit = [self.timeout, deadline]
            .into_iter()
            .flatten()
            .fold(request_timeout, Duration::min);
        (limit, self.arrived + limit)
    }

    /// The context a handler sees for a call that ends at `deadline`,
    /// with the call's own metadata (a request object's `"meta"`) set over
    /// the headers'.
    pub(crate) fn context(
        &self,
        deadline: Instant,
        own: Option<Metadata>,
    ) -> Result<Context, Error> {
        let metadata = self.clone().with_own(own)?.metadata.map(|metadata| {
            match metadata.get(rpc_core::trace::TRACEPARENT) {
                Some(_) => Arc::new(continue_trace((*metadata).clone())),
                None => metadata,
            }
        });
        Ok(Context::new()
            .with_peer(self.peer)
            .with_deadline(Some(deadline))
            .with_transport(self.transport)
            .with_metadata(metadata))
    }

    fn of(request: &Request) -> Result<Caller, Error> {
        let extensions = request.extensions();
        Caller::from_head(
            extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(peer)| *peer),
            extensions
                .get::<Arrived>()
                .map_or_else(Instant::now, |Arrived(at)| *at),
            request.headers(),
        )
    }

    /// The caller of a request from `peer` whose head, `headers`, arrived
    /// at `arrived`; fails on a timeout or metadata header that is not valid.
    pub(crate) fn from_head(
        peer: Option<SocketAddr>,
        arrived: Instant,
        headers: &HeaderMap,
    ) -> Result<Caller, Error> {
        let timeout = headers.get(TIMEOUT_HEADER).map(timeout_ms);
        Ok(Caller {
            peer,
            arrived,
            timeout: timeout.transpose()?,
            metadata: metadata_of(headers)?.map(Arc::new),
            transport: "http",
        })
    }
}

/// The metadata `headers` carry; see the [module](self).
fn metadata_of(headers: &HeaderMap) -> Result<Option<Metadata>, Error> {
    let mut metadata = Metadata::new();
    for (name, value) in headers {
        let name = name.as_str();
        let key = match name.strip_prefix(METADATA_PREFIX) {
            Some(_) if name == TIMEOUT_HEADER => continue,
            Some(key) => key,
            None if AS_IS.contains(&name) => name,
            None => continue,
        };
        let value = match value.to_str() {
            Ok(text) => MetaRead::Text(text),
            Err(_) => MetaRead::Bytes(value.as_bytes()),
        };
        metadata.push_read(key, value).map_err(|e| {
            Error::new(
                ErrorKind::InvalidRequest,
                format!("the `{name}` header: {}", e.message()),
            )
        })?;
    }
    Ok((!metadata.is_empty()).then_some(metadata))
}

fn timeout_ms(header: &HeaderValue) -> Result<Duration, Error> {
    let ms = std::str::from_utf8(header.as_bytes())
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
        .filter(|&ms| ms > 0);
    ms.map(Duration::from_millis).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidRequest,
            format!(
                "the {TIMEOUT_HEADER} header is {:?}; write a positive whole number of milliseconds",
                String::from_utf8_lossy(header.as_bytes())
            ),
        )
    })
}

/// Middleware: installs the request's caller while the request is handled.
pub(crate) async fn identify(request: Request, next: Next) -> Response {
    match Caller::of(&request) {
        Ok(caller) => CALLER.scope(caller, next.run(request)).await,
        Err(e) => refused(request.uri().path(), e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shortest_time_wins() {
        let caller = Caller {
            peer: None,
            arrived: Instant::now(),
            timeout: Some(Duration::from_millis(300)),
            metadata: None,
            transport: "http",
        };
        let ms = |ms| Duration::from_millis(ms);
        assert_eq!(caller.limit(None, ms(500)).0, ms(300));
        assert_eq!(caller.limit(Some(ms(100)), ms(500)).0, ms(100));
        assert_eq!(caller.limit(Some(ms(900)), ms(200)).0, ms(200));
        let (limit, end) = caller.limit(None, ms(500));
        assert_eq!(end, caller.arrived + limit);
    }

    #[test]
    fn a_timeout_header_is_a_positive_number_of_milliseconds() {
        let ms = |text: &'static str| timeout_ms(&HeaderValue::from_static(text));
        assert_eq!(ms("250").unwrap(), Duration::from_millis(250));
        for bad in ["0", "-5", "1.5", "soon", ""] {
            let e = ms(bad).unwrap_err();
            assert!(e.message().contains("x-rpc-timeout-ms"), "{bad}: {e}");
        }
    }
}
