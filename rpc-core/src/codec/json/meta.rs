//! A request's `"meta"` member: `{"key":"text","bin":{"bytes":"<base64>"}}`,
//! read within the limits of [`crate::metadata`] (the member's raw size
//! is checked before anything is copied out of it).

use std::borrow::Cow;

use base64::Engine;
use bytes::{BufMut, BytesMut};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::codec::encode_error;
use crate::error::{Error, ErrorKind};
use crate::metadata::{MAX_BYTES, MAX_ENTRIES, MetaValue, Metadata, Read};

const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The most bytes a `"meta"` member may take as sent: every value and key
/// quoted, bytes in base64 (4 for 3), and `{"bytes":…}` around each.
const MAX_RAW: usize = MAX_BYTES * 2 + MAX_ENTRIES * 32 + 2;

#[derive(Deserialize)]
#[serde(untagged)]
enum Value<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
    Bytes {
        #[serde(borrow)]
        bytes: Cow<'a, str>,
    },
}

/// A `"meta"` object's members in order, a repeated key kept (to be
/// refused), not folded into one as a map would.
struct Entries<'a>(Vec<(Cow<'a, str>, Value<'a>)>);

impl<'de> Deserialize<'de> for Entries<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Entries<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Entries<'de>, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    if entries.len() > MAX_ENTRIES {
                        return Err(serde::de::Error::custom(format!(
                            "more than {MAX_ENTRIES} entries"
                        )));
                    }
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// Reads a `"meta"` member.
pub(super) fn read(raw: &RawValue) -> Result<Metadata, Error> {
    if raw.get().len() > MAX_RAW {
        return Err(Error::new(
            ErrorKind::InvalidRequest,
            format!(
                "call metadata may hold at most {MAX_BYTES} bytes (keys and values); \
                 this `meta` member takes {} bytes as sent",
                raw.get().len()
            ),
        ));
    }
    let Entries(map) = serde_json::from_str(raw.get()).map_err(|e| {
        Error::new(
            ErrorKind::InvalidRequest,
            format!(
                "`meta` must be an object of strings and {{\"bytes\":\"<base64>\"}} values: {e}"
            ),
        )
    })?;
    let mut metadata = Metadata::new();
    metadata.check_room(map.len(), 0)?;
    // A key sent twice is refused by `push_read`, as in bincode.
    for (key, value) in &map {
        match value {
            Value::Text(text) => metadata.push_read(key, Read::Text(text))?,
            Value::Bytes { bytes } => {
                let decoded = BASE64.decode(bytes.as_bytes()).map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidRequest,
                        format!("the metadata value of `{key}` is not base64: {e}"),
                    )
                })?;
                metadata.push_read(key, Read::Bytes(&decoded))?;
            }
        }
    }
    Ok(metadata)
}

/// Writes `metadata` as a `"meta"` member's value.
pub(super) fn write(dst: &mut BytesMut, metadata: &Metadata) -> Result<(), Error> {
    dst.put_u8(b'{');
    for (i, (key, value)) in metadata.iter().enumerate() {
        if i > 0 {
            dst.put_u8(b',');
        }
        serde_json::to_writer(dst.writer(), key).map_err(encode_error)?;
        dst.put_u8(b':');
        match value {
            MetaValue::Text(text) => {
                serde_json::to_writer(dst.writer(), text).map_err(encode_error)?;
            }
            MetaValue::Bytes(bytes) => {
                dst.put_slice(br#"{"bytes":""#);
                dst.put_slice(BASE64.encode(bytes).as_bytes());
                dst.put_slice(br#""}"#);
            }
        }
    }
    dst.put_u8(b'}');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).unwrap()
    }

    #[test]
    fn round_trips_text_and_bytes() {
        let mut m = Metadata::new();
        m.insert("authorization", "Bearer \"x\"").unwrap();
        m.insert("bin", vec![0u8, 255, 7]).unwrap();
        let mut out = BytesMut::new();
        write(&mut out, &m).unwrap();
        let back = read(&raw(std::str::from_utf8(&out).unwrap())).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn bad_members_are_invalid_requests() {
        for bad in [
            "[1]",
            r#"{"k":1}"#,
            r#"{"K":"v"}"#,
            r#"{"k":{"bytes":"!!"}}"#,
        ] {
            let e = read(&raw(bad)).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{bad}: {e}");
        }
        let twice = read(&raw(r#"{"k":"1","k":"2"}"#)).unwrap_err();
        assert!(twice.message().contains("twice"), "{twice}");
        let huge = format!(r#"{{"k":"{}"}}"#, "x".repeat(MAX_RAW));
        assert!(read(&raw(&huge)).unwrap_err().message().contains("at most"));
    }
}
