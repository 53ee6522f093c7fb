//! The authkey handshake of Python's `multiprocessing.connection`.
//!
//! Both sides prove they know a shared authkey by answering a random
//! challenge with an HMAC of it. The server challenges first; then the roles
//! swap, so a client also refuses a server that does not know the key.
//!
//! ```text
//!   server                                       client
//!     | -- #CHALLENGE# + M ------------------------> |   M = "{sha256}" + 40 random bytes
//!     | <------------------------------ answer(M) -- |   "{sha256}" + HMAC-SHA256(key, M)
//!     | -- #WELCOME#  (or #FAILURE#, then close) --> |
//!     | <------------------------ #CHALLENGE# + N -- |   same exchange, roles swapped
//!     | -- answer(N) ------------------------------> |
//!     | <------------- #WELCOME#  (or #FAILURE#) --- |
//! ```
//!
//! Every message is one [frame](crate::wire::frame), at most [`HANDSHAKE_MAX_FRAME`]
//! bytes long. Python 3.11 and older speak a legacy form: a challenge of 20
//! random bytes without a `{digest}` prefix, answered with a raw 16-byte
//! HMAC-MD5. That form is refused unless [`AuthOptions::allow_legacy`] is set.
//!
//! The protocol itself is the pure functions [`make_challenge`],
//! [`answer_challenge`] and [`verify_answer`]; [`accept`] and [`connect`] run
//! them over a [`Framed`](tokio_util::codec::Framed) stream.
//!
//! # Over TLS: the channel binding
//!
//! Over TLS both answers also cover the session's RFC 9266 `tls-exporter`
//! value (32 bytes, label `EXPORTER-Channel-Binding`, empty context):
//! `{sha256}HMAC-SHA256(authkey, M ‖ exporter)`. Each side computes the
//! exporter of its own TLS session, so a relay that terminates TLS and opens
//! a second session to the server cannot forward the answers: the two
//! sessions' exporters differ. [`answer_challenge_bound`],
//! [`verify_answer_bound`] and [`connect_bound`] take the binding; with an
//! empty one they are the plain functions, byte for byte Python's.
//!
//! # Example
//!
//! ```
//! use rpc_transport::frame::FrameCodec;
//! use rpc_transport::handshake::{accept, connect, AuthOptions};
//! use tokio_util::codec::Framed;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), rpc_transport::handshake::AuthError> {
//! let (server, client) = tokio::io::duplex(1024);
//! let mut server = Framed::new(server, FrameCodec::default());
//! let mut client = Framed::new(client, FrameCodec::default());
//! let opts = AuthOptions::default();
//!
//! let (accepted, connected) = tokio::join!(
//!     accept(&mut server, b"peekaboo", &opts),
//!     connect(&mut client, b"peekaboo", &opts),
//! );
//! accepted?;
//! connected?;
//! # Ok(())
//! # }
//! ```

mod drive;

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};

pub use self::drive::{AuthOptions, accept, connect, connect_bound};
pub(crate) use self::drive::{Keys, accept_timed};
use crate::wire::frame::FrameError;

/// Opens a challenge message; the rest of the payload is the message to MAC.
pub const CHALLENGE: &[u8] = b"#CHALLENGE#";
/// Tells the peer its answer was right.
pub const WELCOME: &[u8] = b"#WELCOME#";
/// Tells the peer its answer was wrong; the connection is closed after it.
pub const FAILURE: &[u8] = b"#FAILURE#";
/// The largest frame either side reads during the handshake, as in Python.
pub const HANDSHAKE_MAX_FRAME: usize = 256;

/// Length of a legacy (Python <= 3.11) challenge message.
const LEGACY_CHALLENGE_LEN: usize = 20;
/// Length of a legacy answer: a raw HMAC-MD5.
const LEGACY_ANSWER_LEN: usize = 16;
/// The longest digest name Python allows (`sha3_256`), bounding the `{name}` search.
const MAX_DIGEST_NAME: usize = 8;

