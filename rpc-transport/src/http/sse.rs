//! Server-Sent Events: a method's stream as a `text/event-stream` body,
//! for `GET` (idempotent methods, query-string arguments) or `POST` (JSON
//! body arguments) to `/{Service}/{method}` with
//! `Accept: text/event-stream`.
//!
//! ```text
//! → GET /KeyValue/watch?prefix=a/   Accept: text/event-stream
//! ← 200 Content-Type: text/event-stream
//! data: {"Set":{"key":"a/1","value":1}}
//!
//! data: {"Delete":{"key":"a/1"}}
//!
//! event: end
//! data: {"ok":true}
//!
//! ```
//!
//! Each item is one `data:` line of compact JSON (NaN and ±infinity refused
//! as the JSON codec refuses them). The last event, `end`, carries why the
//! stream ended: `{"ok":true}` when it finished, else the error object
//! `{"code":…,"message":…}` as in JSON-RPC — the method's error, a
//! producer's panic, or `ShuttingDown` (-32003) when the server drains and
//! the stream outlives `shutdown_grace_ms`. A method that returns no stream
//! sends its result as one item and ends. A call that fails before its
//! stream opens is answered as REST answers it (status and error JSON).
//!
//! The source is polled only as hyper takes the body: one chunk per poll,
//! holding the items that were ready, at most [`CHUNK_BYTES`] of them. A
//! client that stops reading stops the producer; one that closes the
//! connection drops it (its `Sender` learns `Cancelled`).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use futures::future::BoxFuture;
use rpc_core::registry::Route;
use rpc_core::service::CallFuture;
use rpc_core::stream::{End, Pulled, Source};
use rpc_core::{Error, ErrorKind, Registry};

use super::Gateway;
use super::call::Streaming;
use super::opened::{Opened, end_reason, poll_item, shutting_down};
use super::reply::error_response;

/// The most bytes of items one body chunk holds.
pub(crate) const CHUNK_BYTES: usize = 64 * 1024;

/// Whether the request asks for an event stream.
pub(crate) fn wanted(headers: &HeaderMap) -> bool {
    headers.get_all(ACCEPT).iter().any(|accept| {
        accept
            .to_str()
            .is_ok_and(|a| a.to_ascii_lowercase().contains("text/event-stream"))
    })
}

/// Runs `method` and answers with its stream as events.
pub(crate) async fn respond(
    gateway: &Arc<Gateway>,
    method: &str,
    start: impl FnOnce(&Registry, Route) -> Result<CallFuture, Error>,
) -> Response {
    let caller = super::caller::Caller::current().by("sse");
    let opened = match caller.scope(gateway.open(method, None, start)).await {
        Ok(opened) => opened,
        Err(fault) => return error_response(&fault),
    };
    let events = match opened {
        Opened::Stream(source) => Events::new(gateway.clone(), Some(source), BytesMut::new()),
        Opened::Value(json) => {
            let mut first = BytesMut::new();
            event(&mut first, None, &json);
            end_event(&mut first, &Ok(()));
            Events::new(gateway.clone(), None, first)
        }
    };
    let mut response = Body::from_stream(events).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tells a buffering proxy (nginx) to pass each event on at once.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// `event: NAME\n` (if named), `data: DATA\n\n`.
fn event(out: &mut BytesMut, name: Option<&str>, data: &[u8]) {
    if let Some(name) = name {
        out.extend_from_slice(format!("event: {name}\n").as_bytes());
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
}

fn end_event(out: &mut BytesMut, end: &End) {
    let mut reason = BytesMut::new();
    end_reason(&mut reason, end);
    event(out, Some("end"), &reason);
}

/// The body: the stream's events, then its end.
struct Events {
    source: Option<Box<dyn Source>>,
    /// Events written but not yet taken (the first chunk of a plain value).
    pending: BytesMut,
    /// Completes when the server has drained for `shutdown_grace`.
    grace: BoxFuture<'static, ()>,
    limit: usize,
    done: bool,
    _counted: Streaming,
}

impl Events {
    fn new(gateway: Arc<Gateway>, source: Option<Box<dyn Source>>, pending: BytesMut) -> Events {
        let waiting = gateway.clone();
        Events {
            done: source.is_none(),
            source,
            pending,
            grace: Box::pin(async move { waiting.grace_over().await }),
            limit: gateway.max_reply_bytes,
            _counted: Streaming::new(gateway),
        }
    }

    /// Appends the events ready now, up to [`CHUNK_BYTES`], and the end if
    /// the stream ended.
    fn pull(&mut self, cx: &mut Context<'_>) {
        let Some(source) = self.source.as_mut() else {
            return;
        };
        while self.pending.len() < CHUNK_BYTES {
            let framing: (&[u8], &[u8]) = (b"data: ", b"\n\n");
            match poll_item(&mut **source, cx, &mut self.pending, framing, self.limit) {
                Poll::Ready(Pulled::Item) => {}
                Poll::Ready(Pulled::End(end)) => {
                    // Ended by itself: nothing to tell it.
                    self.source = None;
                    end_event(&mut self.pending, &end);
                    self.done = true;
                    return;
                }
                Poll::Pending => return,
            }
        }
    }
}

impl futures::Stream for Events {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if !this.done && this.grace.as_mut().poll(cx).is_ready() {
            let why = shutting_down();
            if let Some(source) = this.source.take() {
                source.close(Error::new(why.kind(), why.message()));
            }
            end_event(&mut this.pending, &Err(why));
            this.done = true;
        }
        this.pull(cx);
        if !this.pending.is_empty() {
            return Poll::Ready(Some(Ok(this.pending.split().freeze())));
        }
        if this.done {
            return Poll::Ready(None);
        }
        Poll::Pending
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        if let Some(source) = self.source.take() {
            source.close(Error::new(
                ErrorKind::Cancelled,
                "the client closed the event stream",
            ));
        }
    }
}
