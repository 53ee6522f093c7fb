//! Compact binary envelopes with bincode 2 (standard configuration: varint
//! integers, little endian).
//!
//! ```text
//! request   00 | id: varint | deadline_ms: varint (0 = none) | method: len+utf8 | args…
//! response  01 | id: varint | 00 | result…
//!           01 | id: varint | 01 | code: zigzag varint | message: len+utf8 | 00 or 01 | data…
//! ```
//!
//! The argument struct, the result and the error data follow their header in
//! the same buffer: nothing is encoded twice.
//!
//! ```text
//! cancel      02 | id: varint                  client → server (and, protocol 2, server → client)
//! going away  03 | reason: len+utf8            server → client
//! ```
//!
//! Protocol 2 (see the kind table in [`crate::codec`]):
//!
//! ```text
//! request with metadata        09 | id | deadline_ms | method | count: varint | (key: len+utf8 | 00 text: len+utf8 | 01 bytes: len+bytes)… | args…
//! response, a stream follows   01 | id | 02 | result (the stream's placeholder: nothing)
//! refusal, did not run         01 | id | 03 | code | message | 00 or 01 | data…   (an error, as status 01)
//! ping / pong   04 / 05 | nonce: varint
//! items         06 | id: varint | count: u32 little endian | item…
//! end           07 | id: varint | 00                                   finished
//!               07 | id: varint | 01 | code | message | 00 or 01 | data…   ended with an error
//! credit        08 | id: varint | items: varint | bytes: varint
//! ```
//!
//! The items' count has a fixed width so that a sender can write it after
//! the items it polled; a receiver learns it, and checks its credit,
//! without decoding them.

use std::time::Duration;

use bytes::BytesMut;
use serde::de::{DeserializeSeed, Deserializer};

use self::flow::decode_flow;
pub(super) use self::flow::decode_items;
use super::{
    Codec, Id, Inbound, Incoming, OutRequest, Request, Visit, atomically, deadline_ms, encode_error,
};
use crate::error::WireFault;
use crate::error::{Error, ErrorKind};
use crate::metadata::{MetaValue, Metadata, Read as MetaRead};
use crate::service::{Fault, Reply};

/// The bincode codec.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bincode;

/// The most any frame's length prefixes may claim in all.
const LIMIT: usize = 1 << 30;

type Config<const N: usize> = ::bincode::config::Configuration<
    ::bincode::config::LittleEndian,
    ::bincode::config::Varint,
    ::bincode::config::Limit<N>,
>;

const fn limited<const N: usize>() -> Config<N> {
    ::bincode::config::standard().with_limit::<N>()
}

/// The claims a valid input can make per byte: bincode claims a value's size
/// in memory (16 bytes for a `u128`) whatever its size on the wire (a varint
/// as small as one byte), and a string's or byte string's length.
const CLAIMS_PER_BYTE: usize = 16;

/// Runs `$body` with `$config` bound to a configuration whose limit is at
/// least [`CLAIMS_PER_BYTE`] times `$len` (and at most [`LIMIT`]), so a few
/// bytes cannot claim, and make bincode allocate, a long string they do not
/// hold. Each limit is a type, hence one branch per limit.
macro_rules! with_limit_for {
    ($len:expr, |$config:ident| $body:expr) => {{
        let claims = ($len).saturating_mul(CLAIMS_PER_BYTE);
        if claims <= 1 << 10 {
            let $config = limited::<{ 1 << 10 }>();
            $body
        } else if claims <= 1 << 14 {
            let $config = limited::<{ 1 << 14 }>();
            $body
        } else if claims <= 1 << 18 {
            let $config = limited::<{ 1 << 18 }>();
            $body
        } else if claims <= 1 << 22 {
            let $config = limited::<{ 1 << 22 }>();
            $body
        } else if claims <= 1 << 26 {
            let $config = limited::<{ 1 << 26 }>();
            $body
        } else {
            let $config = limited::<LIMIT>();
            $body
        }
    }};
}

// After `with_limit_for!`, which it uses.
mod flow;

/// kind, id, deadline_ms, method.
type RequestHead<'a> = (u8, u64, u64, &'a str);

