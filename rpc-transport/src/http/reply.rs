//! Encoding what the gateway sends back: results and errors as JSON (no
//! larger than the reply limit), the status that goes with each error, and
//! the scan that bounds a JSON body's nesting and batch size before parsing.

use std::panic::AssertUnwindSafe;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use rpc_core::service::{Fault, panic_message};
use rpc_core::{Error, ErrorKind};

/// How deep a JSON body may nest (arrays and objects), and an XML-RPC value.
pub(crate) const MAX_DEPTH: usize = 64;

/// `application/json`.
pub(crate) const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Serializes `value` as JSON; a value that fails to encode, or panics while
/// encoding, is an internal error rather than a lost connection.
pub(crate) fn to_json(value: &dyn erased_serde::Serialize) -> Result<Vec<u8>, Error> {
    let encoded = std::panic::catch_unwind(AssertUnwindSafe(|| serde_json::to_vec(value)));
    match encoded {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => Err(Error::new(
            ErrorKind::Internal,
            format!("the result could not be encoded as JSON: {e}"),
        )),
        Err(panic) => Err(Error::new(
            ErrorKind::Internal,
            format!("encoding the result panicked: {}", panic_message(&*panic)),
        )),
    }
}

/// Appends `value` as JSON to `out` unless that would make `out` longer
/// than `limit` bytes: then `out` is left as it was and this fails with
/// [`Encoded::TooLarge`], having written (and held) at most `limit` bytes.
/// A value holding NaN or ±infinity, which JSON cannot carry, fails as the
/// JSON codec fails it over TCP, rather than going out as `null`.
pub(crate) fn write_json_within(
    out: &mut BytesMut,
    value: &dyn erased_serde::Serialize,
    limit: usize,
) -> Result<(), Encoded> {
    let mark = out.len();
    let mut writer = Within {
        out: &mut *out,
        limit,
        over: false,
    };
    let encoded = std::panic::catch_unwind(AssertUnwindSafe(|| {
        rpc_core::finite::to_writer(&mut writer, value)
    }));
    let over = writer.over;
    let failed = match encoded {
        Ok(Ok(written)) => match written.result(value, "json") {
            Ok(()) => return Ok(()),
            Err(non_finite) => Encoded::Failed(non_finite),
        },
        Ok(Err(_)) if over => Encoded::TooLarge,
        Ok(Err(e)) => Encoded::Failed(Error::new(
            ErrorKind::Internal,
            format!("the result could not be encoded as JSON: {e}"),
        )),
        Err(panic) => Encoded::Failed(Error::new(
            ErrorKind::Internal,
            format!("encoding the result panicked: {}", panic_message(&*panic)),
        )),
    };
    out.truncate(mark);
    Err(failed)
}

/// Why [`write_json_within`] wrote nothing.
#[derive(Debug)]
pub(crate) enum Encoded {
    /// The value does not fit in what is left of the limit.
    TooLarge,
    /// The value cannot be encoded, or its `Serialize` panicked.
    Failed(Error),
}

/// A writer that refuses the byte that would pass `limit`.
struct Within<'a> {
    out: &'a mut BytesMut,
    limit: usize,
    over: bool,
}

