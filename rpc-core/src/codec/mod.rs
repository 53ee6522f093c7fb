//! Codecs: how an envelope and its values become the bytes of one frame.
//!
//! Every codec implements [`Codec`] in the same order: client side
//! (`encode_request`, `decode_response`), server side (`decode_request`,
//! `encode_response`, `encode_batch`), then values (`decode_value`).
//! Arguments and results are encoded once, straight into the frame buffer,
//! inside the envelope — never as a nested string or byte blob.
//!
//! | codec | request frame |
//! |---|---|
//! | [`Json`] | `{"jsonrpc":"2.0","id":1,"method":"Calculator.add","params":[2,3]}` |
//! | [`Bincode`] | `00` kind, varint id, varint deadline (ms, 0 = none), method, then the argument struct |
//!
//! Control messages travel beside calls: a client's *cancel* (the caller
//! gave up on a call; the server drops its handler and sends no answer) and a
//! server's *going away* (shutdown: no new calls; the connection ends once
//! the calls in flight are answered).
//!
//! # Message kinds
//!
//! One table for both envelopes. Protocol 1 (the hello's `protocol`) has
//! the first four; protocol 2 adds streams and reserves the rest. A new
//! kind never changes what an existing message means, and a message of a
//! kind the server does not know is answered with an error
//! (`InvalidRequest`, "unexpected message kind …"; in bincode under the id
//! that every kind carries second, in JSON under `null`), not by closing
//! the connection.
//!
//! | kind | bincode | JSON-RPC | from | protocol |
//! |---|---|---|---|---|
//! | request | `00` | `{"id":…,"method":…,"params":…}` | client | 1 |
//! | response | `01` status `00` ok, `01` error | `{"id":…,"result":…}`, `{"id":…,"error":…}` | server | 1 |
//! | response, a stream follows | `01` status `02` | `{"id":…,"result":null,"stream":true}` | server | 2 |
//! | refusal, did not run | `01` status `03` (as `01`) | error member `"not_run":true` | server: every refusal made before the handler started (unknown method, bad arguments or metadata, a layer that refused, a draining server); not sent to a protocol-1 peer | 2 |
//! | cancel | `02` | `rpc.cancel` `[id]` | client: stop call `id`; server (2): stop sending the stream of call `id` | 1 |
//! | going away | `03` | `rpc.goingAway` `{"reason":…}` | server | 1 |
//! | ping | `04` | `rpc.ping` `{"nonce":N}` | either | 2 |
//! | pong | `05` | `rpc.pong` `{"nonce":N}` | either | 2 |
//! | stream items | `06` | `rpc.items` `{"id":…,"items":[…]}` | either | 2 |
//! | stream end | `07` | `rpc.end` `{"id":…}` or `{"id":…,"error":{…}}` | either | 2 |
//! | credit | `08` | `rpc.credit` `{"id":…,"items":N,"bytes":N}` | either | 2 |
//! | request with metadata | `09` | request member `"meta":{…}` | client | 2 |
//!
//! A stream belongs to a call and is named by the call's id: a call takes
//! at most one stream (the client's items) and returns at most one (the
//! server's). Items, ends and credit from the client are for the stream it
//! sends; from the server, for the stream the server sends. Per-call
//! metadata is a map of string keys to a string or bytes: in bincode a
//! varint count of (key, `00` string | `01` bytes) pairs after the method
//! name, in JSON `"meta":{"key":"value","bin":{"bytes":"<base64>"}}`; its
//! limits are [`crate::metadata`]'s, and a request over them is refused
//! (`InvalidRequest`) before its handler runs.
//!
//! bincode is not self-describing: it cannot decode types that need
//! `deserialize_any` (`serde_json::Value`, untagged enums, `#[serde(flatten)]`).
//! Use [`crate::Value`] for dynamic values; it round-trips in both codecs.

mod bincode;
mod json;

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::time::Duration;

use bytes::BytesMut;
use serde::de::DeserializeOwned;

