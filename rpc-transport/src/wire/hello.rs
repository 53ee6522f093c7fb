//! The hello: the first frame after authentication, sent by the client, and
//! the server's answer. It states the protocol version, the codec and each
//! side's largest frame, so a mismatch is reported instead of misparsed.
//!
//! ```text
//! client → {"protocol":2,"codec":"bincode","max_frame_bytes":16777216,"stream_window":{"items":4096,"bytes":262144}}
//! server → {"protocol":2,"codec":"bincode","max_frame_bytes":16777216,"stream_window":{"items":4096,"bytes":262144}}
//!       or {"error":"the server does not accept the codec `cbor`; it accepts: bincode, json"}, then closes
//! ```
//!
//! The server answers with the lower of the two protocol versions, which
//! both then speak: a protocol-1 client (no `stream_window`) gets protocol 1
//! and frames exactly as before streams. From protocol 2, `stream_window`
//! is the credit each side starts a stream it receives with (see
//! `rpc_core::stream`): the first window, granted without a message.
//!
//! A first frame that is not a hello at all (not JSON, a duplicate key, a
//! `max_frame_bytes` of -1, 1e20 or a string) is refused the same way, with
//! `{"error":…}`, before the server closes. Whatever a peer wrote appears in
//! a refusal only through [`crate::quiet::peer_text`]: escaped, and cut at
//! 200 bytes, so it can forge no log line and make no long one.
//!
//! The hello is JSON whatever the codec, so its first byte is `{`, never
//! `0x80`: a server tells its own clients from Python peers (whose first frame
//! is a pickle) by that byte. After the hello, the server never speaks first.

use rpc_core::{Error, ErrorKind};
use serde::{Deserialize, Serialize};

use crate::quiet::peer_text;

/// The protocol version this crate speaks: 2 adds streams (and reserves
/// ping, metadata and the did-not-run mark); see `rpc_core::codec`.
pub const PROTOCOL_VERSION: u32 = 2;

/// The first protocol version with streams.
pub const STREAMS: u32 = 2;

/// The smallest `max_frame_bytes` a hello may announce, as configuration
/// allows: below it not even an error reply would fit, and calls would go
/// unanswered.
pub const MIN_FRAME_BYTES: usize = 1024;

/// How a refusal of the codec begins; a client tells it from other
/// refusals by it.
const CODEC_REFUSED: &str = "the server does not accept the codec";

/// The client's hello, and the server's accepting answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// The protocol version.
    pub protocol: u32,
    /// The codec of every later frame.
    pub codec: String,
    /// The largest frame the sender accepts.
    pub max_frame_bytes: usize,
    /// From protocol 2: the credit each stream the sender receives starts
    /// with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_window: Option<rpc_core::stream::Window>,
}

/// The server's answer to a hello.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Answer {
    /// The hello is accepted; this is the server's own.
    Accept(Hello),
    /// The hello is refused, and why; the server closes the connection.
    Refuse {
        /// What was wrong.
        error: String,
    },
}

impl Hello {
    /// Encodes the hello as one frame payload.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a hello always encodes")
    }

    /// Reads a client's hello. The error says why, quoting at most a
    /// short, escaped part of what the peer sent; [`Answer::refusing`]
    /// turns it into the frame to send back.
    pub fn decode(payload: &[u8]) -> Result<Hello, Error> {
        serde_json::from_slice(payload).map_err(|e| {
            // serde's message quotes the peer's own strings, of any length.
            let why = e.to_string();
            Error::new(
                ErrorKind::Protocol,
                format!(
                    "the first frame after authentication is not a hello: {}",
                    unquoted(&why)
                ),
            )
        })
    }

    /// The server's answer to this hello, given what it accepts and the
    /// window its streams receive with.
    pub fn answer(
        &self,
        codecs: &[String],
        max_frame_bytes: usize,
        window: rpc_core::stream::Window,
    ) -> Answer {
        if self.protocol == 0 {
            let error = format!(
                "the client speaks protocol version 0; the server speaks 1 to {PROTOCOL_VERSION}"
            );
            return Answer::Refuse { error };
        }
        let protocol = self.protocol.min(PROTOCOL_VERSION);
        if self.max_frame_bytes < MIN_FRAME_BYTES {
            let error = format!(
                "the client's largest frame of {} bytes is below the {MIN_FRAME_BYTES}-byte minimum",
                self.max_frame_bytes
            );
            return Answer::Refuse { error };
        }
        if !codecs.contains(&self.codec) {
            let error = format!(
                "{CODEC_REFUSED} {}; it accepts: {}",
                codec_name(&self.codec),
                codecs.join(", ")
            );
            return Answer::Refuse { error };
        }
        Answer::Accept(Hello {
            protocol,
            codec: self.codec.clone(),
            max_frame_bytes,
            stream_window: (protocol >= STREAMS).then_some(window),
        })
    }

    /// The window the sender of this hello receives streams with: the one
    /// it announced, or the default.
    pub fn window(&self) -> rpc_core::stream::Window {
        self.stream_window.unwrap_or_default()
    }
}

/// `text` escaped and cut as [`peer_text`] does, without its quotes.
fn unquoted(text: &str) -> String {
    let shown = peer_text(text).to_string();
    match shown.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) => inner.to_owned(),
        None => shown,
    }
}

/// A codec name as a refusal shows it: in backticks when it looks like
/// one, else as [`peer_text`] (escaped, cut short).
fn codec_name(name: &str) -> String {
    let plain = |b: u8| b.is_ascii_alphanumeric() || b"-_.".contains(&b);
    if name.len() <= 64 && name.bytes().all(plain) {
        format!("`{name}`")
    } else {
        peer_text(name).to_string()
    }
}

