//! Reading an XML-RPC `<methodCall>` into a method name and [`XmlValue`]s.
//!
//! ```text
//! <?xml version="1.0"?>
//! <methodCall>
//!   <methodName>set</methodName>
//!   <params><param><value><string>foo</string></value></param>…</params>
//! </methodCall>
//! ```
//!
//! The reader is strict and bounded: no DTD (so no entity can be defined or
//! expanded — only `&lt;` `&gt;` `&amp;` `&apos;` `&quot;` and numeric
//! character references), values nested at most [`MAX_DEPTH`] deep, and the
//! body already bounded by the gateway's size limit. Python's `ex:` prefixed
//! extension types (`<ex:nil/>`, `<ex:i8>`) read like the plain ones.
//!
//! Every value read is charged to the body's decode budget
//! ([`rpc_core::budget`]) at what it and the dynamic value it becomes cost;
//! over it, the call is refused with [`ErrorKind::OverBudget`].

use base64::Engine as _;
use quick_xml::Reader;
use quick_xml::events::Event;
use rpc_core::budget::{self, Meter, OverBudget, cost};
use rpc_core::{Error, ErrorKind};

use super::reply::MAX_DEPTH;
use super::xml_value::XmlValue;

/// A call as read from the body.
#[derive(Debug, PartialEq)]
pub(crate) struct MethodCall {
    /// The `<methodName>`.
    pub(crate) name: String,
    /// The `<param>` values, in order.
    pub(crate) params: Vec<XmlValue>,
}

/// Reads a `<methodCall>`; fails with [`ErrorKind::Parse`] saying what is
/// wrong and where.
pub(crate) fn read_call(xml: &[u8]) -> Result<MethodCall, Error> {
    read_call_within(xml, budget::for_message(xml.len()))
}

/// [`read_call`] within a decode budget of `limit` bytes. (XML is verbose:
/// no document reaches the budget of its own length, about 25 bytes a byte
/// at most, for `<base64>`; a smaller one shows the refusal.)
fn read_call_within(xml: &[u8], limit: usize) -> Result<MethodCall, Error> {
    let mut pull = Pull::new(xml, limit);
    pull.read_call().map_err(|why| {
        if let Some(over) = pull.over {
            return over.into();
        }
        let at = pull.reader.buffer_position();
        Error::new(
            ErrorKind::Parse,
            format!("malformed XML-RPC request near byte {at}: {why}"),
        )
    })
}

/// What the parser sees: elements and text, comments and the like skipped.
#[derive(Debug, PartialEq)]
enum Token {
    Open(String),
    Close,
    Text(String),
    End,
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Token::Open(name) => write!(f, "<{name}>"),
            Token::Close => f.write_str("an end tag"),
            Token::Text(text) if text.chars().count() > 40 => {
                let start: String = text.chars().take(40).collect();
                write!(f, "text {start:?}…")
            }
            Token::Text(text) => write!(f, "text {text:?}"),
            Token::End => f.write_str("the end of the document"),
        }
    }
}

struct Pull<'a> {
    reader: Reader<&'a [u8]>,
    peeked: Option<Token>,
    /// The decode budget of the body, charged for every value read.
    meter: Meter,
    /// Set when a value went over the budget.
    over: Option<OverBudget>,
}

