//! A serde `Serializer` into [`XmlValue`]: how a method's result (or an
//! error's data) becomes an XML-RPC value.
//!
//! Integers become `int` (or `i8` beyond 32 bits), floats `double`, text
//! `string`, bytes and [`rpc_core::Bytes`] `base64`, sequences `array`, maps and structs `struct`
//! (map keys must be text or numbers), `()` and `None` `nil`. Enums are
//! tagged as in JSON: a unit variant is its name, any other a one-member
//! struct `{Variant: value}`.

use serde::de::value::Error;
use serde::ser::{self, Error as _, Serialize};

use super::xml_value::XmlValue;

/// Serializes `value`.
pub(crate) fn to_xml_value<T: Serialize + ?Sized>(value: &T) -> Result<XmlValue, Error> {
    value.serialize(ToXml::READABLE)
}

/// The serializer: human readable, except inside a [`rpc_core::Bytes`],
/// whose payload it takes as bytes (`<base64>`, not a base64 `<string>`).
#[derive(Clone, Copy)]
struct ToXml {
    readable: bool,
}

impl ToXml {
    const READABLE: ToXml = ToXml { readable: true };
}

/// A sequence or tuple being built; `variant` names the enum variant, if any.
struct Array {
    variant: Option<&'static str>,
    items: Vec<XmlValue>,
}

/// A map or struct being built.
struct Struct {
    variant: Option<&'static str>,
    members: Vec<(String, XmlValue)>,
    key: Option<String>,
}

fn tagged(variant: Option<&'static str>, value: XmlValue) -> XmlValue {
    match variant {
        Some(v) => XmlValue::Struct(vec![(v.to_owned(), value)]),
        None => value,
    }
}

impl ser::Serializer for ToXml {
    type Ok = XmlValue;
    type Error = Error;
    type SerializeSeq = Array;
    type SerializeTuple = Array;
    type SerializeTupleStruct = Array;
    type SerializeTupleVariant = Array;
    type SerializeMap = Struct;
    type SerializeStruct = Struct;
    type SerializeStructVariant = Struct;

