//! JSON-RPC 2.0 envelopes: every frame is a readable JSON-RPC object (or a
//! batch array), with arguments and results inline.
//!
//! ```text
//! → {"jsonrpc":"2.0","id":1,"method":"Calculator.add","params":[2,3],"deadline_ms":30000}
//! ← {"jsonrpc":"2.0","id":1,"result":5}
//! ← {"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"…","data":{"DivideByZero":null}}}
//! ```
//!
//! `params` may be an array (by position) or an object (by name); a missing
//! `params` means no arguments. `deadline_ms` is this framework's extension
//! (the caller's remaining time); other JSON-RPC peers may leave it out.
//!
//! A batch is counted while it is scanned: with
//! [`Codec::decode_request_within`], the member past `max_batch` ends the
//! scan and the whole batch is refused (`InvalidRequest`, naming
//! `max_batch`) before any member is decoded, so a frame of millions of
//! junk members costs no more than one of `max_batch + 1`. Error messages
//! quote at most 200 bytes of what a peer sent.
//!
//! The control messages are notifications in JSON-RPC's reserved `rpc.`
//! namespace:
//!
//! ```text
//! → {"jsonrpc":"2.0","method":"rpc.cancel","params":[1]}
//! ← {"jsonrpc":"2.0","method":"rpc.goingAway","params":{"reason":"the server is shutting down"}}
//! ```

mod flow;
mod meta;
mod request;

use std::borrow::Cow;
use std::io::Write;
use std::ops::Range;

use bytes::{BufMut, BytesMut};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{
    Codec, Id, Inbound, Incoming, OutRequest, Visit, atomically, deadline_ms, encode_error,
};
use crate::error::WireFault;
use crate::error::{Error, ErrorKind};
use crate::service::{Fault, Reply};

use self::request::{
    decode_batch, decode_one, leading_u64, leading_value, parse_id, present, span,
};

/// The JSON-RPC 2.0 codec.
#[derive(Clone, Copy, Debug, Default)]
pub struct Json;

#[derive(Deserialize)]
struct JsonResponse<'a> {
    /// Only in a notification from the server (going away, stream messages).
    #[serde(default, borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    params: Option<&'a RawValue>,
    /// The result opens a stream (protocol 2).
    #[serde(default)]
    stream: bool,
    #[serde(default, borrow, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    result: Option<&'a RawValue>,
    #[serde(default, borrow)]
    error: Option<JsonError<'a>>,
}

#[derive(Deserialize)]
struct GoingAway {
    reason: String,
}

const CANCEL: &str = "rpc.cancel";
const GOING_AWAY: &str = "rpc.goingAway";

#[derive(Deserialize)]
struct JsonError<'a> {
    code: i32,
    message: String,
    #[serde(default, borrow, deserialize_with = "present")]
    data: Option<&'a RawValue>,
    /// The did-not-run mark (protocol 2).
    #[serde(default)]
    not_run: bool,
}

/// Only the id, to answer a request that is otherwise malformed.
pub(super) use self::flow::{decode_item_typed, encode_item_typed};

