//! A raw client session over TLS, by hand: tokio-rustls over a `TcpStream`
//! trusting the test CA of a [`Setup`], the authkey handshake bound to the
//! session's `tls-exporter` (as the transport binds it), the hello, then
//! frames written and read by hand, as `common` does over plain TCP.
//!
//! Included by `tls_hostile_session.rs` as
//! `#[path = "common/tls_raw.rs"] mod tls_raw;` beside `mod common;` and
//! `mod tls;`.

#![allow(dead_code)]

use std::io::ErrorKind as IoErrorKind;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rpc_transport::handshake::{
    CHALLENGE, WELCOME, answer_challenge_bound, make_challenge, verify_answer_bound,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::common::{KEY, WAIT, raw_connect, within, within_for};
use crate::tls::Setup;

/// A raw TLS session: the client side of a TLS connection over TCP.
pub(crate) type Tls = TlsStream<TcpStream>;

/// RFC 9266's label for the `tls-exporter` channel binding.
const EXPORTER_LABEL: &[u8] = b"EXPORTER-Channel-Binding";

#[allow(deprecated)] // ring's provider, as the transport uses
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A connector trusting `setup`'s CA, as a client with `[client.tls] ca_file`.
fn connector(setup: &Setup) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    let ca = CertificateDer::from_pem_file(&setup.ca.cert_file).expect("the test CA");
    roots.add(ca).expect("the test CA is a usable root");
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.require_ems = true;
    TlsConnector::from(Arc::new(config))
}

/// A TLS connection to `address` (a server with `setup`'s certificate),
/// and its channel binding.
pub(crate) async fn tls_connect(setup: &Setup, address: &str) -> (Tls, [u8; 32]) {
    let tcp = raw_connect(address).await;
    let name = ServerName::try_from("localhost").expect("a DNS name");
    let stream = within("the TLS handshake", connector(setup).connect(name, tcp))
        .await
        .expect("the TLS handshake with the test server");
    let binding = stream
        .get_ref()
        .1
        .export_keying_material([0u8; 32], EXPORTER_LABEL, Some(b""))
        .expect("a TLS exporter");
    (stream, binding)
}

/// A raw TLS session to `address`, authenticated with [`KEY`] and past a
/// hello for `codec` announcing `max_frame_bytes`.
pub(crate) async fn tls_session(
    setup: &Setup,
    address: &str,
    codec: &str,
    max_frame_bytes: usize,
) -> Tls {
    let (mut stream, binding) = tls_connect(setup, address).await;
    bound_handshake(&mut stream, KEY, &binding).await;
    let hello =
        serde_json::json!({"protocol": 1, "codec": codec, "max_frame_bytes": max_frame_bytes});
    write_frame(&mut stream, hello.to_string().as_bytes()).await;
    let answer = expect_json(&mut stream, "the answer to the hello").await;
    assert_eq!(answer["codec"], codec, "{answer}");
    stream
}

/// The local port of a session: the port the server logs it under.
pub(crate) fn local_port(stream: &Tls) -> u16 {
    stream
        .get_ref()
        .0
        .local_addr()
        .expect("a local address")
        .port()
}

/// 40 bytes that differ from one call to the next.
fn fresh_random() -> [u8; 40] {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut out = [0x3c; 40];
    out[..8].copy_from_slice(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    out[8..12].copy_from_slice(&std::process::id().to_le_bytes());
    out
}

/// The client side of the authkey handshake, both answers covering `binding`.
async fn bound_handshake<S>(stream: &mut S, key: &str, binding: &[u8])
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let challenge = expect_frame(stream, "the server's challenge").await;
    assert!(challenge.starts_with(CHALLENGE), "{challenge:?}");
    let answer = answer_challenge_bound(key.as_bytes(), &challenge, false, binding)
        .expect("a modern challenge");
    write_frame(stream, &answer).await;
    let verdict = expect_frame(stream, "the verdict on our answer").await;
    assert_eq!(verdict, WELCOME, "{:?}", String::from_utf8_lossy(&verdict));
    let ours = make_challenge(&fresh_random());
    write_frame(stream, &ours).await;
    let answer = expect_frame(stream, "the server's answer to our challenge").await;
    verify_answer_bound(
        key.as_bytes(),
        &ours[CHALLENGE.len()..],
        &answer,
        false,
        binding,
    )
    .expect("the server knows the key, bound to this session");
    write_frame(stream, WELCOME).await;
}

