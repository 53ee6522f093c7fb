//! [`Value`]: a dynamic, JSON-like value that round-trips in every codec.
//!
//! `serde_json::Value` needs a self-describing format (`deserialize_any`),
//! which bincode is not. `Value` wraps it and, in formats that are not human
//! readable, writes a tag before each node, so bincode can read it back.

use std::cell::RefCell;
use std::fmt;
use std::ops::{Deref, DerefMut};

use serde::de::{self, DeserializeSeed, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A dynamic value: null, bool, number, string, array or object.
///
/// ```
/// use rpc_core::Value;
/// let v = Value::from(serde_json::json!({"spam": [1, 2, 3]}));
/// assert_eq!(v["spam"][1], 2);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Value(pub serde_json::Value);

/// How deep a `Value` may nest when read from a binary format.
const MAX_DEPTH: usize = 128;

const VARIANTS: &[&str] = &[
    "Null", "Bool", "I64", "U64", "F64", "String", "Array", "Object",
];

impl Value {
    /// The inner `serde_json::Value`.
    pub fn into_inner(self) -> serde_json::Value {
        self.0
    }
}

impl Deref for Value {
    type Target = serde_json::Value;
    fn deref(&self) -> &serde_json::Value {
        &self.0
    }
}

impl DerefMut for Value {
    fn deref_mut(&mut self) -> &mut serde_json::Value {
        &mut self.0
    }
}

impl<T: Into<serde_json::Value>> From<T> for Value {
    fn from(v: T) -> Value {
        Value(v.into())
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            self.0.serialize(s)
        } else {
            Tagged(&self.0).serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        if d.is_human_readable() {
            serde_json::Value::deserialize(d).map(Value)
        } else {
            let first_failure = RefCell::new(None);
            Depth {
                left: MAX_DEPTH,
                first_failure: &first_failure,
            }
            .deserialize(d)
            .map(Value)
        }
    }
}

/// The binary form: each node as an enum variant of `Value`.
struct Tagged<'a>(&'a serde_json::Value);

impl Serialize for Tagged<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde_json::Value as J;
        match self.0 {
            J::Null => s.serialize_unit_variant("Value", 0, "Null"),
            J::Bool(b) => s.serialize_newtype_variant("Value", 1, "Bool", b),
            J::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), ..) => s.serialize_newtype_variant("Value", 2, "I64", &i),
                (None, Some(u), _) => s.serialize_newtype_variant("Value", 3, "U64", &u),
                (.., f) => s.serialize_newtype_variant("Value", 4, "F64", &f.unwrap_or(f64::NAN)),
            },
            J::String(v) => s.serialize_newtype_variant("Value", 5, "String", v),
            J::Array(v) => s.serialize_newtype_variant("Value", 6, "Array", &Items(v)),
            J::Object(m) => s.serialize_newtype_variant("Value", 7, "Object", &Entries(m)),
        }
    }
}

struct Items<'a>(&'a [serde_json::Value]);

impl Serialize for Items<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        self.0
            .iter()
            .try_for_each(|v| seq.serialize_element(&Tagged(v)))?;
        seq.end()
    }
}

struct Entries<'a>(&'a serde_json::Map<String, serde_json::Value>);

impl Serialize for Entries<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        self.0
            .iter()
            .try_for_each(|(k, v)| map.serialize_entry(k, &Tagged(v)))?;
        map.end()
    }
}

/// Reads the binary form, refusing to nest deeper than the depth left.
///
/// Errors from nested values are reported by the message of the first
/// (deepest) one, kept in `first_failure`: a format may wrap an error's text
/// at every level it passes (bincode quotes it, escaping what is already
/// escaped), and at 128 levels that text would grow without bound.
#[derive(Clone, Copy)]
struct Depth<'a> {
    left: usize,
    first_failure: &'a RefCell<Option<String>>,
}

