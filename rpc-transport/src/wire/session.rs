//! Opening a session on a fresh stream, both sides: the authkey handshake,
//! then the hello. Nothing else is read or written before both succeed.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use rpc_core::{Error, ErrorKind};
use tokio_util::codec::Framed;

use crate::net::Io;
use crate::wire::frame::{FrameCodec, FrameError};
use crate::wire::handshake::{AuthError, AuthOptions};

/// The framework error for a failed handshake.
pub(crate) fn auth_error(e: AuthError) -> Error {
    let text = e.to_string();
    let message = text
        .strip_prefix("authentication failed: ")
        .unwrap_or(&text)
        .to_owned();
    let message = match std::error::Error::source(&e) {
        Some(source) => format!("{message}: {source}"),
        None => message,
    };
    Error::new(ErrorKind::Authentication, message).with_source(e)
}

/// The framework error for a failed read or write of a frame: a length the
/// protocol forbids is the peer's fault, not a lost connection.
pub(crate) fn frame_error(e: FrameError) -> Error {
    match e {
        FrameError::TooLarge { .. } => Error::new(ErrorKind::FrameTooLarge, e.to_string()),
        FrameError::NegativeLength(_) => Error::new(ErrorKind::Protocol, e.to_string()),
        e => Error::new(ErrorKind::ConnectionLost, e.to_string()).with_source(e),
    }
}

/// Reads one frame within `limit`, as part of opening the session.
pub(crate) async fn read_frame<S: Io>(
    framed: &mut Framed<S, FrameCodec>,
    limit: Duration,
    what: &str,
) -> Result<bytes::BytesMut, Error> {
    match tokio::time::timeout(limit, framed.next()).await {
        Ok(Some(Ok(frame))) => Ok(frame),
        Ok(Some(Err(e))) => Err(frame_error(e)),
        Ok(None) => Err(Error::new(
            ErrorKind::ConnectionLost,
            format!("the peer closed the connection before {what}"),
        )),
        Err(_) => Err(Error::new(
            ErrorKind::Timeout,
            format!("no {what} within {limit:?}"),
        )),
    }
}

/// Sends one frame.
pub(crate) async fn send_frame<S: Io>(
    framed: &mut Framed<S, FrameCodec>,
    payload: Vec<u8>,
) -> Result<(), Error> {
    framed
        .send(bytes::Bytes::from(payload))
        .await
        .map_err(frame_error)
}

/// Runs the handshake as the connecting side.
pub(crate) async fn connect<S: Io>(
    framed: &mut Framed<S, FrameCodec>,
    authkey: &[u8],
    opts: &AuthOptions,
) -> Result<(), Error> {
    crate::wire::handshake::connect(framed, authkey, opts)
        .await
        .map_err(auth_error)
}

/// Runs the handshake as the connecting side, its answers bound to
/// `binding` (a TLS session's exporter; empty without TLS); the raw
/// [`AuthError`], so that a TLS alert inside it can be told apart.
pub(crate) async fn connect_bound<S: Io>(
    framed: &mut Framed<S, FrameCodec>,
    authkey: &[u8],
    opts: &AuthOptions,
    binding: &[u8],
) -> Result<(), AuthError> {
    crate::wire::handshake::connect_bound(framed, authkey, opts, binding).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_negative_frame_length_is_a_protocol_error_not_a_lost_connection() {
        let e = frame_error(FrameError::NegativeLength(-2));
        assert_eq!(e.kind(), ErrorKind::Protocol);
        assert_eq!(
            e.message(),
            "invalid frame length -2: the only negative length allowed is -1"
        );
    }

    #[test]
    fn a_stream_ending_mid_frame_is_a_lost_connection() {
        let e = frame_error(FrameError::UnexpectedEof { have: 2, need: 4 });
        assert_eq!(e.kind(), ErrorKind::ConnectionLost);
    }
}
