//! Hostile peers before authentication: wrong, oversized, replayed,
//! reflected and legacy answers, peers that say nothing or speak another
//! protocol, and storms of half-open and reset connections. Each is refused
//! with a clear error on its own connection, and the server goes on serving.

mod common;

use std::time::{Duration, Instant};

use common::hostile::{
    ObservedServer, assert_still_serves, challenge_of, frames_in, serve_probe_with, write_raw,
};
use common::{
    KEY, client_handshake, expect_closed, expect_frame, raw_connect, read_frame, server_builder,
    within, write_frame,
};
use rpc_core::ErrorKind;
use rpc_transport::handshake::{CHALLENGE, FAILURE, WELCOME, answer_challenge};
use tokio::net::TcpStream;

/// A handshake timeout far longer than any test waits, so a refusal that
/// comes promptly cannot have come from the timer.
const PATIENT: Duration = Duration::from_secs(60);

/// An observed probe server with a [`PATIENT`] handshake timeout.
async fn patient_server() -> ObservedServer {
    let config = server_builder()
        .handshake_timeout(PATIENT)
        .build()
        .expect("a valid server config");
    ObservedServer::probe_with(config).await.0
}

/// Answers the server's challenge with `answer` and returns the server's
/// verdict, if any, once it has closed the connection.
async fn answer_with(stream: &mut TcpStream, answer: &[u8]) -> Option<Vec<u8>> {
    challenge_of(stream).await;
    write_frame(stream, answer).await;
    let verdict = read_frame(stream).await;
    let rest = expect_closed(stream).await;
    assert!(rest.is_empty(), "nothing follows the verdict: {rest:?}");
    verdict
}

/// Asserts `e` is an authentication failure whose message contains `needle`.
fn assert_auth_error(e: &rpc_core::Error, needle: &str) {
    assert_eq!(e.kind(), ErrorKind::Authentication, "{e}");
    assert!(e.message().contains(needle), "expected {needle:?} in: {e}");
}

