//! Stream messages and pings in JSON (protocol 2): notifications in the
//! reserved `rpc.` namespace, readable as any other JSON-RPC message.
//!
//! ```text
//! {"jsonrpc":"2.0","method":"rpc.items","params":{"id":1,"items":[{"Set":{"key":"a/1","value":"x"}}]}}
//! {"jsonrpc":"2.0","method":"rpc.end","params":{"id":1}}
//! {"jsonrpc":"2.0","method":"rpc.end","params":{"id":1,"error":{"code":-32000,"message":"…"}}}
//! {"jsonrpc":"2.0","method":"rpc.credit","params":{"id":1,"items":2048,"bytes":131072}}
//! {"jsonrpc":"2.0","method":"rpc.ping","params":{"nonce":7}}
//! {"jsonrpc":"2.0","method":"rpc.pong","params":{"nonce":7}}
//! ```
//!
//! An item costs in credit the bytes it takes between the brackets,
//! with the comma before it.

use std::io::Write;

use bytes::{BufMut, BytesMut};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::request::span;
use super::{JsonError, put_u64, write_error};
use crate::codec::{Flow, Visit, atomically, encode_error};
use crate::error::WireFault;
use crate::error::{Error, ErrorKind};
use crate::service::Fault;

pub(super) const ITEMS: &str = "rpc.items";
pub(super) const END: &str = "rpc.end";
pub(super) const CREDIT: &str = "rpc.credit";
pub(super) const PING: &str = "rpc.ping";
pub(super) const PONG: &str = "rpc.pong";

#[derive(Deserialize)]
struct ItemsParams<'a> {
    id: u64,
    #[serde(borrow)]
    items: &'a RawValue,
}

#[derive(Deserialize)]
struct EndParams<'a> {
    id: u64,
    #[serde(default, borrow)]
    error: Option<JsonError<'a>>,
}

#[derive(Deserialize)]
struct CreditParams {
    id: u64,
    items: u64,
    bytes: u64,
}

#[derive(Deserialize)]
struct PingParams {
    nonce: u64,
}

/// The flow message `method` names, read from its `params`; `None` if
/// `method` is not one.
pub(super) fn decode(
    method: &str,
    params: Option<&RawValue>,
    frame: &[u8],
) -> Option<Result<Flow, Error>> {
    if ![ITEMS, END, CREDIT, PING, PONG].contains(&method) {
        return None;
    }
    let params = params.map_or("null", RawValue::get);
    let malformed = |e: serde_json::Error| {
        Error::new(
            ErrorKind::InvalidRequest,
            format!(
                "`{method}` is malformed: {}",
                crate::codec::cut(&e.to_string())
            ),
        )
    };
    let flow = match method {
        ITEMS => serde_json::from_str::<ItemsParams<'_>>(params)
            .map_err(malformed)
            .and_then(|p| {
                let count = count_items(p.items).map_err(malformed)?;
                let whole = span(frame, p.items);
                // Inside the brackets.
                Ok(Flow::Items {
                    id: p.id,
                    count,
                    items: whole.start + 1..whole.end - 1,
                })
            }),
        END => serde_json::from_str::<EndParams<'_>>(params)
            .map_err(malformed)
            .map(|p| Flow::End {
                id: p.id,
                outcome: match p.error {
                    None => Ok(()),
                    Some(e) => Err(WireFault {
                        code: e.code,
                        message: e.message,
                        data: e.data.map(|d| span(frame, d)),
                        not_run: false,
                    }),
                },
            }),
        CREDIT => serde_json::from_str::<CreditParams>(params)
            .map_err(malformed)
            .map(|p| Flow::Credit {
                id: p.id,
                items: p.items,
                bytes: p.bytes,
            }),
        _ => serde_json::from_str::<PingParams>(params)
            .map_err(malformed)
            .map(|p| Flow::Ping {
                nonce: p.nonce,
                pong: method == PONG,
            }),
    };
    Some(flow)
}

/// How many values an array holds, without keeping them.
fn count_items(items: &RawValue) -> Result<u32, serde_json::Error> {
    struct Count;
    impl<'de> serde::de::Visitor<'de> for Count {
        type Value = u32;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an array of items")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<u32, A::Error> {
            let mut n: u32 = 0;
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                n = n.saturating_add(1);
            }
            Ok(n)
        }
    }
    let mut de = serde_json::Deserializer::from_str(items.get());
    serde::Deserializer::deserialize_seq(&mut de, Count)
}

