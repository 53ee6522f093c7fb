//! The walk behind [`find`](super::find): a [`serde::Serializer`] that
//! writes nothing and stops at the first non-finite float, recording its
//! place as it unwinds.

use std::fmt;

use serde::ser::{self, Serialize};

use super::{NonFinite, Step};

/// Why the walk stopped.
#[derive(Debug)]
pub(super) enum Stop {
    Found(NonFinite),
    /// The value's own `Serialize` failed: not ours to report.
    Failed,
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a non-finite float")
    }
}

impl std::error::Error for Stop {}

impl ser::Error for Stop {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Stop::Failed
    }
}

impl Stop {
    fn at(self, step: impl FnOnce() -> Step) -> Stop {
        match self {
            Stop::Found(mut found) => {
                found.steps.push(step());
                Stop::Found(found)
            }
            failed => failed,
        }
    }
}

fn float(value: f64) -> Result<(), Stop> {
    match value.is_finite() {
        true => Ok(()),
        false => Err(Stop::Found(NonFinite {
            value,
            steps: Vec::new(),
        })),
    }
}

/// Serializes nothing; stops at the first non-finite float.
pub(super) struct Walker;

/// A sequence, tuple, map or struct being walked: counts its elements.
pub(super) struct Members(usize);

impl Members {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
        let index = self.0;
        self.0 += 1;
        value
            .serialize(Walker)
            .map_err(|e| e.at(|| Step::Index(index)))
    }

    fn field<T: Serialize + ?Sized>(&mut self, name: &'static str, value: &T) -> Result<(), Stop> {
        value
            .serialize(Walker)
            .map_err(|e| e.at(|| Step::Field(name)))
    }
}

macro_rules! ignore {
    ($($method:ident($ty:ty)),* $(,)?) => {
        $(fn $method(self, _: $ty) -> Result<(), Stop> { Ok(()) })*
    };
}

impl ser::Serializer for Walker {
    type Ok = ();
    type Error = Stop;
    type SerializeSeq = Members;
    type SerializeTuple = Members;
    type SerializeTupleStruct = Members;
    type SerializeTupleVariant = Members;
    type SerializeMap = Members;
    type SerializeStruct = Members;
    type SerializeStructVariant = Members;

    ignore!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_i128(i128),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_u128(u128),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_unit_struct(&'static str),
    );

    fn serialize_f32(self, v: f32) -> Result<(), Stop> {
        float(v.into())
    }

    fn serialize_f64(self, v: f64) -> Result<(), Stop> {
        float(v)
    }

    fn serialize_none(self) -> Result<(), Stop> {
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Stop> {
        value.serialize(Walker)
    }

    fn serialize_unit(self) -> Result<(), Stop> {
        Ok(())
    }

    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<(), Stop> {
        Ok(())
    }

    /// A [`crate::Bytes`] holds no float: passed over, not encoded as the
    /// base64 string a human-readable serializer is given.
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Stop> {
        if name == crate::Bytes::SERDE_NAME {
            return Ok(());
        }
        value.serialize(Walker)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Stop> {
        Members(0).field(variant, value)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Members, Stop> {
        Ok(Members(0))
    }

    fn serialize_tuple(self, _: usize) -> Result<Members, Stop> {
        Ok(Members(0))
    }

    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Members, Stop> {
        Ok(Members(0))
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Members, Stop> {
        Ok(Members(0))
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Members, Stop> {
        Ok(Members(0))
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Members, Stop> {
        Ok(Members(0))
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Members, Stop> {
        Ok(Members(0))
    }

    /// Formats nothing: the default would build a `String`.
    fn collect_str<T: fmt::Display + ?Sized>(self, _: &T) -> Result<(), Stop> {
        Ok(())
    }
}

impl ser::SerializeSeq for Members {
    type Ok = ();
    type Error = Stop;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
        self.element(value)
    }

    fn end(self) -> Result<(), Stop> {
        Ok(())
    }
}

impl ser::SerializeTuple for Members {
    type Ok = ();
    type Error = Stop;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
        self.element(value)
    }

    fn end(self) -> Result<(), Stop> {
        Ok(())
    }
}

impl ser::SerializeTupleStruct for Members {
    type Ok = ();
    type Error = Stop;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
        self.element(value)
    }

    fn end(self) -> Result<(), Stop> {
        Ok(())
    }
}

impl ser::SerializeTupleVariant for Members {
    type Ok = ();
    type Error = Stop;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
        self.element(value)
    }

    fn end(self) -> Result<(), Stop> {
        Ok(())
    }
}

impl ser::SerializeMap for Members {
    type Ok = ();
    type Error = Stop;

    /// Keys are not checked: serde_json refuses a non-finite key itself.
    fn serialize_key<T: Serialize + ?Sized>(&mut self, _: &T) -> Result<(), Stop> {
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
        let step = || Step::Key("…".to_owned());
        value.serialize(Walker).map_err(|e| e.at(step))
    }

    /// Names the entry by its key, written as JSON once something is found.
    fn serialize_entry<K, V>(&mut self, key: &K, value: &V) -> Result<(), Stop>
    where
        K: Serialize + ?Sized,
        V: Serialize + ?Sized,
    {
        let step = || Step::Key(serde_json::to_string(key).unwrap_or_else(|_| "…".to_owned()));
        value.serialize(Walker).map_err(|e| e.at(step))
    }

    fn end(self) -> Result<(), Stop> {
        Ok(())
    }
}

impl ser::SerializeStruct for Members {
    type Ok = ();
    type Error = Stop;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Stop> {
        self.field(name, value)
    }

    fn end(self) -> Result<(), Stop> {
        Ok(())
    }
}

impl ser::SerializeStructVariant for Members {
    type Ok = ();
    type Error = Stop;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Stop> {
        self.field(name, value)
    }

    fn end(self) -> Result<(), Stop> {
        Ok(())
    }
}
