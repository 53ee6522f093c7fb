//! One XML-RPC value, between the XML text and serde, and how it is written.
//!
//! ```text
//! <value><int>5</int></value>            Int(5)
//! <value><string>foo</string></value>    Str("foo")     (also <value>foo</value>)
//! <value><array><data>…</data></array></value>
//! <value><struct><member><name>k</name><value>…</value></member></struct></value>
//! <value><nil/></value>                  Nil            (a unit result, None)
//! ```

use std::fmt::Write as _;

use base64::Engine as _;

/// A parsed or to-be-written XML-RPC value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum XmlValue {
    /// `<int>`, `<i4>`, `<i8>`.
    Int(i64),
    /// A `u64` above `i64::MAX`, written as `<i8>`.
    BigUint(u64),
    /// `<boolean>` (`0` or `1`).
    Bool(bool),
    /// `<string>`, or untyped text.
    Str(String),
    /// `<double>`.
    Double(f64),
    /// `<dateTime.iso8601>`, as written (`19980717T14:08:55`).
    DateTime(String),
    /// `<base64>`, decoded.
    Base64(Vec<u8>),
    /// `<array>`.
    Array(Vec<XmlValue>),
    /// `<struct>`, members in order.
    Struct(Vec<(String, XmlValue)>),
    /// `<nil/>`.
    Nil,
}

impl XmlValue {
    /// Appends `<value>…</value>` to `out`.
    pub(crate) fn write(&self, out: &mut String) {
        out.push_str("<value>");
        match self {
            XmlValue::Int(i) if i32::try_from(*i).is_ok() => {
                let _ = write!(out, "<int>{i}</int>");
            }
            XmlValue::Int(i) => {
                let _ = write!(out, "<i8>{i}</i8>");
            }
            XmlValue::BigUint(u) => {
                let _ = write!(out, "<i8>{u}</i8>");
            }
            XmlValue::Bool(b) => {
                let _ = write!(out, "<boolean>{}</boolean>", u8::from(*b));
            }
            XmlValue::Str(s) => tagged(out, "string", s),
            XmlValue::Double(f) => {
                let _ = write!(out, "<double>{f:?}</double>");
            }
            XmlValue::DateTime(s) => tagged(out, "dateTime.iso8601", s),
            XmlValue::Base64(bytes) => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
                let _ = write!(out, "<base64>{encoded}</base64>");
            }
            XmlValue::Array(items) => {
                out.push_str("<array><data>");
                items.iter().for_each(|item| item.write(out));
                out.push_str("</data></array>");
            }
            XmlValue::Struct(members) => {
                out.push_str("<struct>");
                for (name, value) in members {
                    out.push_str("<member>");
                    tagged(out, "name", name);
                    value.write(out);
                    out.push_str("</member>");
                }
                out.push_str("</struct>");
            }
            XmlValue::Nil => out.push_str("<nil/>"),
        }
        out.push_str("</value>");
    }
}

/// `<tag>text</tag>`, the text escaped.
pub(crate) fn tagged(out: &mut String, tag: &str, text: &str) {
    let _ = write!(out, "<{tag}>");
    escape_into(out, text);
    let _ = write!(out, "</{tag}>");
}

/// Escapes `&`, `<`, `>` and `\r` (which a parser would otherwise turn into `\n`).
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(v: &XmlValue) -> String {
        let mut out = String::new();
        v.write(&mut out);
        out
    }

    #[test]
    fn scalars_are_written_with_their_types() {
        assert_eq!(written(&XmlValue::Int(5)), "<value><int>5</int></value>");
        assert_eq!(
            written(&XmlValue::Int(1 << 40)),
            "<value><i8>1099511627776</i8></value>"
        );
        assert_eq!(
            written(&XmlValue::Bool(true)),
            "<value><boolean>1</boolean></value>"
        );
        assert_eq!(
            written(&XmlValue::Double(1.0)),
            "<value><double>1.0</double></value>"
        );
        assert_eq!(written(&XmlValue::Nil), "<value><nil/></value>");
        assert_eq!(
            written(&XmlValue::Base64(b"hi".to_vec())),
            "<value><base64>aGk=</base64></value>"
        );
        assert_eq!(
            written(&XmlValue::Str("a<b&c>\r".into())),
            "<value><string>a&lt;b&amp;c&gt;&#13;</string></value>"
        );
    }

    #[test]
    fn containers_nest() {
        let v = XmlValue::Struct(vec![(
            "k".into(),
            XmlValue::Array(vec![XmlValue::Int(1), XmlValue::Str("x".into())]),
        )]);
        assert_eq!(
            written(&v),
            "<value><struct><member><name>k</name><value><array><data>\
             <value><int>1</int></value><value><string>x</string></value>\
             </data></array></value></member></struct></value>"
        );
    }
}