use crate::error::WireFault;
use crate::error::{Error, ErrorKind};
use crate::service::{Fault, Reply};

pub use self::bincode::Bincode;
pub use self::json::Json;

/// Visits a value's deserializer; see [`Codec::decode_value`].
pub type Visit<'f> = dyn FnMut(&mut dyn erased_serde::Deserializer<'_>) -> Result<(), Error> + 'f;

/// The envelope format of a connection, chosen by configuration.
pub trait Codec: Send + Sync + fmt::Debug + 'static {
    /// The name configuration uses: `"bincode"`, `"json"`.
    fn name(&self) -> &'static str;

    /// Appends the payload of a request frame to `dst`. On error `dst` is
    /// left as it was.
    fn encode_request(&self, dst: &mut BytesMut, request: &OutRequest<'_>) -> Result<(), Error>;

    /// Reads a frame a server sent.
    fn decode_response(&self, frame: &[u8]) -> Result<Inbound, Error>;

    /// Reads a frame a client sent. Never fails: what cannot be read becomes
    /// [`Incoming::Invalid`], to be answered with an error.
    fn decode_request<'a>(&self, frame: &'a [u8]) -> Incoming<'a>;

    /// [`Codec::decode_request`] for a server that takes at most `max_batch`
    /// calls in one batch: a larger batch is refused as soon as its count
    /// passes the limit, before the rest of it is decoded, and becomes
    /// [`Incoming::Invalid`] with an [`ErrorKind::InvalidRequest`] error
    /// naming `max_batch`. Codecs without batches need not override it.
    fn decode_request_within<'a>(&self, frame: &'a [u8], max_batch: usize) -> Incoming<'a> {
        let _ = max_batch;
        self.decode_request(frame)
    }

    /// Appends the payload of a response frame to `dst`. On error (a result
    /// the codec cannot represent) `dst` is left as it was.
    fn encode_response(&self, dst: &mut BytesMut, id: &Id, reply: &Reply) -> Result<(), Error>;

    /// Appends one frame answering a batch, from the responses' payloads.
    fn encode_batch(&self, dst: &mut BytesMut, responses: &[BytesMut]);

    /// Appends a message asking the server to stop call `id`: its caller
    /// gave up on it.
    fn encode_cancel(&self, dst: &mut BytesMut, id: u64);

    /// Appends a notice that the server is going away: it takes no new
    /// calls, and ends the connection once the calls in flight are answered.
    fn encode_going_away(&self, dst: &mut BytesMut, reason: &str);

    /// Hands `visit` a deserializer over exactly `bytes` (one value); fails if
    /// bytes are left over.
    fn decode_value(&self, bytes: &[u8], visit: &mut Visit<'_>) -> Result<(), Error>;

    /// Which of this crate's codecs this is, if it is one: stream items of
    /// a known type are then encoded and decoded without type erasure.
    fn builtin(&self) -> Option<Builtin> {
        None
    }

    /// Marks the response just encoded at `start..` of `response` as
    /// opening a stream: its items follow under the call's id.
    fn mark_stream(&self, response: &mut BytesMut, start: usize) {
        let _ = (response, start);
    }

    /// Begins a stream-items message for stream `id`; the items follow
    /// ([`Codec::encode_item`]), then [`Codec::finish_items`] with the
    /// offset this began at.
    fn begin_items(&self, dst: &mut BytesMut, id: u64) {
        let _ = (dst, id);
    }

    /// Appends one item (`first` of its message or not); on error `dst` is
    /// left as it was. The bytes it appends are what the item costs in
    /// credit.
    fn encode_item(
        &self,
        dst: &mut BytesMut,
        first: bool,
        item: &dyn erased_serde::Serialize,
    ) -> Result<(), Error> {
        let _ = (dst, first, item);
        Err(Error::new(
            ErrorKind::Protocol,
            format!("the `{}` codec cannot carry streams", self.name()),
        ))
    }

    /// What [`Codec::encode_item`] writes before an item that is not the
    /// first of its message (JSON's comma); the same item sent first has
    /// the same bytes without it.
    fn item_separator(&self) -> &'static [u8] {
        b""
    }

    /// Ends the items message begun at `start`, which holds `count` items.
    fn finish_items(&self, dst: &mut BytesMut, start: usize, count: u32) {
        let _ = (dst, start, count);
    }

    /// Appends the end of stream `id`: finished, or the fault that ended it.
    fn encode_end(
        &self,
        dst: &mut BytesMut,
        id: u64,
        end: Result<(), &Fault>,
    ) -> Result<(), Error> {
        let _ = (dst, id, end);
        Ok(())
    }

    /// Appends a grant of `items` more items and `bytes` more bytes of
    /// credit on stream `id`.
    fn encode_credit(&self, dst: &mut BytesMut, id: u64, items: u64, bytes: u64) {
        let _ = (dst, id, items, bytes);
    }

    /// Appends a ping (`pong` false) or its answer, carrying `nonce`.
    fn encode_ping(&self, dst: &mut BytesMut, nonce: u64, pong: bool) {
        let _ = (dst, nonce, pong);
    }

    /// Hands `visit` a deserializer over the first item of `items` (the
    /// rest of an items message); returns how many bytes it took. It sets
    /// no decode budget of its own: the caller decodes a message's items
    /// in one (`budget::within`).
    fn decode_item(&self, items: &[u8], visit: &mut Visit<'_>) -> Result<usize, Error> {
        let _ = (items, visit);
        Err(Error::new(
            ErrorKind::Protocol,
            format!("the `{}` codec cannot carry streams", self.name()),
        ))
    }
}