pub(super) fn begin_items(dst: &mut BytesMut, id: u64) {
    dst.put_slice(br#"{"jsonrpc":"2.0","method":"rpc.items","params":{"id":"#);
    put_u64(dst, id);
    dst.put_slice(br#","items":["#);
}

pub(super) fn encode_item(
    dst: &mut BytesMut,
    first: bool,
    item: &dyn erased_serde::Serialize,
) -> Result<(), Error> {
    encode_item_typed(dst, first, item)
}

/// [`encode_item`] of a known type.
pub(crate) fn encode_item_typed<T: serde::Serialize + ?Sized>(
    dst: &mut BytesMut,
    first: bool,
    item: &T,
) -> Result<(), Error> {
    atomically(dst, |dst| {
        if !first {
            dst.put_u8(b',');
        }
        crate::finite::to_writer(dst.writer(), item)
            .map_err(encode_error)?
            .result(item, "json")
    })
}

/// [`decode_item`] of a known type, in one pass.
pub(crate) fn decode_item_typed<T: serde::de::DeserializeOwned>(
    items: &[u8],
) -> Result<(T, usize), Error> {
    let mut at = items.iter().take_while(|b| b.is_ascii_whitespace()).count();
    if items.get(at) == Some(&b',') {
        at += 1;
    }
    let mut values = serde_json::Deserializer::from_slice(&items[at..]).into_iter::<T>();
    match values.next() {
        Some(Ok(value)) => Ok((value, at + values.byte_offset())),
        Some(Err(e)) => Err(Error::new(
            ErrorKind::Parse,
            format!(
                "a stream item did not decode: {}",
                crate::codec::cut(&e.to_string())
            ),
        )),
        None => Err(Error::new(ErrorKind::Parse, "a stream item is missing")),
    }
}

pub(super) fn finish_items(dst: &mut BytesMut) {
    dst.put_slice(b"]}}");
}

pub(super) fn encode_end(
    dst: &mut BytesMut,
    id: u64,
    end: Result<(), &Fault>,
) -> Result<(), Error> {
    atomically(dst, |dst| {
        dst.put_slice(br#"{"jsonrpc":"2.0","method":"rpc.end","params":{"id":"#);
        put_u64(dst, id);
        if let Err(fault) = end {
            write_error(dst, fault)?;
        }
        dst.put_slice(b"}}");
        Ok(())
    })
}

pub(super) fn encode_credit(dst: &mut BytesMut, id: u64, items: u64, bytes: u64) {
    let _ = write!(
        dst.writer(),
        r#"{{"jsonrpc":"2.0","method":"{CREDIT}","params":{{"id":{id},"items":{items},"bytes":{bytes}}}}}"#
    );
}

pub(super) fn encode_ping(dst: &mut BytesMut, nonce: u64, pong: bool) {
    let method = if pong { PONG } else { PING };
    let _ = write!(
        dst.writer(),
        r#"{{"jsonrpc":"2.0","method":"{method}","params":{{"nonce":{nonce}}}}}"#
    );
}

/// The first item of `items` (what follows an items message's `[`, or an
/// item's end): skips a comma before it, reads it, and returns the bytes
/// taken.
pub(super) fn decode_item(items: &[u8], visit: &mut Visit<'_>) -> Result<usize, Error> {
    let mut at = items.iter().take_while(|b| b.is_ascii_whitespace()).count();
    if items.get(at) == Some(&b',') {
        at += 1;
    }
    let mut values = serde_json::Deserializer::from_slice(&items[at..]).into_iter::<&RawValue>();
    let value = match values.next() {
        Some(Ok(value)) => value,
        Some(Err(e)) => {
            return Err(Error::new(
                ErrorKind::Parse,
                format!(
                    "a stream item is not JSON: {}",
                    crate::codec::cut(&e.to_string())
                ),
            ));
        }
        None => return Err(Error::new(ErrorKind::Parse, "a stream item is missing")),
    };
    let used = at + values.byte_offset();
    let mut de = serde_json::Deserializer::from_str(value.get());
    visit(&mut <dyn erased_serde::Deserializer<'_>>::erase(&mut de))?;
    Ok(used)
}

/// Whether a message with no id and this method is a control message of
/// the framework's (its `rpc.` namespace).
pub(super) fn is_control(method: &str) -> bool {
    method.starts_with("rpc.")
}
