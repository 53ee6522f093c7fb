//! Reading a JSON-RPC request frame: the request exactly as this crate's
//! clients write it, read without the general parser; any other request
//! object; and a batch, counted while it is scanned so that the member past
//! `max_batch` ends the scan before any member is decoded.

use std::borrow::Cow;
use std::cell::Cell;
use std::ops::Range;

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::CANCEL;
use crate::codec::{Id, Incoming, Request, cut};
use crate::error::{Error, ErrorKind};

#[derive(Deserialize)]
pub(super) struct JsonRequest<'a> {
    #[serde(borrow)]
    pub(super) jsonrpc: Cow<'a, str>,
    #[serde(default, borrow, deserialize_with = "present")]
    pub(super) id: Option<&'a RawValue>,
    #[serde(borrow)]
    pub(super) method: Cow<'a, str>,
    #[serde(default, borrow)]
    pub(super) params: Option<&'a RawValue>,
    #[serde(default)]
    pub(super) deadline_ms: u64,
    #[serde(default, borrow)]
    pub(super) meta: Option<&'a RawValue>,
}

#[derive(Deserialize)]
pub(super) struct IdProbe<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    pub(super) id: Option<&'a RawValue>,
}

/// Tells a present `null` (`Some("null")`) from an absent member (`None`).
pub(super) fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

pub(super) fn decode_one(frame: &[u8]) -> Incoming<'_> {
    match canonical_request(frame) {
        Some(request) => Incoming::Request(request),
        None => decode_any(frame),
    }
}

/// The request exactly as this crate's clients write it, read without the
/// general parser:
/// `{"jsonrpc":"2.0","id":N,"method":"M","params":P}`, optionally with
/// `,"deadline_ms":D` before the brace, no whitespace, and no escape in
/// the method's name. `None` for anything else, which [`decode_any`]
/// reads; for what this accepts both give the same request.
pub(super) fn canonical_request(frame: &[u8]) -> Option<Request<'_>> {
    let rest = frame.strip_prefix(br#"{"jsonrpc":"2.0","id":"#)?;
    let (id, rest) = leading_u64(rest)?;
    let rest = rest.strip_prefix(br#","method":""#)?;
    // A quote ends the name; a backslash (an escape) or a control byte
    // (invalid in JSON) sends the frame to the general parser.
    let end = rest
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
    if rest[end] != b'"' {
        return None;
    }
    let method = std::str::from_utf8(&rest[..end]).ok()?;
    let rest = rest[end + 1..].strip_prefix(br#","params":"#)?;
    let (params, rest) = leading_value(rest)?;
    if params.get() == "null" {
        // Read as no params (`[]`) by the general parser.
        return None;
    }
    let deadline_ms = match rest {
        b"}" => 0,
        _ => match leading_u64(rest.strip_prefix(br#","deadline_ms":"#)?)? {
            (ms, b"}") => ms,
            _ => return None,
        },
    };
    Some(Request {
        id: Some(Id::Num(id)),
        method: Cow::Borrowed(method),
        deadline: (deadline_ms > 0).then(|| std::time::Duration::from_millis(deadline_ms)),
        params: params.get().as_bytes(),
        metadata: None,
    })
}

/// A JSON unsigned integer that fits a `u64` at the start of `bytes`, and
/// the bytes after it.
pub(super) fn leading_u64(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let n = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if n == 0 || (n > 1 && bytes[0] == b'0') {
        // None, or a leading zero, which JSON does not allow.
        return None;
    }
    let digits = std::str::from_utf8(&bytes[..n]).ok()?;
    Some((digits.parse().ok()?, &bytes[n..]))
}

/// The JSON value at the start of `bytes` (serde_json finds where it ends,
/// within its nesting limit), and the bytes after it.
pub(super) fn leading_value(bytes: &[u8]) -> Option<(&RawValue, &[u8])> {
    if bytes.first().is_none_or(u8::is_ascii_whitespace) {
        return None;
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = <&RawValue>::deserialize(&mut de).ok()?;
    let end = span(bytes, value).end;
    Some((value, &bytes[end..]))
}

/// Reads any request object, as the general parser does.
pub(super) fn decode_any(frame: &[u8]) -> Incoming<'_> {
    let r: JsonRequest<'_> = match serde_json::from_slice(frame) {
        Ok(r) => r,
        Err(e) => return invalid(frame, e),
    };
    let id = match r.id.map(parse_id).transpose() {
        Ok(id) => id,
        Err(error) => {
            return Incoming::Invalid {
                id: Id::Null,
                error,
            };
        }
    };
    if r.jsonrpc != "2.0" {
        let error = Error::new(ErrorKind::InvalidRequest, r#"`jsonrpc` must be "2.0""#);
        return Incoming::Invalid {
            id: id.unwrap_or(Id::Null),
            error,
        };
    }
    if id.is_none() && r.method == CANCEL {
        let target = r
            .params
            .and_then(|p| serde_json::from_str::<(&RawValue,)>(p.get()).ok())
            .and_then(|(raw,)| parse_id(raw).ok());
        return match target {
            Some(id) => Incoming::Cancel(id),
            _ => Incoming::Invalid {
                id: Id::Null,
                error: Error::new(
                    ErrorKind::InvalidRequest,
                    "`rpc.cancel` takes the id of one call: [id]",
                ),
            },
        };
    }
    if id.is_none() && super::flow::is_control(&r.method) {
        let frame_params = r.params;
        return match super::flow::decode(&r.method, frame_params, frame) {
            Some(Ok(flow)) => Incoming::Flow(flow),
            Some(Err(error)) => Incoming::Invalid {
                id: Id::Null,
                error,
            },
            None => Incoming::Unknown {
                kind: format!("{:?}", cut(&r.method)),
                id: Id::Null,
            },
        };
    }
    let metadata = match r.meta.map(super::meta::read).transpose() {
        Ok(metadata) => metadata,
        Err(error) => {
            return Incoming::Invalid {
                id: id.unwrap_or(Id::Null),
                error,
            };
        }
    };
    Incoming::Request(Request {
        id,
        method: r.method,
        deadline: (r.deadline_ms > 0).then(|| std::time::Duration::from_millis(r.deadline_ms)),
        params: r.params.map_or(b"[]".as_slice(), |p| p.get().as_bytes()),
        metadata,
    })
}

/// A batch, its members counted as they are scanned: one past `max_batch`
/// ends the scan, so a frame of a million members costs no more than one of
/// `max_batch + 1`. Each member is only delimited (a borrowed [`RawValue`])
/// until the count is known to fit.
pub(super) fn decode_batch(frame: &[u8], max_batch: usize) -> Incoming<'_> {
    let mut de = serde_json::Deserializer::from_slice(frame);
    let over = Cell::new(false);
    let items = match de.deserialize_seq(Members {
        max_batch,
        over: &over,
    }) {
        Ok(items) => items,
        Err(_) if over.get() => {
            let error = Error::new(
                ErrorKind::InvalidRequest,
                format!(
                    "a batch of more than {max_batch} calls exceeds the limit of {max_batch} (max_batch)"
                ),
            );
            return Incoming::Invalid {
                id: Id::Null,
                error,
            };
        }
        Err(e) => return invalid(frame, e),
    };
    if let Err(e) = de.end() {
        return invalid(frame, e);
    }
    if items.is_empty() {
        let error = Error::new(ErrorKind::InvalidRequest, "an empty batch");
        return Incoming::Invalid {
            id: Id::Null,
            error,
        };
    }
    Incoming::Batch(
        items
            .into_iter()
            .map(|raw| decode_one(raw.get().as_bytes()))
            .collect(),
    )
}

/// Collects a batch's members; fails, setting `over`, as soon as there are
/// more than `max_batch` (the rest of the frame is not read).
pub(super) struct Members<'o> {
    pub(super) max_batch: usize,
    pub(super) over: &'o Cell<bool>,
}

impl<'de> serde::de::Visitor<'de> for Members<'_> {
    type Value = Vec<&'de RawValue>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a batch (an array of requests)")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<&'de RawValue>()? {
            if items.len() == self.max_batch {
                self.over.set(true);
                return Err(serde::de::Error::custom("too many calls"));
            }
            items.push(item);
        }
        Ok(items)
    }
}

