//! A [`Bytes`](super::Bytes) written into JSON as base64 without serde_json
//! looking at it.
//!
//! A human-readable serializer is handed a payload's base64 as a string, and
//! serde_json scans every byte of a string for characters to escape before
//! writing it: for a 1 MiB payload that scan took longer than the base64
//! encoding itself (588 µs against 432 µs, on an Intel Xeon), and the
//! encoding first filled a `String` of its own. Base64 has nothing to escape.
//!
//! So the crate's JSON writer ([`crate::finite::to_writer`]) serializes
//! through [`JsonOut`], which passes everything on to serde_json's
//! serializer and wraps every value it passes on, so that it also sees the
//! values inside (erased_serde passes a newtype struct's name on, so it sees
//! them behind `dyn erased_serde::Serialize` too). For the newtype struct
//! [`Bytes::SERDE_NAME`](super::Bytes::SERDE_NAME) it asks the value for
//! its bytes, lends them to the formatter, and asks serde_json to write the
//! string [`MARK`]; the formatter, handed that very slice to write, writes
//! the lent payload's base64 in its place, a few KiB at a time, straight
//! into the output. Only `JsonOut` lends, and only to the serializer it
//! wraps, so no other serializer ever sees the mark: a `Serialize` impl
//! that writes a payload with a serializer of its own gets the base64
//! string as before, and so does a value serde buffered first (a flattened
//! or internally tagged enum's).
//!
//! As with the formats that have a bytes type of their own (pickle,
//! XML-RPC), a serializer a `Serialize` impl wraps around the one it is
//! given, passing the newtype struct's name on, sees the payload's bytes
//! rather than its base64 string: one that rewrites the strings it is
//! given does not rewrite a payload's.

use std::cell::Cell;
use std::fmt;
use std::io;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde::ser::{self, Error as _, Serializer};

use super::ask_bytes::bytes_of;

thread_local! {
    /// The payload the [`MARK`] being written stands for.
    static LENT: Cell<Option<bytes::Bytes>> = const { Cell::new(None) };

    /// Payloads written in place on this thread, for the tests to see.
    #[cfg(test)]
    static IN_PLACE: Cell<usize> = const { Cell::new(0) };
}

/// The string [`JsonOut`] asks serde_json to write for a payload,
/// recognised by its address (a static: every use is the same slice) while
/// a payload is lent.
static MARK: &str = "rpc_core::blob::json_text::MARK";

/// Input bytes encoded at a time: a multiple of 3, so only the last piece
/// may end in padding; its base64 (16 KiB) is built on the stack.
const PIECE: usize = 3 * 4096;

/// A payload this small is encoded in a buffer of its own size's order, so
/// that a few bytes do not zero 16 KiB of stack first.
const SMALL: usize = 3 * 64;

/// Writes a string `fragment` as the formatter of the crate's JSON writer
/// does: the lent payload's base64 in place of the [`MARK`], anything else
/// as it is.
pub(crate) fn write_fragment<W: io::Write + ?Sized>(
    writer: &mut W,
    fragment: &str,
) -> io::Result<()> {
    if std::ptr::eq(fragment, MARK)
        && let Some(payload) = LENT.take()
    {
        return write_base64(writer, &payload);
    }
    writer.write_all(fragment.as_bytes())
}

fn write_base64<W: io::Write + ?Sized>(writer: &mut W, payload: &[u8]) -> io::Result<()> {
    #[cfg(test)]
    IN_PLACE.set(IN_PLACE.get() + 1);
    if payload.len() <= SMALL {
        write_pieces::<{ SMALL / 3 * 4 }, W>(writer, payload)
    } else {
        write_pieces::<{ PIECE / 3 * 4 }, W>(writer, payload)
    }
}

/// Writes `payload`'s base64 through a stack buffer of `TEXT` bytes, the
/// base64 of `TEXT / 4 * 3` input bytes at a time.
fn write_pieces<const TEXT: usize, W: io::Write + ?Sized>(
    writer: &mut W,
    payload: &[u8],
) -> io::Result<()> {
    let mut text = [0u8; TEXT];
    for piece in payload.chunks(TEXT / 4 * 3) {
        let n = STANDARD
            .encode_slice(piece, &mut text)
            .expect("a piece's base64 fits the buffer");
        writer.write_all(&text[..n])?;
    }
    Ok(())
}

/// The serializer the crate's JSON writer hands a value: serde_json's
/// (whose formatter calls [`write_fragment`]) wrapped, so that a payload
/// anywhere in the value is written in place.
pub(crate) struct JsonOut<S>(pub(crate) S);

