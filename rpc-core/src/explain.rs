//! Why a value did not decode, in words a person can act on: serde's text
//! with bincode's nested `OtherString("…")` layers taken off, and the types
//! that need a self-describing format named. Text only: it uses nothing of
//! the crate, so the codecs and the registry can use it, and
//! [`crate::mismatch`] (which round-trips values through the codecs)
//! re-exports it.

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