#[tokio::test]
async fn an_answer_made_with_the_wrong_key_gets_failure_and_names_the_mismatch() {
    let mut server = patient_server().await;
    let mut stream = raw_connect(&server.address).await;
    let challenge = challenge_of(&mut stream).await;
    let wrong = answer_challenge(b"not-the-key", &challenge, false).expect("a modern challenge");
    write_frame(&mut stream, &wrong).await;
    assert_eq!(read_frame(&mut stream).await.as_deref(), Some(FAILURE));
    expect_closed(&mut stream).await;
    let e = server.next_error().await;
    assert_auth_error(&e, "the peer's answer does not match the authkey");
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn an_answer_over_the_256_byte_cap_closes_the_connection_without_a_verdict() {
    let mut server = patient_server().await;
    let mut stream = raw_connect(&server.address).await;
    let mut answer = b"{sha256}".to_vec();
    answer.resize(257, b'x');
    assert_eq!(answer_with(&mut stream, &answer).await, None);
    let e = server.next_error().await;
    assert_auth_error(&e, "handshake frame of 257 bytes exceeds the 256-byte cap");
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn an_answer_exactly_at_the_256_byte_cap_is_read_and_judged() {
    let mut server = patient_server().await;
    let mut stream = raw_connect(&server.address).await;
    let mut answer = b"{sha256}".to_vec();
    answer.resize(256, b'x');
    assert_eq!(
        answer_with(&mut stream, &answer).await.as_deref(),
        Some(FAILURE)
    );
    let e = server.next_error().await;
    assert_auth_error(&e, "does not match the authkey");
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn an_answer_replayed_from_an_earlier_connection_is_refused() {
    let mut server = patient_server().await;
    // A genuine client's answer, as an eavesdropper would have recorded it.
    let mut genuine = raw_connect(&server.address).await;
    let challenge = challenge_of(&mut genuine).await;
    let recorded = answer_challenge(KEY.as_bytes(), &challenge, false).expect("a modern challenge");
    write_frame(&mut genuine, &recorded).await;
    assert_eq!(expect_frame(&mut genuine, "the verdict").await, WELCOME);
    drop(genuine);
    assert!(
        server.next_outcome().await.is_err(),
        "the genuine client left mid-handshake"
    );

    let mut replay = raw_connect(&server.address).await;
    assert_eq!(
        answer_with(&mut replay, &recorded).await.as_deref(),
        Some(FAILURE)
    );
    let e = server.next_error().await;
    assert_auth_error(&e, "does not match the authkey");
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn the_servers_own_challenge_reflected_back_as_the_answer_is_refused() {
    let mut server = patient_server().await;
    // The whole challenge frame, `#CHALLENGE#` included: not a `{digest}` answer.
    let mut stream = raw_connect(&server.address).await;
    let challenge = challenge_of(&mut stream).await;
    write_frame(&mut stream, &challenge).await;
    assert_eq!(read_frame(&mut stream).await.as_deref(), Some(FAILURE));
    expect_closed(&mut stream).await;
    let e = server.next_error().await;
    assert_auth_error(&e, "expected a `{digest}` prefix");

    // Just the message after `#CHALLENGE#`: `{sha256}` and 40 random bytes,
    // which are not the 32-byte MAC.
    let mut stream = raw_connect(&server.address).await;
    let challenge = challenge_of(&mut stream).await;
    write_frame(&mut stream, &challenge[CHALLENGE.len()..]).await;
    assert_eq!(read_frame(&mut stream).await.as_deref(), Some(FAILURE));
    expect_closed(&mut stream).await;
    let e = server.next_error().await;
    assert_auth_error(&e, "does not match the authkey");
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn a_client_that_challenges_first_never_gets_the_server_to_answer_a_challenge() {
    // The reflection attack needs the server to MAC something for a peer
    // that has not proved itself; the server must only ever judge first.
    let mut server = patient_server().await;
    let mut stream = raw_connect(&server.address).await;
    let ours = rpc_transport::handshake::make_challenge(&[7; 40]);
    write_frame(&mut stream, &ours).await;
    let frames = frames_in(&expect_closed(&mut stream).await);
    // Its own challenge, then the verdict on ours read as an answer: no MAC.
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert!(frames[0].starts_with(CHALLENGE), "{frames:?}");
    assert_eq!(frames[1], FAILURE);
    let e = server.next_error().await;
    assert_auth_error(&e, "expected a `{digest}` prefix");
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn an_answer_with_an_unknown_digest_is_refused_by_name() {
    let mut server = patient_server().await;
    for (answer, needle) in [
        (&b"{sha512}0123456789abcdef0123456789abcdef"[..], "`sha512`"),
        (b"{md5}0123456789abcdef0123", "`md5`"),
        (
            b"{}0123456789abcdef0123456789abcdef",
            "unsupported handshake digest ``",
        ),
        (
            b"{\xff\x00}0123456789abcdef0123456789abcdef",
            "`\\xff\\x00`",
        ),
        (
            b"{averylongdigestname}0123456789abcdef",
            "expected a `{digest}` prefix",
        ),
    ] {
        let mut stream = raw_connect(&server.address).await;
        assert_eq!(
            answer_with(&mut stream, answer).await.as_deref(),
            Some(FAILURE)
        );
        let e = server.next_error().await;
        assert_auth_error(&e, needle);
    }
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn a_16_byte_legacy_answer_is_refused_while_legacy_auth_is_off() {
    let mut server = patient_server().await;
    let mut stream = raw_connect(&server.address).await;
    assert_eq!(
        answer_with(&mut stream, &[0x42; 16]).await.as_deref(),
        Some(FAILURE)
    );
    let e = server.next_error().await;
    assert_auth_error(&e, "refused a legacy (Python <= 3.11) HMAC-MD5 handshake");
    assert_auth_error(&e, "allow_legacy_auth = true");
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn a_20_byte_answer_is_malformed_not_legacy() {
    let mut server = patient_server().await;
    let mut stream = raw_connect(&server.address).await;
    assert_eq!(
        answer_with(&mut stream, &[0x42; 20]).await.as_deref(),
        Some(FAILURE)
    );
    let e = server.next_error().await;
    assert_auth_error(&e, "malformed handshake message of 20 bytes");
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn an_empty_answer_is_malformed() {
    let mut server = patient_server().await;
    let mut stream = raw_connect(&server.address).await;
    assert_eq!(
        answer_with(&mut stream, b"").await.as_deref(),
        Some(FAILURE)
    );
    let e = server.next_error().await;
    assert_auth_error(&e, "malformed handshake message of 0 bytes");
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn a_peer_that_sends_nothing_is_closed_at_the_handshake_timeout_and_told_why() {
    let timeout = Duration::from_millis(300);
    let config = server_builder()
        .handshake_timeout(timeout)
        .build()
        .expect("a valid server config");
    let (mut server, _) = ObservedServer::probe_with(config).await;
    let started = Instant::now();
    let mut stream = raw_connect(&server.address).await;
    challenge_of(&mut stream).await;
    let seen = expect_closed(&mut stream).await;
    assert!(seen.is_empty(), "{seen:?}");
    let waited = started.elapsed();
    assert!(
        waited >= timeout,
        "closed after {waited:?}, before the timeout"
    );
    let e = server.next_error().await;
    assert_auth_error(&e, "authentication handshake timed out after 300ms");
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn a_peer_that_authenticates_then_never_says_hello_is_closed_at_the_timeout() {
    let config = server_builder()
        .handshake_timeout(Duration::from_millis(300))
        .build()
        .expect("a valid server config");
    let (mut server, _) = ObservedServer::probe_with(config).await;
    let mut stream = raw_connect(&server.address).await;
    client_handshake(&mut stream, KEY).await;
    let seen = expect_closed(&mut stream).await;
    assert!(seen.is_empty(), "{seen:?}");
    let e = server.next_error().await;
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert_eq!(e.message(), "no hello within 300ms");
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn hundreds_of_half_open_connections_do_not_keep_a_real_client_out() {
    let config = server_builder()
        .handshake_timeout(PATIENT)
        .build()
        .expect("a valid server config");
    let (server, _) = serve_probe_with(config).await;
    let mut idle = Vec::new();
    for n in 0..400 {
        let mut stream = raw_connect(&server.address).await;
        // Some say nothing, some stop inside a frame header, some inside a body.
        match n % 3 {
            0 => {}
            1 => write_raw(&mut stream, &[0, 0]).await,
            _ => write_raw(&mut stream, &[0, 0, 0, 40, b'{']).await,
        }
        idle.push(stream);
    }
    let started = Instant::now();
    assert_still_serves(&server.address).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "a real client took {took:?}");
    drop(idle);
}

/// Sends `bytes` on a fresh connection and asserts the server closes it
/// well before the handshake timeout, ending it with `needle` in the error.
async fn assert_refused_at_once(server: &mut ObservedServer, bytes: &[u8], needle: &str) {
    let started = Instant::now();
    let mut stream = raw_connect(&server.address).await;
    write_raw(&mut stream, bytes).await;
    let seen = expect_closed(&mut stream).await;
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(5),
        "refused only after {waited:?}"
    );
    assert!(
        seen.get(4..)
            .is_some_and(|rest| rest.starts_with(CHALLENGE)),
        "only the challenge arrives: {seen:?}"
    );
    assert!(
        !seen.ends_with(FAILURE),
        "no verdict on a non-answer: {seen:?}"
    );
    let e = server.next_error().await;
    assert_auth_error(&e, needle);
}

#[tokio::test]
async fn server_refuses_an_http_request_before_reading_its_length() {
    let mut server = patient_server().await;
    assert_refused_at_once(
        &mut server,
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "handshake frame of 1195725856 bytes exceeds the 256-byte cap",
    )
    .await;
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn server_refuses_a_tls_client_hello_at_once() {
    let mut server = patient_server().await;
    // A TLS 1.2 record header (handshake, version 3.1, 512 bytes), then the
    // start of a ClientHello: the first four bytes read as 0x16030102.
    let mut hello = vec![
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ];
    hello.extend_from_slice(&[0x11; 32]);
    assert_refused_at_once(
        &mut server,
        &hello,
        "handshake frame of 369295618 bytes exceeds the 256-byte cap",
    )
    .await;
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn connect_and_reset_storms_leave_the_server_serving() {
    let mut server = patient_server().await;
    const STORM: usize = 200;
    for n in 0..STORM {
        let mut stream = raw_connect(&server.address).await;
        // Reset at every stage: at once, after the challenge, mid-answer.
        if n % 3 >= 1 {
            challenge_of(&mut stream).await;
        }
        if n % 3 == 2 {
            write_raw(&mut stream, &[0, 0, 0, 40, b'{', b's']).await;
        }
        stream.set_zero_linger().expect("SO_LINGER 0");
        drop(stream);
    }
    // Every reset connection ends (none is left waiting for the timeout).
    for _ in 0..STORM {
        let e = server.next_error().await;
        assert_eq!(e.kind(), ErrorKind::Authentication, "{e}");
    }
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn a_handshake_answer_written_one_byte_at_a_time_is_accepted() {
    let mut server = patient_server().await;
    let mut stream = raw_connect(&server.address).await;
    let challenge = challenge_of(&mut stream).await;
    let answer = answer_challenge(KEY.as_bytes(), &challenge, false).expect("a modern challenge");
    for byte in common::hostile::frame(&answer) {
        write_raw(&mut stream, &[byte]).await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let verdict = within("the verdict", read_frame(&mut stream)).await;
    assert_eq!(verdict.as_deref(), Some(WELCOME));
    drop(stream);
    let _ = server.next_outcome().await;
    assert_still_serves(&server.address).await;
}
