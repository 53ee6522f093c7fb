//! The subject of an X.509 certificate, as an RFC 4514 string
//! (`CN=alice,O=Example`), read from its DER with a few lines of walking
//! rather than a parser crate: only the certificates rustls has already
//! verified reach it, and only the subject is read.
//!
//! ```text
//! Certificate  SEQUENCE { tbsCertificate SEQUENCE {
//!     [0] version (optional), serialNumber, signature, issuer, validity,
//!     subject  SEQUENCE OF  SET OF  SEQUENCE { type OID, value string }, ... } ... }
//! ```

/// A DER element: its tag and contents, and what follows it.
fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        0..=0x7f => (usize::from(first), rest),
        0x81..=0x84 => {
            let n = usize::from(first & 0x7f);
            let bytes = rest.get(..n)?;
            let len = bytes.iter().fold(0usize, |l, &b| (l << 8) | usize::from(b));
            (len, &rest[n..])
        }
        _ => return None,
    };
    let contents = rest.get(..len)?;
    Some((tag, contents, &rest[len..]))
}

/// The elements of a constructed value's contents.
fn children(mut der: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || {
        let (tag, contents, rest) = element(der)?;
        der = rest;
        Some((tag, contents))
    })
}

const SEQUENCE: u8 = 0x30;
const VERSION: u8 = 0xa0;

/// The subject of the DER certificate `cert`, RFC 4514; `None` if it does not parse.
pub(crate) fn subject(cert: &[u8]) -> Option<String> {
    let (SEQUENCE, certificate, _) = element(cert)? else {
        return None;
    };
    let (SEQUENCE, tbs) = children(certificate).next()? else {
        return None;
    };
    let mut fields = children(tbs).peekable();
    if fields.peek()?.0 == VERSION {
        fields.next();
    }
    // serialNumber, signature, issuer, validity, then the subject.
    let (SEQUENCE, name) = fields.nth(4)? else {
        return None;
    };
    let mut parts = Vec::new();
    for (_, rdn) in children(name) {
        let attributes: Option<Vec<String>> = children(rdn).map(|(_, a)| attribute(a)).collect();
        parts.push(attributes?.join("+"));
    }
    parts.reverse();
    Some(parts.join(","))
}

/// `type=value` of one AttributeTypeAndValue.
fn attribute(der: &[u8]) -> Option<String> {
    let mut fields = children(der);
    let (0x06, oid) = fields.next()? else {
        return None;
    };
    let (tag, value) = fields.next()?;
    let value = match tag {
        // UTF8String, PrintableString, IA5String, TeletexString (as Latin-1 is not worth it).
        0x0c | 0x13 | 0x16 | 0x14 => escape(&String::from_utf8_lossy(value)),
        _ => format!("#{}", hex(value)),
    };
    Some(format!("{}={value}", name_of(oid)))
}

fn name_of(oid: &[u8]) -> String {
    match oid {
        [0x55, 0x04, 0x03] => "CN".into(),
        [0x55, 0x04, 0x06] => "C".into(),
        [0x55, 0x04, 0x07] => "L".into(),
        [0x55, 0x04, 0x08] => "ST".into(),
        [0x55, 0x04, 0x0a] => "O".into(),
        [0x55, 0x04, 0x0b] => "OU".into(),
        _ => dotted(oid),
    }
}

fn dotted(oid: &[u8]) -> String {
    let mut arcs = Vec::new();
    let mut value = 0u64;
    for &byte in oid {
        value = (value << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            arcs.push(value);
            value = 0;
        }
    }
    let Some(&first) = arcs.first() else {
        return String::new();
    };
    let head = [first.min(80) / 40, first - first.min(80) / 40 * 40];
    let all: Vec<String> = head.iter().chain(&arcs[1..]).map(u64::to_string).collect();
    all.join(".")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 4514's escapes: the special characters, a leading `#` or space, a trailing space.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let edge = (i == 0 && (c == '#' || c == ' ')) || (i == last && c == ' ');
        if edge || matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oid_outside_the_known_names_is_written_dotted() {
        assert_eq!(
            dotted(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01]),
            "1.2.840.113549.1.9.1"
        );
        assert_eq!(name_of(&[0x55, 0x04, 0x03]), "CN");
    }

    #[test]
    fn special_characters_are_escaped() {
        assert_eq!(escape("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape("#x "), "\\#x\\ ");
    }

    #[test]
    fn junk_is_no_subject_and_no_panic() {
        for junk in [
            &b""[..],
            &[0x30],
            &[0x30, 0x85, 0, 0, 0, 0, 0],
            &[0x30, 0x02, 0x30, 0x00],
        ] {
            assert_eq!(subject(junk), None);
        }
    }
}
