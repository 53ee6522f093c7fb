//! A URL query string as a method's arguments: `?x=2&name=spam` decodes into
//! the parameters by name, each value read as its parameter's type.
//!
//! A typed parameter parses its text as asked (`x=2` is `2i64` for an `i64`,
//! `"2"` for a `String`); a dynamic one ([`rpc_core::Value`]) gets a guess:
//! `true`/`false`, then an integer, then a number, else the text. A sequence
//! parameter takes comma-separated items (`?ids=1,2,3`).
//!
//! The pairs are charged to the query's decode budget ([`rpc_core::budget`])
//! before they are made, so `?a&a&a…` cannot buy more than its share.

use rpc_core::ErrorKind;
use rpc_core::budget::{self, Meter, cost};

use crate::quiet::peer_text;
use serde::de::value::{Error, SeqDeserializer};
use serde::de::{self, Error as _, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;

/// Splits and percent-decodes `query` (`+` is a space) into pairs, each
/// charged to the query's decode budget ([`rpc_core::budget`]) before it is
/// made: the pair, its texts, and the dynamic value it may become.
///
/// A query over its budget is refused with an [`ErrorKind::OverBudget`]
/// error; a malformed one with an [`ErrorKind::InvalidParams`] error whose
/// message says what is wrong (the caller names the method).
pub(crate) fn parse(query: &str) -> Result<Vec<(String, String)>, rpc_core::Error> {
    let mut meter = Meter::new(budget::for_message(query.len()));
    let pairs = query.split('&').filter(|pair| !pair.is_empty());
    let count = pairs.clone().count();
    let pair_size = std::mem::size_of::<(String, String)>();
    let over = |e: budget::OverBudget| rpc_core::Error::new(ErrorKind::OverBudget, e.to_string());
    meter
        .charge(count.saturating_mul(pair_size + cost::NODE))
        .map_err(over)?;
    let mut out = Vec::with_capacity(count);
    for pair in pairs {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        // Decoded text is never longer than its escaped form.
        meter
            .charge(cost::heap(key.len()).saturating_add(cost::heap(value.len())))
            .map_err(over)?;
        let malformed = |why: String| rpc_core::Error::new(ErrorKind::InvalidParams, why);
        out.push((
            decode(key).map_err(malformed)?,
            decode(value).map_err(malformed)?,
        ));
    }
    Ok(out)
}

fn decode(text: &str) -> Result<String, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        out.push(match b {
            b'+' => b' ',
            b'%' => {
                let hex = [bytes.next(), bytes.next()];
                let digits = hex.map(|d| d.and_then(|d| (d as char).to_digit(16)));
                match digits {
                    [Some(hi), Some(lo)] => (hi * 16 + lo) as u8,
                    _ => return Err(format!("{} has a malformed %-escape", peer_text(text))),
                }
            }
            b => b,
        });
    }
    String::from_utf8(out).map_err(|_| format!("{} is not UTF-8 once decoded", peer_text(text)))
}

/// The arguments: a map from parameter names to [`Text`] values.
pub(crate) struct Args<'a> {
    pairs: &'a [(String, String)],
}

impl<'a> Args<'a> {
    pub(crate) fn new(pairs: &'a [(String, String)]) -> Args<'a> {
        Args { pairs }
    }
}

impl<'de> de::Deserializer<'de> for &mut Args<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let entries = self
            .pairs
            .iter()
            .map(|(k, v)| (k.as_str(), Text(v.as_str())));
        visitor.visit_map(de::value::MapDeserializer::new(entries))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// One query value, parsed as the type asks.
#[derive(Clone, Copy)]
pub(crate) struct Text<'a>(&'a str);

impl<'de> IntoDeserializer<'de, Error> for Text<'de> {
    type Deserializer = Text<'de>;
    fn into_deserializer(self) -> Text<'de> {
        self
    }
}

