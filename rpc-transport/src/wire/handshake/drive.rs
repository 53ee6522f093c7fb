//! The async drivers of the [handshake](super): [`accept`] and [`connect`]
//! run the pure functions over a [`Framed`] stream, each side's turn in
//! order, under the timeout, with the codec capped at
//! [`HANDSHAKE_MAX_FRAME`] meanwhile.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::Framed;

use super::{
    AuthError, CHALLENGE, FAILURE, HANDSHAKE_MAX_FRAME, WELCOME, answer_challenge_bound,
    make_challenge, verify_answer_bound,
};
use crate::wire::frame::FrameCodec;

/// How [`accept`] and [`connect`] run the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthOptions {
    /// Bound on the whole exchange; 5 seconds by default.
    pub timeout: Duration,
    /// Whether to speak the legacy HMAC-MD5 form of Python <= 3.11; off by default.
    pub allow_legacy: bool,
}

impl Default for AuthOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            allow_legacy: false,
        }
    }
}

/// Runs the server side: challenges the peer, then answers its challenge.
///
/// A peer that answers wrongly is sent `#FAILURE#`. On success the stream is
/// ready for application frames.
///
/// # Errors
///
/// Any [`AuthError`]; the connection should be closed then.
pub async fn accept<T>(
    framed: &mut Framed<T, FrameCodec>,
    authkey: &[u8],
    opts: &AuthOptions,
) -> Result<(), AuthError>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let role = Role::Server(None);
    run(
        framed,
        Keys {
            authkey,
            binding: &[],
        },
        opts,
        role,
        || {},
    )
    .await
}

/// The secrets the answers cover: the authkey and the channel binding
/// (empty without TLS).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Keys<'a> {
    pub(crate) authkey: &'a [u8],
    pub(crate) binding: &'a [u8],
}

/// [`accept`], with the answers bound to `keys.binding`, the peer's answer
/// to our challenge due within `first_answer` ([`AuthError::NoAnswer`]
/// otherwise), and `answered` called once that answer proved right: a
/// server tells junk from slow clients by it.
pub(crate) async fn accept_timed<T>(
    framed: &mut Framed<T, FrameCodec>,
    keys: Keys<'_>,
    opts: &AuthOptions,
    first_answer: Duration,
    answered: impl FnOnce(),
) -> Result<(), AuthError>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let role = Role::Server(Some(first_answer));
    run(framed, keys, opts, role, answered).await
}

/// Runs the client side: answers the server's challenge, then challenges it.
///
/// The mirror of [`accept`], so a client only goes on to send application
/// frames to a server that has proved it knows the authkey.
///
/// # Errors
///
/// Any [`AuthError`]; the connection should be closed then.
pub async fn connect<T>(
    framed: &mut Framed<T, FrameCodec>,
    authkey: &[u8],
    opts: &AuthOptions,
) -> Result<(), AuthError>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    connect_bound(framed, authkey, opts, &[]).await
}

/// [`connect`], with both answers bound to `binding`: the TLS session's
/// exporter (see the [handshake docs](super)).
///
/// # Errors
///
/// Any [`AuthError`]; [`AuthError::NoChallenge`] if not one byte of the
/// server's challenge came within the timeout.
pub async fn connect_bound<T>(
    framed: &mut Framed<T, FrameCodec>,
    authkey: &[u8],
    opts: &AuthOptions,
    binding: &[u8],
) -> Result<(), AuthError>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    run(framed, Keys { authkey, binding }, opts, Role::Client, || {}).await
}

/// Which side challenges first; a server may bound the wait for the first answer.
#[derive(Debug, Clone, Copy)]
enum Role {
    Server(Option<Duration>),
    Client,
}

/// Runs the exchange under the timeout with the codec capped at
/// [`HANDSHAKE_MAX_FRAME`], then restores the codec's limit.
async fn run<T>(
    framed: &mut Framed<T, FrameCodec>,
    keys: Keys<'_>,
    opts: &AuthOptions,
    role: Role,
    answered: impl FnOnce(),
) -> Result<(), AuthError>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let previous = framed.codec().max_frame_bytes();
    framed.codec_mut().set_max_frame_bytes(HANDSHAKE_MAX_FRAME);
    let legacy = opts.allow_legacy;
    let exchange = async {
        match role {
            Role::Server(first_answer) => {
                deliver(framed, keys, legacy, first_answer).await?;
                answered();
                respond(framed, keys, legacy).await
            }
            Role::Client => {
                // A server that closes before its challenge is most likely a
                // TLS server giving up on its ClientHello at the same
                // timeout: the client names that cause either way.
                respond(framed, keys, legacy).await.map_err(|e| match e {
                    AuthError::Closed => AuthError::ClosedBeforeChallenge,
                    e => e,
                })?;
                deliver(framed, keys, legacy, None).await
            }
        }
    };
    let result = tokio::time::timeout(opts.timeout, exchange).await;
    // A client that never saw a byte of the challenge most likely reached
    // a TLS server, which waits for a ClientHello as we wait for it.
    let silent = matches!(role, Role::Client) && framed.read_buffer().is_empty();
    let result = result.unwrap_or(Err(match silent {
        true => AuthError::NoChallenge(opts.timeout),
        false => AuthError::Timeout(opts.timeout),
    }));
    framed.codec_mut().set_max_frame_bytes(previous);
    result
}

/// Challenges the peer, checks its answer and tells it the verdict.
async fn deliver<T>(
    framed: &mut Framed<T, FrameCodec>,
    keys: Keys<'_>,
    allow_legacy: bool,
    within: Option<Duration>,
) -> Result<(), AuthError>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let challenge = make_challenge(&random_bytes()?);
    framed.send(&challenge).await?;
    let answer = match within {
        Some(limit) => tokio::time::timeout(limit, recv(framed))
            .await
            .map_err(|_| AuthError::NoAnswer(limit))??,
        None => recv(framed).await?,
    };
    let message = &challenge[CHALLENGE.len()..];
    let verdict = verify_answer_bound(keys.authkey, message, &answer, allow_legacy, keys.binding);
    if let Err(err) = verdict {
        // The verdict matters more than whether the peer is still there to hear it.
        let _ = framed.send(FAILURE).await;
        return Err(err);
    }
    Ok(framed.send(WELCOME).await?)
}

/// Answers the peer's challenge and reads its verdict.
async fn respond<T>(
    framed: &mut Framed<T, FrameCodec>,
    keys: Keys<'_>,
    allow_legacy: bool,
) -> Result<(), AuthError>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let challenge = recv(framed).await?;
    let answer = answer_challenge_bound(keys.authkey, &challenge, allow_legacy, keys.binding)?;
    framed.send(answer).await?;
    match &recv(framed).await?[..] {
        WELCOME => Ok(()),
        FAILURE => Err(AuthError::Rejected),
        other => Err(AuthError::Malformed {
            expected: "`#WELCOME#` or `#FAILURE#`",
            len: other.len(),
        }),
    }
}

/// The next frame; the peer hanging up between frames is [`AuthError::Closed`].
async fn recv<T>(framed: &mut Framed<T, FrameCodec>) -> Result<bytes::BytesMut, AuthError>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    Ok(framed.next().await.ok_or(AuthError::Closed)??)
}

/// 40 bytes from the operating system's random source.
fn random_bytes() -> Result<[u8; 40], AuthError> {
    let mut random = [0; 40];
    getrandom::fill(&mut random).map_err(|err| {
        std::io::Error::other(format!("cannot read random bytes for the challenge: {err}"))
    })?;
    Ok(random)
}
