//! Stream messages in bincode (protocol 2): reading a ping, pong, items,
//! end or credit message, and a message's items read as one tuple.

use serde::de::{DeserializeSeed, Deserializer};

// `with_limit_for!` names `CLAIMS_PER_BYTE`, `LIMIT` and `limited`.
use super::{CLAIMS_PER_BYTE, CREDIT, END, ERR, ITEMS, LIMIT, OK, PING, PONG, limited, take};
use crate::codec::Flow;
use crate::error::WireFault;
use crate::error::{Error, ErrorKind};

/// Reads a ping, pong, items, end or credit message.
pub(super) fn decode_flow(frame: &[u8]) -> Result<Flow, Error> {
    let malformed = |what: &str, e: &dyn std::fmt::Display| {
        Error::new(
            ErrorKind::Parse,
            format!("a stream {what} message is malformed: {e}"),
        )
    };
    let exact = |what: &str, n: usize| match n == frame.len() {
        true => Ok(()),
        false => Err(malformed(what, &"bytes are left over")),
    };
    match frame.first() {
        Some(&kind) if kind == PING || kind == PONG => {
            let ((_, nonce), n): ((u8, u64), _) = take(frame).map_err(|e| malformed("ping", &e))?;
            exact("ping", n)?;
            Ok(Flow::Ping {
                nonce,
                pong: kind == PONG,
            })
        }
        Some(&ITEMS) => {
            let ((_, id), n): ((u8, u64), _) = take(frame).map_err(|e| malformed("items", &e))?;
            let count = frame
                .get(n..n + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
                .ok_or_else(|| malformed("items", &"it ends before its count"))?;
            Ok(Flow::Items {
                id,
                count,
                items: n + 4..frame.len(),
            })
        }
        Some(&END) => {
            let ((_, id, status), n): ((u8, u64, u8), _) =
                take(frame).map_err(|e| malformed("end", &e))?;
            let outcome = match status {
                OK => {
                    exact("end", n)?;
                    Ok(())
                }
                ERR => {
                    let ((code, message, has_data), m): ((i32, String, bool), _) =
                        take(&frame[n..]).map_err(|e| malformed("end", &e))?;
                    let data = has_data.then_some(n + m..frame.len());
                    Err(WireFault {
                        code,
                        message,
                        data,
                        not_run: false,
                    })
                }
                other => return Err(malformed("end", &format!("unknown status {other}"))),
            };
            Ok(Flow::End { id, outcome })
        }
        Some(&CREDIT) => {
            let ((_, id, items, bytes), n): ((u8, u64, u64, u64), _) =
                take(frame).map_err(|e| malformed("credit", &e))?;
            exact("credit", n)?;
            Ok(Flow::Credit { id, items, bytes })
        }
        _ => Err(malformed("control", &"unknown kind")),
    }
}

/// Decodes `count` values of type `T` from the front of `bytes` into
/// `out` (a stream-items message's items: a tuple, with no length
/// prefix), with one decoder for them all; returns the bytes they took.
pub(in crate::codec) fn decode_items<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    count: u32,
    out: &mut std::collections::VecDeque<T>,
) -> Result<usize, Error> {
    let seed = Items { count, out };
    let decoded = with_limit_for!(bytes.len(), |config| {
        ::bincode::serde::seed_decode_from_slice(seed, bytes, config)
    });
    let ((), used) =
        decoded.map_err(|e| Error::new(ErrorKind::Parse, format!("a value is malformed: {e}")))?;
    Ok(used)
}

/// `count` values of type `T`, read as a tuple into `out`.
struct Items<'o, T> {
    count: u32,
    out: &'o mut std::collections::VecDeque<T>,
}

impl<'de, T: serde::de::DeserializeOwned> DeserializeSeed<'de> for Items<'_, T> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_tuple(self.count as usize, self)
    }
}

impl<'de, T: serde::de::DeserializeOwned> serde::de::Visitor<'de> for Items<'_, T> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} stream items", self.count)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.out.reserve(self.count as usize);
        for i in 0..self.count {
            match seq.next_element::<T>()? {
                Some(item) => self.out.push_back(item),
                None => return Err(serde::de::Error::invalid_length(i as usize, &self)),
            }
        }
        Ok(())
    }
}
