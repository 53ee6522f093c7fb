//! Floats JSON cannot carry: NaN, +infinity and -infinity.
//!
//! serde_json writes them as `null`, which the peer then refuses as
//! "invalid type: null, expected f64" — or, worse, reads as `None`. The json
//! codecs refuse them on the sending side instead, naming the value's place:
//!
//! ```text
//! `items[3].ratio` in the 2nd argument is NaN, and the json codec cannot carry NaN or ±infinity; …
//! ```
//!
//! The check costs nothing on the common path: [`to_writer`] writes JSON as
//! `serde_json::to_writer` does and notes whether it wrote a `null`, as
//! every such float becomes. Only then is the value walked again, by a
//! [`serde::Serializer`] that writes nothing and allocates only for the
//! path of a float it finds.

use std::io;

use serde::Serialize;

use crate::error::{Error, ErrorKind};

mod walk;

use walk::{Stop, Walker};

/// Writes `value` as compact JSON, as `serde_json::to_writer` does, and
/// says whether it wrote a `null`: check the value with [`Written`]. A
/// [`crate::Bytes`]'s base64 is written in place, without serde_json's
/// escaping scan (see `blob/json_text.rs`).
pub fn to_writer<W, T>(writer: W, value: &T) -> serde_json::Result<Written>
where
    W: io::Write,
    T: Serialize + ?Sized,
{
    let mut wrote_null = false;
    let mut serializer = serde_json::Serializer::with_formatter(writer, NullSpy(&mut wrote_null));
    value.serialize(crate::blob::json_text::JsonOut(&mut serializer))?;
    Ok(Written { wrote_null })
}

/// [`to_writer`] into a `String`.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<(String, Written)> {
    let mut text = Vec::with_capacity(128);
    let written = to_writer(&mut text, value)?;
    let text = String::from_utf8(text).expect("serde_json writes UTF-8");
    Ok((text, written))
}

/// Serde_json's compact formatter, noting each `null`, and writing a
/// [`crate::Bytes`]'s base64 where the payload asks for it.
struct NullSpy<'a>(&'a mut bool);

impl serde_json::ser::Formatter for NullSpy<'_> {
    fn write_string_fragment<W: io::Write + ?Sized>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        crate::blob::json_text::write_fragment(writer, fragment)
    }

    fn write_null<W: io::Write + ?Sized>(&mut self, writer: &mut W) -> io::Result<()> {
        *self.0 = true;
        writer.write_all(b"null")
    }
}

/// What [`to_writer`] saw: a value just written, to check for a
/// non-finite float (walked again only if a `null` was written).
#[derive(Clone, Copy, Debug)]
#[must_use = "a non-finite float went out as null unless this is checked"]
pub struct Written {
    wrote_null: bool,
}

impl Written {
    /// Fails, as [`ErrorKind::InvalidParams`], if `value`, a call's
    /// arguments, held a non-finite float.
    pub fn arguments<T: Serialize + ?Sized>(self, value: &T, codec: &str) -> Result<(), Error> {
        match self.find(value) {
            None => Ok(()),
            Some(found) => Err(Error::new(
                ErrorKind::InvalidParams,
                found.message(codec, Place::Arguments, "send"),
            )),
        }
    }

    /// [`Written::arguments`] for a transport that adds nothing to the
    /// message: says that the arguments of `method` could not be encoded.
    pub fn arguments_of<T>(self, method: &str, value: &T, codec: &str) -> Result<(), Error>
    where
        T: Serialize + ?Sized,
    {
        self.arguments(value, codec).map_err(|e| {
            let why = format!(
                "the arguments of `{method}` could not be encoded: {}",
                e.message()
            );
            Error::new(e.kind(), why)
        })
    }

    /// Fails, as [`ErrorKind::Internal`], if `value`, a result, held a
    /// non-finite float.
    pub fn result<T: Serialize + ?Sized>(self, value: &T, codec: &str) -> Result<(), Error> {
        match self.find(value) {
            None => Ok(()),
            Some(found) => Err(Error::new(
                ErrorKind::Internal,
                format!(
                    "the result could not be encoded: {}",
                    found.message(codec, Place::Result, "return")
                ),
            )),
        }
    }

    fn find<T: Serialize + ?Sized>(self, value: &T) -> Option<NonFinite> {
        self.wrote_null.then(|| find(value)).flatten()
    }
}

/// The first non-finite float in `value`, in serialization order.
pub fn find<T: Serialize + ?Sized>(value: &T) -> Option<NonFinite> {
    struct Done(bool);
    impl Drop for Done {
        fn drop(&mut self) {
            WALKING.set(self.0);
        }
    }
    let _done = Done(WALKING.replace(true));
    match value.serialize(Walker) {
        Err(Stop::Found(found)) => Some(found),
        Ok(()) | Err(Stop::Failed) => None,
    }
}

