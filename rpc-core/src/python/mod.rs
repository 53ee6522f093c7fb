//! Python interop: the data a stock Python `multiprocessing.connection`
//! peer sends, read safely, and the replies it expects.
//!
//! The pattern this serves (the Python Cookbook's RPC proxy) sends each call
//! as one frame, in one of three forms, and reads the reply in the same form:
//!
//! | the Python side sends | frame payload | reply payload |
//! |---|---|---|
//! | `conn.send(pickle.dumps((name, args, kwargs)))` | a pickled `bytes` holding the pickled tuple | `pickle.dumps(result)` as pickled `bytes`; an error is a pickled builtin exception instance the proxy can `raise` |
//! | `conn.send(json.dumps((name, args, kwargs)))` | a pickled `str` holding JSON text | `json.dumps(result)` as a pickled `str`; an error is `{"error": {"type": "AttributeError", "message": "…"}}` |
//! | `conn.send((name, args, kwargs))` | the pickled tuple | the pickled result, or the pickled exception |
//!
//! # Safety
//!
//! Unpickling runs code: `GLOBAL`/`STACK_GLOBAL` import any name and
//! `REDUCE` calls it. The [`pickle`] reader here accepts only plain data
//! (`None`, `bool`, `int`, `float`, `str`, `bytes`, `tuple`, `list`, `dict`)
//! and refuses every opcode that names a global or calls a constructor. It
//! never copies a memoized value: references share one node until the whole
//! value is built, under an expansion budget and a depth limit, so neither a
//! memo bomb nor deep nesting can make it allocate without bound. The one
//! exception is a reply from a Python *server*, which may be a pickled
//! exception; see [`pickle::Options::exceptions`].
//!
//! # Limits
//!
//! - Pickles of protocol 0 and 1's text opcodes, sets, and ints wider than
//!   128 bits are refused; so are `bytes` pickled at protocol 2, which
//!   Python writes as a call to `_codecs.encode`. `conn.send` uses Python's
//!   default protocol (4, or 5 from 3.14), which has none of these.
//! - A method's typed error reaches a Python client as the class of
//!   [`ErrorKind::Application`](crate::ErrorKind::Application)
//!   (`RuntimeError`) with its message, and its value as the exception's
//!   attribute `data` (or the JSON error object's `"data"`), in the JSON
//!   form HTTP callers get (see [`call`]). A Python exception reaches our
//!   client as an `Application` error naming class and message, not as
//!   data.
//! - The values cross as serde sees them, human-readable, but for
//!   [`crate::Bytes`], which is `bytes` in a pickle, in both directions and
//!   nested too (a `Vec<u8>` is a list of ints). In the JSON form it is
//!   base64 text, as in any JSON. Python `bytes` read into either.
//!
//! # Layout
//!
//! | file | holds |
//! |---|---|
//! | `mod.rs` | [`PyValue`], its `repr` and JSON forms |
//! | [`pickle`] | the safe reader: opcodes → nodes (`machine.rs`) → [`PyValue`] within the budget (`build.rs`) |
//! | `write.rs` | [`PyValue`] → pickle bytes ([`write()`]); an exception for a Python client ([`write_exception`]) |
//! | `ser.rs` | any `Serialize` → [`PyValue`] ([`to_value`]) |
//! | `de.rs` | [`PyValue`] as a serde `Deserializer` |
//! | [`call`] | serving a Python client: its request, bound to parameter names, and its reply |
//! | [`codec`] | calling a Python server: the [`Pickle`] and [`PyJson`] codecs, request frames and replies |

pub mod call;
pub mod codec;
mod de;
pub mod pickle;
mod ser;
mod write;

use std::fmt;

pub use self::codec::{Pickle, PyJson};
pub use self::de::DeError;
use self::ser::to_json_value;
pub use self::ser::{SerError, to_value};
pub use self::write::{write, write_exception, write_exception_with};

