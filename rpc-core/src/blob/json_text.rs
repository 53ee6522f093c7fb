//! A [`Bytes`](super::Bytes) written into JSON as base64 without serde_json
//! looking at it.
//!
//! A human-readable serializer is handed a payload's base64 as a string, and
//! serde_json scans every byte of a string for characters to escape before
//! writing it: for a 1 MiB payload that scan took longer than the base64
//! encoding itself (588 µs against 432 µs, on an Intel Xeon), and the
//! encoding first filled a `String` of its own. Base64 has nothing to escape.
//!
//! So the JSON writer of this crate ([`crate::finite::to_writer`]) opens a
//! scope naming the type of its serializer. A payload serialized by exactly
//! that serializer, or by erased_serde's on its behalf (arguments and
//! results reach the codecs as `dyn erased_serde::Serialize`), offers itself
//! and asks it to write the string [`MARK`]; the writer's formatter, handed
//! that very slice to write, writes the offered payload's base64 in its
//! place, a few KiB at a time, straight into the output. Any other
//! serializer (one a `Serialize` impl makes of its own, a map key's, a
//! wrapper's) gets the base64 string as before.
//!
//! erased_serde's serializer has one type whatever it wraps, so a value
//! whose `Serialize` impl writes a `dyn erased_serde::Serialize` holding a
//! payload with a serializer of its own, inside the crate's JSON writer,
//! sends that serializer the mark too. Its formatter does not take the
//! offer, and the serialization fails, saying so, rather than write the
//! mark.

use std::any::type_name;
use std::cell::Cell;
use std::io;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serializer;
use serde::ser::Error as _;

thread_local! {
    /// While [`writing`] runs: the type name of the serializer that takes
    /// offers.
    static WRITER: Cell<Option<&'static str>> = const { Cell::new(None) };

    /// The payload the [`MARK`] being written stands for.
    static OFFERED: Cell<Option<bytes::Bytes>> = const { Cell::new(None) };

    /// Payloads written in place on this thread, for the tests to see.
    #[cfg(test)]
    static IN_PLACE: Cell<usize> = const { Cell::new(0) };
}

/// The string a payload asks the serializer to write, recognised by its
/// address: a static, so that every use is the same slice.
static MARK: &str = "$rpc_core::Bytes";

/// Input bytes encoded at a time: a multiple of 3, so only the last piece
/// may end in padding; its base64 (16 KiB) is built on the stack.
const PIECE: usize = 3 * 4096;

/// Runs `write` as the JSON writing of the serializer whose type is
/// `serializer`, which writes through a formatter calling
/// [`write_fragment`] for every string fragment.
pub(crate) fn writing<R>(serializer: &'static str, write: impl FnOnce() -> R) -> R {
    struct Close(Option<&'static str>);
    impl Drop for Close {
        fn drop(&mut self) {
            WRITER.set(self.0);
        }
    }
    let _close = Close(WRITER.replace(Some(serializer)));
    write()
}

/// Serializes `payload` as its base64 string through `s` if `s` is the
/// serializer of the open [`writing`] scope; gives `s` back otherwise.
pub(super) fn serialize<S: Serializer>(
    s: S,
    payload: &bytes::Bytes,
) -> Result<Result<S::Ok, S::Error>, S> {
    let Some(writer) = WRITER.get() else {
        return Err(s);
    };
    let name = type_name::<S>();
    let same = |other: &str| std::ptr::eq(name, other) || name == other;
    if !(same(writer) || same(erased())) {
        return Err(s);
    }
    OFFERED.set(Some(payload.clone()));
    let written = s.serialize_str(MARK);
    Ok(match OFFERED.take() {
        None => written,
        Some(_) if written.is_err() => written,
        Some(_) => Err(S::Error::custom(
            "the JSON writer did not take a payload's base64 in place",
        )),
    })
}

/// The type a `Serialize` impl is handed when its value is serialized as
/// a `dyn erased_serde::Serialize`: learnt once, from a probe serialized
/// that way, since erased_serde does not name it.
fn erased() -> &'static str {
    struct Probe;
    impl serde::Serialize for Probe {
        fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            SEEN.set(type_name::<S>());
            Err(S::Error::custom("a probe"))
        }
    }
    thread_local! {
        static SEEN: Cell<&'static str> = const { Cell::new("") };
    }
    static NAME: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        let probe: &dyn erased_serde::Serialize = &Probe;
        let _ = serde::Serialize::serialize(probe, serde_json::value::Serializer);
        SEEN.get()
    })
}

/// Writes a string `fragment` as the formatter of a [`writing`] scope's
/// serializer does: the offered payload's base64 in place of the [`MARK`],
/// anything else as it is.
pub(crate) fn write_fragment<W: io::Write + ?Sized>(
    writer: &mut W,
    fragment: &str,
) -> io::Result<()> {
    if std::ptr::eq(fragment, MARK)
        && let Some(payload) = OFFERED.take()
    {
        return write_base64(writer, &payload);
    }
    writer.write_all(fragment.as_bytes())
}

