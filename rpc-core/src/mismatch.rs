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

pub use crate::explain::{NEEDS_SELF_DESCRIBING, explain, needs_self_describing, readable};

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
        metadata: None,
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
