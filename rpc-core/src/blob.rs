//! [`Bytes`]: a byte payload that crosses the wire without being copied or
//! encoded element by element.
//!
//! | codec | on the wire | decoding |
//! |---|---|---|
//! | bincode | length + the raw bytes | a slice of the received frame: no copy |
//! | JSON | a base64 string (standard alphabet, padded) | decoded from base64 |
//!
//! serde alone writes a `Vec<u8>` as an array of numbers, one element at a
//! time (and `#[serde(with = …)]` is not allowed on a method's parameters),
//! so use `Bytes` for bulk data in a service's arguments and results.
//!
//! A `Bytes` decoded with bincode shares the frame it came in: keeping a
//! small one alive keeps its whole frame in memory. Copy it
//! (`Bytes::copy_from_slice`) to keep a little of a large frame.

use std::cell::RefCell;
use std::fmt;
use std::ops::Deref;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

thread_local! {
    /// The frame being decoded on this thread, which borrowed byte slices
    /// may be sliced from.
    static FRAME: RefCell<Option<bytes::Bytes>> = const { RefCell::new(None) };
}

/// A cheaply cloneable byte buffer for arguments and results.
///
/// ```
/// let payload = rpc_core::Bytes::from(vec![1u8, 2, 3]);
/// assert_eq!(&payload[..], &[1, 2, 3]);
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bytes(pub bytes::Bytes);

impl Bytes {
    /// A copy of `data`.
    pub fn copy_from_slice(data: &[u8]) -> Bytes {
        Bytes(bytes::Bytes::copy_from_slice(data))
    }

    /// The inner `bytes::Bytes`.
    pub fn into_inner(self) -> bytes::Bytes {
        self.0
    }
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl<T: Into<bytes::Bytes>> From<T> for Bytes {
    fn from(b: T) -> Bytes {
        Bytes(b.into())
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({} bytes)", self.0.len())
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&STANDARD.encode(&self.0))
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        if d.is_human_readable() {
            d.deserialize_str(BytesVisitor)
        } else {
            d.deserialize_bytes(BytesVisitor)
        }
    }
}

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Bytes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bytes, or a base64 string")
    }

    fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Bytes, E> {
        Ok(slice_of_frame(v).unwrap_or_else(|| Bytes::copy_from_slice(v)))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
        Ok(Bytes::copy_from_slice(v))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
        Ok(Bytes::from(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Bytes, E> {
        STANDARD
            .decode(v)
            .map(Bytes::from)
            .map_err(|e| E::custom(format_args!("invalid base64 bytes: {e}")))
    }
}

/// `v` as a slice of the frame being decoded, when it lies inside it.
fn slice_of_frame(v: &[u8]) -> Option<Bytes> {
    FRAME.with(|frame| {
        let frame = frame.borrow();
        let frame = frame.as_ref()?;
        let (start, end) = (
            frame.as_ptr() as usize,
            frame.as_ptr() as usize + frame.len(),
        );
        let (v_start, v_end) = (v.as_ptr() as usize, v.as_ptr() as usize + v.len());
        (start <= v_start && v_end <= end)
            .then(|| Bytes(frame.slice(v_start - start..v_end - start)))
    })
}

/// Runs `decode` with `frame` as the buffer that decoded [`Bytes`] may
/// share: a transport wraps the decoding of values read from `frame` in it.
pub fn decoding_from<R>(frame: &bytes::Bytes, decode: impl FnOnce() -> R) -> R {
    struct Reset(Option<bytes::Bytes>);
    impl Drop for Reset {
        fn drop(&mut self) {
            FRAME.with(|f| *f.borrow_mut() = self.0.take());
        }
    }
    let outer = FRAME.with(|f| f.borrow_mut().replace(frame.clone()));
    let _reset = Reset(outer);
    decode()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{self, Bincode, Codec, Json};

    fn encoded(codec: &dyn crate::Codec, b: &Bytes) -> bytes::Bytes {
        let mut buf = bytes::BytesMut::new();
        let reply: crate::service::Reply = Ok(Box::new(b.clone()));
        codec
            .encode_response(&mut buf, &codec::Id::Num(7), &reply)
            .unwrap();
        buf.freeze()
    }

    #[test]
    fn bincode_bytes_are_sliced_from_the_frame() {
        let payload = Bytes::from(vec![0x5a; 4096]);
        let frame = encoded(&Bincode, &payload);
        let codec::Inbound::Response { outcome, .. } = Bincode.decode_response(&frame).unwrap()
        else {
            panic!("not a response")
        };
        let back: Bytes =
            decoding_from(&frame, || codec::decode(&Bincode, &frame[outcome.unwrap()])).unwrap();
        assert_eq!(back, payload);
        let inside = frame.as_ptr() as usize..frame.as_ptr() as usize + frame.len();
        assert!(
            inside.contains(&(back.as_ptr() as usize)),
            "not a slice of the frame"
        );
    }

    #[test]
    fn json_bytes_are_base64() {
        let frame = encoded(&Json, &Bytes::from(&b"hi!"[..]));
        assert_eq!(&frame[..], br#"{"jsonrpc":"2.0","id":7,"result":"aGkh"}"#);
        let back: Bytes = codec::decode(&Json, br#""aGkh""#).unwrap();
        assert_eq!(&back[..], b"hi!");
    }

    #[test]
    fn invalid_base64_is_an_error() {
        let e = codec::decode::<Bytes>(&Json, br#""@@""#).unwrap_err();
        assert!(e.message().contains("invalid base64"), "{e}");
    }
}
