//! Per-call metadata: a small map of string keys to a string or bytes,
//! carried beside a call's arguments (auth tokens, request ids, W3C trace
//! context), read by handlers and middleware from [`crate::Context`].
//!
//! Keys are 1 to [`MAX_KEY_BYTES`] bytes of lowercase ASCII letters, digits,
//! `-`, `_` and `.` (HTTP header names, lowercased). A request carries at
//! most [`MAX_ENTRIES`] entries of at most [`MAX_BYTES`] bytes in all
//! (keys and values); a server refuses a larger map with `InvalidRequest`,
//! having checked each entry's size before it copies it.
//!
//! On the wire (protocol 2, see the kind table in [`crate::codec`]):
//!
//! ```text
//! bincode  09 | id | deadline_ms | method | count: varint | (key: len+utf8 | 00 text: len+utf8 | 01 bytes: len+bytes)… | args…
//! JSON     {"jsonrpc":"2.0","id":1,"method":"…","params":[…],"meta":{"authorization":"Bearer …","bin":{"bytes":"<base64>"}}}
//! ```

use std::fmt;

use crate::error::{Error, ErrorKind};

/// The most entries one call's metadata may have.
pub const MAX_ENTRIES: usize = 32;
/// The most bytes one call's metadata may hold: keys and values together.
pub const MAX_BYTES: usize = 8 * 1024;
/// The longest key.
pub const MAX_KEY_BYTES: usize = 64;

/// One value: text, or bytes.
#[derive(Clone, PartialEq, Eq)]
pub enum MetaValue {
    /// A string (an HTTP header value, a token).
    Text(String),
    /// Bytes (a binary trace id, a signature).
    Bytes(Vec<u8>),
}

impl MetaValue {
    /// The value as text, if it is text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::Text(s) => Some(s),
            MetaValue::Bytes(_) => None,
        }
    }

    /// The value's bytes (a text's UTF-8).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            MetaValue::Text(s) => s.as_bytes(),
            MetaValue::Bytes(b) => b,
        }
    }

    fn len(&self) -> usize {
        self.as_bytes().len()
    }
}

impl fmt::Debug for MetaValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetaValue::Text(s) => s.fmt(f),
            MetaValue::Bytes(b) => write!(f, "<{} bytes>", b.len()),
        }
    }
}

impl From<String> for MetaValue {
    fn from(s: String) -> MetaValue {
        MetaValue::Text(s)
    }
}

impl From<&str> for MetaValue {
    fn from(s: &str) -> MetaValue {
        MetaValue::Text(s.to_owned())
    }
}

impl From<Vec<u8>> for MetaValue {
    fn from(b: Vec<u8>) -> MetaValue {
        MetaValue::Bytes(b)
    }
}

impl From<&[u8]> for MetaValue {
    fn from(b: &[u8]) -> MetaValue {
        MetaValue::Bytes(b.to_vec())
    }
}

/// A call's metadata; see the [module](self) for its limits.
///
/// ```
/// # use rpc_core::metadata::Metadata;
/// let mut meta = Metadata::new();
/// meta.insert("authorization", "Bearer s3cret").unwrap();
/// assert_eq!(meta.text("authorization"), Some("Bearer s3cret"));
/// assert!(meta.insert("Not A Key", "x").is_err());
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    entries: Vec<(Box<str>, MetaValue)>,
    /// Keys and values, in bytes.
    size: usize,
}

impl Metadata {
    /// An empty map.
    pub fn new() -> Metadata {
        Metadata::default()
    }

    /// Sets `key` to `value`, replacing what it held. Fails (and changes
    /// nothing) if the key is not valid or the map would pass its limits.
    pub fn insert(&mut self, key: &str, value: impl Into<MetaValue>) -> Result<(), Error> {
        let value = value.into();
        check_key(key)?;
        let old = self.entries.iter().position(|(k, _)| &**k == key);
        let freed = old.map_or(0, |i| key.len() + self.entries[i].1.len());
        let entries = self.entries.len() + usize::from(old.is_none());
        self.check_room(entries, self.size - freed + key.len() + value.len())?;
        self.size = self.size - freed + key.len() + value.len();
        match old {
            Some(i) => self.entries[i].1 = value,
            None => self.entries.push((key.into(), value)),
        }
        Ok(())
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.entries
            .iter()
            .find(|(k, _)| &**k == key)
            .map(|(_, v)| v)
    }

    /// The value of `key`, if it is text.
    pub fn text(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(MetaValue::as_str)
    }