/// The codecs this crate ships, for code that handles them with typed
/// values instead of through `erased_serde` (see [`Codec::builtin`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Builtin {
    /// [`Bincode`].
    Bincode,
    /// [`Json`].
    Json,
}

/// Appends one stream item of a known type to a message of a codec
/// (see [`Codec::encode_item`]).
pub type ItemEncoder<T> = fn(&dyn Codec, &mut BytesMut, bool, &T) -> Result<(), Error>;

/// How `codec` encodes stream items of type `T`: typed for this crate's
/// codecs, through [`Codec::encode_item`] for others. Chosen once per
/// message, not per item.
pub fn item_encoder<T: serde::Serialize>(codec: &dyn Codec) -> ItemEncoder<T> {
    match codec.builtin() {
        Some(Builtin::Bincode) => |_, dst, _, item| bincode::encode_typed(dst, item),
        Some(Builtin::Json) => |_, dst, first, item| json::encode_item_typed(dst, first, item),
        None => |codec, dst, first, item| codec.encode_item(dst, first, item),
    }
}

/// Decodes the `count` stream items of type `T` at the front of `items`
/// (an items message's) into `out`; returns the bytes they took. Typed for
/// this crate's codecs (bincode decodes them as one tuple), through
/// [`Codec::decode_item`] for others. Sets no decode budget of its own.
pub fn decode_items<T: DeserializeOwned>(
    codec: &dyn Codec,
    items: &[u8],
    count: u32,
    out: &mut std::collections::VecDeque<T>,
) -> Result<usize, Error> {
    match codec.builtin() {
        Some(Builtin::Bincode) => bincode::decode_items(items, count, out),
        Some(Builtin::Json) => {
            let mut at = 0;
            for _ in 0..count {
                let (item, used) = json::decode_item_typed(&items[at..])?;
                at += used;
                out.push_back(item);
            }
            Ok(at)
        }
        None => {
            let mut at = 0;
            for _ in 0..count {
                let mut item = None;
                at += codec.decode_item(&items[at..], &mut |de| {
                    let value = erased_serde::deserialize(de)
                        .map_err(|e| Error::new(ErrorKind::Parse, e.to_string()))?;
                    item = Some(value);
                    Ok(())
                })?;
                let item = item
                    .ok_or_else(|| Error::new(ErrorKind::Parse, "a stream item held no value"))?;
                out.push_back(item);
            }
            Ok(at)
        }
    }
}

