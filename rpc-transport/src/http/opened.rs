//! A call made through a door that carries streams (Server-Sent Events,
//! the WebSocket): run as any other, its result encoded inside
//! [`capturing`], which hands over the stream's items as a [`Source`]; and
//! the encoding of those items and of the stream's end as JSON.
//!
//! A method that returns no stream gives its encoded result instead, for
//! the door to send as it sends a stream of one item.

use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use rpc_core::registry::Route;
use rpc_core::service::{CallFuture, Fault};
use rpc_core::stream::{End, Pulled, Source, capturing};
use rpc_core::{Error, ErrorKind, Registry};

use super::Gateway;
use super::reply::{Encoded, write_json_within};

/// What a call through a streaming door gave.
pub(crate) enum Opened {
    /// The method returned a stream: its items.
    Stream(Box<dyn Source>),
    /// It returned a plain value: the value, as JSON.
    Value(BytesMut),
}

impl Gateway {
    /// Runs `method` (see [`Gateway::call_streaming`]) and captures the
    /// stream its result holds.
    pub(crate) async fn open(
        &self,
        method: &str,
        deadline: Option<Duration>,
        start: impl FnOnce(&Registry, Route) -> Result<CallFuture, Error>,
    ) -> Result<Opened, Fault> {
        let value = self.call_streaming(method, deadline, start).await?;
        let mut json = BytesMut::new();
        let limit = self.max_reply_bytes;
        let (encoded, source) = capturing(|| write_json_within(&mut json, &*value, limit));
        match (encoded, source) {
            (Ok(()), Some(source)) => Ok(Opened::Stream(source)),
            (Ok(()), None) => Ok(Opened::Value(json)),
            (Err(e), source) => {
                if let Some(source) = source {
                    source.close(Error::new(ErrorKind::Internal, "the result did not encode"));
                }
                Err(match e {
                    Encoded::TooLarge => super::reply::reply_too_large(limit).into(),
                    Encoded::Failed(e) => e.into(),
                })
            }
        }
    }
}

/// Polls `source` for its next item, appending it to `out` as compact JSON
/// (refusing NaN and ±infinity as the JSON codec does, and an item over
/// `limit` bytes) between `before` and `after`. A producer's panic ends the
/// stream with a `HandlerPanic` error.
pub(crate) fn poll_item(
    source: &mut dyn Source,
    cx: &mut Context<'_>,
    out: &mut BytesMut,
    (before, after): (&[u8], &[u8]),
    limit: usize,
) -> Poll<Pulled> {
    let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        source.poll_item(cx, &mut |item| {
            let mark = out.len();
            out.extend_from_slice(before);
            let written = rpc_core::finite::to_writer(out.writer(), item)
                .map_err(|e| {
                    let why = format!("a stream item could not be encoded as JSON: {e}");
                    Error::new(ErrorKind::Internal, why)
                })
                .and_then(|written| written.result(item, "json"))
                .and_then(|()| item_within(out.len() - mark, limit));
            if written.is_err() {
                out.truncate(mark);
            } else {
                out.extend_from_slice(after);
            }
            written
        })
    }));
    polled.unwrap_or_else(|panic| {
        let why = rpc_core::service::panic_message(&*panic).to_owned();
        Poll::Ready(Pulled::End(Err(Error::new(
            ErrorKind::HandlerPanic,
            format!("the stream's producer panicked: {why}"),
        ))))
    })
}

fn item_within(len: usize, limit: usize) -> Result<(), Error> {
    if len <= limit {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::OverBudget,
        format!("a stream item of {len} bytes exceeds max_frame_bytes ({limit})"),
    ))
}

/// The error object of `error`, as JSON-RPC writes one:
/// `{"code":…,"message":…}`.
pub(crate) fn error_object(out: &mut BytesMut, error: &Error) {
    out.extend_from_slice(format!(r#"{{"code":{},"message":"#, error.code()).as_bytes());
    let message = serde_json::to_vec(error.message()).unwrap_or_else(|_| b"\"\"".to_vec());
    out.extend_from_slice(&message);
    out.put_u8(b'}');
}

/// The reason a stream ended, as JSON: `{"ok":true}` when it finished,
/// else its error object.
pub(crate) fn end_reason(out: &mut BytesMut, end: &End) {
    match end {
        Ok(()) => out.extend_from_slice(br#"{"ok":true}"#),
        Err(e) => error_object(out, e),
    }
}

/// The end of a stream stopped because the server is shutting down.
pub(crate) fn shutting_down() -> Error {
    Error::new(
        ErrorKind::ShuttingDown,
        "the server is shutting down and ended the stream after shutdown_grace_ms",
    )
}