/// A request that did not decode: a parse error if it is not JSON, else an
/// invalid request, answered under its id when that much can be read.
pub(super) fn invalid(frame: &[u8], e: serde_json::Error) -> Incoming<'_> {
    if e.is_syntax() || e.is_eof() {
        let error = Error::new(
            ErrorKind::Parse,
            format!("the request is not valid JSON: {}", cut(&e.to_string())),
        );
        return Incoming::Invalid {
            id: Id::Null,
            error,
        };
    }
    // Only an object can hold an id; anything else is not read twice.
    let object = frame.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let id = object
        .then(|| serde_json::from_slice::<IdProbe<'_>>(frame).ok())
        .flatten()
        .and_then(|p| p.id)
        .and_then(|raw| parse_id(raw).ok())
        .unwrap_or(Id::Null);
    let error = Error::new(
        ErrorKind::InvalidRequest,
        format!("not a JSON-RPC request: {}", cut(&e.to_string())),
    );
    Incoming::Invalid { id, error }
}

pub(super) fn parse_id(raw: &RawValue) -> Result<Id, Error> {
    let bad = || {
        Error::new(
            ErrorKind::InvalidRequest,
            format!(
                "`id` must be an integer, a string or null, not {}",
                cut(raw.get())
            ),
        )
    };
    match raw.get().as_bytes().first() {
        Some(b'n') => Ok(Id::Null),
        Some(b'"') => serde_json::from_str(raw.get())
            .map(Id::Str)
            .map_err(|_| bad()),
        // A raw value is valid JSON already: for it, `str::parse` accepts
        // exactly the integers serde_json would, without a second parser.
        _ => raw.get().parse().map(Id::Num).map_err(|_| bad()),
    }
}

/// Where `raw`, borrowed from `frame`, lies in it.
pub(super) fn span(frame: &[u8], raw: &RawValue) -> Range<usize> {
    let start = raw.get().as_ptr() as usize - frame.as_ptr() as usize;
    start..start + raw.get().len()
}