/// A stream message or ping, in either direction (protocol 2).
#[derive(Debug, PartialEq)]
#[non_exhaustive]
pub enum Flow {
    /// `count` items of stream `id`, at `items` of the frame.
    Items {
        /// The stream's (its call's) id.
        id: u64,
        /// How many items.
        count: u32,
        /// Where they lie in the frame.
        items: Range<usize>,
    },
    /// Stream `id` ended: finished, or with a fault.
    End {
        /// The stream's id.
        id: u64,
        /// Finished, or why not.
        outcome: Result<(), WireFault>,
    },
    /// More credit for stream `id`.
    Credit {
        /// The stream's id.
        id: u64,
        /// Items.
        items: u64,
        /// Bytes.
        bytes: u64,
    },
    /// A ping (`pong` false) or its answer.
    Ping {
        /// Echoed in the pong.
        nonce: u64,
        /// This is the answer.
        pong: bool,
    },
}

/// All codecs this crate ships, by name.
pub const ALL: &[&dyn Codec] = &[&Bincode, &Json];

/// The codec called `name`.
pub fn by_name(name: &str) -> Option<&'static dyn Codec> {
    ALL.iter().copied().find(|c| c.name() == name)
}

/// Decodes one `T` from `bytes`.
pub fn decode<T: DeserializeOwned>(codec: &dyn Codec, bytes: &[u8]) -> Result<T, Error> {
    let mut out = None;
    codec.decode_value(bytes, &mut |de| {
        let value = erased_serde::deserialize(de).map_err(|e| {
            let what = format!("the reply (type `{}`)", std::any::type_name::<T>());
            let why = crate::explain::explain(codec.name(), &what, &e.to_string());
            Error::new(ErrorKind::Parse, why)
        })?;
        out = Some(value);
        Ok(())
    })?;
    out.ok_or_else(|| Error::new(ErrorKind::Parse, "the reply held no value"))
}

/// A request as a client sends it.
pub struct OutRequest<'a> {
    /// Matches the response to the call.
    pub id: u64,
    /// `Service.method`, or a bare method name.
    pub method: &'a str,
    /// How long the caller waits, relative to when the server reads the frame.
    pub deadline: Option<Duration>,
    /// The method's argument struct.
    pub args: &'a dyn erased_serde::Serialize,
    /// The call's metadata (protocol 2): sent when it has an entry.
    pub metadata: Option<&'a crate::metadata::Metadata>,
}

/// A frame from the server, as the client reads it.
#[derive(Debug, PartialEq)]
#[non_exhaustive]
pub enum Inbound {
    /// The answer to request `id`; the result or error is located in the frame.
    Response {
        /// The request's id.
        id: u64,
        /// Where the result lies in the frame, or the error.
        outcome: Result<Range<usize>, WireFault>,
        /// The result opens a stream: its items follow under `id`.
        stream: bool,
    },
    /// The server is shutting down: send no new calls.
    GoingAway {
        /// Why, for people.
        reason: String,
    },
    /// The server no longer reads the stream the client sends for call `id`.
    Cancel {
        /// The call's id.
        id: u64,
    },
    /// A stream message or ping.
    Flow(Flow),
    /// A message of a kind this side does not know: a client fails the
    /// connection (a server sends only the kinds of the agreed protocol).
    Unknown {
        /// Its kind, as the message named it.
        kind: String,
    },
}

/// A request id: a number from our clients, anything JSON-RPC allows from others.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Id {
    /// A numeric id (all ids our clients send).
    Num(u64),
    /// A JSON-RPC string id.
    Str(String),
    /// A JSON-RPC `null` id, also used to answer what could not be read.
    Null,
}