/// Why the handshake failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The peer's answer to our challenge was wrong.
    #[error("authentication failed: the peer's answer does not match the authkey")]
    Mismatch,
    /// The peer replied `#FAILURE#` to our answer.
    #[error("the peer rejected our authkey")]
    Rejected,
    /// A handshake message did not have the expected shape.
    #[error("malformed handshake message of {len} bytes: expected {expected}")]
    Malformed {
        /// What the message should have been.
        expected: &'static str,
        /// The length of the message received.
        len: usize,
    },
    /// The peer asked for, or answered with, a digest this side does not speak.
    #[error(
        "unsupported handshake digest `{0}`: only sha256 (and legacy md5, if allowed) is supported"
    )]
    UnsupportedDigest(String),
    /// The peer speaks the legacy HMAC-MD5 form and it was not allowed.
    #[error(
        "refused a legacy (Python <= 3.11) HMAC-MD5 handshake; set `allow_legacy_auth = true` to allow it"
    )]
    LegacyNotAllowed,
    /// The peer sent a frame over [`HANDSHAKE_MAX_FRAME`] bytes.
    #[error("handshake frame of {len} bytes exceeds the {HANDSHAKE_MAX_FRAME}-byte cap")]
    FrameTooLarge {
        /// The length the peer declared.
        len: u64,
    },
    /// The handshake did not finish within [`AuthOptions::timeout`].
    #[error("authentication handshake timed out after {0:?}")]
    Timeout(Duration),
    /// A client got no byte of the server's challenge within
    /// [`AuthOptions::timeout`]: a TLS server waits for a ClientHello.
    #[error("no challenge from the server within {0:?}: if it speaks TLS, configure [client.tls]")]
    NoChallenge(Duration),
    /// The server closed the connection before its challenge: a TLS
    /// server that gave up waiting for a ClientHello, or one that shed the
    /// connection under load.
    #[error(
        "the server closed the connection without a challenge: if it speaks TLS, configure [client.tls] (or it shed the connection under load)"
    )]
    ClosedBeforeChallenge,
    /// The peer did not answer our challenge in time (the server's
    /// `first_answer_timeout`).
    #[error("no answer to the challenge within {0:?} (first_answer_timeout)")]
    NoAnswer(Duration),
    /// The peer closed the connection before the handshake finished.
    #[error("connection closed during the authentication handshake")]
    Closed,
    /// The peer sent a frame that could not be decoded.
    #[error("framing error during the authentication handshake")]
    Frame(#[source] FrameError),
    /// Reading, writing or drawing random bytes failed.
    #[error("i/o error during the authentication handshake")]
    Io(#[from] std::io::Error),
}

impl From<FrameError> for AuthError {
    /// Lifts an over-cap frame and i/o failures to their own variants.
    fn from(err: FrameError) -> Self {
        match err {
            FrameError::TooLarge { len, .. } => Self::FrameTooLarge { len },
            FrameError::Io(err) => Self::Io(err),
            err => Self::Frame(err),
        }
    }
}

/// The MACs this side computes and checks.
#[derive(Debug, Clone, Copy)]
enum Algorithm {
    /// Legacy, raw and unprefixed; Python <= 3.11.
    Md5,
    /// Python 3.12+'s default, prefixed with `{sha256}`.
    Sha256,
}

impl Algorithm {
    /// The algorithm named by a `{name}` prefix.
    fn from_name(name: &[u8]) -> Result<Self, AuthError> {
        match name {
            b"sha256" => Ok(Self::Sha256),
            other => Err(AuthError::UnsupportedDigest(
                other.escape_ascii().to_string(),
            )),
        }
    }

    /// The MAC of `message ‖ binding`.
    fn mac(self, authkey: &[u8], message: &[u8], binding: &[u8]) -> Vec<u8> {
        match self {
            Self::Md5 => hmac::<Hmac<md5::Md5>>(authkey, message, binding),
            Self::Sha256 => hmac::<Hmac<sha2::Sha256>>(authkey, message, binding),
        }
    }

    fn verify(self, authkey: &[u8], signed: (&[u8], &[u8]), tag: &[u8]) -> Result<(), AuthError> {
        let (message, binding) = signed;
        let verified = match self {
            Self::Md5 => keyed::<Hmac<md5::Md5>>(authkey, message, binding).verify_slice(tag),
            Self::Sha256 => {
                keyed::<Hmac<sha2::Sha256>>(authkey, message, binding).verify_slice(tag)
            }
        };
        verified.map_err(|_| AuthError::Mismatch)
    }
}

/// A MAC keyed with `authkey` that has absorbed `message`, then `binding`.
fn keyed<M: Mac + KeyInit>(authkey: &[u8], message: &[u8], binding: &[u8]) -> M {
    let mut mac = <M as KeyInit>::new_from_slice(authkey).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.update(binding);
    mac
}

fn hmac<M: Mac + KeyInit>(authkey: &[u8], message: &[u8], binding: &[u8]) -> Vec<u8> {
    keyed::<M>(authkey, message, binding)
        .finalize()
        .into_bytes()
        .to_vec()
}

/// The name in a `{name}` prefix at the start of `message`, if there is one.
fn digest_name(message: &[u8]) -> Option<&[u8]> {
    let rest = message.strip_prefix(b"{")?;
    let end = rest
        .iter()
        .take(MAX_DIGEST_NAME + 1)
        .position(|&b| b == b'}')?;
    Some(&rest[..end])
}

/// Splits a `{name}` + MAC answer into its algorithm and MAC.
fn parse_prefixed(answer: &[u8]) -> Result<(Algorithm, &[u8]), AuthError> {
    let name = digest_name(answer).ok_or(AuthError::Malformed {
        expected: "a `{digest}` prefix",
        len: answer.len(),
    })?;
    Ok((Algorithm::from_name(name)?, &answer[name.len() + 2..]))
}

/// Builds the payload of a modern challenge: `#CHALLENGE#{sha256}` + `random`.
///
/// The message the answer must cover is everything after `#CHALLENGE#`.
pub fn make_challenge(random: &[u8; 40]) -> Vec<u8> {
    [CHALLENGE, b"{sha256}", random].concat()
}

/// Builds the payload of a legacy (Python <= 3.11) challenge: `#CHALLENGE#` + `random`.
pub fn make_legacy_challenge(random: &[u8; 20]) -> Vec<u8> {
    [CHALLENGE, random].concat()
}

/// Computes the answer to a challenge payload received from the peer.
///
/// A modern challenge (`{sha256}` + random bytes) is answered with
/// `{sha256}` + HMAC-SHA256 over everything after `#CHALLENGE#`. A legacy
/// challenge of exactly 20 random bytes is answered with a raw HMAC-MD5.
///
/// # Errors
///
/// [`AuthError::Malformed`] if the payload does not start with `#CHALLENGE#`,
/// is shorter than 20 bytes after it, or has no `{digest}` prefix;
/// [`AuthError::UnsupportedDigest`] for a digest other than sha256;
/// [`AuthError::LegacyNotAllowed`] for a legacy challenge unless `allow_legacy`.
pub fn answer_challenge(
    authkey: &[u8],
    challenge_payload: &[u8],
    allow_legacy: bool,
) -> Result<Vec<u8>, AuthError> {
    answer_challenge_bound(authkey, challenge_payload, allow_legacy, &[])
}

/// [`answer_challenge`], with the MAC also covering `binding` (the TLS
/// exporter, see the [module docs](self)): `HMAC(authkey, message ‖ binding)`.
///
/// # Errors
///
/// As [`answer_challenge`].
pub fn answer_challenge_bound(
    authkey: &[u8],
    challenge_payload: &[u8],
    allow_legacy: bool,
    binding: &[u8],
) -> Result<Vec<u8>, AuthError> {
    let message = challenge_payload
        .strip_prefix(CHALLENGE)
        .ok_or(AuthError::Malformed {
            expected: "`#CHALLENGE#`",
            len: challenge_payload.len(),
        })?;
    if message.len() < LEGACY_CHALLENGE_LEN {
        return Err(AuthError::Malformed {
            expected: "a challenge of at least 20 bytes after `#CHALLENGE#`",
            len: challenge_payload.len(),
        });
    }
    if message.len() == LEGACY_CHALLENGE_LEN {
        check_legacy_allowed(allow_legacy)?;
        return Ok(Algorithm::Md5.mac(authkey, message, binding));
    }
    let name = digest_name(message).ok_or(AuthError::Malformed {
        expected: "a `{digest}` prefix after `#CHALLENGE#`",
        len: challenge_payload.len(),
    })?;
    let mac = Algorithm::from_name(name)?.mac(authkey, message, binding);
    Ok([&message[..name.len() + 2], &mac].concat())
}

/// Checks the peer's answer to the challenge `message` we sent (the bytes
/// after `#CHALLENGE#`), in constant time.
///
/// A 16-byte answer is a legacy raw HMAC-MD5; anything else must be
/// `{sha256}` + HMAC-SHA256.
///
/// # Errors
///
/// [`AuthError::Mismatch`] if the MAC is wrong (the peer has another key);
/// [`AuthError::LegacyNotAllowed`] for a legacy answer unless `allow_legacy`;
/// [`AuthError::Malformed`] without a `{digest}` prefix;
/// [`AuthError::UnsupportedDigest`] for a digest other than sha256.
pub fn verify_answer(
    authkey: &[u8],
    message: &[u8],
    answer: &[u8],
    allow_legacy: bool,
) -> Result<(), AuthError> {
    verify_answer_bound(authkey, message, answer, allow_legacy, &[])
}

/// [`verify_answer`], with the MAC expected to cover `message ‖ binding`
/// (the TLS exporter, see the [module docs](self)).
///
/// # Errors
///
/// As [`verify_answer`]; an answer bound to another TLS session is a
/// [`AuthError::Mismatch`].
pub fn verify_answer_bound(
    authkey: &[u8],
    message: &[u8],
    answer: &[u8],
    allow_legacy: bool,
    binding: &[u8],
) -> Result<(), AuthError> {
    if answer.len() == LEGACY_ANSWER_LEN {
        check_legacy_allowed(allow_legacy)?;
        return Algorithm::Md5.verify(authkey, (message, binding), answer);
    }
    let (algorithm, mac) = parse_prefixed(answer)?;
    algorithm.verify(authkey, (message, binding), mac)
}

fn check_legacy_allowed(allow_legacy: bool) -> Result<(), AuthError> {
    if allow_legacy {
        Ok(())
    } else {
        Err(AuthError::LegacyNotAllowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::frame::{DEFAULT_MAX_FRAME_BYTES, FrameCodec};
    use bytes::BytesMut;
    use futures::{SinkExt, StreamExt};
    use tokio::io::DuplexStream;
    use tokio_util::codec::Encoder;
    use tokio_util::codec::Framed;

    const KEY: &[u8] = b"peekaboo";

    fn hex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect()
    }

    fn counting<const N: usize>() -> [u8; N] {
        std::array::from_fn(|i| i as u8)
    }

    fn framed(payload: &[u8]) -> Vec<u8> {
        let mut buf = BytesMut::new();
        FrameCodec::default().encode(payload, &mut buf).unwrap();
        buf.to_vec()
    }

    /// The spec's modern challenge message: everything after `#CHALLENGE#`.
    fn modern_message() -> Vec<u8> {
        make_challenge(&counting())[CHALLENGE.len()..].to_vec()
    }

    #[test]
    fn modern_challenge_matches_the_spec_frame() {
        let expected = [
            hex("0000003b 234348414c4c454e4745237b7368613235367d"),
            counting::<40>().to_vec(),
        ];
        assert_eq!(framed(&make_challenge(&counting())), expected.concat());
    }

    #[test]
    fn legacy_challenge_matches_the_spec_frame() {
        let expected = [
            hex("0000001f 234348414c4c454e474523"),
            counting::<20>().to_vec(),
        ];
        assert_eq!(
            framed(&make_legacy_challenge(&counting())),
            expected.concat()
        );
    }

    #[test]
    fn welcome_and_failure_match_the_spec_frames() {
        assert_eq!(framed(WELCOME), hex("00000009 2357454c434f4d4523"));
        assert_eq!(framed(FAILURE), hex("00000009 234641494c55524523"));
    }

    #[test]
    fn answers_a_modern_challenge_like_python() {
        let answer = answer_challenge(KEY, &make_challenge(&counting()), false).unwrap();
        let expected = hex(
            "7b7368613235367d eda328927ea5867e57357e92ff7a849cdfe50b5fecbe9282ff9d63f0fe76b0b6",
        );
        assert_eq!(answer, expected);
    }

    #[test]
    fn answers_a_legacy_challenge_like_python_3_11_when_allowed() {
        let answer = answer_challenge(KEY, &make_legacy_challenge(&counting()), true).unwrap();
        assert_eq!(answer, hex("e0bc5ff5981c5742feca0faaf7408f99"));
    }

    #[test]
    fn refuses_a_legacy_challenge_unless_allowed() {
        let err = answer_challenge(KEY, &make_legacy_challenge(&counting()), false).unwrap_err();
        assert!(matches!(err, AuthError::LegacyNotAllowed));
        assert!(err.to_string().contains("Python <= 3.11"));
        assert!(err.to_string().contains("allow_legacy_auth = true"));
    }

    #[test]
    fn verifies_the_python_answer_to_our_challenge() {
        let answer = answer_challenge(KEY, &make_challenge(&counting()), false).unwrap();
        verify_answer(KEY, &modern_message(), &answer, false).unwrap();
    }

    #[test]
    fn verifies_a_python_3_11_answer_to_a_modern_challenge_when_allowed() {
        let answer = hex("1fb1434a0c2f752ab5669990343c8975");
        verify_answer(KEY, &modern_message(), &answer, true).unwrap();
        let err = verify_answer(KEY, &modern_message(), &answer, false).unwrap_err();
        assert!(matches!(err, AuthError::LegacyNotAllowed));
    }

    #[test]
    fn rejects_an_answer_made_with_another_key() {
        let answer = answer_challenge(b"guess", &make_challenge(&counting()), false).unwrap();
        let err = verify_answer(KEY, &modern_message(), &answer, false).unwrap_err();
        assert!(matches!(err, AuthError::Mismatch));
        assert_eq!(
            err.to_string(),
            "authentication failed: the peer's answer does not match the authkey"
        );
    }

    #[test]
    fn rejects_a_legacy_answer_made_with_another_key() {
        let answer = Algorithm::Md5.mac(b"guess", &modern_message(), &[]);
        let err = verify_answer(KEY, &modern_message(), &answer, true).unwrap_err();
        assert!(matches!(err, AuthError::Mismatch));
    }

    #[test]
    fn rejects_a_truncated_answer() {
        let answer = answer_challenge(KEY, &make_challenge(&counting()), false).unwrap();
        let err = verify_answer(KEY, &modern_message(), &answer[..30], false).unwrap_err();
        assert!(matches!(err, AuthError::Mismatch));
    }

    #[test]
    fn rejects_an_answer_without_a_digest_prefix() {
        let err = verify_answer(KEY, &modern_message(), &[0; 32], false).unwrap_err();
        assert!(matches!(err, AuthError::Malformed { len: 32, .. }));
    }

    #[test]
    fn names_an_unsupported_digest_in_a_challenge_or_an_answer() {
        let challenge = [CHALLENGE, b"{sha3_256}", &[0; 40]].concat();
        let err = answer_challenge(KEY, &challenge, false).unwrap_err();
        assert!(matches!(&err, AuthError::UnsupportedDigest(name) if name == "sha3_256"));
        let err =
            verify_answer(KEY, &modern_message(), b"{md5}0123456789abcdef", true).unwrap_err();
        assert!(err.to_string().contains("`md5`"));
    }

    #[test]
    fn refuses_a_message_that_is_not_a_challenge() {
        let err = answer_challenge(KEY, WELCOME, false).unwrap_err();
        assert!(err.to_string().contains("expected `#CHALLENGE#`"));
    }

    #[test]
    fn refuses_a_challenge_shorter_than_20_bytes() {
        let challenge = [CHALLENGE, &[0; 19]].concat();
        let err = answer_challenge(KEY, &challenge, true).unwrap_err();
        assert!(matches!(err, AuthError::Malformed { len: 30, .. }));
    }

    #[test]
    fn refuses_a_long_challenge_without_a_digest_prefix() {
        let challenge = [CHALLENGE, &[0; 40]].concat();
        let err = answer_challenge(KEY, &challenge, true).unwrap_err();
        assert!(matches!(err, AuthError::Malformed { .. }));
    }

    const STRICT: AuthOptions = AuthOptions {
        timeout: Duration::from_secs(5),
        allow_legacy: false,
    };
    const LEGACY: AuthOptions = AuthOptions {
        allow_legacy: true,
        ..STRICT
    };

    #[test]
    fn default_options_refuse_legacy_peers_and_wait_five_seconds() {
        assert_eq!(AuthOptions::default(), STRICT);
    }

    type Peer = Framed<DuplexStream, FrameCodec>;

    fn pair() -> (Peer, Peer) {
        let (a, b) = tokio::io::duplex(4096);
        (
            Framed::new(a, FrameCodec::default()),
            Framed::new(b, FrameCodec::default()),
        )
    }

    async fn recv_payload(peer: &mut Peer) -> Vec<u8> {
        peer.next().await.unwrap().unwrap().to_vec()
    }

    #[tokio::test]
    async fn both_sides_with_the_same_key_authenticate_and_keep_their_frame_limit() {
        let (mut server, mut client) = pair();
        let (accepted, connected) = tokio::join!(
            accept(&mut server, KEY, &STRICT),
            connect(&mut client, KEY, &STRICT)
        );
        accepted.unwrap();
        connected.unwrap();
        assert_eq!(server.codec().max_frame_bytes(), DEFAULT_MAX_FRAME_BYTES);
        client.send(&[7; 1000]).await.unwrap();
        assert_eq!(recv_payload(&mut server).await, [7; 1000]);
    }

    #[tokio::test]
    async fn a_client_with_the_wrong_key_is_refused_and_told_so() {
        let (mut server, mut client) = pair();
        let (accepted, connected) = tokio::join!(
            accept(&mut server, KEY, &STRICT),
            connect(&mut client, b"guess", &STRICT)
        );
        assert!(matches!(accepted, Err(AuthError::Mismatch)));
        assert!(matches!(connected, Err(AuthError::Rejected)));
    }

    /// A server that welcomes any answer but does not know the key.
    async fn impostor_server(mut peer: Peer) -> Vec<u8> {
        peer.send(make_challenge(&[7; 40])).await.unwrap();
        recv_payload(&mut peer).await;
        peer.send(WELCOME).await.unwrap();
        let challenge = recv_payload(&mut peer).await;
        let answer = answer_challenge(b"guess", &challenge, false).unwrap();
        peer.send(answer).await.unwrap();
        recv_payload(&mut peer).await
    }

    #[tokio::test]
    async fn a_client_refuses_a_server_that_does_not_know_the_key() {
        let (server, mut client) = pair();
        let (verdict, connected) =
            tokio::join!(impostor_server(server), connect(&mut client, KEY, &STRICT));
        assert!(matches!(connected, Err(AuthError::Mismatch)));
        assert_eq!(verdict, FAILURE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_server_is_suspected_of_speaking_tls() {
        let (_server, mut client) = pair();
        let err = connect(&mut client, KEY, &STRICT).await.unwrap_err();
        assert!(matches!(err, AuthError::NoChallenge(t) if t == Duration::from_secs(5)));
        assert_eq!(
            err.to_string(),
            "no challenge from the server within 5s: if it speaks TLS, configure [client.tls]"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_that_stops_mid_challenge_times_out() {
        let (mut server, mut client) = pair();
        let challenge = framed(&make_challenge(&counting()));
        tokio::io::AsyncWriteExt::write_all(server.get_mut(), &challenge[..10])
            .await
            .unwrap();
        let err = connect(&mut client, KEY, &STRICT).await.unwrap_err();
        assert!(matches!(err, AuthError::Timeout(t) if t == Duration::from_secs(5)));
        assert_eq!(
            err.to_string(),
            "authentication handshake timed out after 5s"
        );
    }

    const BINDING: [u8; 32] = [0xaa; 32];
    const UNBOUND: Keys<'static> = Keys {
        authkey: KEY,
        binding: &[],
    };

    #[test]
    fn a_bound_answer_covers_the_challenge_then_the_binding() {
        let challenge = make_challenge(&counting());
        let answer = answer_challenge_bound(KEY, &challenge, false, &BINDING).unwrap();
        // Python: hmac.new(b"peekaboo", b"{sha256}" + bytes(range(40)) + b"\xaa" * 32, "sha256")
        let expected = hex(
            "7b7368613235367d 6cefabc9038b72e0f08e854728835d0d51d35c259c8c12a10669d1c682ad5544",
        );
        assert_eq!(answer, expected);
        verify_answer_bound(KEY, &modern_message(), &answer, false, &BINDING).unwrap();
    }

    #[test]
    fn an_answer_bound_to_another_session_or_to_none_is_a_mismatch() {
        let challenge = make_challenge(&counting());
        let bound = answer_challenge_bound(KEY, &challenge, false, &BINDING).unwrap();
        let other = verify_answer_bound(KEY, &modern_message(), &bound, false, &[0xbb; 32]);
        assert!(matches!(other, Err(AuthError::Mismatch)));
        let unbound = verify_answer(KEY, &modern_message(), &bound, false);
        assert!(matches!(unbound, Err(AuthError::Mismatch)));
        let plain = answer_challenge(KEY, &challenge, false).unwrap();
        let plain = verify_answer_bound(KEY, &modern_message(), &plain, false, &BINDING);
        assert!(matches!(plain, Err(AuthError::Mismatch)));
    }

    #[tokio::test]
    async fn sides_bound_to_different_sessions_refuse_each_other() {
        let (mut server, mut client) = pair();
        let keys = Keys {
            authkey: KEY,
            binding: &BINDING,
        };
        let first = Duration::from_secs(2);
        let (accepted, connected) = tokio::join!(
            accept_timed(&mut server, keys, &STRICT, first, || {}),
            connect_bound(&mut client, KEY, &STRICT, &[0xbb; 32])
        );
        assert!(matches!(accepted, Err(AuthError::Mismatch)));
        assert!(matches!(connected, Err(AuthError::Rejected)));
    }

    #[tokio::test]
    async fn sides_bound_to_the_same_session_authenticate() {
        let (mut server, mut client) = pair();
        let keys = Keys {
            authkey: KEY,
            binding: &BINDING,
        };
        let first = Duration::from_secs(2);
        let (accepted, connected) = tokio::join!(
            accept_timed(&mut server, keys, &STRICT, first, || {}),
            connect_bound(&mut client, KEY, &STRICT, &BINDING)
        );
        accepted.unwrap();
        connected.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_does_not_answer_the_challenge_in_time_is_dropped_as_junk() {
        let (mut server, _client) = pair();
        let mut answered = false;
        let first_answer = Duration::from_secs(2);
        let err = accept_timed(&mut server, UNBOUND, &STRICT, first_answer, || {
            answered = true
        })
        .await
        .unwrap_err();
        assert!(matches!(err, AuthError::NoAnswer(t) if t == first_answer));
        assert_eq!(
            err.to_string(),
            "no answer to the challenge within 2s (first_answer_timeout)"
        );
        assert!(!answered);
    }

    #[tokio::test]
    async fn a_right_answer_is_reported_and_the_handshake_goes_on() {
        let (mut server, mut client) = pair();
        let mut answered = false;
        let first_answer = Duration::from_secs(2);
        let (accepted, connected) = tokio::join!(
            accept_timed(&mut server, UNBOUND, &STRICT, first_answer, || answered =
                true),
            connect(&mut client, KEY, &STRICT)
        );
        accepted.unwrap();
        connected.unwrap();
        assert!(answered);
    }

    #[tokio::test]
    async fn a_server_hanging_up_before_its_challenge_is_named_so() {
        let (server, mut client) = pair();
        drop(server);
        let err = connect(&mut client, KEY, &STRICT).await;
        assert!(matches!(err, Err(AuthError::ClosedBeforeChallenge)));
    }

    #[tokio::test]
    async fn a_handshake_frame_over_the_cap_is_refused_and_the_limit_restored() {
        let (mut server, mut client) = pair();
        server.send(&[0; HANDSHAKE_MAX_FRAME + 1]).await.unwrap();
        let err = connect(&mut client, KEY, &STRICT).await;
        assert!(matches!(err, Err(AuthError::FrameTooLarge { len: 257 })));
        assert_eq!(client.codec().max_frame_bytes(), DEFAULT_MAX_FRAME_BYTES);
    }

    /// A Python 3.11 server: legacy challenge, raw HMAC-MD5 answers.
    async fn python_311_server(mut peer: Peer) -> Result<(), AuthError> {
        let random = counting::<20>();
        peer.send(make_legacy_challenge(&random)).await?;
        let answer = recv_payload(&mut peer).await;
        verify_answer(KEY, &random, &answer, true)?;
        peer.send(WELCOME).await?;
        let challenge = recv_payload(&mut peer).await;
        peer.send(Algorithm::Md5.mac(KEY, &challenge[CHALLENGE.len()..], &[]))
            .await?;
        assert_eq!(recv_payload(&mut peer).await, WELCOME);
        Ok(())
    }

    #[tokio::test]
    async fn a_python_3_11_server_is_refused_unless_legacy_is_allowed() {
        let (server, mut client) = pair();
        let server = tokio::spawn(python_311_server(server));
        let err = connect(&mut client, KEY, &STRICT).await;
        assert!(matches!(err, Err(AuthError::LegacyNotAllowed)));
        server.abort();
    }

    #[tokio::test]
    async fn a_python_3_11_server_is_accepted_when_legacy_is_allowed() {
        let (server, mut client) = pair();
        let (served, connected) = tokio::join!(
            python_311_server(server),
            connect(&mut client, KEY, &LEGACY)
        );
        served.unwrap();
        connected.unwrap();
    }

    /// A Python 3.11 client: raw HMAC-MD5 answer, then a legacy challenge.
    async fn python_311_client(mut peer: Peer) -> Result<(), AuthError> {
        let challenge = recv_payload(&mut peer).await;
        peer.send(Algorithm::Md5.mac(KEY, &challenge[CHALLENGE.len()..], &[]))
            .await?;
        if recv_payload(&mut peer).await != WELCOME {
            return Err(AuthError::Rejected);
        }
        let random = counting::<20>();
        peer.send(make_legacy_challenge(&random)).await?;
        let answer = recv_payload(&mut peer).await;
        verify_answer(KEY, &random, &answer, true)?;
        Ok(peer.send(WELCOME).await?)
    }

    #[tokio::test]
    async fn a_python_3_11_client_is_refused_unless_legacy_is_allowed() {
        let (mut server, client) = pair();
        let (accepted, client) =
            tokio::join!(accept(&mut server, KEY, &STRICT), python_311_client(client));
        assert!(matches!(accepted, Err(AuthError::LegacyNotAllowed)));
        assert!(matches!(client, Err(AuthError::Rejected)));
    }

    #[tokio::test]
    async fn a_python_3_11_client_is_accepted_when_legacy_is_allowed() {
        let (mut server, client) = pair();
        let (accepted, client) =
            tokio::join!(accept(&mut server, KEY, &LEGACY), python_311_client(client));
        accepted.unwrap();
        client.unwrap();
    }
}