const REQUEST: u8 = 0;
const RESPONSE: u8 = 1;
const CANCEL: u8 = 2;
const GOING_AWAY: u8 = 3;
const PING: u8 = 4;
const PONG: u8 = 5;
const ITEMS: u8 = 6;
const END: u8 = 7;
const CREDIT: u8 = 8;
const META_REQUEST: u8 = 9;
/// The kinds this side knows; larger ones are answered as unknown.
const LAST_KIND: u8 = META_REQUEST;
const META_TEXT: u8 = 0;
const META_BYTES: u8 = 1;
const OK: u8 = 0;
const ERR: u8 = 1;
const OK_STREAM: u8 = 2;
const ERR_NOT_RUN: u8 = 3;

fn put(dst: &mut BytesMut, value: impl serde::Serialize) -> Result<(), Error> {
    ::bincode::serde::encode_into_writer(value, Append(dst), limited::<LIMIT>())
        .map_err(encode_error)
}

/// Appends straight to the frame buffer: bincode writes each value in
/// small pieces, which `std::io::Write` would wrap in `io::Result`s.
struct Append<'a>(&'a mut BytesMut);

impl ::bincode::enc::write::Writer for Append<'_> {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> Result<(), ::bincode::error::EncodeError> {
        // A large `Bytes` goes by reference when the transport splices.
        if !crate::blob::splice_offered(self.0, bytes) {
            self.0.extend_from_slice(bytes);
        }
        Ok(())
    }
}

fn take<'a, T: serde::Deserialize<'a>>(
    bytes: &'a [u8],
) -> Result<(T, usize), ::bincode::error::DecodeError> {
    with_limit_for!(bytes.len(), |config| {
        ::bincode::serde::borrow_decode_from_slice(bytes, config)
    })
}

/// Bytes that bincode's serde writes as length and bytes (a `&[u8]` alone
/// would be a sequence, the same bytes but element by element).
fn serde_bytes(bytes: &[u8]) -> impl serde::Serialize + '_ {
    struct B<'a>(&'a [u8]);
    impl serde::Serialize for B<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }
    B(bytes)
}

/// The metadata at the front of `bytes` (after a request's head), and the
/// bytes it took: each entry checked against the limits before it is
/// copied.
fn read_metadata(bytes: &[u8]) -> Result<(Metadata, usize), Error> {
    let malformed = |e| {
        Error::new(
            ErrorKind::Parse,
            format!("a request's metadata is malformed: {e}"),
        )
    };
    let (count, mut at): (u64, _) = take(bytes).map_err(malformed)?;
    let mut metadata = Metadata::new();
    metadata.check_room(usize::try_from(count).unwrap_or(usize::MAX), 0)?;
    for _ in 0..count {
        let ((key, tag), n): ((&str, u8), _) = take(&bytes[at..]).map_err(malformed)?;
        at += n;
        let (value, n) = match tag {
            META_TEXT => take::<&str>(&bytes[at..]).map(|(t, n)| (MetaRead::Text(t), n)),
            META_BYTES => take::<&[u8]>(&bytes[at..]).map(|(b, n)| (MetaRead::Bytes(b), n)),
            other => {
                return Err(Error::new(
                    ErrorKind::Parse,
                    format!("a request's metadata value has the unknown tag {other}"),
                ));
            }
        }
        .map_err(malformed)?;
        at += n;
        metadata.push_read(key, value)?;
    }
    Ok((metadata, at))
}

/// Appends `value`, typed (a stream item).
pub(super) fn encode_typed<T: serde::Serialize + ?Sized>(
    dst: &mut BytesMut,
    value: &T,
) -> Result<(), Error> {
    atomically(dst, |dst| put(dst, value))
}