/// A value passed on to serde_json's serializer: serialized by it through
/// [`JsonOut`] again.
struct Rewrap<'a, T: ?Sized>(&'a T);

impl<T: Serialize + ?Sized> Serialize for Rewrap<'_, T> {
    #[inline]
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(JsonOut(s))
    }
}

impl<S: Serializer> JsonOut<S> {
    /// Writes `payload` as its base64 string, in place. A payload lent
    /// before (by a writer that writes JSON itself while this one writes)
    /// is lent again afterwards, and one left untaken (the writer panicked)
    /// is not kept.
    fn write_payload(self, payload: bytes::Bytes) -> Result<S::Ok, S::Error> {
        struct Restore(Option<bytes::Bytes>);
        impl Drop for Restore {
            fn drop(&mut self) {
                LENT.set(self.0.take());
            }
        }
        let restore = Restore(LENT.replace(Some(payload)));
        let written = self.0.serialize_str(MARK);
        let untaken = LENT.take().is_some();
        drop(restore);
        match written {
            Ok(_) if untaken => Err(S::Error::custom(
                "the JSON writer did not take a payload's base64 in place",
            )),
            written => written,
        }
    }
}

macro_rules! pass_on {
    ($($method:ident($ty:ty)),* $(,)?) => {
        $(#[inline] fn $method(self, v: $ty) -> Result<S::Ok, S::Error> { self.0.$method(v) })*
    };
}

impl<S: Serializer> Serializer for JsonOut<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = JsonOut<S::SerializeSeq>;
    type SerializeTuple = JsonOut<S::SerializeTuple>;
    type SerializeTupleStruct = JsonOut<S::SerializeTupleStruct>;
    type SerializeTupleVariant = JsonOut<S::SerializeTupleVariant>;
    type SerializeMap = JsonOut<S::SerializeMap>;
    type SerializeStruct = JsonOut<S::SerializeStruct>;
    type SerializeStructVariant = JsonOut<S::SerializeStructVariant>;

    pass_on!(
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
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_unit_struct(&'static str),
    );

    #[inline]
    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        self.0.serialize_none()
    }

    #[inline]
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.0.serialize_some(&Rewrap(value))
    }

    #[inline]
    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit()
    }

    #[inline]
    fn serialize_unit_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit_variant(name, index, variant)
    }

    #[inline]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        if name == super::Bytes::SERDE_NAME
            && let Some(payload) = bytes_of(value)
        {
            return self.write_payload(payload);
        }
        self.0.serialize_newtype_struct(name, &Rewrap(value))
    }

    #[inline]
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0
            .serialize_newtype_variant(name, index, variant, &Rewrap(value))
    }

    #[inline]
    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        self.0.serialize_seq(len).map(JsonOut)
    }

    #[inline]
    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        self.0.serialize_tuple(len).map(JsonOut)
    }

    #[inline]
    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        self.0.serialize_tuple_struct(name, len).map(JsonOut)
    }

    #[inline]
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        self.0
            .serialize_tuple_variant(name, index, variant, len)
            .map(JsonOut)
    }

    #[inline]
    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        self.0.serialize_map(len).map(JsonOut)
    }

    #[inline]
    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        self.0.serialize_struct(name, len).map(JsonOut)
    }

    #[inline]
    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        self.0
            .serialize_struct_variant(name, index, variant, len)
            .map(JsonOut)
    }

    #[inline]
    fn collect_str<T: fmt::Display + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.0.collect_str(value)
    }

    #[inline]
    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

macro_rules! compound {
    ($trait:ident, $method:ident) => {
        impl<C: ser::$trait> ser::$trait for JsonOut<C> {
            type Ok = C::Ok;
            type Error = C::Error;
            #[inline]
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
                self.0.$method(&Rewrap(value))
            }
            #[inline]
            fn end(self) -> Result<C::Ok, C::Error> {
                self.0.end()
            }
        }
    };
}

compound!(SerializeSeq, serialize_element);
compound!(SerializeTuple, serialize_element);
compound!(SerializeTupleStruct, serialize_field);
compound!(SerializeTupleVariant, serialize_field);

/// A map's keys go to serde_json as they are: it writes them with a
/// serializer of its own, which gives a payload its base64 string.
impl<C: ser::SerializeMap> ser::SerializeMap for JsonOut<C> {
    type Ok = C::Ok;
    type Error = C::Error;
    #[inline]
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), C::Error> {
        self.0.serialize_key(key)
    }
    #[inline]
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        self.0.serialize_value(&Rewrap(value))
    }
    #[inline]
    fn end(self) -> Result<C::Ok, C::Error> {
        self.0.end()
    }
}

