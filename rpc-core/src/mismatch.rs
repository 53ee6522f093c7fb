//! Why a value did not travel, said so a person can act on it: serde errors
//! with bincode's nested `OtherString("…")` layers unwrapped, the types that
//! need a self-describing format named, and [`check_codecs`] to find out in
//! a unit test rather than in production.
//!
//! ```
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Patch {
//!     #[serde(skip_serializing_if = "Option::is_none")]
//!     name: Option<String>,
//! }
//! let refused = rpc_core::check_codecs(&Patch { name: None }).unwrap_err();
//! assert!(refused.message().contains("cannot be carried by bincode"));
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{self, Codec, Incoming, OutRequest};
use crate::error::{Error, ErrorKind};

/// What a value that bincode cannot carry needs, and what to do instead.
pub const NEEDS_SELF_DESCRIBING: &str = "it needs a self-describing format (serde's \
     `skip_serializing_if`, `untagged` or internally tagged enums, `flatten`, \
     `serde_json::Value` all do); use the json codec, or `rpc_core::Value` for dynamic values";

/// The text of a serde error, with every `OtherString("…")` layer bincode
/// wraps around a nested error's text taken off.
pub fn readable(error: &str) -> String {
    let mut text = error.to_owned();
    while let Some(inner) = text
        .strip_prefix("OtherString(\"")
        .and_then(|rest| rest.strip_suffix("\")"))
    {
        text = unescape(inner);
    }
    text
}

/// Whether `error` (made [`readable`]) is bincode failing on a type that
/// needs a self-describing format: `deserialize_any`, or a field that was
/// skipped when written, so that what follows reads as something else.
pub fn needs_self_describing(error: &str) -> bool {
    ["AnyNotSupported", "UnexpectedVariant", "UnexpectedEnd"]
        .iter()
        .any(|marker| error.contains(marker))
}

/// Undoes `{:?}`'s escapes in a string's contents.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// The message for `what` (an argument and its type, a result) that did
/// not decode with `codec`: bincode's limits explained, anything else as
/// serde said it.
pub fn explain(codec: &str, what: &str, error: &str) -> String {
    let error = readable(error);
    if codec == "bincode" && needs_self_describing(&error) {
        return format!(
            "{what} cannot be carried by bincode: {NEEDS_SELF_DESCRIBING} (bincode said: {error})"
        );
    }
    format!("{what} did not decode: {error}")
}

/// Round-trips `value` through every codec the way an argument travels,
/// and says which codec cannot carry it and why; for a unit test of a
/// service's types, so that a type that works with JSON but not with
/// bincode (the default) is found before production.
///
/// ```
/// rpc_core::check_codecs(&(1u32, String::from("spam"))).unwrap();
/// let dynamic = rpc_core::Value::from(serde_json::json!({"spam": [1, 2]}));
/// rpc_core::check_codecs(&dynamic).unwrap();
/// ```
pub fn check_codecs<T: Serialize + DeserializeOwned>(value: &T) -> Result<(), Error> {
    let ty = std::any::type_name::<T>();
    for &codec in codec::ALL {
        round_trip::<T>(codec, value, ty)?;
    }
    Ok(())
}

fn round_trip<T: Serialize + DeserializeOwned>(
    codec: &dyn Codec,
    value: &T,
    ty: &str,
) -> Result<(), Error> {
    let name = codec.name();
    let mut frame = bytes::BytesMut::new();
    let request = OutRequest {
        id: 1,
        method: "check",
        deadline: None,
        args: value,
    };
    codec.encode_request(&mut frame, &request).map_err(|e| {
        let why = format!("a value of type `{ty}` cannot be sent with {name}: {e}");
        Error::new(ErrorKind::InvalidParams, why)
    })?;
    let Incoming::Request(request) = codec.decode_request(&frame) else {
        let why = format!("a value of type `{ty}` did not make a {name} request");
        return Err(Error::new(ErrorKind::Internal, why));
    };
    let mut decoded: Option<T> = None;
    codec
        .decode_value(request.params, &mut |de| {
            let value = erased_serde::deserialize(de).map_err(|e| {
                let why = explain(name, &format!("a value of type `{ty}`"), &e.to_string());
                Error::new(ErrorKind::InvalidParams, why)
            })?;
            decoded = Some(value);
            Ok(())
        })
        .map_err(|e| match e.kind() {
            ErrorKind::InvalidParams => e,
            _ => Error::new(
                ErrorKind::InvalidParams,
                explain(name, &format!("a value of type `{ty}`"), e.message()),
            ),
        })?;
    match decoded {
        Some(_) => Ok(()),
        None => Err(Error::new(
            ErrorKind::Internal,
            format!("{name} read no value of type `{ty}`"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_other_string_layers_are_taken_off() {
        let nested =
            r#"OtherString("OtherString(\"OtherString(\\\"Serde(AnyNotSupported)\\\")\")")"#;
        assert_eq!(readable(nested), "Serde(AnyNotSupported)");
        assert_eq!(readable("invalid length 1"), "invalid length 1");
    }

    #[test]
    fn a_skipped_field_and_an_untagged_enum_are_explained_for_bincode() {
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Patch {
            #[serde(skip_serializing_if = "Option::is_none")]
            name: Option<String>,
            n: u32,
        }
        #[derive(serde::Serialize, serde::Deserialize)]
        #[serde(untagged)]
        enum Either {
            N(u32),
            S(String),
        }
        for refused in [
            check_codecs(&Patch { name: None, n: 3 }).unwrap_err(),
            check_codecs(&Either::N(3)).unwrap_err(),
            check_codecs(&serde_json::json!({"a": 1})).unwrap_err(),
        ] {
            let message = refused.message();
            assert!(
                message.contains("cannot be carried by bincode"),
                "{message}"
            );
            assert!(message.contains("use the json codec"), "{message}");
            assert!(!message.contains("OtherString"), "{message}");
        }
    }
}