impl Codec for Bincode {
    fn name(&self) -> &'static str {
        "bincode"
    }

    fn builtin(&self) -> Option<super::Builtin> {
        Some(super::Builtin::Bincode)
    }

    fn encode_request(&self, dst: &mut BytesMut, r: &OutRequest<'_>) -> Result<(), Error> {
        atomically(dst, |dst| {
            let deadline = deadline_ms(r.deadline);
            match r.metadata.filter(|m| !m.is_empty()) {
                None => put(dst, (REQUEST, r.id, deadline, r.method))?,
                Some(meta) => {
                    put(dst, (META_REQUEST, r.id, deadline, r.method))?;
                    put(dst, meta.len() as u64)?;
                    for (key, value) in meta.iter() {
                        match value {
                            MetaValue::Text(text) => put(dst, (key, META_TEXT, text.as_str()))?,
                            MetaValue::Bytes(bytes) => {
                                put(dst, (key, META_BYTES, serde_bytes(bytes)))?;
                            }
                        }
                    }
                }
            }
            put(dst, r.args)
        })
    }

    fn decode_response(&self, frame: &[u8]) -> Result<Inbound, Error> {
        let malformed = |e| Error::new(ErrorKind::Parse, format!("a response is malformed: {e}"));
        match frame.first() {
            Some(&GOING_AWAY) => {
                let ((_, reason), _): ((u8, String), _) = take(frame).map_err(malformed)?;
                return Ok(Inbound::GoingAway { reason });
            }
            Some(&CANCEL) => {
                let ((_, id), _): ((u8, u64), _) = take(frame).map_err(malformed)?;
                return Ok(Inbound::Cancel { id });
            }
            Some(&(PING..=CREDIT)) => return decode_flow(frame).map(Inbound::Flow),
            Some(&kind) if kind > LAST_KIND => {
                return Ok(Inbound::Unknown {
                    kind: kind.to_string(),
                });
            }
            _ => {}
        }
        let ((kind, id, status), n): ((u8, u64, u8), _) = take(frame).map_err(malformed)?;
        if kind != RESPONSE {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!("unexpected message kind {kind} from the server"),
            ));
        }
        let outcome = match status {
            OK | OK_STREAM => Ok(n..frame.len()),
            ERR | ERR_NOT_RUN => {
                let ((code, message, has_data), m): ((i32, String, bool), _) =
                    take(&frame[n..]).map_err(malformed)?;
                let data = has_data.then_some(n + m..frame.len());
                Err(WireFault {
                    code,
                    message,
                    data,
                    not_run: status == ERR_NOT_RUN,
                })
            }
            other => {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    format!("unknown response status {other}"),
                ));
            }
        };
        Ok(Inbound::Response {
            id,
            outcome,
            stream: status == OK_STREAM,
        })
    }

    fn decode_request<'a>(&self, frame: &'a [u8]) -> Incoming<'a> {
        match frame.first() {
            Some(&(PING..=CREDIT)) => {
                return match decode_flow(frame) {
                    Ok(flow) => Incoming::Flow(flow),
                    Err(error) => Incoming::Invalid {
                        id: Id::Null,
                        error,
                    },
                };
            }
            Some(&kind) if kind > LAST_KIND => {
                // Every kind's second field is the id (or a nonce): answered under it.
                let id = take::<(u8, u64)>(frame).map_or(Id::Null, |((_, id), _)| Id::Num(id));
                return Incoming::Unknown {
                    kind: kind.to_string(),
                    id,
                };
            }
            _ => {}
        }
        if frame.first() == Some(&CANCEL) {
            return match take::<(u8, u64)>(frame) {
                Ok(((_, id), n)) if n == frame.len() => Incoming::Cancel(Id::Num(id)),
                _ => Incoming::Invalid {
                    id: Id::Null,
                    error: Error::new(ErrorKind::Parse, "a cancel message is malformed"),
                },
            };
        }
        match take::<RequestHead<'_>>(frame) {
            Ok(((REQUEST, id, deadline, method), n)) => Incoming::Request(Request {
                id: Some(Id::Num(id)),
                method: method.into(),
                deadline: (deadline > 0).then(|| Duration::from_millis(deadline)),
                params: &frame[n..],
                metadata: None,
            }),
            Ok(((META_REQUEST, id, deadline, method), n)) => match read_metadata(&frame[n..]) {
                Ok((metadata, m)) => Incoming::Request(Request {
                    id: Some(Id::Num(id)),
                    method: method.into(),
                    deadline: (deadline > 0).then(|| Duration::from_millis(deadline)),
                    params: &frame[n + m..],
                    metadata: Some(metadata),
                }),
                Err(error) => Incoming::Invalid {
                    id: Id::Num(id),
                    error,
                },
            },
            Ok(((kind, id, ..), _)) => Incoming::Invalid {
                id: Id::Num(id),
                error: Error::new(
                    ErrorKind::InvalidRequest,
                    format!("unexpected message kind {kind} from the client"),
                ),
            },
            Err(e) => Incoming::Invalid {
                id: Id::Null,
                error: Error::new(ErrorKind::Parse, format!("a request is malformed: {e}")),
            },
        }
    }

    fn encode_response(&self, dst: &mut BytesMut, id: &Id, reply: &Reply) -> Result<(), Error> {
        let id = match id {
            Id::Num(n) => *n,
            // bincode requests always carry numeric ids; an unreadable one is answered as 0.
            Id::Str(_) | Id::Null => 0,
        };
        atomically(dst, |dst| match reply {
            Ok(value) => {
                put(dst, (RESPONSE, id, OK))?;
                put(dst, value)
            }
            Err(fault) => {
                let has_data = fault.data.is_some();
                put(
                    dst,
                    (
                        RESPONSE,
                        id,
                        if fault.not_run { ERR_NOT_RUN } else { ERR },
                        fault.kind.code(),
                        &fault.message,
                        has_data,
                    ),
                )?;
                fault.data.as_ref().map_or(Ok(()), |data| put(dst, data))
            }
        })
    }

    fn encode_batch(&self, dst: &mut BytesMut, responses: &[BytesMut]) {
        // bincode has no batches; decode_request never yields one.
        debug_assert!(responses.is_empty(), "bincode has no batches");
        let _ = dst;
    }

    fn encode_cancel(&self, dst: &mut BytesMut, id: u64) {
        let _ = atomically(dst, |dst| put(dst, (CANCEL, id)));
    }

    fn encode_going_away(&self, dst: &mut BytesMut, reason: &str) {
        let _ = atomically(dst, |dst| put(dst, (GOING_AWAY, reason)));
    }

    fn decode_value(&self, bytes: &[u8], visit: &mut Visit<'_>) -> Result<(), Error> {
        let limit = crate::budget::for_message(bytes.len());
        match crate::budget::within(limit, || self.decode_item(bytes, visit))? {
            used if used == bytes.len() => Ok(()),
            used => Err(Error::new(
                ErrorKind::Parse,
                format!("{} bytes left over after a value", bytes.len() - used),
            )),
        }
    }

    fn mark_stream(&self, response: &mut BytesMut, start: usize) {
        // 01 | id (varint) | status: the status is the byte after the id.
        if let Ok(((RESPONSE, _), n)) = take::<(u8, u64)>(&response[start..]) {
            if response.get(start + n) == Some(&OK) {
                response[start + n] = OK_STREAM;
            }
        }
    }

    fn begin_items(&self, dst: &mut BytesMut, id: u64) {
        let _ = put(dst, (ITEMS, id));
        dst.extend_from_slice(&[0; 4]);
    }

    fn encode_item(
        &self,
        dst: &mut BytesMut,
        _first: bool,
        item: &dyn erased_serde::Serialize,
    ) -> Result<(), Error> {
        atomically(dst, |dst| put(dst, item))
    }

    fn finish_items(&self, dst: &mut BytesMut, start: usize, count: u32) {
        if let Ok((_, n)) = take::<(u8, u64)>(&dst[start..]) {
            dst[start + n..start + n + 4].copy_from_slice(&count.to_le_bytes());
        }
    }

    fn encode_end(
        &self,
        dst: &mut BytesMut,
        id: u64,
        end: Result<(), &Fault>,
    ) -> Result<(), Error> {
        atomically(dst, |dst| match end {
            Ok(()) => put(dst, (END, id, OK)),
            Err(fault) => {
                let has_data = fault.data.is_some();
                let head = (END, id, ERR, fault.kind.code(), &fault.message, has_data);
                put(dst, head)?;
                fault.data.as_ref().map_or(Ok(()), |data| put(dst, data))
            }
        })
    }

    fn encode_credit(&self, dst: &mut BytesMut, id: u64, items: u64, bytes: u64) {
        let _ = atomically(dst, |dst| put(dst, (CREDIT, id, items, bytes)));
    }

    fn encode_ping(&self, dst: &mut BytesMut, nonce: u64, pong: bool) {
        let kind = if pong { PONG } else { PING };
        let _ = atomically(dst, |dst| put(dst, (kind, nonce)));
    }

    fn decode_item(&self, items: &[u8], visit: &mut Visit<'_>) -> Result<usize, Error> {
        let decoded = with_limit_for!(items.len(), |config| {
            ::bincode::serde::seed_decode_from_slice(Seed(visit), items, config)
        });
        let (result, used) = decoded
            .map_err(|e| Error::new(ErrorKind::Parse, format!("a value is malformed: {e}")))?;
        result?;
        Ok(used)
    }
}

/// Hands bincode's deserializer to a visitor, through erased-serde.
struct Seed<'v, 'f>(&'v mut Visit<'f>);

impl<'de> DeserializeSeed<'de> for Seed<'_, '_> {
    type Value = Result<(), Error>;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        Ok((self.0)(&mut <dyn erased_serde::Deserializer<'_>>::erase(
            de,
        )))
    }
}
