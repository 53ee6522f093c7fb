//! Every TLS failure reaches the caller as an error naming its cause: an
//! unknown CA, an expired certificate, a name that does not match, a client
//! certificate from a CA the server does not trust, no cipher suite in
//! common, a TLS client on a plaintext port, a plaintext client on a TLS port.

mod common;
#[path = "common/tls.rs"]
mod tls;

use std::time::{Duration, Instant};

use common::{CODECS, client_builder, serve, serve_with, within};
use rpc_core::{Error, ErrorKind};
use tls::{Leaf, Setup, registry};

async fn refused(config: rpc_transport::ClientConfig) -> Error {
    match within("the client to give up", rpc_transport::connect(&config)).await {
        Ok(_) => panic!("the connection should have been refused"),
        Err(e) => e,
    }
}

fn assert_names(e: &Error, needles: &[&str]) {
    assert_eq!(e.kind(), ErrorKind::Authentication, "{e}");
    for needle in needles {
        assert!(e.message().contains(needle), "expected {needle:?} in: {e}");
    }
}

#[tokio::test]
async fn a_server_certificate_from_an_unknown_ca_is_named() {
    let setup = Setup::new();
    let server = serve_with(setup.server().build().unwrap(), registry()).await;
    let other = setup.pki.ca("other-ca");
    for codec in CODECS {
        let tls = rpc_transport::config::ClientTls::new().ca_file(&other.cert_file);
        let e = refused(
            client_builder(&server.address, codec)
                .tls(tls)
                .build()
                .unwrap(),
        )
        .await;
        assert_names(&e, &["server's certificate", "unknown CA", "ca_file"]);
    }
}

#[tokio::test]
async fn an_expired_server_certificate_is_named() {
    let setup = Setup::new();
    let expired = Leaf {
        expired: true,
        ..Leaf::SERVER
    };
    let (cert, key) = setup.pki.leaf(&setup.ca, "expired", expired);
    let config = common::server_builder()
        .tls(rpc_transport::config::ServerTls::new(cert, key))
        .build()
        .unwrap();
    let server = serve_with(config, registry()).await;
    for codec in CODECS {
        let e = refused(setup.client(&server.address, codec).build().unwrap()).await;
        assert_names(&e, &["server's certificate has expired"]);
    }
}

#[tokio::test]
async fn a_server_certificate_for_another_name_is_named() {
    let setup = Setup::new();
    let server = serve_with(setup.server().build().unwrap(), registry()).await;
    for codec in CODECS {
        let tls = setup.client_tls().server_name("rpc.elsewhere");
        let e = refused(
            client_builder(&server.address, codec)
                .tls(tls)
                .build()
                .unwrap(),
        )
        .await;
        assert_names(&e, &["does not match the name", "server_name"]);
    }
}

#[tokio::test]
async fn a_client_certificate_from_a_ca_the_server_does_not_trust_is_named() {
    let setup = Setup::new();
    let server = serve_with(setup.mtls_server().build().unwrap(), registry()).await;
    let other = setup.pki.ca("stranger-ca");
    let mallory = Leaf {
        names: &["mallory"],
        common_name: "mallory",
        expired: false,
    };
    let (cert, key) = setup.pki.leaf(&other, "mallory", mallory);
    for codec in CODECS {
        let tls = setup.client_tls().identity(&cert, &key);
        let config = client_builder(&server.address, codec)
            .tls(tls)
            .build()
            .unwrap();
        let e = refused(config).await;
        assert_names(
            &e,
            &["refused our client certificate", "CA it does not trust"],
        );
    }
}

#[tokio::test]
async fn cipher_suites_in_common_with_none_are_named() {
    let setup = Setup::new();
    let only_aes_256 = setup
        .server_tls()
        .cipher_suites(["TLS13_AES_256_GCM_SHA384"]);
    let server = serve_with(
        setup.server().tls(only_aes_256).build().unwrap(),
        registry(),
    )
    .await;
    for codec in CODECS {
        let tls = setup
            .client_tls()
            .cipher_suites(["TLS13_CHACHA20_POLY1305_SHA256"]);
        let config = client_builder(&server.address, codec)
            .tls(tls)
            .build()
            .unwrap();
        let e = refused(config).await;
        assert_names(&e, &["HandshakeFailure", "cipher suites", "[client.tls]"]);
    }
}

#[tokio::test]
async fn a_tls_client_on_a_plaintext_port_is_told_the_server_does_not_speak_tls() {
    let setup = Setup::new();
    let server = serve(registry()).await;
    for codec in CODECS {
        let e = refused(setup.client(&server.address, codec).build().unwrap()).await;
        assert_names(&e, &["the server does not speak TLS"]);
    }
}

/// A plaintext client on a TLS port, in each codec, that waits `wait` for
/// its challenge while the server (whose handshake timeout is `server_wait`)
/// waits for a ClientHello: each error and how long it took.
async fn plaintext_client(server_wait: Duration, wait: Duration) -> Vec<(Error, Duration)> {
    let setup = Setup::new();
    let config = setup.server().handshake_timeout(server_wait).build();
    let server = serve_with(config.unwrap(), registry()).await;
    let mut seen = Vec::new();
    for codec in CODECS {
        let started = Instant::now();
        let config = client_builder(&server.address, codec)
            .handshake_timeout(wait)
            .build()
            .unwrap();
        seen.push((refused(config).await, started.elapsed()));
    }
    seen
}

#[tokio::test]
async fn a_plaintext_client_on_a_tls_port_is_told_to_configure_client_tls() {
    let wait = Duration::from_millis(300);
    for (e, took) in plaintext_client(Duration::from_secs(5), wait).await {
        let said =
            "no challenge from the server within 300ms: if it speaks TLS, configure [client.tls]";
        assert_names(&e, &[said]);
        assert!(took >= wait, "{took:?}");
    }
}

#[tokio::test]
async fn a_plaintext_client_the_tls_port_closes_on_first_is_told_to_configure_client_tls() {
    // The server's shorter handshake timeout ends the wait, and the client
    // still says why.
    let wait = Duration::from_secs(5);
    for (e, took) in plaintext_client(Duration::from_millis(300), wait).await {
        let said = "the server closed the connection without a challenge: if it speaks TLS, configure [client.tls]";
        assert_names(&e, &[said]);
        assert!(took < wait, "{e} after {took:?}");
    }
}

#[tokio::test]
async fn a_missing_certificate_file_is_named_at_bind() {
    let setup = Setup::new();
    let tls = rpc_transport::config::ServerTls::new(setup.pki.path("none.pem"), &setup.server.1);
    let config = common::server_builder().tls(tls).build().unwrap();
    let e = rpc_transport::Server::new(config, registry())
        .bind()
        .await
        .expect_err("no certificate to serve");
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.message().contains("server.tls.cert_file"), "{e}");
    assert!(e.message().contains("none.pem"), "{e}");
}

#[tokio::test]
async fn a_python_codec_with_client_tls_is_refused_before_connecting() {
    let setup = Setup::new();
    let config = setup.client("127.0.0.1:1", "pickle").build().unwrap();
    let e = refused(config).await;
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.message().contains("cannot speak TLS"), "{e}");
}