macro_rules! fields {
    ($trait:ident) => {
        impl<C: ser::$trait> ser::$trait for JsonOut<C> {
            type Ok = C::Ok;
            type Error = C::Error;
            #[inline]
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), C::Error> {
                self.0.serialize_field(key, &Rewrap(value))
            }
            #[inline]
            fn skip_field(&mut self, key: &'static str) -> Result<(), C::Error> {
                self.0.skip_field(key)
            }
            #[inline]
            fn end(self) -> Result<C::Ok, C::Error> {
                self.0.end()
            }
        }
    };
}

fields!(SerializeStruct);
fields!(SerializeStructVariant);

#[cfg(test)]
mod tests {
    use serde::Serialize;

    use super::*;
    use crate::Bytes;

    /// What the crate's writer writes, and how many payloads it wrote in place.
    fn written(value: &(impl Serialize + ?Sized)) -> (String, usize) {
        let before = IN_PLACE.get();
        let mut out = Vec::new();
        let _ = crate::finite::to_writer(&mut out, value).unwrap();
        (String::from_utf8(out).unwrap(), IN_PLACE.get() - before)
    }

    /// Asserts the crate's writer writes what serde_json writes, `in_place`
    /// payloads of it in place.
    fn same(value: &(impl Serialize + ?Sized), in_place: usize) -> String {
        let (text, counted) = written(value);
        assert_eq!(text, serde_json::to_string(value).unwrap());
        assert_eq!(counted, in_place, "written in place: {text:.80}");
        assert!(LENT.take().is_none() && super::super::ask_bytes::idle());
        text
    }

    fn payload(len: usize) -> Bytes {
        Bytes::from((0..len).map(|i| (i * 7 + i / 5) as u8).collect::<Vec<_>>())
    }

    fn erased(value: impl erased_serde::Serialize + 'static) -> Box<dyn erased_serde::Serialize> {
        Box::new(value)
    }

    #[test]
    fn a_payload_is_written_in_place_at_every_length() {
        for len in [
            0,
            1,
            2,
            3,
            4,
            SMALL,
            SMALL + 1,
            PIECE - 1,
            PIECE,
            PIECE + 1,
            3 * PIECE + 2,
        ] {
            let p = payload(len);
            let text = same(&p, 1);
            assert_eq!(text, format!("\"{}\"", STANDARD.encode(&p[..])));
            same(&(1u8, vec![p.clone(), p.clone()]), 2);
            same(&Some(p.clone()), 1);
        }
    }

    #[test]
    fn a_payload_behind_erased_serde_is_written_in_place() {
        #[derive(Serialize)]
        struct Reply {
            name: &'static str,
            data: Bytes,
            more: Vec<Option<Bytes>>,
        }
        let reply = || Reply {
            name: "r",
            data: payload(5000),
            more: vec![None, Some(payload(3))],
        };
        same(&erased(reply()), 2);
        same(&erased((erased(reply()), 7u8)), 2);
        #[derive(Serialize)]
        enum Kind {
            Tuple(u8, Bytes),
            Struct { data: Bytes },
            Newtype(Bytes),
        }
        same(&erased(Kind::Tuple(1, payload(10))), 1);
        same(&erased(Kind::Struct { data: payload(10) }), 1);
        same(&erased(Kind::Newtype(payload(10))), 1);
    }

    /// serde buffers a flattened field's and an internally tagged enum's
    /// value before writing it: those payloads are written as strings,
    /// still exactly as serde_json writes them.
    #[test]
    fn values_serde_buffers_are_written_as_serde_json_writes_them() {
        #[derive(Serialize)]
        enum Inner {
            V {
                data: Box<dyn erased_serde::Serialize>,
            },
        }
        #[derive(Serialize)]
        #[serde(tag = "t")]
        enum Tagged {
            A(Inner),
            B { data: Bytes },
        }
        #[derive(Serialize)]
        struct Flat {
            x: u8,
            #[serde(flatten)]
            e: Inner,
            #[serde(flatten)]
            m: std::collections::BTreeMap<String, Bytes>,
        }
        let inner = || Inner::V {
            data: erased(payload(100)),
        };
        same(&erased(Tagged::A(inner())), 0);
        same(&erased(Tagged::B { data: payload(9) }), 1);
        let flat = Flat {
            x: 1,
            e: inner(),
            m: [("k".to_owned(), payload(4))].into(),
        };
        same(&erased(flat), 1);
    }