impl<'a> Depth<'a> {
    fn deeper<E: de::Error>(self) -> Result<Depth<'a>, E> {
        match self.left {
            0 => Err(E::custom(format_args!(
                "a value nests deeper than {MAX_DEPTH} levels"
            ))),
            n => Ok(Depth {
                left: n - 1,
                ..self
            }),
        }
    }

    /// The error to pass up for a nested one.
    fn nested<E: de::Error>(self, e: E) -> E {
        let mut first = self.first_failure.borrow_mut();
        E::custom(first.get_or_insert_with(|| e.to_string()))
    }
}

impl<'de> DeserializeSeed<'de> for Depth<'_> {
    type Value = serde_json::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<serde_json::Value, D::Error> {
        d.deserialize_enum("Value", VARIANTS, self)
    }
}

impl<'de> Visitor<'de> for Depth<'_> {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a tagged rpc_core::Value")
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        use serde_json::Value as J;
        let (tag, v): (u32, _) = data.variant()?;
        Ok(match tag {
            0 => v.unit_variant().map(|()| J::Null)?,
            1 => J::Bool(v.newtype_variant()?),
            2 => J::from(v.newtype_variant::<i64>()?),
            3 => J::from(v.newtype_variant::<u64>()?),
            4 => J::from(v.newtype_variant::<f64>()?),
            5 => J::String(v.newtype_variant()?),
            6 => J::Array(
                v.newtype_variant_seed(ItemsSeed(self.deeper()?))
                    .map_err(|e| self.nested(e))?,
            ),
            7 => J::Object(
                v.newtype_variant_seed(EntriesSeed(self.deeper()?))
                    .map_err(|e| self.nested(e))?,
            ),
            n => return Err(de::Error::custom(format_args!("unknown Value tag {n}"))),
        })
    }
}

struct ItemsSeed<'a>(Depth<'a>);

impl<'de> DeserializeSeed<'de> for ItemsSeed<'_> {
    type Value = Vec<serde_json::Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ItemsSeed<'_> {
    type Value = Vec<serde_json::Value>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of values")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(v) = seq.next_element_seed(self.0)? {
            out.push(v);
        }
        Ok(out)
    }
}

struct EntriesSeed<'a>(Depth<'a>);

impl<'de> DeserializeSeed<'de> for EntriesSeed<'_> {
    type Value = serde_json::Map<String, serde_json::Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EntriesSeed<'_> {
    type Value = serde_json::Map<String, serde_json::Value>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of values")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(k) = map.next_key::<String>()? {
            out.insert(k, map.next_value_seed(self.0)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{self, Bincode, Codec, Json};

    fn round_trip(codec: &dyn Codec, v: &Value) -> Value {
        let mut buf = bytes::BytesMut::new();
        let reply: crate::service::Reply = Ok(Box::new(v.clone()));
        codec
            .encode_response(&mut buf, &codec::Id::Num(1), &reply)
            .unwrap();
        let codec::Inbound::Response { outcome, .. } = codec.decode_response(&buf).unwrap() else {
            panic!("not a response")
        };
        codec::decode(codec, &buf[outcome.unwrap()]).unwrap()
    }

    #[test]
    fn nested_values_round_trip_in_both_codecs() {
        let v = Value::from(
            serde_json::json!({"a": [1, -2, 3.5, null, true, "x", {"b": []}], "u": u64::MAX}),
        );
        assert_eq!(round_trip(&Bincode, &v), v);
        assert_eq!(round_trip(&Json, &v), v);
    }

    #[test]
    fn binary_values_deeper_than_the_limit_are_refused() {
        let mut v = serde_json::json!(1);
        for _ in 0..=MAX_DEPTH {
            v = serde_json::json!([v]);
        }
        let bytes =
            ::bincode::serde::encode_to_vec(Value(v), ::bincode::config::standard()).unwrap();
        let e = codec::decode::<Value>(&Bincode, &bytes).unwrap_err();
        assert!(e.message().contains("deeper than 128"), "{e}");
    }
}