thread_local! {
    /// Whether [`find`] is walking a value on this thread.
    static WALKING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the value being serialized is only being looked through for a
/// non-finite float, by [`find`]: a [`crate::Stream`] already handed to
/// its call then writes its placeholder again rather than fail the walk.
pub(crate) fn walking() -> bool {
    WALKING.get()
}

/// A non-finite float and where it lies.
#[derive(Debug, PartialEq)]
pub struct NonFinite {
    value: f64,
    /// Innermost first: pushed as the walk unwinds.
    steps: Vec<Step>,
}

#[derive(Debug, PartialEq)]
enum Step {
    Index(usize),
    Field(&'static str),
    Key(String),
}

/// What the value is: the top level's elements are arguments, or not.
#[derive(Clone, Copy)]
enum Place {
    Arguments,
    Result,
}

impl NonFinite {
    /// The value's path, outermost first: `items[3].ratio`.
    pub fn path(&self) -> String {
        self.path_from(0)
    }

    fn path_from(&self, skip: usize) -> String {
        let mut out = String::new();
        for step in self.steps.iter().rev().skip(skip) {
            match step {
                Step::Index(i) => out.push_str(&format!("[{i}]")),
                Step::Key(key) => out.push_str(&format!("[{key}]")),
                Step::Field(name) if out.is_empty() => out.push_str(name),
                Step::Field(name) => out.push_str(&format!(".{name}")),
            }
        }
        out
    }

    fn message(&self, codec: &str, place: Place, verb: &str) -> String {
        let value = match self.value {
            v if v.is_nan() => "NaN",
            v if v > 0.0 => "+infinity",
            _ => "-infinity",
        };
        // A Python peer has pickle, not bincode.
        let other = if codec == "py-json" {
            "pickle"
        } else {
            "bincode"
        };
        format!(
            "{} is {value}, and the {codec} codec cannot carry NaN or ±infinity; \
             {verb} it as a string, or use the {other} codec",
            self.place(place)
        )
    }

    /// "the 2nd argument", "`ratio` in the 1st argument", "`[3]` in it".
    fn place(&self, place: Place) -> String {
        let (whole, skip) = match (place, self.steps.last()) {
            (Place::Arguments, Some(Step::Index(i))) => (format!("the {} argument", nth(i + 1)), 1),
            (Place::Arguments, _) => ("the arguments".to_owned(), 0),
            (Place::Result, _) => ("it".to_owned(), 0),
        };
        match self.path_from(skip) {
            path if path.is_empty() => whole,
            path => format!("`{path}` in {whole}"),
        }
    }
}

fn nth(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[derive(serde::Serialize)]
    struct Line {
        ratio: f64,
    }

    #[derive(serde::Serialize)]
    struct Order {
        items: Vec<Line>,
        tags: BTreeMap<String, f32>,
    }

    fn order(ratio: f64) -> Order {
        let items = (0..4).map(|i| Line {
            ratio: if i == 3 { ratio } else { 0.5 },
        });
        Order {
            items: items.collect(),
            tags: BTreeMap::new(),
        }
    }

    #[test]
    fn finds_the_path_of_a_nested_nan() {
        let found = find(&order(f64::NAN)).unwrap();
        assert!(found.value.is_nan());
        assert_eq!(found.path(), "items[3].ratio");
    }

    #[test]
    fn finite_values_pass() {
        assert_eq!(find(&order(1.5)), None);
        assert_eq!(find(&(1, "null", None::<f64>, vec![f64::MAX])), None);
    }

    #[test]
    fn map_values_are_named_by_their_key() {
        let mut o = order(0.0);
        o.tags.insert("weight".to_owned(), f32::NEG_INFINITY);
        let found = find(&o).unwrap();
        assert_eq!(found.path(), r#"tags["weight"]"#);
        assert_eq!(found.value, f64::NEG_INFINITY);
    }

    #[test]
    fn arguments_are_named_by_position() {
        let args = (1.0, order(f64::INFINITY));
        let (text, written) = to_string(&args).unwrap();
        assert!(text.contains(r#""ratio":null"#), "{text}");
        let e = written.arguments(&args, "json").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidParams);
        assert_eq!(
            e.message(),
            "`items[3].ratio` in the 2nd argument is +infinity, and the json codec cannot carry \
             NaN or ±infinity; send it as a string, or use the bincode codec"
        );
        let e = to_string(&(f64::NAN,)).unwrap().1;
        let e = e.arguments(&(f64::NAN,), "json").unwrap_err();
        assert!(e.message().starts_with("the 1st argument is NaN, "));
    }

    #[test]
    fn a_result_says_it_could_not_be_encoded() {
        let (_, written) = to_string(&vec![f64::NAN]).unwrap();
        let e = written.result(&vec![f64::NAN], "py-json").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Internal);
        assert_eq!(
            e.message(),
            "the result could not be encoded: `[0]` in it is NaN, and the py-json codec cannot \
             carry NaN or ±infinity; return it as a string, or use the pickle codec"
        );
    }

    #[test]
    fn json_without_null_is_not_walked_and_is_what_serde_json_writes() {
        let value = (1.5, "null", vec![Some(2)], order(0.25));
        let (text, written) = to_string(&value).unwrap();
        assert_eq!(text, serde_json::to_string(&value).unwrap());
        assert!(!written.wrote_null);
        let unwalked = Written { wrote_null: false };
        assert!(unwalked.arguments(&(f64::NAN,), "json").is_ok());
        assert!(to_string(&None::<u8>).unwrap().1.wrote_null);
    }

    #[test]
    fn enum_variants_are_named_like_fields() {
        #[derive(serde::Serialize)]
        enum Shape {
            Circle(f64),
            Box { w: f64 },
        }
        assert_eq!(find(&Shape::Circle(f64::NAN)).unwrap().path(), "Circle");
        assert_eq!(find(&[Shape::Box { w: f64::NAN }]).unwrap().path(), "[0].w");
    }

    #[test]
    fn ordinals() {
        let got: Vec<_> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 101].map(nth).into();
        let want = [
            "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st",
        ];
        assert_eq!(got, want);
    }
}