/// Writes `bytes` as they are, with no framing.
pub(crate) async fn write_raw<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) {
    let written = async {
        stream.write_all(bytes).await?;
        stream.flush().await
    };
    within("raw bytes to be written", written)
        .await
        .expect("writing raw bytes");
}

/// Writes one frame: a 4-byte big-endian length, then `payload`.
pub(crate) async fn write_frame<S: AsyncWrite + Unpin>(stream: &mut S, payload: &[u8]) {
    let len = i32::try_from(payload.len()).expect("a test frame fits the short header");
    write_raw(stream, &[len.to_be_bytes().as_slice(), payload].concat()).await;
}

/// Reads one frame's payload; `None` if the peer closed the connection first.
pub(crate) async fn read_frame<S: AsyncRead + Unpin>(stream: &mut S) -> Option<Vec<u8>> {
    within("a frame (or EOF) from the server", async {
        let mut header = [0u8; 4];
        if !read_exact_or_closed(stream, &mut header).await {
            return None;
        }
        let len = i32::from_be_bytes(header);
        let len = usize::try_from(len).unwrap_or_else(|_| panic!("unexpected frame length {len}"));
        let mut payload = vec![0u8; len];
        if !read_exact_or_closed(stream, &mut payload).await {
            return None;
        }
        Some(payload)
    })
    .await
}

/// Reads one frame's payload, which must arrive.
pub(crate) async fn expect_frame<S: AsyncRead + Unpin>(stream: &mut S, what: &str) -> Vec<u8> {
    read_frame(stream)
        .await
        .unwrap_or_else(|| panic!("the server closed the connection instead of sending {what}"))
}

/// Reads one frame and parses it as JSON.
pub(crate) async fn expect_json<S: AsyncRead + Unpin>(
    stream: &mut S,
    what: &str,
) -> serde_json::Value {
    let payload = expect_frame(stream, what).await;
    serde_json::from_slice(&payload).unwrap_or_else(|e| {
        panic!(
            "{what} is not JSON ({e}): {:?}",
            String::from_utf8_lossy(&payload)
        )
    })
}

/// Sends one JSON frame and reads one JSON frame back.
pub(crate) async fn json_round_trip<S>(stream: &mut S, request: &str) -> serde_json::Value
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    write_frame(stream, request.as_bytes()).await;
    expect_json(stream, &format!("the answer to {request}")).await
}

/// Fills `buf`; false if the connection closed or was reset first.
async fn read_exact_or_closed<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut [u8]) -> bool {
    match stream.read_exact(buf).await {
        Ok(_) => true,
        Err(e) if is_closed(&e) => false,
        Err(e) => panic!("reading from the server failed: {e}"),
    }
}

/// A read error that means the server closed the connection: a clean or
/// abrupt close, a reset, or (over TLS) a close without `close_notify`.
fn is_closed(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        IoErrorKind::UnexpectedEof
            | IoErrorKind::ConnectionReset
            | IoErrorKind::ConnectionAborted
            | IoErrorKind::BrokenPipe
    )
}

/// Reads and discards what the server still sends until it closes the
/// connection, which must happen within `limit`; returns the bytes discarded.
pub(crate) async fn expect_closed_within<S: AsyncRead + Unpin>(
    stream: &mut S,
    limit: Duration,
) -> Vec<u8> {
    within_for(limit, "the server to close the connection", async {
        let mut seen = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => return seen,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
                Err(e) if is_closed(&e) => return seen,
                Err(e) => panic!("reading from the server failed: {e}"),
            }
        }
    })
    .await
}

/// [`expect_closed_within`] with the default bound.
pub(crate) async fn expect_closed<S: AsyncRead + Unpin>(stream: &mut S) -> Vec<u8> {
    expect_closed_within(stream, WAIT).await
}
