//! A serde `Deserializer` over XML-RPC values: the `<param>`s as a sequence
//! (XML-RPC passes arguments by position), each value as its own type.
//!
//! | XML-RPC | serde |
//! |---|---|
//! | `int`, `i4`, `i8` | `i64` (narrower integers and floats accept it if it fits) |
//! | `boolean`, `string`, `double` | `bool`, `str`, `f64` |
//! | `dateTime.iso8601` | `str`, as written |
//! | `base64` | bytes for a bytes type and for [`rpc_core::Bytes`] (which asks for text); a sequence of `u8` for a dynamic value, as JSON carries bytes |
//! | `array`, `struct` | sequence, map (or struct); a one-member struct is also an enum variant |
//! | `nil` | unit, `None` |

use serde::de::value::{Error, MapAccessDeserializer, MapDeserializer, SeqDeserializer};
use serde::de::{self, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;

use super::xml_value::XmlValue;

/// The parameters of a call, by position.
pub(crate) struct Params(pub(crate) Vec<XmlValue>);

impl<'de> de::Deserializer<'de> for Params {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let mut seq = SeqDeserializer::new(self.0.into_iter());
        let value = visitor.visit_seq(&mut seq)?;
        // More parameters than the method has.
        seq.end()?;
        Ok(value)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de> IntoDeserializer<'de, Error> for XmlValue {
    type Deserializer = XmlValue;
    fn into_deserializer(self) -> XmlValue {
        self
    }
}

impl<'de> de::Deserializer<'de> for XmlValue {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            XmlValue::Int(i) => visitor.visit_i64(i),
            XmlValue::BigUint(u) => visitor.visit_u64(u),
            XmlValue::Bool(b) => visitor.visit_bool(b),
            XmlValue::Str(s) | XmlValue::DateTime(s) => visitor.visit_string(s),
            XmlValue::Double(f) => visitor.visit_f64(f),
            XmlValue::Base64(bytes) => visitor.visit_seq(SeqDeserializer::new(bytes.into_iter())),
            XmlValue::Array(items) => visit_array(items, visitor),
            XmlValue::Struct(members) => {
                let mut map = MapDeserializer::new(members.into_iter());
                let value = visitor.visit_map(&mut map)?;
                map.end()?;
                Ok(value)
            }
            XmlValue::Nil => visitor.visit_unit(),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            XmlValue::Nil => visitor.visit_none(),
            other => visitor.visit_some(other),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            XmlValue::Base64(bytes) => visitor.visit_byte_buf(bytes),
            XmlValue::Str(s) => visitor.visit_byte_buf(s.into_bytes()),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_bytes(visitor)
    }

    /// A `<base64>` where text is asked for gives its bytes: a
    /// [`rpc_core::Bytes`] asks a human-readable format for its base64
    /// string, and takes bytes as they are.
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            XmlValue::Base64(bytes) => visitor.visit_byte_buf(bytes),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self {
            XmlValue::Str(s) => visitor.visit_enum(s.into_deserializer()),
            XmlValue::Struct(members) if members.len() == 1 => {
                let map = MapDeserializer::new(members.into_iter());
                visitor.visit_enum(MapAccessDeserializer::new(map))
            }
            other => other.deserialize_any(visitor),
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char
        unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

fn visit_array<'de, V: Visitor<'de>>(items: Vec<XmlValue>, visitor: V) -> Result<V::Value, Error> {
    let mut seq = SeqDeserializer::new(items.into_iter());
    let value = visitor.visit_seq(&mut seq)?;
    seq.end()?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Args {
        name: String,
        count: i32,
        ratio: f64,
        tags: Vec<String>,
        maybe: Option<bool>,
        kind: Kind,
        blob: Blob,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    enum Kind {
        Plain,
        Sized { n: u8 },
    }

    #[derive(Debug, PartialEq)]
    struct Blob(Vec<u8>);

    impl<'de> Deserialize<'de> for Blob {
        fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Blob, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Blob;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("bytes")
                }
                fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Blob, E> {
                    Ok(Blob(v))
                }
            }
            d.deserialize_byte_buf(V)
        }
    }

    fn args(params: Vec<XmlValue>) -> Result<Args, Error> {
        Args::deserialize(Params(params))
    }

    fn good() -> Vec<XmlValue> {
        vec![
            XmlValue::Str("spam".into()),
            XmlValue::Int(3),
            XmlValue::Int(2),
            XmlValue::Array(vec![XmlValue::Str("a".into())]),
            XmlValue::Nil,
            XmlValue::Struct(vec![(
                "Sized".into(),
                XmlValue::Struct(vec![("n".into(), XmlValue::Int(7))]),
            )]),
            XmlValue::Base64(vec![1, 2]),
        ]
    }

    #[test]
    fn positional_params_fill_a_struct() {
        let a = args(good()).unwrap();
        assert_eq!(a.name, "spam");
        assert_eq!((a.count, a.ratio), (3, 2.0));
        assert_eq!(a.maybe, None);
        assert_eq!(a.kind, Kind::Sized { n: 7 });
        assert_eq!(a.blob, Blob(vec![1, 2]));
        let mut plain = good();
        plain[5] = XmlValue::Str("Plain".into());
        assert_eq!(args(plain).unwrap().kind, Kind::Plain);
    }

    #[test]
    fn too_many_or_mistyped_params_fail() {
        let mut extra = good();
        extra.push(XmlValue::Nil);
        let e = args(extra).unwrap_err().to_string();
        assert!(e.contains("invalid length 8"), "{e}");
        let mut wrong = good();
        wrong[1] = XmlValue::Str("3".into());
        assert!(
            args(wrong)
                .unwrap_err()
                .to_string()
                .contains("expected i32")
        );
        let mut big = good();
        big[1] = XmlValue::Int(1 << 40);
        assert!(args(big).is_err());
    }

    #[test]
    fn dynamic_values_read_everything() {
        let v = serde_json::Value::deserialize(XmlValue::Struct(vec![
            (
                "a".into(),
                XmlValue::Array(vec![XmlValue::Int(1), XmlValue::Double(0.5)]),
            ),
            ("b".into(), XmlValue::Nil),
            ("c".into(), XmlValue::Base64(vec![104, 105])),
            ("d".into(), XmlValue::DateTime("19980717T14:08:55".into())),
        ]))
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": [1, 0.5], "b": null, "c": [104, 105], "d": "19980717T14:08:55"})
        );
    }

    #[test]
    fn bytes_read_from_base64_nested_too() {
        #[derive(Debug, Deserialize, PartialEq)]
        enum Image {
            Png { data: rpc_core::Bytes },
        }
        let blob = rpc_core::Bytes::deserialize(XmlValue::Base64(vec![0x89, b'P'])).unwrap();
        assert_eq!(&blob[..], [0x89, b'P']);
        let png = XmlValue::Struct(vec![(
            "Png".into(),
            XmlValue::Struct(vec![("data".into(), XmlValue::Base64(vec![0, 255]))]),
        )]);
        let Image::Png { data } = Image::deserialize(png).unwrap();
        assert_eq!(&data[..], [0, 255]);
        let many = XmlValue::Array(vec![XmlValue::Base64(vec![1]), XmlValue::Base64(vec![])]);
        let many = Vec::<rpc_core::Bytes>::deserialize(many).unwrap();
        assert_eq!(
            many,
            [rpc_core::Bytes::from(vec![1]), rpc_core::Bytes::default()]
        );
        // A base64 `<string>` still reads, as JSON's form of the same bytes.
        let text = rpc_core::Bytes::deserialize(XmlValue::Str("aGk=".into())).unwrap();
        assert_eq!(&text[..], b"hi");
    }
}