impl Codec for Json {
    fn name(&self) -> &'static str {
        "json"
    }

    fn builtin(&self) -> Option<super::Builtin> {
        Some(super::Builtin::Json)
    }

    fn encode_request(&self, dst: &mut BytesMut, r: &OutRequest<'_>) -> Result<(), Error> {
        atomically(dst, |dst| {
            dst.put_slice(br#"{"jsonrpc":"2.0","id":"#);
            put_u64(dst, r.id);
            dst.put_slice(br#","method":"#);
            serde_json::to_writer(dst.writer(), r.method).map_err(encode_error)?;
            dst.put_slice(br#","params":"#);
            crate::finite::to_writer(dst.writer(), r.args)
                .map_err(encode_error)?
                .arguments(r.args, self.name())?;
            if r.deadline.is_some() {
                dst.put_slice(br#","deadline_ms":"#);
                put_u64(dst, deadline_ms(r.deadline));
            }
            if let Some(metadata) = r.metadata.filter(|m| !m.is_empty()) {
                dst.put_slice(br#","meta":"#);
                meta::write(dst, metadata)?;
            }
            dst.put_u8(b'}');
            Ok(())
        })
    }

    fn decode_response(&self, frame: &[u8]) -> Result<Inbound, Error> {
        if let Some((id, result)) = canonical_response(frame) {
            return Ok(Inbound::Response {
                id,
                outcome: Ok(result),
                stream: false,
            });
        }
        let r: JsonResponse<'_> = serde_json::from_slice(frame).map_err(|e| {
            Error::new(
                ErrorKind::Parse,
                format!("a response is not valid JSON-RPC: {e}"),
            )
        })?;
        if let (None, Some(method)) = (r.id, r.method.as_deref()) {
            return notification(method, r.params, frame);
        }
        let id = match r.id.map(parse_id) {
            Some(Ok(Id::Num(id))) => id,
            _ => {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    "a response has no numeric id",
                ));
            }
        };
        let outcome = match (r.result, r.error) {
            (Some(result), None) => Ok(span(frame, result)),
            (None, Some(e)) => Err(WireFault {
                code: e.code,
                message: e.message,
                data: e.data.map(|d| span(frame, d)),
                not_run: e.not_run,
            }),
            _ => {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    "a response needs exactly one of `result` and `error`",
                ));
            }
        };
        Ok(Inbound::Response {
            id,
            outcome,
            stream: r.stream,
        })
    }

    fn decode_request<'a>(&self, frame: &'a [u8]) -> Incoming<'a> {
        self.decode_request_within(frame, usize::MAX)
    }

    fn decode_request_within<'a>(&self, frame: &'a [u8], max_batch: usize) -> Incoming<'a> {
        match frame.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'[') => decode_batch(frame, max_batch),
            _ => decode_one(frame),
        }
    }

    fn encode_response(&self, dst: &mut BytesMut, id: &Id, reply: &Reply) -> Result<(), Error> {
        atomically(dst, |dst| {
            dst.put_slice(br#"{"jsonrpc":"2.0","id":"#);
            write_id(dst, id)?;
            match reply {
                Ok(value) => {
                    dst.put_slice(br#","result":"#);
                    crate::finite::to_writer(dst.writer(), value)
                        .map_err(encode_error)?
                        .result(value, self.name())?;
                }
                Err(fault) => write_error(dst, fault)?,
            }
            dst.put_u8(b'}');
            Ok(())
        })
    }

    fn encode_batch(&self, dst: &mut BytesMut, responses: &[BytesMut]) {
        dst.put_u8(b'[');
        for (i, r) in responses.iter().enumerate() {
            if i > 0 {
                dst.put_u8(b',');
            }
            dst.put_slice(r);
        }
        dst.put_u8(b']');
    }

    fn encode_cancel(&self, dst: &mut BytesMut, id: u64) {
        let _ = write!(
            dst.writer(),
            r#"{{"jsonrpc":"2.0","method":"{CANCEL}","params":[{id}]}}"#
        );
    }

    fn encode_going_away(&self, dst: &mut BytesMut, reason: &str) {
        let _ = atomically(dst, |dst| {
            write!(
                dst.writer(),
                r#"{{"jsonrpc":"2.0","method":"{GOING_AWAY}","params":{{"reason":"#
            )
            .map_err(encode_error)?;
            serde_json::to_writer(dst.writer(), reason).map_err(encode_error)?;
            dst.put_slice(b"}}");
            Ok(())
        });
    }

    fn mark_stream(&self, response: &mut BytesMut, start: usize) {
        if response.len() > start && response.last() == Some(&b'}') {
            response.truncate(response.len() - 1);
            response.put_slice(br#","stream":true}"#);
        }
    }

    fn begin_items(&self, dst: &mut BytesMut, id: u64) {
        flow::begin_items(dst, id);
    }

    fn encode_item(
        &self,
        dst: &mut BytesMut,
        first: bool,
        item: &dyn erased_serde::Serialize,
    ) -> Result<(), Error> {
        flow::encode_item(dst, first, item)
    }

    fn item_separator(&self) -> &'static [u8] {
        b","
    }

    fn finish_items(&self, dst: &mut BytesMut, _start: usize, _count: u32) {
        flow::finish_items(dst);
    }

    fn encode_end(
        &self,
        dst: &mut BytesMut,
        id: u64,
        end: Result<(), &Fault>,
    ) -> Result<(), Error> {
        flow::encode_end(dst, id, end)
    }

    fn encode_credit(&self, dst: &mut BytesMut, id: u64, items: u64, bytes: u64) {
        flow::encode_credit(dst, id, items, bytes);
    }

    fn encode_ping(&self, dst: &mut BytesMut, nonce: u64, pong: bool) {
        flow::encode_ping(dst, nonce, pong);
    }

    fn decode_item(&self, items: &[u8], visit: &mut Visit<'_>) -> Result<usize, Error> {
        flow::decode_item(items, visit)
    }

    fn decode_value(&self, bytes: &[u8], visit: &mut Visit<'_>) -> Result<(), Error> {
        crate::budget::within(crate::budget::for_message(bytes.len()), || {
            let mut de = serde_json::Deserializer::from_slice(bytes);
            visit(&mut <dyn erased_serde::Deserializer<'_>>::erase(&mut de))?;
            de.end().map_err(|e| {
                Error::new(
                    ErrorKind::Parse,
                    format!("trailing characters after a value: {e}"),
                )
            })
        })
    }
}

/// A notification from the server: going away, a cancel of the stream
/// the client sends, a stream message, or one of a kind this side does
/// not know.
fn notification(method: &str, params: Option<&RawValue>, frame: &[u8]) -> Result<Inbound, Error> {
    let malformed = |e: serde_json::Error| {
        Error::new(
            ErrorKind::Protocol,
            format!("`{method}` from the server is malformed: {e}"),
        )
    };
    let text = params.map_or("null", RawValue::get);
    match method {
        GOING_AWAY => {
            let GoingAway { reason } = serde_json::from_str(text).map_err(malformed)?;
            Ok(Inbound::GoingAway { reason })
        }
        CANCEL => {
            let (id,): (u64,) = serde_json::from_str(text).map_err(malformed)?;
            Ok(Inbound::Cancel { id })
        }
        _ => match flow::decode(method, params, frame) {
            Some(flow) => flow.map(Inbound::Flow),
            None => Ok(Inbound::Unknown {
                kind: method.to_owned(),
            }),
        },
    }
}

/// A result exactly as this crate's servers write it,
/// `{"jsonrpc":"2.0","id":N,"result":R}`: the id and where `R` lies.
/// `None` for anything else (errors, notices, other servers' layouts).
fn canonical_response(frame: &[u8]) -> Option<(u64, Range<usize>)> {
    let rest = frame.strip_prefix(br#"{"jsonrpc":"2.0","id":"#)?;
    let (id, rest) = leading_u64(rest)?;
    let rest = rest.strip_prefix(br#","result":"#)?;
    match leading_value(rest)? {
        (result, b"}") => Some((id, span(frame, result))),
        _ => None,
    }
}

/// Appends `,"error":{…}`: the fault as a JSON-RPC error object.
fn write_error(dst: &mut BytesMut, fault: &Fault) -> Result<(), Error> {
    write!(
        dst.writer(),
        r#","error":{{"code":{},"message":"#,
        fault.kind.code()
    )
    .map_err(encode_error)?;
    serde_json::to_writer(dst.writer(), &fault.message).map_err(encode_error)?;
    if let Some(data) = &fault.data {
        dst.put_slice(br#","data":"#);
        serde_json::to_writer(dst.writer(), data).map_err(encode_error)?;
    }
    if fault.not_run {
        dst.put_slice(br#","not_run":true"#);
    }
    dst.put_u8(b'}');
    Ok(())
}

/// Appends `n` in decimal, without going through `fmt`.
fn put_u64(dst: &mut BytesMut, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    dst.put_slice(&digits[at..]);
}

fn write_id(dst: &mut BytesMut, id: &Id) -> Result<(), Error> {
    match id {
        Id::Num(n) => {
            put_u64(dst, *n);
            Ok(())
        }
        Id::Str(s) => serde_json::to_writer(dst.writer(), s).map_err(encode_error),
        Id::Null => {
            dst.put_slice(b"null");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::request::{canonical_request, decode_any};
    use super::*;

    /// Frames near the canonical shape: the fast paths must read each
    /// exactly as the general parser does, or leave it to it.
    fn near_canonical() -> Vec<String> {
        let mut frames = Vec::new();
        let ids = [
            "0",
            "7",
            "18446744073709551615",
            "18446744073709551616",
            "007",
            "-1",
            "1.5",
            "1e3",
            "\"s\"",
            "null",
        ];
        let methods = [
            "Bench.add",
            "",
            "ünï.cødé",
            "a\\\"b",
            "a\\u0041",
            "rpc.cancel",
            "a\u{1}b",
        ];
        let params = [
            "[5,3]",
            "[]",
            "{\"x\":1}",
            "[\"]}\"]",
            "[1,[2,{\"a\":[]}]]",
            "[",
            "[1,]",
            "null",
            " [1]",
            "[1] ",
        ];
        let tails = [
            "}",
            ",\"deadline_ms\":60000}",
            ",\"deadline_ms\":0}",
            ",\"deadline_ms\":01}",
            ",\"deadline_ms\":5}x",
            ",\"deadline_ms\":5,\"method\":\"b\"}",
            "",
            ",\"deadline_ms\":-5}",
        ];
        for id in ids {
            for method in methods {
                for p in params {
                    for tail in tails {
                        frames.push(format!(
                            r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{p}{tail}"#
                        ));
                    }
                }
            }
        }
        frames.push(r#"{"jsonrpc":"1.0","id":1,"method":"a","params":[]}"#.into());
        frames.push(r#"{"jsonrpc":"2.0","id":1,"params":[],"method":"a"}"#.into());
        frames
    }

    #[test]
    fn the_canonical_request_path_reads_what_the_general_parser_reads() {
        let mut fast = 0;
        for frame in near_canonical() {
            let general = format!("{:?}", decode_any(frame.as_bytes()));
            if let Some(request) = canonical_request(frame.as_bytes()) {
                fast += 1;
                let read = format!("{:?}", Incoming::Request(request));
                assert_eq!(read, general, "{frame}");
            }
            assert_eq!(
                format!("{:?}", decode_one(frame.as_bytes())),
                general,
                "{frame}"
            );
        }
        assert!(fast > 100, "the fast path took only {fast} frames");
    }

    #[test]
    fn the_canonical_response_path_reads_what_the_general_parser_reads() {
        let results = [
            "5",
            "-1",
            "\"ok\"",
            "{\"a\":[1,2]}",
            "[\"}\"]",
            "null",
            "",
            "[",
            "1 ",
            "1}x",
            "1,\"extra\":2",
        ];
        let ids = ["0", "42", "18446744073709551616", "01", "\"s\""];
        let mut fast = 0;
        for id in ids {
            for result in results {
                let frame = format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#);
                let general = Json
                    .decode_response(frame.as_bytes())
                    .map(|inbound| format!("{inbound:?}"));
                let Some((id, range)) = canonical_response(frame.as_bytes()) else {
                    continue;
                };
                fast += 1;
                let read = format!(
                    "{:?}",
                    Inbound::Response {
                        id,
                        outcome: Ok(range),
                        stream: false,
                    }
                );
                assert_eq!(Ok(read), general.map_err(|e| e.to_string()), "{frame}");
            }
        }
        assert!(fast >= 10, "the fast path took only {fast} frames");
    }

    fn refusal(incoming: Incoming<'_>) -> (Id, ErrorKind, String) {
        match incoming {
            Incoming::Invalid { id, error } => (id, error.kind(), error.message().to_owned()),
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn a_batch_past_max_batch_is_refused_before_the_rest_is_read() {
        // 1025 members, then bytes that are not JSON: had the scan gone on,
        // this would be a parse error.
        let frame = format!("[{}not json", "0,".repeat(1025));
        let (id, kind, message) = refusal(Json.decode_request_within(frame.as_bytes(), 1024));
        assert_eq!(id, Id::Null);
        assert_eq!(kind, ErrorKind::InvalidRequest);
        assert_eq!(
            message,
            "a batch of more than 1024 calls exceeds the limit of 1024 (max_batch)"
        );
    }

    #[test]
    fn a_batch_of_exactly_max_batch_is_read() {
        let frame = format!("[{}0]", "0,".repeat(3));
        match Json.decode_request_within(frame.as_bytes(), 4) {
            Incoming::Batch(items) => assert_eq!(items.len(), 4),
            other => panic!("{other:?}"),
        }
        let (.., message) = refusal(Json.decode_request_within(frame.as_bytes(), 3));
        assert!(
            message.starts_with("a batch of more than 3 calls"),
            "{message}"
        );
        let (.., message) = refusal(Json.decode_request_within(b"[0,0] x", 4));
        assert!(
            message.starts_with("the request is not valid JSON"),
            "{message}"
        );
    }

    #[test]
    fn a_junk_members_error_quotes_little_of_it() {
        let long = "x".repeat(100_000);
        let frame = format!(r#"[{{"jsonrpc":"2.0","id":{{"a":"{long}"}},"method":"m"}},"{long}"]"#);
        let Incoming::Batch(items) = Json.decode_request_within(frame.as_bytes(), 1024) else {
            panic!("not a batch")
        };
        for item in items {
            let (.., message) = refusal(item);
            assert!(
                message.len() < 400,
                "{} bytes: {message:.300}",
                message.len()
            );
            assert!(message.contains("(100"), "says how long: {message:.300}");
        }
    }

    #[test]
    fn every_float_reads_back_as_the_float_written() {
        // Found by the property tests: serde_json's fast float parser is off
        // by one ulp for these.
        for x in [
            -1.345_227_153_120_771_4e290_f64,
            -3.807_097_922_865_544e183,
            -2.219_521_293_405_768_3e164,
        ] {
            let mut buf = BytesMut::new();
            Json.encode_response(&mut buf, &Id::Num(1), &Ok(Box::new(x)))
                .unwrap();
            let Inbound::Response { outcome, .. } = Json.decode_response(&buf).unwrap() else {
                panic!("not a response")
            };
            let back: f64 = super::super::decode(&Json, &buf[outcome.unwrap()]).unwrap();
            assert_eq!(back.to_bits(), x.to_bits(), "{x:e} read back as {back:e}");
        }
    }
}
