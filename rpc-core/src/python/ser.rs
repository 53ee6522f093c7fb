//! Any `Serialize` → [`PyValue`], the way a Python programmer would write
//! the same data: structs and maps become dicts, sequences lists, tuples
//! tuples, `Option::None` and `()` become `None`, a unit enum variant its
//! name, any other variant a one-entry dict `{variant: value}`.
//!
//! The serializer is human readable, so types with two forms (such as
//! [`crate::Value`]) pick their plain one; a [`crate::Bytes`] becomes
//! `bytes`, not the base64 text it is in JSON.

use serde::ser::{self, Serialize};

use super::PyValue;

/// Why a value has no Python form.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SerError(String);

impl ser::Error for SerError {
    fn custom<T: std::fmt::Display>(msg: T) -> SerError {
        SerError(msg.to_string())
    }
}

/// The Python form of `value`.
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<PyValue, SerError> {
    value.serialize(ToPy::PICKLE)
}

/// [`to_value`] for JSON text: a [`crate::Bytes`] stays the base64 string
/// JSON carries (the Python JSON form's requests).
pub(crate) fn to_json_value<T: Serialize + ?Sized>(value: &T) -> Result<PyValue, SerError> {
    value.serialize(ToPy::JSON)
}

/// The serializer: human readable, except inside a [`crate::Bytes`] when
/// `native_bytes`, whose payload it then takes as bytes.
#[derive(Clone, Copy)]
struct ToPy {
    readable: bool,
    native_bytes: bool,
}

impl ToPy {
    const PICKLE: ToPy = ToPy {
        readable: true,
        native_bytes: true,
    };
    const JSON: ToPy = ToPy {
        readable: true,
        native_bytes: false,
    };
}

/// Items of a sequence, tuple or struct being serialized.
struct Items {
    ser: ToPy,
    items: Vec<PyValue>,
    wrap: fn(Vec<PyValue>) -> PyValue,
    variant: Option<&'static str>,
}

/// Entries of a map or struct being serialized.
struct Entries {
    ser: ToPy,
    entries: Vec<(PyValue, PyValue)>,
    key: Option<PyValue>,
    variant: Option<&'static str>,
}

/// `{variant: value}`, or `value` alone outside an enum.
fn in_variant(variant: Option<&'static str>, value: PyValue) -> PyValue {
    match variant {
        Some(name) => PyValue::Dict(vec![(PyValue::Str(name.into()), value)]),
        None => value,
    }
}

fn items(
    ser: ToPy,
    wrap: fn(Vec<PyValue>) -> PyValue,
    len: usize,
    variant: Option<&'static str>,
) -> Items {
    Items {
        ser,
        items: Vec::with_capacity(len.min(4096)),
        wrap,
        variant,
    }
}

fn entries(ser: ToPy, variant: Option<&'static str>) -> Entries {
    Entries {
        ser,
        entries: Vec::new(),
        key: None,
        variant,
    }
}

impl ser::Serializer for ToPy {
    type Ok = PyValue;
    type Error = SerError;
    type SerializeSeq = Items;
    type SerializeTuple = Items;
    type SerializeTupleStruct = Items;
    type SerializeTupleVariant = Items;
    type SerializeMap = Entries;
    type SerializeStruct = Entries;
    type SerializeStructVariant = Entries;

