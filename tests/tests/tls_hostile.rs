//! Hostile peers before authentication, on a TLS port: the TLS handshake is
//! a pending handshake like any, so silent sockets are shed under
//! `max_pending_handshakes` and a slow handshake meets `handshake_timeout_ms`;
//! junk that is not a TLS record is closed at once; a wrong authkey over TLS
//! is refused as in plaintext; and a TLS client on a plaintext port is named
//! as such by the server. After the TLS handshake the connection runs the
//! same code as a plaintext one, which the other hostile suites test.

mod common;
#[path = "common/tls.rs"]
mod tls;

use std::time::{Duration, Instant};

use common::hostile::{ObservedServer, write_raw};
use common::{WAIT, expect_closed_within, raw_connect, serve_with, within};
use rpc_core::ErrorKind;
use rpc_transport::limits::Limits;
use tls::{Setup, WhoamiClient, registry};

/// Far longer than any test waits: a close that comes sooner was not the timer.
const PATIENT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn silent_sockets_on_a_tls_port_are_shed_and_a_tls_client_still_gets_in() {
    let setup = Setup::new();
    let limits = Limits {
        max_pending_handshakes: 8,
        ..Limits::default()
    };
    let config = setup
        .server()
        .handshake_timeout(PATIENT)
        .limits(limits)
        .build()
        .unwrap();
    let server = serve_with(config, registry()).await;
    let mut silent = Vec::new();
    for _ in 0..40 {
        silent.push(raw_connect(&server.address).await);
    }
    let config = setup.client(&server.address, "json").build().unwrap();
    let client = rpc_transport::connect(&config);
    let client = WhoamiClient::new(within("a TLS client to get in", client).await.unwrap());
    assert_eq!(within("echo", client.echo(9)).await.unwrap(), 9);
    // All but the cap's worth were shed (closed without a byte).
    let mut closed = 0;
    for stream in &mut silent {
        let seen = tokio::time::timeout(
            Duration::from_millis(50),
            expect_closed_within(stream, WAIT),
        )
        .await;
        if let Ok(seen) = seen {
            assert!(seen.is_empty(), "a TLS server says nothing first: {seen:?}");
            closed += 1;
        }
    }
    assert!(
        closed >= 40 - 8,
        "only {closed} of 40 silent sockets were shed"
    );
}

#[tokio::test]
async fn a_tls_handshake_that_stalls_is_closed_at_the_handshake_timeout() {
    let setup = Setup::new();
    let timeout = Duration::from_millis(300);
    let config = setup.server().handshake_timeout(timeout).build().unwrap();
    let server = serve_with(config, registry()).await;
    let started = Instant::now();
    let mut stream = raw_connect(&server.address).await;
    // A TLS record header announcing 512 bytes, and not one of them.
    write_raw(&mut stream, &[0x16, 0x03, 0x01, 0x02, 0x00]).await;
    let seen = expect_closed_within(&mut stream, WAIT).await;
    assert!(seen.is_empty(), "{seen:?}");
    let waited = started.elapsed();
    assert!(
        waited >= timeout,
        "closed after {waited:?}, before the timeout"
    );
    let config = setup.client(&server.address, "bincode").build().unwrap();
    let client = rpc_transport::connect(&config);
    let client = WhoamiClient::new(within("a TLS client after it", client).await.unwrap());
    assert_eq!(within("echo", client.echo(1)).await.unwrap(), 1);
}

#[tokio::test]
async fn a_tls_client_on_a_plaintext_port_is_named_by_the_server() {
    let setup = Setup::new();
    let config = common::server_builder()
        .handshake_timeout(PATIENT)
        .build()
        .unwrap();
    let mut server = ObservedServer::start(config, registry()).await;
    let config = setup.client(&server.address, "json").build().unwrap();
    let client = rpc_transport::connect(&config);
    let refused = within("the client to give up", client).await;
    assert!(
        refused.is_err(),
        "a TLS client cannot talk to a plaintext port"
    );
    let e = server.next_error().await;
    assert_eq!(e.kind(), ErrorKind::Authentication, "{e}");
    assert!(
        e.message()
            .contains("a TLS client connected to a plaintext listener"),
        "{e}"
    );
}

#[tokio::test]
async fn junk_on_a_tls_port_is_closed_at_once_and_others_are_still_served() {
    let setup = Setup::new();
    let config = setup.server().handshake_timeout(PATIENT).build().unwrap();
    let server = serve_with(config, registry()).await;
    for junk in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        &[0x80, 0x04, 0x95, 0x00, 0x00, 0x00][..],
        &[0u8; 4096][..],
    ] {
        let mut stream = raw_connect(&server.address).await;
        write_raw(&mut stream, junk).await;
        // Not a TLS record: closed without waiting for the handshake timeout.
        let seen = expect_closed_within(&mut stream, WAIT).await;
        assert!(
            seen.len() < 64,
            "at most a TLS alert comes back: {} bytes",
            seen.len()
        );
    }
    let config = setup.client(&server.address, "bincode").build().unwrap();
    let client = rpc_transport::connect(&config);
    let client = WhoamiClient::new(within("a TLS client after junk", client).await.unwrap());
    assert_eq!(within("echo", client.echo(3)).await.unwrap(), 3);
}

#[tokio::test]
async fn over_tls_a_wrong_authkey_is_refused_as_in_plaintext() {
    let setup = Setup::new();
    let config = setup.server().build().unwrap();
    let server = serve_with(config, registry()).await;
    for codec in ["bincode", "json"] {
        let config = setup
            .client(&server.address, codec)
            .authkey("not the key")
            .build()
            .unwrap();
        let refused = within("the refusal", rpc_transport::connect(&config)).await;
        let e = refused.expect_err("a wrong key gets in over TLS");
        assert_eq!(e.kind(), ErrorKind::Authentication, "{codec}: {e}");
    }
    let config = setup.client(&server.address, "json").build().unwrap();
    let client = rpc_transport::connect(&config);
    let client = WhoamiClient::new(within("the right key", client).await.unwrap());
    assert_eq!(within("echo", client.echo(5)).await.unwrap(), 5);
}