    fn serialize_bool(self, v: bool) -> Result<XmlValue, Error> {
        Ok(XmlValue::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<XmlValue, Error> {
        Ok(XmlValue::Int(v.into()))
    }
    fn serialize_i16(self, v: i16) -> Result<XmlValue, Error> {
        Ok(XmlValue::Int(v.into()))
    }
    fn serialize_i32(self, v: i32) -> Result<XmlValue, Error> {
        Ok(XmlValue::Int(v.into()))
    }
    fn serialize_i64(self, v: i64) -> Result<XmlValue, Error> {
        Ok(XmlValue::Int(v))
    }
    fn serialize_i128(self, v: i128) -> Result<XmlValue, Error> {
        match (i64::try_from(v), u64::try_from(v)) {
            (Ok(i), _) => Ok(XmlValue::Int(i)),
            (_, Ok(u)) => Ok(XmlValue::BigUint(u)),
            _ => Err(Error::custom(format!(
                "{v} does not fit XML-RPC's 64-bit integers"
            ))),
        }
    }
    fn serialize_u8(self, v: u8) -> Result<XmlValue, Error> {
        Ok(XmlValue::Int(v.into()))
    }
    fn serialize_u16(self, v: u16) -> Result<XmlValue, Error> {
        Ok(XmlValue::Int(v.into()))
    }
    fn serialize_u32(self, v: u32) -> Result<XmlValue, Error> {
        Ok(XmlValue::Int(v.into()))
    }
    fn serialize_u64(self, v: u64) -> Result<XmlValue, Error> {
        Ok(i64::try_from(v).map_or(XmlValue::BigUint(v), XmlValue::Int))
    }
    fn serialize_u128(self, v: u128) -> Result<XmlValue, Error> {
        self.serialize_i128(i128::try_from(v).unwrap_or(i128::MAX))
    }
    fn serialize_f32(self, v: f32) -> Result<XmlValue, Error> {
        Ok(XmlValue::Double(v.into()))
    }
    fn serialize_f64(self, v: f64) -> Result<XmlValue, Error> {
        Ok(XmlValue::Double(v))
    }
    fn serialize_char(self, v: char) -> Result<XmlValue, Error> {
        Ok(XmlValue::Str(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<XmlValue, Error> {
        Ok(XmlValue::Str(v.to_owned()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<XmlValue, Error> {
        Ok(XmlValue::Base64(v.to_vec()))
    }
    fn serialize_none(self) -> Result<XmlValue, Error> {
        Ok(XmlValue::Nil)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<XmlValue, Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<XmlValue, Error> {
        Ok(XmlValue::Nil)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<XmlValue, Error> {
        Ok(XmlValue::Nil)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<XmlValue, Error> {
        Ok(XmlValue::Str(variant.to_owned()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<XmlValue, Error> {
        if name == rpc_core::Bytes::SERDE_NAME {
            return value.serialize(ToXml { readable: false });
        }
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<XmlValue, Error> {
        Ok(tagged(Some(variant), value.serialize(self)?))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Array, Error> {
        Ok(Array {
            variant: None,
            items: Vec::with_capacity(len.unwrap_or(0).min(4096)),
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Array, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Array, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Array, Error> {
        let mut array = self.serialize_seq(Some(len))?;
        array.variant = Some(variant);
        Ok(array)
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Struct, Error> {
        Ok(Struct {
            variant: None,
            members: Vec::new(),
            key: None,
        })
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<Struct, Error> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Struct, Error> {
        let mut s = self.serialize_map(Some(len))?;
        s.variant = Some(variant);
        Ok(s)
    }
    fn is_human_readable(&self) -> bool {
        self.readable
    }
}

macro_rules! array_impl {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for Array {
            type Ok = XmlValue;
            type Error = Error;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
                self.items.push(value.serialize(ToXml::READABLE)?);
                Ok(())
            }
            fn end(self) -> Result<XmlValue, Error> {
                Ok(tagged(self.variant, XmlValue::Array(self.items)))
            }
        }
    )*};
}
array_impl!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeMap for Struct {
    type Ok = XmlValue;
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.key = Some(match key.serialize(ToXml::READABLE)? {
            XmlValue::Str(s) => s,
            XmlValue::Int(i) => i.to_string(),
            XmlValue::BigUint(u) => u.to_string(),
            XmlValue::Bool(b) => b.to_string(),
            other => {
                let why = format!("an XML-RPC struct's member names are text, not {other:?}");
                return Err(Error::custom(why));
            }
        });
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let key = self
            .key
            .take()
            .ok_or_else(|| Error::custom("a map value without a key"))?;
        self.members.push((key, value.serialize(ToXml::READABLE)?));
        Ok(())
    }
    fn end(self) -> Result<XmlValue, Error> {
        Ok(tagged(self.variant, XmlValue::Struct(self.members)))
    }
}

macro_rules! struct_impl {
    ($($trait:ident),*) => {$(
        impl ser::$trait for Struct {
            type Ok = XmlValue;
            type Error = Error;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), Error> {
                self.members.push((key.to_owned(), value.serialize(ToXml::READABLE)?));
                Ok(())
            }
            fn end(self) -> Result<XmlValue, Error> {
                Ok(tagged(self.variant, XmlValue::Struct(self.members)))
            }
        }
    )*};
}
struct_impl!(SerializeStruct, SerializeStructVariant);

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Serialize;

    use super::*;

    #[derive(Serialize)]
    enum E {
        Unit,
        New(i32),
        Tuple(i32, bool),
        Named { key: String },
    }

    #[test]
    fn values_take_their_xml_rpc_types() {
        assert_eq!(to_xml_value(&5u64).unwrap(), XmlValue::Int(5));
        assert_eq!(
            to_xml_value(&u64::MAX).unwrap(),
            XmlValue::BigUint(u64::MAX)
        );
        assert_eq!(to_xml_value(&()).unwrap(), XmlValue::Nil);
        assert_eq!(to_xml_value(&None::<i32>).unwrap(), XmlValue::Nil);
        assert_eq!(to_xml_value(&Some("x")).unwrap(), XmlValue::Str("x".into()));
        assert_eq!(
            to_xml_value(&serde_json::json!({"spam": [1, 2.5]})).unwrap(),
            XmlValue::Struct(vec![(
                "spam".into(),
                XmlValue::Array(vec![XmlValue::Int(1), XmlValue::Double(2.5)])
            )])
        );
        let map: BTreeMap<i32, bool> = [(1, true)].into();
        assert_eq!(
            to_xml_value(&map).unwrap(),
            XmlValue::Struct(vec![("1".into(), XmlValue::Bool(true))])
        );
    }

    #[test]
    fn enums_are_tagged_as_in_json() {
        assert_eq!(
            to_xml_value(&E::Unit).unwrap(),
            XmlValue::Str("Unit".into())
        );
        assert_eq!(
            to_xml_value(&E::New(1)).unwrap(),
            XmlValue::Struct(vec![("New".into(), XmlValue::Int(1))])
        );
        assert_eq!(
            to_xml_value(&E::Tuple(1, true)).unwrap(),
            XmlValue::Struct(vec![(
                "Tuple".into(),
                XmlValue::Array(vec![XmlValue::Int(1), XmlValue::Bool(true)])
            )])
        );
        assert_eq!(
            to_xml_value(&E::Named { key: "k".into() }).unwrap(),
            XmlValue::Struct(vec![(
                "Named".into(),
                XmlValue::Struct(vec![("key".into(), XmlValue::Str("k".into()))])
            )])
        );
    }

    #[test]
    fn unusable_map_keys_fail() {
        let map: BTreeMap<Vec<u8>, i32> = [(vec![1], 1)].into();
        assert!(to_xml_value(&map).is_err());
    }

    #[test]
    fn bytes_are_base64_nested_too() {
        #[derive(Serialize)]
        struct Thumb {
            name: &'static str,
            data: rpc_core::Bytes,
        }
        let png = rpc_core::Bytes::from(&b"\x89PNG"[..]);
        assert_eq!(
            to_xml_value(&png).unwrap(),
            XmlValue::Base64(b"\x89PNG".to_vec())
        );
        let thumb = Thumb {
            name: "a",
            data: png.clone(),
        };
        assert_eq!(
            to_xml_value(&vec![thumb]).unwrap(),
            XmlValue::Array(vec![XmlValue::Struct(vec![
                ("name".into(), XmlValue::Str("a".into())),
                ("data".into(), XmlValue::Base64(b"\x89PNG".to_vec())),
            ])])
        );
    }
}