macro_rules! parse_as {
    ($($method:ident => $visit:ident($ty:ty), $what:literal;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.0.trim().parse::<$ty>() {
                Ok(n) => visitor.$visit(n),
                Err(_) => Err(Error::custom(format!("expected {}, not {}", $what, peer_text(self.0)))),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Text<'de> {
    type Error = Error;

    /// A guess, for dynamic values: bool, integer, number, else text.
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let t = self.0;
        if let Ok(b) = t.parse::<bool>() {
            return visitor.visit_bool(b);
        }
        if let Ok(i) = t.parse::<i64>() {
            return visitor.visit_i64(i);
        }
        if let Ok(u) = t.parse::<u64>() {
            return visitor.visit_u64(u);
        }
        let numeric = t.bytes().any(|b| b.is_ascii_digit())
            && t.bytes()
                .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b));
        match t.parse::<f64>() {
            Ok(f) if numeric => visitor.visit_f64(f),
            _ => visitor.visit_borrowed_str(t),
        }
    }

    parse_as! {
        deserialize_i8 => visit_i8(i8), "an integer from -128 to 127";
        deserialize_i16 => visit_i16(i16), "a 16-bit integer";
        deserialize_i32 => visit_i32(i32), "a 32-bit integer";
        deserialize_i64 => visit_i64(i64), "an integer";
        deserialize_i128 => visit_i128(i128), "an integer";
        deserialize_u8 => visit_u8(u8), "an integer from 0 to 255";
        deserialize_u16 => visit_u16(u16), "a non-negative 16-bit integer";
        deserialize_u32 => visit_u32(u32), "a non-negative 32-bit integer";
        deserialize_u64 => visit_u64(u64), "a non-negative integer";
        deserialize_u128 => visit_u128(u128), "a non-negative integer";
        deserialize_f32 => visit_f32(f32), "a number";
        deserialize_f64 => visit_f64(f64), "a number";
        deserialize_bool => visit_bool(bool), "`true` or `false`";
        deserialize_char => visit_char(char), "one character";
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_borrowed_str(self.0)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_borrowed_str(self.0)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_borrowed_str(self.0)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_borrowed_bytes(self.0.as_bytes())
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_borrowed_bytes(self.0.as_bytes())
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let items = self.0.split(',').filter(|s| !s.is_empty()).map(Text);
        visitor.visit_seq(SeqDeserializer::new(items))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_enum(self.0.into_deserializer())
    }

    fn deserialize_map<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Error> {
        Err(Error::custom(format!(
            "a query value cannot be a map or struct (got {}); use POST with a JSON body",
            peer_text(self.0)
        )))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_map(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Typed {
        x: i64,
        name: String,
        ratio: f64,
        ids: Vec<u8>,
        flag: bool,
        maybe: Option<u16>,
    }

    fn decode_as<T: for<'de> Deserialize<'de>>(query: &str) -> Result<T, Error> {
        let pairs = parse(query).map_err(|e| Error::custom(e.message()))?;
        T::deserialize(&mut Args::new(&pairs))
    }

    #[test]
    fn typed_parameters_parse_as_asked() {
        let t: Typed = decode_as("x=-2&name=2&ratio=0.5&ids=1,2,3&flag=true").unwrap();
        assert_eq!(
            t,
            Typed {
                x: -2,
                name: "2".into(),
                ratio: 0.5,
                ids: vec![1, 2, 3],
                flag: true,
                maybe: None,
            }
        );
    }

    #[test]
    fn dynamic_values_are_guessed() {
        let v: serde_json::Value = decode_as("a=2&b=x%20y&c=false&d=1.5&e=-&f=1e3&g=nan").unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": 2, "b": "x y", "c": false, "d": 1.5, "e": "-", "f": 1000.0, "g": "nan"})
        );
    }

    #[test]
    fn pairs_past_the_decode_budget_are_refused() {
        // Two bytes a pair, each pair 48 bytes and a node.
        let query = "&a".repeat(30_000);
        let refused = parse(&query).unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::OverBudget);
        assert_eq!(
            refused.message(),
            format!(
                "the value would take more than {} bytes of memory, the decode budget \
                 for its message (32 bytes per byte received, at least 65536)",
                budget::for_message(query.len())
            )
        );
        // Honest pairs fit.
        let honest = "&name=spam&count=12".repeat(1000);
        assert_eq!(parse(&honest).unwrap().len(), 2000);
    }

    #[test]
    fn bad_values_say_what_was_expected() {
        let e = decode_as::<Typed>("x=two&name=a&ratio=1&ids=&flag=true").unwrap_err();
        assert_eq!(e.to_string(), "expected an integer, not \"two\"");
        assert!(parse("a=%zz").is_err());
        assert!(parse("a=%ff").is_err());
        assert_eq!(
            parse("a+b=c%2Bd&&e").unwrap(),
            [("a b".into(), "c+d".into()), ("e".into(), String::new())]
        );
    }
}
