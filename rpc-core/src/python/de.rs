//! [`PyValue`] as a serde `Deserializer`: a Rust type reads Python data the
//! way [`to_value`](super::to_value) writes it.
//!
//! Tuples and lists read as sequences (and as structs, by position), dicts
//! as maps (and as structs, by name), `None` as `()` or `Option::None`, a
//! `str` as a unit enum variant and a one-entry dict `{variant: value}` as
//! any other variant. `bytes` also read where a string is asked for, so
//! [`crate::Bytes`] takes them as they are, and as a sequence, so
//! `Vec<u8>` does.

use serde::de::value::{MapAccessDeserializer, MapDeserializer, SeqDeserializer};
use serde::de::{self, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;

use super::PyValue;

/// Why Python data did not fit a Rust type.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DeError(String);

impl de::Error for DeError {
    fn custom<T: std::fmt::Display>(msg: T) -> DeError {
        DeError(msg.to_string())
    }
}

impl<'de> IntoDeserializer<'de, DeError> for PyValue {
    type Deserializer = PyValue;

    fn into_deserializer(self) -> PyValue {
        self
    }
}

impl<'de> de::Deserializer<'de> for PyValue {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self {
            PyValue::None => visitor.visit_unit(),
            PyValue::Bool(b) => visitor.visit_bool(b),
            PyValue::Int(i) => match (i64::try_from(i), u64::try_from(i)) {
                (Ok(i), _) => visitor.visit_i64(i),
                (_, Ok(u)) => visitor.visit_u64(u),
                _ => visitor.visit_i128(i),
            },
            PyValue::Float(x) => visitor.visit_f64(x),
            PyValue::Str(s) => visitor.visit_string(s),
            PyValue::Bytes(b) => visitor.visit_byte_buf(b),
            PyValue::Tuple(items) | PyValue::List(items) => {
                let mut seq = SeqDeserializer::new(items.into_iter());
                let value = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(value)
            }
            PyValue::Dict(entries) => {
                let mut map = MapDeserializer::new(entries.into_iter());
                let value = visitor.visit_map(&mut map)?;
                map.end()?;
                Ok(value)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self {
            PyValue::None => visitor.visit_none(),
            other => visitor.visit_some(other),
        }
    }

    /// `bytes` read as a sequence too, so `Vec<u8>` takes them.
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self {
            PyValue::Bytes(bytes) => {
                let mut seq = SeqDeserializer::new(bytes.into_iter());
                let value = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(value)
            }
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self {
            PyValue::Str(variant) => visitor.visit_enum(variant.into_deserializer()),
            PyValue::Dict(entries) if entries.len() == 1 => visitor.visit_enum(
                MapAccessDeserializer::new(MapDeserializer::new(entries.into_iter())),
            ),
            other => Err(DeError(format!(
                "expected a `{name}` as a variant name or a one-entry dict, found a {}",
                other.type_name()
            ))),
        }
    }

    fn is_human_readable(&self) -> bool {
        true
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct tuple tuple_struct map struct
        identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    fn s(text: &str) -> PyValue {
        PyValue::Str(text.into())
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Args {
        x: i64,
        y: Option<f64>,
    }

    #[test]
    fn a_struct_reads_from_a_dict_or_a_tuple() {
        let dict = PyValue::Dict(vec![(s("x"), PyValue::Int(2)), (s("y"), PyValue::Int(3))]);
        let args = Args { x: 2, y: Some(3.0) };
        assert_eq!(Args::deserialize(dict).unwrap(), args);
        let tuple = PyValue::Tuple(vec![PyValue::Int(2), PyValue::None]);
        assert_eq!(Args::deserialize(tuple).unwrap(), Args { x: 2, y: None });
    }

    #[test]
    fn enums_read_from_a_name_or_a_one_entry_dict() {
        #[derive(Debug, Deserialize, PartialEq)]
        enum E {
            Unit,
            New(i64),
        }
        assert_eq!(E::deserialize(s("Unit")).unwrap(), E::Unit);
        let new = PyValue::Dict(vec![(s("New"), PyValue::Int(7))]);
        assert_eq!(E::deserialize(new).unwrap(), E::New(7));
    }

    #[test]
    fn a_wrong_type_names_what_was_found() {
        let err = i64::deserialize(s("2")).unwrap_err();
        assert!(err.to_string().contains("string \"2\""), "{err}");
        let err = <(i64, i64)>::deserialize(PyValue::Tuple(vec![PyValue::Int(1)])).unwrap_err();
        assert!(err.to_string().contains("invalid length"), "{err}");
    }

    #[test]
    fn bytes_read_as_bytes_even_where_text_is_asked_for() {
        let blob = crate::Bytes::deserialize(PyValue::Bytes(vec![1, 2])).unwrap();
        assert_eq!(&blob[..], [1, 2]);
        let vec = Vec::<u8>::deserialize(PyValue::Bytes(vec![1, 2])).unwrap();
        assert_eq!(vec, [1, 2]);
    }
}