impl<'a> Pull<'a> {
    fn new(xml: &'a [u8], limit: usize) -> Pull<'a> {
        let mut reader = Reader::from_reader(xml);
        let config = reader.config_mut();
        config.expand_empty_elements = true;
        config.check_end_names = true;
        Pull {
            reader,
            peeked: None,
            meter: Meter::new(limit),
            over: None,
        }
    }

    /// Charges a value read, holding `heap` bytes of its own: it is built
    /// here, then becomes a dynamic value's node (or a typed argument), both
    /// alive at once; its array may hold as much again in spare capacity.
    fn charge(&mut self, heap: usize) -> Result<(), String> {
        let node = 2 * std::mem::size_of::<XmlValue>() + cost::NODE;
        self.meter
            .charge(node.saturating_add(heap))
            .map_err(|over| {
                self.over = Some(over);
                over.to_string()
            })
    }

    fn read_call(&mut self) -> Result<MethodCall, String> {
        self.open("methodCall")?;
        self.open("methodName")?;
        let name = self.text()?.trim().to_owned();
        let mut params = Vec::new();
        match self.tag()? {
            Token::Open(t) if t == "params" => {
                while self.open_or_close("param")? {
                    self.open("value")?;
                    params.push(self.value(1)?);
                    self.close()?;
                }
            }
            Token::Close => {
                self.peeked = Some(Token::Close);
            }
            other => return Err(format!("expected <params>, found {other}")),
        }
        self.close()?;
        match self.tag()? {
            Token::End => Ok(MethodCall { name, params }),
            other => Err(format!("expected the end of the document, found {other}")),
        }
    }

    /// The inside of a `<value>` whose start tag was read, up to and
    /// including its end tag.
    fn value(&mut self, depth: usize) -> Result<XmlValue, String> {
        if depth > MAX_DEPTH {
            return Err(format!("values nest deeper than {MAX_DEPTH} levels"));
        }
        let value = match self.token()? {
            Token::Close => {
                self.charge(0)?;
                return Ok(XmlValue::Str(String::new()));
            }
            Token::Text(text) => match self.token()? {
                Token::Close => {
                    self.charge(cost::heap(text.len()))?;
                    return Ok(XmlValue::Str(text));
                }
                Token::Open(tag) if text.trim().is_empty() => self.typed(&tag, depth)?,
                other => return Err(format!("unexpected {other} after text in <value>")),
            },
            Token::Open(tag) => self.typed(&tag, depth)?,
            Token::End => return Err("the document ends inside a <value>".into()),
        };
        self.close()?;
        Ok(value)
    }

    /// The value inside `<tag>`, whose start tag was read, up to its end tag.
    fn typed(&mut self, tag: &str, depth: usize) -> Result<XmlValue, String> {
        let tag = tag.strip_prefix("ex:").unwrap_or(tag);
        let value = self.typed_value(tag, depth)?;
        let heap = match &value {
            XmlValue::Str(s) | XmlValue::DateTime(s) => cost::heap(s.len()),
            // As a dynamic value, bytes are an array of numbers.
            XmlValue::Base64(b) => cost::heap(b.len()).saturating_add(cost::array(b.len())),
            XmlValue::Struct(members) => members
                .iter()
                .enumerate()
                .map(|(i, (name, _))| cost::entry(i).saturating_add(cost::heap(name.len())))
                .fold(0, usize::saturating_add),
            _ => 0,
        };
        self.charge(heap)?;
        Ok(value)
    }

    fn typed_value(&mut self, tag: &str, depth: usize) -> Result<XmlValue, String> {
        Ok(match tag {
            "int" | "i4" | "i8" | "i1" | "i2" => {
                let text = self.text()?;
                XmlValue::Int(text.trim().parse().map_err(|_| not_a(tag, &text))?)
            }
            "boolean" => match self.text()?.trim() {
                "1" => XmlValue::Bool(true),
                "0" => XmlValue::Bool(false),
                other => return Err(not_a("boolean (0 or 1)", other)),
            },
            "string" => XmlValue::Str(self.text()?),
            "double" | "float" => {
                let text = self.text()?;
                XmlValue::Double(text.trim().parse().map_err(|_| not_a(tag, &text))?)
            }
            "dateTime.iso8601" => XmlValue::DateTime(self.text()?.trim().to_owned()),
            "base64" => {
                let text: String = self.text()?.split_whitespace().collect();
                let engine = base64::engine::general_purpose::STANDARD;
                XmlValue::Base64(
                    engine
                        .decode(&text)
                        .map_err(|e| format!("bad <base64>: {e}"))?,
                )
            }
            "nil" => {
                self.close()?;
                XmlValue::Nil
            }
            "array" => {
                self.open("data")?;
                let mut items = Vec::new();
                while self.open_or_close("value")? {
                    items.push(self.value(depth + 1)?);
                }
                self.close()?;
                XmlValue::Array(items)
            }
            "struct" => {
                let mut members = Vec::new();
                while self.open_or_close("member")? {
                    self.open("name")?;
                    let name = self.text()?;
                    self.open("value")?;
                    members.push((name, self.value(depth + 1)?));
                    self.close()?;
                }
                XmlValue::Struct(members)
            }
            other => return Err(format!("unknown value type <{other}>")),
        })
    }

    /// Text up to the end tag of the element just opened (empty if none).
    fn text(&mut self) -> Result<String, String> {
        match self.token()? {
            Token::Close => Ok(String::new()),
            Token::Text(text) => {
                self.close()?;
                Ok(text)
            }
            other => Err(format!("expected text, found {other}")),
        }
    }

    fn open(&mut self, name: &str) -> Result<(), String> {
        match self.tag()? {
            Token::Open(t) if t == name => Ok(()),
            other => Err(format!("expected <{name}>, found {other}")),
        }
    }

    /// `true` after `<name>`, `false` after the end tag of the enclosing element.
    fn open_or_close(&mut self, name: &str) -> Result<bool, String> {
        match self.tag()? {
            Token::Open(t) if t == name => Ok(true),
            Token::Close => Ok(false),
            other => Err(format!("expected <{name}> or an end tag, found {other}")),
        }
    }

    fn close(&mut self) -> Result<(), String> {
        match self.tag()? {
            Token::Close => Ok(()),
            other => Err(format!("expected an end tag, found {other}")),
        }
    }

    /// The next token that is not whitespace; other text is an error here.
    fn tag(&mut self) -> Result<Token, String> {
        match self.token()? {
            Token::Text(t) if t.trim().is_empty() => self.token(),
            Token::Text(t) => Err(format!("unexpected text {t:?}")),
            other => Ok(other),
        }
    }

    /// The next token, adjacent text and references merged into one.
    fn token(&mut self) -> Result<Token, String> {
        if let Some(token) = self.peeked.take() {
            return Ok(token);
        }
        let mut text: Option<String> = None;
        loop {
            let event = self.reader.read_event().map_err(|e| e.to_string())?;
            let next = match event {
                Event::Start(e) => {
                    let name = std::str::from_utf8(e.name().as_ref())
                        .map_err(|_| "an element name is not UTF-8")?
                        .to_owned();
                    Token::Open(name)
                }
                Event::End(_) => Token::Close,
                Event::Eof => Token::End,
                Event::Text(t) => {
                    let t = t.xml10_content().map_err(|e| e.to_string())?;
                    text.get_or_insert_with(String::new).push_str(&t);
                    continue;
                }
                Event::CData(t) => {
                    let t = t.decode().map_err(|e| e.to_string())?;
                    text.get_or_insert_with(String::new).push_str(&t);
                    continue;
                }
                Event::GeneralRef(r) => {
                    push_reference(text.get_or_insert_with(String::new), &r)?;
                    continue;
                }
                Event::DocType(_) => {
                    return Err("a DOCTYPE is not allowed (no DTD, no entity definitions)".into());
                }
                Event::Empty(_) | Event::Comment(_) | Event::Decl(_) | Event::PI(_) => continue,
            };
            return Ok(match text {
                Some(text) => {
                    self.peeked = Some(next);
                    Token::Text(text)
                }
                None => next,
            });
        }
    }
}

/// Appends the text of a predefined entity or a character reference.
fn push_reference(text: &mut String, r: &quick_xml::events::BytesRef<'_>) -> Result<(), String> {
    if r.is_char_ref() {
        let c = r
            .resolve_char_ref()
            .map_err(|e| e.to_string())?
            .ok_or("a character reference to no character")?;
        text.push(c);
        return Ok(());
    }
    let name = r.decode().map_err(|e| e.to_string())?;
    let resolved = quick_xml::escape::resolve_predefined_entity(&name).ok_or_else(|| {
        format!("unknown entity `&{name};` (only the five predefined ones are read)")
    })?;
    text.push_str(resolved);
    Ok(())
}

fn not_a(what: &str, text: &str) -> String {
    format!("{} is not a valid <{what}>", crate::quiet::peer_text(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(xml: &str) -> Result<MethodCall, String> {
        read_call(xml.as_bytes()).map_err(|e| e.message().to_owned())
    }

    #[test]
    fn pythons_request_reads() {
        let xml = "<?xml version='1.0'?>\n<methodCall>\n<methodName>set</methodName>\n<params>\n\
                   <param>\n<value><string>spam</string></value>\n</param>\n<param>\n<value><array><data>\n\
                   <value><int>1</int></value>\n<value><i8>2</i8></value>\n</data></array></value>\n</param>\n\
                   </params>\n</methodCall>\n";
        let c = call(xml).unwrap();
        assert_eq!(c.name, "set");
        assert_eq!(
            c.params,
            [
                XmlValue::Str("spam".into()),
                XmlValue::Array(vec![XmlValue::Int(1), XmlValue::Int(2)])
            ]
        );
    }

    #[test]
    fn every_type_reads() {
        let xml = "<methodCall><methodName>m</methodName><params>\
            <param><value>  untyped &amp; &#65;&#x42; </value></param>\
            <param><value><boolean>1</boolean></value></param>\
            <param><value><double>-1.5</double></value></param>\
            <param><value><dateTime.iso8601>19980717T14:08:55</dateTime.iso8601></value></param>\
            <param><value><base64>aG\nk=</base64></value></param>\
            <param><value><nil/></value></param>\
            <param><value><ex:nil/></value></param>\
            <param><value><struct><member><name>k</name><value><string/></value></member></struct></value></param>\
            <param><value/></param>\
            <param><value><string><![CDATA[<x>]]></string></value></param>\
            </params></methodCall>";
        let c = call(xml).unwrap();
        assert_eq!(
            c.params,
            [
                XmlValue::Str("  untyped & AB ".into()),
                XmlValue::Bool(true),
                XmlValue::Double(-1.5),
                XmlValue::DateTime("19980717T14:08:55".into()),
                XmlValue::Base64(b"hi".to_vec()),
                XmlValue::Nil,
                XmlValue::Nil,
                XmlValue::Struct(vec![("k".into(), XmlValue::Str(String::new()))]),
                XmlValue::Str(String::new()),
                XmlValue::Str("<x>".into()),
            ]
        );
    }

    #[test]
    fn no_params_is_no_arguments() {
        assert_eq!(
            call("<methodCall><methodName>keys</methodName></methodCall>")
                .unwrap()
                .params,
            []
        );
        assert_eq!(
            call("<methodCall><methodName>keys</methodName><params/></methodCall>")
                .unwrap()
                .params,
            []
        );
    }

    #[test]
    fn entities_beyond_the_predefined_are_refused() {
        let doctype = "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"aaaa\">]>\
                       <methodCall><methodName>&a;</methodName></methodCall>";
        assert!(call(doctype).unwrap_err().contains("DOCTYPE"));
        let unknown = "<methodCall><methodName>&a;</methodName></methodCall>";
        assert!(call(unknown).unwrap_err().contains("unknown entity"));
    }

    #[test]
    fn values_past_the_decode_budget_are_refused() {
        let xml = format!(
            "<methodCall><methodName>m</methodName><params><param><value><array><data>\
             {}</data></array></value></param></params></methodCall>",
            "<value/>".repeat(10_000)
        );
        let e = read_call_within(xml.as_bytes(), 64 << 10)
            .map(drop)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::OverBudget, "{e}");
        assert_eq!(
            e.message(),
            "the value would take more than 65536 bytes of memory, the decode budget \
             for its message (32 bytes per byte received, at least 65536)"
        );
        // Its own budget holds it, as it holds the densest documents.
        assert_eq!(
            read_call(xml.as_bytes()).map(|c| c.params.len()).unwrap(),
            1
        );
        let blob = format!(
            "<methodCall><methodName>m</methodName><params><param><value><base64>{}\
             </base64></value></param></params></methodCall>",
            "AAAA".repeat(100_000)
        );
        assert_eq!(
            read_call(blob.as_bytes()).map(|c| c.params.len()).unwrap(),
            1
        );
    }

    #[test]
    fn deep_nesting_is_refused() {
        let depth = MAX_DEPTH + 1;
        let xml = format!(
            "<methodCall><methodName>m</methodName><params><param><value>{}{}</value></param></params></methodCall>",
            "<array><data><value>".repeat(depth),
            "</value></data></array>".repeat(depth)
        );
        assert!(call(&xml).unwrap_err().contains("deeper than"));
    }

    #[test]
    fn malformed_documents_say_what_is_wrong() {
        for bad in [
            "",
            "<methodCall>",
            "<methodCall><methodName>m</methodName></methodCall><extra/>",
            "<methodCall><methodName>m</methodName><params><param><value><int>x</int></value></param></params></methodCall>",
            "<methodCall><methodName>m</methodName><params><param><value><blob/></value></param></params></methodCall>",
            "<methodCall><methodName>m</wrong></methodCall>",
            "not xml at all",
        ] {
            let e = call(bad).unwrap_err();
            assert!(
                e.starts_with("malformed XML-RPC request near byte "),
                "{bad}: {e}"
            );
        }
        let bogus = "<methodCall><methodName>m</methodName><params><param><bogus/></param></params></methodCall>";
        assert_eq!(
            call(bogus).unwrap_err(),
            "malformed XML-RPC request near byte 61: expected <value>, found <bogus>"
        );
    }
}