    fn serialize_bool(self, v: bool) -> Result<PyValue, SerError> {
        Ok(PyValue::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<PyValue, SerError> {
        Ok(PyValue::Int(v.into()))
    }
    fn serialize_i16(self, v: i16) -> Result<PyValue, SerError> {
        Ok(PyValue::Int(v.into()))
    }
    fn serialize_i32(self, v: i32) -> Result<PyValue, SerError> {
        Ok(PyValue::Int(v.into()))
    }
    fn serialize_i64(self, v: i64) -> Result<PyValue, SerError> {
        Ok(PyValue::Int(v.into()))
    }
    fn serialize_i128(self, v: i128) -> Result<PyValue, SerError> {
        Ok(PyValue::Int(v))
    }
    fn serialize_u8(self, v: u8) -> Result<PyValue, SerError> {
        Ok(PyValue::Int(v.into()))
    }
    fn serialize_u16(self, v: u16) -> Result<PyValue, SerError> {
        Ok(PyValue::Int(v.into()))
    }
    fn serialize_u32(self, v: u32) -> Result<PyValue, SerError> {
        Ok(PyValue::Int(v.into()))
    }
    fn serialize_u64(self, v: u64) -> Result<PyValue, SerError> {
        Ok(PyValue::Int(v.into()))
    }
    fn serialize_u128(self, v: u128) -> Result<PyValue, SerError> {
        i128::try_from(v).map(PyValue::Int).map_err(|_| {
            SerError(format!(
                "{v} is wider than the 128-bit ints this codec writes"
            ))
        })
    }
    fn serialize_f32(self, v: f32) -> Result<PyValue, SerError> {
        Ok(PyValue::Float(v.into()))
    }
    fn serialize_f64(self, v: f64) -> Result<PyValue, SerError> {
        Ok(PyValue::Float(v))
    }
    fn serialize_char(self, v: char) -> Result<PyValue, SerError> {
        Ok(PyValue::Str(v.into()))
    }
    fn serialize_str(self, v: &str) -> Result<PyValue, SerError> {
        Ok(PyValue::Str(v.into()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<PyValue, SerError> {
        Ok(PyValue::Bytes(v.into()))
    }
    fn serialize_none(self) -> Result<PyValue, SerError> {
        Ok(PyValue::None)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<PyValue, SerError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<PyValue, SerError> {
        Ok(PyValue::None)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<PyValue, SerError> {
        Ok(PyValue::None)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<PyValue, SerError> {
        Ok(PyValue::Str(variant.into()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<PyValue, SerError> {
        if self.native_bytes && name == crate::Bytes::SERDE_NAME {
            let bytes = ToPy {
                readable: false,
                ..self
            };
            return value.serialize(bytes);
        }
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<PyValue, SerError> {
        Ok(in_variant(Some(variant), value.serialize(self)?))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Items, SerError> {
        Ok(items(self, PyValue::List, len.unwrap_or(0), None))
    }
    fn serialize_tuple(self, len: usize) -> Result<Items, SerError> {
        Ok(items(self, PyValue::Tuple, len, None))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Items, SerError> {
        Ok(items(self, PyValue::Tuple, len, None))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Items, SerError> {
        Ok(items(self, PyValue::Tuple, len, Some(variant)))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Entries, SerError> {
        Ok(entries(self, None))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Entries, SerError> {
        Ok(entries(self, None))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Entries, SerError> {
        Ok(entries(self, Some(variant)))
    }
    fn is_human_readable(&self) -> bool {
        self.readable
    }
}

impl Items {
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        self.items.push(value.serialize(self.ser)?);
        Ok(())
    }

    fn finish(self) -> Result<PyValue, SerError> {
        Ok(in_variant(self.variant, (self.wrap)(self.items)))
    }
}

macro_rules! items_impl {
    ($($Trait:ident :: $method:ident),*) => {$(
        impl ser::$Trait for Items {
            type Ok = PyValue;
            type Error = SerError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
                self.push(value)
            }
            fn end(self) -> Result<PyValue, SerError> {
                self.finish()
            }
        }
    )*};
}
items_impl!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl Entries {
    fn field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        self.entries
            .push((PyValue::Str(key.into()), value.serialize(self.ser)?));
        Ok(())
    }

    fn finish(self) -> Result<PyValue, SerError> {
        Ok(in_variant(self.variant, PyValue::Dict(self.entries)))
    }
}

impl ser::SerializeMap for Entries {
    type Ok = PyValue;
    type Error = SerError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), SerError> {
        self.key = Some(key.serialize(self.ser)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        let key = self
            .key
            .take()
            .ok_or_else(|| SerError("a map value without its key".into()))?;
        self.entries.push((key, value.serialize(self.ser)?));
        Ok(())
    }
    fn end(self) -> Result<PyValue, SerError> {
        self.finish()
    }
}

macro_rules! fields_impl {
    ($($Trait:ident),*) => {$(
        impl ser::$Trait for Entries {
            type Ok = PyValue;
            type Error = SerError;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), SerError> {
                self.field(key, value)
            }
            fn end(self) -> Result<PyValue, SerError> {
                self.finish()
            }
        }
    )*};
}
fields_impl!(SerializeStruct, SerializeStructVariant);