/// A plain Python value, as read from a pickle or written to one.
#[derive(Clone, Debug, PartialEq)]
pub enum PyValue {
    /// `None`.
    None,
    /// `True` or `False`.
    Bool(bool),
    /// An `int`; larger ones than 128 bits are refused when read.
    Int(i128),
    /// A `float`.
    Float(f64),
    /// A `str`.
    Str(String),
    /// A `bytes` (or `bytearray`).
    Bytes(Vec<u8>),
    /// A `tuple`.
    Tuple(Vec<PyValue>),
    /// A `list`.
    List(Vec<PyValue>),
    /// A `dict`, in insertion order.
    Dict(Vec<(PyValue, PyValue)>),
}

impl PyValue {
    /// The Python type's name, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            PyValue::None => "NoneType",
            PyValue::Bool(_) => "bool",
            PyValue::Int(_) => "int",
            PyValue::Float(_) => "float",
            PyValue::Str(_) => "str",
            PyValue::Bytes(_) => "bytes",
            PyValue::Tuple(_) => "tuple",
            PyValue::List(_) => "list",
            PyValue::Dict(_) => "dict",
        }
    }

    /// The value from a JSON document, as `json.loads` would give it
    /// (arrays become lists).
    pub fn from_json(json: serde_json::Value) -> PyValue {
        use serde_json::Value as J;
        match json {
            J::Null => PyValue::None,
            J::Bool(b) => PyValue::Bool(b),
            J::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => PyValue::Int(i.into()),
                (None, Some(u)) => PyValue::Int(u.into()),
                _ => PyValue::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            J::String(s) => PyValue::Str(s),
            J::Array(items) => PyValue::List(items.into_iter().map(PyValue::from_json).collect()),
            J::Object(map) => PyValue::Dict(
                map.into_iter()
                    .map(|(k, v)| (PyValue::Str(k), PyValue::from_json(v)))
                    .collect(),
            ),
        }
    }
}

/// Python's `repr`, near enough for messages: `'x'`, `(1,)`, `{'a': b'\x00'}`.
impl fmt::Display for PyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PyValue::None => f.write_str("None"),
            PyValue::Bool(true) => f.write_str("True"),
            PyValue::Bool(false) => f.write_str("False"),
            PyValue::Int(i) => write!(f, "{i}"),
            PyValue::Float(x) => write!(f, "{x:?}"),
            PyValue::Str(s) => write!(f, "'{}'", s.escape_debug()),
            PyValue::Bytes(b) => write!(f, "b'{}'", b.escape_ascii()),
            PyValue::Tuple(items) if items.len() == 1 => write!(f, "({},)", items[0]),
            PyValue::Tuple(items) => joined(f, "(", items.iter(), ")"),
            PyValue::List(items) => joined(f, "[", items.iter(), "]"),
            PyValue::Dict(entries) => {
                let entries = entries.iter().map(|(k, v)| format!("{k}: {v}"));
                joined(f, "{", entries, "}")
            }
        }
    }
}

fn joined<T: fmt::Display>(
    f: &mut fmt::Formatter<'_>,
    open: &str,
    items: impl Iterator<Item = T>,
    close: &str,
) -> fmt::Result {
    f.write_str(open)?;
    for (i, item) in items.enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{item}")?;
    }
    f.write_str(close)
}

/// As JSON: tuples and lists become arrays, `bytes` an array of numbers;
/// what `json.dumps` writes for the same data, bytes aside. In JSON, dict
/// keys that are ints become strings, as there; other non-`str` keys fail.
impl serde::Serialize for PyValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            PyValue::None => s.serialize_unit(),
            PyValue::Bool(b) => s.serialize_bool(*b),
            PyValue::Int(i) => match i64::try_from(*i) {
                Ok(i) => s.serialize_i64(i),
                Err(_) => s.serialize_i128(*i),
            },
            PyValue::Float(x) => s.serialize_f64(*x),
            PyValue::Str(v) => s.serialize_str(v),
            PyValue::Bytes(b) => s.serialize_bytes(b),
            PyValue::Tuple(items) | PyValue::List(items) => s.collect_seq(items),
            PyValue::Dict(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

#[cfg(test)]
mod tests;
