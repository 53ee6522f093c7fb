//! [`Value`]: a dynamic, JSON-like value that round-trips in every codec.
//!
//! `serde_json::Value` needs a self-describing format (`deserialize_any`),
//! which bincode is not. `Value` wraps it and, in formats that are not human
//! readable, writes a tag before each node, so bincode can read it back.
//!
//! Reading one, in either form, charges every node, string and buffer to
//! the decode budget before allocating it ([`crate::budget`]), and leaves
//! no spare capacity in its arrays.

use std::cell::RefCell;
use std::fmt;
use std::ops::{Deref, DerefMut};

use serde::de::{self, DeserializeSeed, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::budget::cost;

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
            d.deserialize_any(Node).map(Value)
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

/// Charges `bytes` to the decode budget ([`crate::budget`]), as a serde error.
fn charge<E: de::Error>(bytes: usize) -> Result<(), E> {
    crate::budget::charge(bytes).map_err(E::custom)
}

/// A string, charged before it is copied (an owned one is only moved).
fn string<E: de::Error>(text: &str) -> Result<String, E> {
    charge(cost::heap(text.len()))?;
    Ok(text.to_owned())
}

/// Array items, their buffer charged by capacity before it grows, and cut to
/// its length at the end: a value holds no slack.
fn items<'de, A: SeqAccess<'de>, S: DeserializeSeed<'de, Value = serde_json::Value> + Copy>(
    mut seq: A,
    seed: S,
) -> Result<Vec<serde_json::Value>, A::Error> {
    let mut out: Vec<serde_json::Value> = Vec::new();
    let hint = seq.size_hint().unwrap_or(0).min(1024);
    let mut grow_to = hint.max(4);
    loop {
        if out.len() == out.capacity() {
            let old = out.capacity();
            let new = grow_to.max(old * 2);
            charge(cost::array(new) - cost::array(old))?;
            out.reserve_exact(new - old);
            grow_to = 0;
        }
        match seq.next_element_seed(seed)? {
            Some(v) => out.push(v),
            None => break,
        }
    }
    out.shrink_to_fit();
    Ok(out)
}

/// Object entries, each charged before it is inserted ([`cost::entry`]).
fn entries<'de, A: MapAccess<'de>, S: DeserializeSeed<'de, Value = serde_json::Value> + Copy>(
    mut map: A,
    seed: S,
) -> Result<serde_json::Map<String, serde_json::Value>, A::Error> {
    let mut out = serde_json::Map::new();
    while let Some(k) = map.next_key_seed(Key)? {
        charge(cost::entry(out.len()))?;
        out.insert(k, map.next_value_seed(seed)?);
    }
    Ok(out)
}

/// A human-readable value (JSON, or another reader's tree), built node by
/// node within the decode budget.
#[derive(Clone, Copy)]
struct Node;

impl<'de> DeserializeSeed<'de> for Node {
    type Value = serde_json::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<serde_json::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
        Ok(b.into())
    }
    fn visit_i64<E>(self, i: i64) -> Result<Self::Value, E> {
        Ok(i.into())
    }
    fn visit_u64<E>(self, u: u64) -> Result<Self::Value, E> {
        Ok(u.into())
    }
    fn visit_i128<E: de::Error>(self, i: i128) -> Result<Self::Value, E> {
        match (i64::try_from(i), u64::try_from(i)) {
            (Ok(i), _) => Ok(i.into()),
            (_, Ok(u)) => Ok(u.into()),
            _ => Ok(serde_json::Value::from(i as f64)),
        }
    }
    fn visit_f64<E>(self, x: f64) -> Result<Self::Value, E> {
        Ok(serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, Into::into))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        string(s).map(serde_json::Value::String)
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
        charge(cost::heap(s.capacity()))?;
        Ok(serde_json::Value::String(s))
    }
    fn visit_bytes<E: de::Error>(self, b: &[u8]) -> Result<Self::Value, E> {
        // As JSON carries bytes: an array of numbers.
        charge(cost::array(b.len()))?;
        Ok(serde_json::Value::Array(
            b.iter().map(|&b| b.into()).collect(),
        ))
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        items(seq, self).map(serde_json::Value::Array)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        entries(map, self).map(serde_json::Value::Object)
    }
}

/// An object's key, charged before it is copied.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_string(self)
    }
}

impl Visitor<'_> for Key {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<String, E> {
        string(s)
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<String, E> {
        charge(cost::heap(s.capacity()))?;
        Ok(s)
    }
    /// A key a reader gives as a number (a Python dict's int key) reads as
    /// its text, as `json.dumps` writes it.
    fn visit_i64<E: de::Error>(self, i: i64) -> Result<String, E> {
        string(&i.to_string())
    }
    fn visit_u64<E: de::Error>(self, u: u64) -> Result<String, E> {
        string(&u.to_string())
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
            5 => J::String(v.newtype_variant_seed(Key)?),
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
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        items(seq, self.0)
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
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        entries(map, self.0)
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