impl std::io::Write for Within<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.len() + buf.len() > self.limit {
            self.over = true;
            return Err(std::io::Error::other("over the reply limit"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The error of a reply larger than `limit` bytes (the server's
/// `max_frame_bytes`, which bounds replies over TCP as well).
pub(crate) fn reply_too_large(limit: usize) -> Error {
    Error::new(
        ErrorKind::OverBudget,
        format!(
            "the reply would exceed {limit} bytes (max_frame_bytes); the call ran but its result was not sent"
        ),
    )
}

/// `{"error":{"code":…,"message":…,"data":…}}`, the body of every JSON
/// error outside JSON-RPC; `data` only for application errors.
pub(crate) fn error_json(fault: &Fault) -> Response {
    let data = fault.data.as_ref().and_then(|d| to_json(d).ok());
    let mut body = format!(r#"{{"error":{{"code":{},"message":"#, fault.kind.code()).into_bytes();
    body.extend(serde_json::to_vec(&fault.message).unwrap_or_else(|_| b"\"\"".to_vec()));
    if let Some(data) = data {
        body.extend_from_slice(br#","data":"#);
        body.extend(data);
    }
    body.extend_from_slice(b"}}");
    ([(CONTENT_TYPE, JSON)], body).into_response()
}

/// The HTTP status of a failure of `kind`.
pub(crate) fn status_of(kind: ErrorKind) -> StatusCode {
    StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// An error response with the status of its kind.
///
/// A refusal that asks the caller to come back (429 rate limited, 503
/// overloaded) says when with `Retry-After: 1` (a second: a token bucket
/// refills well within it).
pub(crate) fn error_response(fault: &Fault) -> Response {
    let mut response = (status_of(fault.kind), error_json(fault)).into_response();
    if matches!(fault.kind, ErrorKind::RateLimited | ErrorKind::Overloaded) {
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("1"),
        );
    }
    response
}

/// The body, or the error that reading it gave (too large, cut short).
pub(crate) fn body_or_error(body: Result<Bytes, BytesRejection>) -> Result<Bytes, Error> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            Error::new(
                ErrorKind::Parse,
                format!(
                    "the request body could not be read: {}",
                    rejection.body_text()
                ),
            )
        }
    })
}

/// Fails if `json` nests arrays and objects deeper than [`MAX_DEPTH`], or
/// if it is an array (a JSON-RPC batch) of more than `max_members` items;
/// run before parsing, so no parser recurses on a hostile body or reads a
/// batch of a million junk items. The scan stops at the first excess.
pub(crate) fn check_json(json: &[u8], max_members: usize) -> Result<(), Error> {
    let (mut depth, mut batch, mut separators) = (0usize, false, 0usize);
    let mut at = 0;
    while let Some(&b) = json.get(at) {
        at += 1;
        match b {
            b'"' => at = string_end(json, at),
            b'[' | b'{' => {
                batch |= depth == 0 && b == b'[';
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(Error::new(
                        ErrorKind::InvalidRequest,
                        format!("the body nests deeper than {MAX_DEPTH} levels"),
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b',' if batch && depth == 1 => {
                separators += 1;
                if separators >= max_members {
                    return Err(too_many_members(max_members));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Just past the closing quote of the string whose contents start at `at`
/// (or the end of `json`, if it never closes). Strings are most of a large
/// body (a payload's base64), so a long run of plain bytes is skipped with
/// `memchr`; it is called only after [`NEAR`] plain bytes in a row, so a
/// body dense with escapes or short strings costs no more than a byte loop.
fn string_end(json: &[u8], mut at: usize) -> usize {
    loop {
        let near = json.len().min(at + NEAR);
        while at < near {
            match json[at] {
                b'"' => return at + 1,
                b'\\' => at += 2,
                _ => at += 1,
            }
        }
        let Some(rest) = json.get(at..).filter(|rest| !rest.is_empty()) else {
            return json.len();
        };
        match memchr::memchr2(b'"', b'\\', rest) {
            Some(found) => at += found,
            None => return json.len(),
        }
    }
}

/// Plain bytes of a string read one at a time before [`string_end`] looks
/// for its end with `memchr`.
const NEAR: usize = 16;

/// The error of a batch of more than `max_batch` calls, worded as the JSON
/// codec words it over TCP.
pub(crate) fn too_many_members(max_batch: usize) -> Error {
    Error::new(
        ErrorKind::InvalidRequest,
        format!(
            "a batch of more than {max_batch} calls exceeds the limit of {max_batch} (max_batch)"
        ),
    )
}

/// The error of a request body over `max_body_bytes`.
pub(crate) fn too_large() -> Error {
    Error::new(
        ErrorKind::FrameTooLarge,
        "the request body is larger than the gateway's limit (`max_body_bytes` in [http])",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_refused_at_its_member_past_the_limit() {
        assert!(check_json(b"[1,2,3]", 3).is_ok());
        let e = check_json(b"[1,2,3,4", 3).unwrap_err();
        assert_eq!(
            e.message(),
            "a batch of more than 3 calls exceeds the limit of 3 (max_batch)"
        );
        // The scan stops there: the nesting that follows is never reached.
        let mut junk = b"[0,0,0,0,".to_vec();
        junk.extend(std::iter::repeat_n(b'[', 10_000));
        assert_eq!(check_json(&junk, 3).unwrap_err().message(), e.message());
    }

    #[test]
    fn only_top_level_batch_members_count() {
        let nested = br#"[{"params":[1,2,3,4,5],"method":"a,b,c,d"},[1,2,3,4]]"#;
        assert!(check_json(nested, 2).is_ok());
        let object = br#"{"a":1,"b":2,"c":3,"d":4}"#;
        assert!(check_json(object, 1).is_ok());
        let escaped = br#"["\",\",\",", 1]"#;
        assert!(check_json(escaped, 2).is_ok());
        // A backslash escaping a backslash does not escape the quote after it.
        let backslashes = br#"["a\\\\", 1, 2]"#;
        assert!(check_json(backslashes, 2).is_err());
        assert!(check_json(backslashes, 3).is_ok());
        // Brackets inside strings, a body ending inside a string or an escape.
        assert!(check_json(br#"["[[[", "]]", 1]"#, 3).is_ok());
        for open in [&br#"["abc"#[..], br#"["abc\"#, br#"["\"#] {
            assert!(check_json(open, 1).is_ok(), "{open:?}");
        }
        let deep = format!("[\"{}\"]", "[".repeat(1000));
        assert!(check_json(deep.as_bytes(), 1).is_ok());
        let deep = format!("\"\\\"{}", "[".repeat(MAX_DEPTH + 1));
        assert!(
            check_json(deep.as_bytes(), 1).is_ok(),
            "still inside the string"
        );
    }

    /// What `check_json` must answer, a byte at a time, as it once read.
    fn byte_by_byte(json: &[u8], max_members: usize) -> bool {
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        let (mut batch, mut separators) = (false, 0usize);
        for &b in json {
            if in_string {
                match (escaped, b) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    batch |= depth == 0 && b == b'[';
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return false;
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                b',' if batch && depth == 1 => {
                    separators += 1;
                    if separators >= max_members {
                        return false;
                    }
                }
                _ => {}
            }
        }
        true
    }

    /// Every body of up to 6 bytes of quotes, backslashes, brackets, commas
    /// and letters, inside a string whose plain run before it is just under,
    /// at, and past the run `string_end` reads a byte at a time.
    #[test]
    fn the_scan_answers_as_a_byte_at_a_time_would() {
        let alphabet = b"\"\\[,a";
        let mut bodies = vec![Vec::new()];
        for _ in 0..6 {
            let longer: Vec<Vec<u8>> = bodies
                .iter()
                .filter(|b| b.len() == bodies.last().map_or(0, Vec::len))
                .flat_map(|b| alphabet.iter().map(move |&c| [b.as_slice(), &[c]].concat()))
                .collect();
            bodies.extend(longer);
        }
        for run in [0, NEAR - 1, NEAR, NEAR + 1] {
            for body in &bodies {
                let json = [
                    b"[\"".as_slice(),
                    &vec![b'a'; run],
                    body,
                    b",1,[,2".as_slice(),
                ]
                .concat();
                for limit in [1, 2, 3] {
                    assert_eq!(
                        check_json(&json, limit).is_ok(),
                        byte_by_byte(&json, limit),
                        "{:?} with {limit}",
                        String::from_utf8_lossy(&json)
                    );
                }
            }
        }
    }

    #[test]
    fn a_non_finite_float_is_refused_not_written_as_null() {
        let mut out = BytesMut::from(&b"prefix"[..]);
        let Err(Encoded::Failed(e)) = write_json_within(&mut out, &(1.0, f64::NAN), 1000) else {
            panic!("NaN went out")
        };
        assert_eq!(e.kind(), ErrorKind::Internal);
        assert!(e.message().contains("NaN"), "{}", e.message());
        assert_eq!(&out[..], b"prefix", "left as it was");
        write_json_within(&mut out, &Some(()), 1000).unwrap();
        assert_eq!(&out[..], b"prefixnull", "a null of its own is fine");
    }

    /// A payload's base64 is written in pieces straight into the reply
    /// (no base64 string is made first): a result over the limit is refused
    /// having grown the reply to about the limit, and one within it is
    /// written whole.
    #[test]
    fn a_payload_past_the_limit_is_refused_within_it() {
        let payload = rpc_core::Bytes::from(vec![7u8; 1 << 20]);
        let value: Box<dyn erased_serde::Serialize> = Box::new((1u8, payload));
        let mut out = BytesMut::from(&b"prefix"[..]);
        let limit = 64 * 1024;
        assert!(matches!(
            write_json_within(&mut out, &*value, limit),
            Err(Encoded::TooLarge)
        ));
        assert_eq!(&out[..], b"prefix", "left as it was");
        assert!(out.capacity() <= 2 * limit, "held {} bytes", out.capacity());
        write_json_within(&mut out, &*value, 2 << 20).unwrap();
        assert_eq!(out.len(), 6 + serde_json::to_vec(&*value).unwrap().len());
    }

    #[test]
    fn json_is_written_up_to_the_limit_and_no_further() {
        let mut out = BytesMut::from(&b"prefix"[..]);
        let long = "x".repeat(100);
        assert!(matches!(
            write_json_within(&mut out, &long, 50),
            Err(Encoded::TooLarge)
        ));
        assert_eq!(&out[..], b"prefix", "left as it was");
        write_json_within(&mut out, &long, 6 + 102).unwrap();
        assert_eq!(out.len(), 6 + 102);
    }
}