    /// A `Serialize` impl that writes a payload with a serializer of its
    /// own, or wraps the serializer it is given, gets what serde_json gives.
    #[test]
    fn serializers_of_a_values_own_get_the_string() {
        struct Own(Box<dyn erased_serde::Serialize>);
        impl Serialize for Own {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let text = serde_json::to_string(&self.0).map_err(S::Error::custom)?;
                let value = serde_json::to_value(&self.0).map_err(S::Error::custom)?;
                s.collect_str(&format_args!("{text}|{value}"))
            }
        }
        same(&erased(Own(erased(payload(20)))), 0);

        /// Writes every string twice, as a pair.
        struct Twice<S>(S);
        impl<S: Serializer> Twice<S> {
            fn pair(self, v: &str) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeTuple;
                let mut t = self.0.serialize_tuple(2)?;
                t.serialize_element(v)?;
                t.serialize_element(v)?;
                t.end()
            }
        }
        struct Doubled(Box<dyn erased_serde::Serialize>);
        impl Serialize for Doubled {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                // A wrapper that passes a newtype struct on as it is, and
                // doubles the string serde_json would be asked to write.
                struct Text(String);
                impl Serialize for Text {
                    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                        Twice(s).pair(&self.0)
                    }
                }
                let text = serde_json::to_value(&self.0).map_err(S::Error::custom)?;
                Text(text.as_str().unwrap_or_default().to_owned()).serialize(s)
            }
        }
        same(&erased(Doubled(erased(payload(30)))), 0);
    }

    #[test]
    fn a_map_key_gets_the_string() {
        let p = payload(10);
        same(&std::collections::BTreeMap::from([(p.clone(), 1)]), 0);
        same(
            &erased(std::collections::BTreeMap::from([(p.clone(), p)])),
            1,
        );
    }

    /// Other newtype structs, and a value of the payload's name that is not
    /// bare bytes, are passed on as they are.
    #[test]
    fn only_bare_bytes_under_the_payloads_name_are_written_in_place() {
        struct Named<T>(T);
        impl<T: Serialize> Serialize for Named<T> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_newtype_struct(Bytes::SERDE_NAME, &self.0)
            }
        }
        same(&erased(Named("text")), 0);
        same(&erased(Named(vec![1u8, 2])), 0);
        assert_eq!(same(&erased(Named(serde_bytes_like())), 1), "\"AQID\"");
    }

    /// Bytes given by a value that does not hand its own over (copied).
    fn serde_bytes_like() -> impl Serialize {
        struct Raw;
        impl Serialize for Raw {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.serialize_str("AQID")
                } else {
                    s.serialize_bytes(&[1, 2, 3])
                }
            }
        }
        Raw
    }

    /// A writer that writes JSON with the crate's writer itself, while
    /// the crate's writer writes to it.
    #[test]
    fn a_writer_that_writes_json_itself_gets_each_payload_in_its_place() {
        struct Copying(Vec<u8>, Vec<u8>);
        impl io::Write for Copying {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                let mut inner = Vec::new();
                let _ = crate::finite::to_writer(&mut inner, &payload(7)).unwrap();
                self.1.extend(inner);
                self.0.extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let outer = erased((payload(20), 1u8));
        let mut out = Copying(Vec::new(), Vec::new());
        let _ = crate::finite::to_writer(&mut out, &outer).unwrap();
        assert_eq!(out.0, serde_json::to_vec(&outer).unwrap());
        assert!(out.1.starts_with(&serde_json::to_vec(&payload(7)).unwrap()));
        assert!(LENT.take().is_none());
    }

    #[test]
    fn a_writer_that_panics_leaves_no_payload_lent() {
        struct Panicking;
        impl io::Write for Panicking {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                panic!("a writer that panics")
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let value = erased(payload(1 << 20));
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            crate::finite::to_writer(Panicking, &value)
        }));
        assert!(panicked.is_err());
        assert!(LENT.take().is_none(), "a payload stayed lent");
        assert!(super::super::ask_bytes::idle());
    }

    #[test]
    fn a_non_finite_float_beside_a_payload_is_still_found() {
        let value = erased((payload(100), f64::NAN));
        let mut out = Vec::new();
        let written = crate::finite::to_writer(&mut out, &value).unwrap();
        let e = written.result(&value, "json").unwrap_err();
        assert!(e.message().contains("NaN"), "{}", e.message());
    }
}