/// A frame from a client, as the server reads it.
#[derive(Debug)]
#[non_exhaustive]
pub enum Incoming<'a> {
    /// One call.
    Request(Request<'a>),
    /// Several calls in one frame, answered by one frame (JSON-RPC batch).
    Batch(Vec<Incoming<'a>>),
    /// The caller gave up on call `id`: stop it; it gets no answer.
    Cancel(Id),
    /// A stream message or ping (protocol 2).
    Flow(Flow),
    /// A message of a kind this side does not know: answered with an
    /// error, and not counted as invalid.
    Unknown {
        /// Its kind, as the message named it, safe to quote.
        kind: String,
        /// The id to answer under: bincode's second field, JSON's `null`.
        id: Id,
    },
    /// Something that is not a valid request; answer `error` under `id`.
    Invalid {
        /// The id to answer under, when it could be read.
        id: Id,
        /// What is wrong with it.
        error: Error,
    },
}

/// One call, borrowed from its frame.
#[derive(Debug)]
pub struct Request<'a> {
    /// `None` for a notification, which gets no answer.
    pub id: Option<Id>,
    /// `Service.method`, or a bare method name.
    pub method: Cow<'a, str>,
    /// How long the caller waits from now.
    pub deadline: Option<Duration>,
    /// The encoded argument struct, for [`Codec::decode_value`].
    pub params: &'a [u8],
    /// The call's metadata, if it came with any (checked against the
    /// limits of [`crate::metadata`] before it was copied).
    pub metadata: Option<crate::metadata::Metadata>,
}

/// Runs `encode` and rolls `dst` back to its length before if it fails.
fn atomically<T>(
    dst: &mut BytesMut,
    encode: impl FnOnce(&mut BytesMut) -> Result<T, Error>,
) -> Result<T, Error> {
    let mark = dst.len();
    encode(dst).inspect_err(|_| dst.truncate(mark))
}

fn encode_error(e: impl fmt::Display) -> Error {
    Error::new(
        ErrorKind::Internal,
        format!("a value could not be encoded: {e}"),
    )
}

/// How much of a peer's text an error message quotes.
const QUOTED_BYTES: usize = 200;

/// `text`, a peer's or quoting a peer's, cut to [`QUOTED_BYTES`] for an
/// error message, with its full length when cut: a batch of junk members
/// must not make a megabyte of messages.
fn cut(text: &str) -> Cow<'_, str> {
    if text.len() <= QUOTED_BYTES {
        return Cow::Borrowed(text);
    }
    let mut end = QUOTED_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}… ({} bytes)", &text[..end], text.len()))
}

/// Milliseconds of a deadline on the wire, where 0 means none.
fn deadline_ms(deadline: Option<Duration>) -> u64 {
    deadline.map_or(0, |d| {
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_messages_round_trip_in_every_codec() {
        for codec in ALL {
            let mut buf = BytesMut::new();
            codec.encode_cancel(&mut buf, 7);
            assert!(
                matches!(codec.decode_request(&buf), Incoming::Cancel(Id::Num(7))),
                "{}",
                codec.name()
            );
            buf.clear();
            codec.encode_going_away(&mut buf, "the server is \"shutting\" down");
            let reason = "the server is \"shutting\" down".to_owned();
            assert_eq!(
                codec.decode_response(&buf).unwrap(),
                Inbound::GoingAway { reason },
                "{}",
                codec.name()
            );
        }
    }

    #[test]
    fn a_malformed_cancel_is_invalid_not_a_call() {
        let json = br#"{"jsonrpc":"2.0","method":"rpc.cancel","params":{"id":1}}"#;
        assert!(matches!(
            Json.decode_request(json),
            Incoming::Invalid { .. }
        ));
        assert!(matches!(
            Bincode.decode_request(&[2]),
            Incoming::Invalid { .. }
        ));
        assert!(matches!(
            Bincode.decode_request(&[2, 1, 0]),
            Incoming::Invalid { .. }
        ));
    }
}