    /// Removes `key`, returning what it held.
    pub fn remove(&mut self, key: &str) -> Option<MetaValue> {
        let i = self.entries.iter().position(|(k, _)| &**k == key)?;
        let (key, value) = self.entries.swap_remove(i);
        self.size -= key.len() + value.len();
        Some(value)
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &MetaValue)> {
        self.entries.iter().map(|(k, v)| (&**k, v))
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it has no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Keys and values together, in bytes (what [`MAX_BYTES`] bounds).
    pub fn size(&self) -> usize {
        self.size
    }

    /// `self` with `other`'s entries set over it.
    pub fn merged(&self, other: &Metadata) -> Result<Metadata, Error> {
        let mut out = self.clone();
        for (k, v) in other.iter() {
            out.insert(k, v.clone())?;
        }
        Ok(out)
    }

    /// Fails unless a map of `entries` entries and `size` bytes is within
    /// the limits: what a decoder checks before it copies an entry.
    pub fn check_room(&self, entries: usize, size: usize) -> Result<(), Error> {
        if entries > MAX_ENTRIES {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                format!("call metadata may have at most {MAX_ENTRIES} entries"),
            ));
        }
        if size > MAX_BYTES {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                format!(
                    "call metadata may hold at most {MAX_BYTES} bytes (keys and values); \
                     this would hold {size}"
                ),
            ));
        }
        Ok(())
    }

    /// Adds an entry read from the wire: checked for room before anything
    /// is copied, and for its key. A key sent twice is refused.
    pub fn push_read(&mut self, key: &str, value: Read<'_>) -> Result<(), Error> {
        let len = match value {
            Read::Text(s) => s.len(),
            Read::Bytes(b) => b.len(),
        };
        self.check_room(self.entries.len() + 1, self.size + key.len() + len)?;
        check_key(key)?;
        if self.get(key).is_some() {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                format!("the call metadata names `{key}` twice"),
            ));
        }
        let value = match value {
            Read::Text(s) => MetaValue::Text(s.to_owned()),
            Read::Bytes(b) => MetaValue::Bytes(b.to_vec()),
        };
        self.size += key.len() + len;
        self.entries.push((key.into(), value));
        Ok(())
    }
}

/// A value as a decoder reads it, borrowed from the frame.
#[derive(Clone, Copy, Debug)]
pub enum Read<'a> {
    /// Text.
    Text(&'a str),
    /// Bytes.
    Bytes(&'a [u8]),
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Fails unless `key` is a valid metadata key.
pub fn check_key(key: &str) -> Result<(), Error> {
    let valid = !key.is_empty()
        && key.len() <= MAX_KEY_BYTES
        && key
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.'));
    if valid {
        return Ok(());
    }
    let shown: String = key.chars().take(MAX_KEY_BYTES).collect();
    Err(Error::new(
        ErrorKind::InvalidRequest,
        format!(
            "`{shown}` is not a metadata key: use 1 to {MAX_KEY_BYTES} lowercase ASCII letters, \
             digits, `-`, `_` or `.` (an HTTP header name, lowercased)"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_replaces_and_counts_bytes() {
        let mut m = Metadata::new();
        m.insert("a", "xyz").unwrap();
        m.insert("a", "q").unwrap();
        assert_eq!((m.len(), m.size()), (1, 2));
        m.insert("bin", vec![1u8, 2, 3]).unwrap();
        assert_eq!(m.get("bin").unwrap().as_bytes(), &[1, 2, 3]);
        assert_eq!(m.remove("a"), Some(MetaValue::Text("q".into())));
        assert_eq!(m.size(), 6);
    }

    #[test]
    fn keys_are_lowercase_tokens() {
        let mut m = Metadata::new();
        for bad in ["", "Upper", "a b", "é", &"k".repeat(MAX_KEY_BYTES + 1)] {
            let e = m.insert(bad, "v").unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{bad}");
        }
        m.insert("x-request-id.v2_a", "v").unwrap();
    }

    #[test]
    fn limits_hold_and_a_refused_insert_changes_nothing() {
        let mut m = Metadata::new();
        m.insert("big", "x".repeat(MAX_BYTES - 3)).unwrap();
        assert!(m.insert("more", "y").is_err());
        assert_eq!(m.len(), 1);
        let mut m = Metadata::new();
        for i in 0..MAX_ENTRIES {
            m.insert(&format!("k{i}"), "").unwrap();
        }
        assert!(m.insert("one-more", "").is_err());
        let e = Metadata::new()
            .push_read("k", Read::Bytes(&vec![0; MAX_BYTES]))
            .unwrap_err();
        assert!(e.message().contains("at most"), "{e}");
    }

    #[test]
    fn a_key_read_twice_is_refused() {
        let mut m = Metadata::new();
        m.push_read("k", Read::Text("1")).unwrap();
        assert!(m.push_read("k", Read::Text("2")).is_err());
    }
}