fn write_base64<W: io::Write + ?Sized>(writer: &mut W, payload: &[u8]) -> io::Result<()> {
    #[cfg(test)]
    IN_PLACE.set(IN_PLACE.get() + 1);
    let mut text = [0u8; PIECE / 3 * 4];
    for piece in payload.chunks(PIECE) {
        let n = STANDARD
            .encode_slice(piece, &mut text)
            .expect("a piece's base64 fits the buffer");
        writer.write_all(&text[..n])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Bytes;

    fn standard(payload: &Bytes) -> String {
        serde_json::to_string(&STANDARD.encode(&payload[..])).unwrap()
    }

    fn written(value: &impl serde::Serialize) -> String {
        let mut out = Vec::new();
        let _ = crate::finite::to_writer(&mut out, value).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_writer_puts_the_same_base64_in_place_at_every_length() {
        for len in [0, 1, 2, 3, 4, PIECE - 1, PIECE, PIECE + 1, 3 * PIECE + 2] {
            let payload = Bytes::from((0..len).map(|i| (i * 7 + i / 5) as u8).collect::<Vec<_>>());
            let before = IN_PLACE.get();
            assert_eq!(written(&payload), standard(&payload), "length {len}");
            let nested = (1u8, vec![payload.clone(), payload.clone()]);
            assert_eq!(
                written(&nested),
                format!("[1,[{},{}]]", standard(&payload), standard(&payload))
            );
            assert_eq!(IN_PLACE.get() - before, 3, "written in place");
        }
    }

    #[test]
    fn a_mark_the_formatter_does_not_take_fails_the_serialization() {
        let payload = Bytes::from(vec![0xfe; 5000]);
        let _ = written(&payload);
        assert!(
            OFFERED.take().is_none(),
            "the crate's writer took the offer"
        );
        // serde_json's own formatter in the scope writes the mark as it is.
        let name = type_name::<&mut serde_json::Serializer<&mut Vec<u8>>>();
        let mut out = Vec::new();
        let result = writing(name, || {
            super::serialize(&mut serde_json::Serializer::new(&mut out), &payload.0)
                .ok()
                .expect("the scope's serializer")
        });
        let error = result.unwrap_err().to_string();
        assert!(error.contains("did not take"), "{error}");
        assert!(OFFERED.take().is_none());
    }

    /// A `Serialize` impl that writes a payload with a serializer of its
    /// own, inside the crate's JSON writer, gets the base64 string.
    #[test]
    fn a_serializer_of_its_own_gets_the_string() {
        struct Inner(Bytes);
        impl serde::Serialize for Inner {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let text = serde_json::to_string(&self.0).map_err(S::Error::custom)?;
                let value = serde_json::to_value(&self.0).map_err(S::Error::custom)?;
                s.collect_str(&format_args!("{text}|{}", value.as_str().unwrap()))
            }
        }
        let payload = Bytes::from(vec![1, 2, 3, 250]);
        let b64 = STANDARD.encode(&payload[..]);
        let before = IN_PLACE.get();
        assert_eq!(written(&Inner(payload)), format!("\"\\\"{b64}\\\"|{b64}\""));
        assert_eq!(IN_PLACE.get(), before);
    }

    #[test]
    fn an_erased_value_is_written_in_place() {
        let payload = Bytes::from(vec![0x80; 3 * PIECE + 1]);
        let value: Box<dyn erased_serde::Serialize> = Box::new((payload.clone(), 2u8));
        let before = IN_PLACE.get();
        assert_eq!(written(&value), format!("[{},2]", standard(&payload)));
        assert_eq!(IN_PLACE.get() - before, 1);
        assert!(erased().contains("erased_serde"), "{}", erased());
    }

    /// The case the mark cannot tell: an erased value written by a
    /// serializer of its own inside the crate's writer. It fails, naming why.
    #[test]
    fn an_erased_payload_a_serializer_of_its_own_writes_fails_clearly() {
        struct Inner(Box<dyn erased_serde::Serialize>);
        impl serde::Serialize for Inner {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let text = serde_json::to_string(&self.0).map_err(S::Error::custom)?;
                s.serialize_str(&text)
            }
        }
        let inner = Inner(Box::new(Bytes::from(vec![1, 2, 3])));
        let error = crate::finite::to_writer(&mut Vec::new(), &inner).unwrap_err();
        assert!(error.to_string().contains("did not take"), "{error}");
        assert!(OFFERED.take().is_none());
    }

    #[test]
    fn a_map_key_gets_the_string() {
        let payload = Bytes::from(vec![9u8; 10]);
        let map = std::collections::BTreeMap::from([(payload.clone(), 1)]);
        let before = IN_PLACE.get();
        assert_eq!(written(&map), format!("{{{}:1}}", standard(&payload)));
        assert_eq!(IN_PLACE.get(), before);
    }
}
