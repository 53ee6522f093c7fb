//! Asking a value for its bytes: how [`super::json_text`] learns a
//! [`Bytes`](super::Bytes) payload's bytes from the newtype struct it
//! serializes as, whatever stands between (erased_serde, a wrapper).
//!
//! The value is serialized with [`Ask`], a serializer that is not
//! human-readable and takes bytes only: a payload then gives its bytes
//! (and, through [`hand_over`], its own `Bytes`, so they need not be
//! copied); anything else stops it.

use std::cell::Cell;
use std::fmt;

use serde::Serialize;
use serde::ser::{self, Impossible, Serializer};

thread_local! {
    /// While [`bytes_of`] runs: a payload's own `Bytes`, handed over with
    /// its bytes.
    static HANDED: Cell<Option<bytes::Bytes>> = const { Cell::new(None) };

    /// Whether [`bytes_of`] is running.
    static ASKING: Cell<bool> = const { Cell::new(false) };
}

/// Called by a payload being serialized by a serializer that is not
/// human-readable: hands its `Bytes` over if [`bytes_of`] is asking.
pub(super) fn hand_over(payload: &bytes::Bytes) {
    if ASKING.get() {
        HANDED.set(Some(payload.clone()));
    }
}

/// Whether nothing is being asked and nothing was left handed over.
#[cfg(test)]
pub(super) fn idle() -> bool {
    HANDED.take().is_none() && !ASKING.get()
}

/// Serializes `value`, a newtype struct's inside, the way a payload is
/// serialized by a serializer that is not human-readable: its bytes, when
/// it gives only bytes.
pub(super) fn bytes_of<T: Serialize + ?Sized>(value: &T) -> Option<bytes::Bytes> {
    struct Done(bool);
    impl Drop for Done {
        fn drop(&mut self) {
            ASKING.set(self.0);
            HANDED.set(None);
        }
    }
    let _done = Done(ASKING.replace(true));
    value.serialize(Ask).ok()
}

/// What [`bytes_of`] serializes a payload with: bytes are all it takes.
struct Ask;

/// Why [`Ask`] stopped: the value was not bare bytes.
#[derive(Debug)]
struct NotBytes;

impl fmt::Display for NotBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not bytes")
    }
}

impl std::error::Error for NotBytes {}

impl ser::Error for NotBytes {
    fn custom<T: fmt::Display>(_: T) -> Self {
        NotBytes
    }
}

macro_rules! not_bytes {
    ($($method:ident($($ty:ty),*)),* $(,)?) => {
        $(fn $method(self, $(_: $ty),*) -> Result<bytes::Bytes, NotBytes> { Err(NotBytes) })*
    };
}

impl Serializer for Ask {
    type Ok = bytes::Bytes;
    type Error = NotBytes;
    type SerializeSeq = Impossible<bytes::Bytes, NotBytes>;
    type SerializeTuple = Impossible<bytes::Bytes, NotBytes>;
    type SerializeTupleStruct = Impossible<bytes::Bytes, NotBytes>;
    type SerializeTupleVariant = Impossible<bytes::Bytes, NotBytes>;
    type SerializeMap = Impossible<bytes::Bytes, NotBytes>;
    type SerializeStruct = Impossible<bytes::Bytes, NotBytes>;
    type SerializeStructVariant = Impossible<bytes::Bytes, NotBytes>;

    /// The payload's own `Bytes` when it handed them over (see
    /// [`hand_over`]), a copy of any other bytes.
    fn serialize_bytes(self, v: &[u8]) -> Result<bytes::Bytes, NotBytes> {
        Ok(match HANDED.take() {
            Some(own) if own.as_ptr() == v.as_ptr() && own.len() == v.len() => own,
            _ => bytes::Bytes::copy_from_slice(v),
        })
    }

    not_bytes!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_str(&str),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str),
        serialize_unit_variant(&'static str, u32, &'static str),
    );

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<bytes::Bytes, NotBytes> {
        Err(NotBytes)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<bytes::Bytes, NotBytes> {
        Err(NotBytes)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<bytes::Bytes, NotBytes> {
        Err(NotBytes)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotBytes> {
        Err(NotBytes)
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotBytes> {
        Err(NotBytes)
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, NotBytes> {
        Err(NotBytes)
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, NotBytes> {
        Err(NotBytes)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotBytes> {
        Err(NotBytes)
    }

    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, NotBytes> {
        Err(NotBytes)
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, NotBytes> {
        Err(NotBytes)
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}