impl Answer {
    /// The refusal that tells a peer why its first frame was not read as
    /// a hello (the error of [`Hello::decode`]).
    pub fn refusing(error: &Error) -> Answer {
        Answer::Refuse {
            error: error.message().to_owned(),
        }
    }

    /// Encodes the answer as one frame payload.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an answer always encodes")
    }

    /// Reads the server's answer; a refusal becomes the error it names.
    pub fn decode(payload: &[u8]) -> Result<Hello, Error> {
        let answer: Answer = serde_json::from_slice(payload).map_err(|e| {
            Error::new(
                ErrorKind::Protocol,
                format!("the server's answer to the hello is malformed: {e}"),
            )
        })?;
        match answer {
            Answer::Accept(hello) => Ok(hello),
            Answer::Refuse { error } if error.starts_with(CODEC_REFUSED) => {
                Err(Error::new(ErrorKind::CodecRejected, error))
            }
            Answer::Refuse { error } => Err(Error::new(ErrorKind::Protocol, error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(codec: &str) -> Hello {
        Hello {
            protocol: PROTOCOL_VERSION,
            codec: codec.into(),
            max_frame_bytes: 1024,
            stream_window: Some(W),
        }
    }

    #[test]
    fn a_hello_never_starts_like_a_pickle() {
        assert_eq!(hello("json").encode()[0], b'{');
    }

    #[test]
    fn an_accepted_hello_round_trips() {
        let answer = hello("json").answer(&["bincode".into(), "json".into()], 2048, W);
        let back = Answer::decode(&answer.encode()).unwrap();
        assert_eq!(
            back,
            Hello {
                max_frame_bytes: 2048,
                ..hello("json")
            }
        );
    }

    #[test]
    fn a_refused_codec_names_what_is_accepted() {
        let answer = hello("cbor").answer(&["bincode".into()], 2048, W);
        let e = Answer::decode(&answer.encode()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::CodecRejected);
        assert!(e.message().contains("`cbor`; it accepts: bincode"), "{e}");
    }

    #[test]
    fn a_codec_name_cannot_forge_a_log_line_or_make_a_long_one() {
        let forged = format!(
            "json\n2030-01-01T00:00:00Z  INFO FORGED{}",
            "x".repeat(1 << 20)
        );
        let Answer::Refuse { error } = hello(&forged).answer(&["json".into()], 2048, W) else {
            panic!("refused");
        };
        assert!(!error.contains('\n'), "{error}");
        assert!(
            error.contains(r"json\n2030-01-01T00:00:00Z  INFO FORGED"),
            "{error}"
        );
        assert!(error.len() < 400, "{} bytes", error.len());
    }

    #[test]
    fn a_hello_that_does_not_parse_is_refused_briefly_and_escaped() {
        let long = format!(
            r#"{{"protocol":1,"codec":"json","max_frame_bytes":"{}\n FORGED"}}"#,
            "9".repeat(1 << 20)
        );
        for bad in [
            r#"{"protocol":1,"codec":"json","max_frame_bytes":-1}"#,
            r#"{"protocol":1,"codec":"json","max_frame_bytes":1e20}"#,
            r#"{"protocol":1,"codec":"json","codec":"json","max_frame_bytes":2048}"#,
            "not json",
            &long,
        ] {
            let e = Hello::decode(bad.as_bytes()).unwrap_err();
            let refusal = Answer::refusing(&e).encode();
            assert!(refusal.len() < 500, "{} bytes", refusal.len());
            let back = Answer::decode(&refusal).unwrap_err();
            assert_eq!(back.kind(), ErrorKind::Protocol);
            assert!(
                back.message()
                    .starts_with("the first frame after authentication is not a hello")
            );
            assert!(!back.message().contains('\n'), "{back}");
        }
    }

    #[test]
    fn protocol_zero_is_refused() {
        let h = Hello {
            protocol: 0,
            ..hello("json")
        };
        let e = Answer::decode(&h.answer(&["json".into()], 2048, W).encode()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
        assert!(e.message().contains("version 0"), "{e}");
    }

    #[test]
    fn both_sides_speak_the_lower_version() {
        for (client, agreed, window) in [(1, 1, None), (2, 2, Some(W)), (9, 2, Some(W))] {
            let h = Hello {
                protocol: client,
                ..hello("json")
            };
            let Answer::Accept(answer) = h.answer(&["json".into()], 2048, W) else {
                panic!("protocol {client} refused");
            };
            assert_eq!((answer.protocol, answer.stream_window), (agreed, window));
        }
        // A protocol-1 hello has no window, and the answer to one neither.
        let v1 = br#"{"protocol":1,"codec":"json","max_frame_bytes":2048}"#;
        let answer = Hello::decode(v1).unwrap().answer(&["json".into()], 2048, W);
        assert_eq!(
            String::from_utf8(answer.encode()).unwrap(),
            r#"{"protocol":1,"codec":"json","max_frame_bytes":2048}"#
        );
    }

    const W: rpc_core::stream::Window = rpc_core::stream::Window::DEFAULT;

    #[test]
    fn a_frame_limit_below_the_minimum_is_refused_by_its_size() {
        let h = Hello {
            max_frame_bytes: MIN_FRAME_BYTES - 1,
            ..hello("json")
        };
        let e = Answer::decode(&h.answer(&["json".into()], 2048, W).encode()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
        assert_eq!(
            e.message(),
            "the client's largest frame of 1023 bytes is below the 1024-byte minimum"
        );
    }

    #[test]
    fn garbage_is_not_a_hello() {
        assert_eq!(
            Hello::decode(b"\x80\x04").unwrap_err().kind(),
            ErrorKind::Protocol
        );
    }
}
