//! Calls over TLS: both codecs, mutual TLS with the client's certificate
//! subject visible to the handler, a server listening on a TLS and a
//! plaintext address at once, and the keys of `[server.tls]`/`[client.tls]`
//! read from a file.

mod common;
#[path = "common/tls.rs"]
mod tls;

use common::{CODECS, serve_with, within};
use rpc_core::ErrorKind;
use tls::{Setup, WhoamiClient, registry};

async fn connect(config: rpc_transport::ClientConfig) -> Result<WhoamiClient, rpc_core::Error> {
    let client = within("the client to connect", rpc_transport::connect(&config)).await?;
    Ok(WhoamiClient::new(client))
}

#[tokio::test]
async fn calls_over_tls_work_in_every_codec() {
    let setup = Setup::new();
    let server = serve_with(setup.server().build().unwrap(), registry()).await;
    for codec in CODECS {
        let client = connect(setup.client(&server.address, codec).build().unwrap())
            .await
            .unwrap_or_else(|e| panic!("a {codec} client connects over TLS: {e}"));
        assert_eq!(within("echo", client.echo(42)).await.unwrap(), 42);
        assert_eq!(within("whoami", client.whoami()).await.unwrap(), "");
    }
}

#[tokio::test]
async fn under_mtls_the_handler_sees_the_client_certificate_subject() {
    let setup = Setup::new();
    let server = serve_with(setup.mtls_server().build().unwrap(), registry()).await;
    for codec in CODECS {
        let config = setup.mtls_client(&server.address, codec).build().unwrap();
        let client = connect(config)
            .await
            .expect("a client with a certificate connects");
        let subject = within("whoami", client.whoami()).await.unwrap();
        assert_eq!(subject, "O=rpc tests,CN=alice", "{codec}");
    }
}

#[tokio::test]
async fn under_mtls_a_client_without_a_certificate_is_told_one_is_required() {
    let setup = Setup::new();
    let server = serve_with(setup.mtls_server().build().unwrap(), registry()).await;
    for codec in CODECS {
        let config = setup.client(&server.address, codec).build().unwrap();
        let e = match connect(config).await {
            Ok(client) => within("a call", client.echo(1))
                .await
                .expect_err("no certificate"),
            Err(e) => e,
        };
        assert_eq!(e.kind(), ErrorKind::Authentication, "{e}");
        assert!(e.message().contains("requires a client certificate"), "{e}");
        assert!(e.message().contains("cert_file"), "{e}");
    }
}

#[tokio::test]
async fn a_server_listens_with_tls_and_in_plaintext_at_once() {
    let setup = Setup::new();
    let config = setup
        .server()
        .listen_plain(["127.0.0.1:0"])
        .build()
        .unwrap();
    let listening = rpc_transport::Server::new(config, registry())
        .bind()
        .await
        .expect("both addresses bind");
    let addresses = listening.local_addrs().to_vec();
    assert_eq!(addresses.len(), 2);
    assert_eq!(listening.local_addr(), addresses[0]);
    let _serving = common::TaskGuard(tokio::spawn(listening.serve()));
    let tls = connect(setup.client(&addresses[0], "json").build().unwrap()).await;
    assert_eq!(within("echo", tls.unwrap().echo(1)).await.unwrap(), 1);
    let plain = connect(
        common::client_builder(&addresses[1], "bincode")
            .build()
            .unwrap(),
    )
    .await;
    assert_eq!(within("echo", plain.unwrap().echo(2)).await.unwrap(), 2);
}

#[tokio::test]
async fn the_tls_tables_are_read_from_a_file_relative_to_it() {
    let setup = Setup::new();
    let file = setup.pki.path("rpc.toml");
    let text = r#"
        [server]
        authkey = "k"
        listen = ["127.0.0.1:0"]
        listen_plain = ["127.0.0.1:0"]
        [server.tls]
        cert_file = "server.pem"
        key_file = "server.key"
        client_ca_file = "ca.pem"
        min_version = "1.2"
        cipher_suites = ["TLS13_AES_256_GCM_SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"]
        [client]
        authkey = "k"
        connect = "127.0.0.1:1"
        [client.tls]
        ca_file = "ca.pem"
        server_name = "localhost"
        cert_file = "client.pem"
        key_file = "client.key"
        min_version = "1.2"
        cipher_suites = ["TLS13_CHACHA20_POLY1305_SHA256"]
    "#;
    std::fs::write(&file, text).unwrap();
    let server = rpc_transport::ServerConfig::builder()
        .no_env()
        .load_file(&file)
        .unwrap();
    let server = server.build().unwrap();
    let tls = server.tls().expect("[server.tls] read");
    assert_eq!(tls.cert_file(), setup.server.0);
    assert_eq!(tls.min_version(), rpc_transport::config::TlsVersion::V1_2);
    assert_eq!(
        tls.suites(),
        [
            "TLS13_AES_256_GCM_SHA384",
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
        ]
    );
    let listeners: Vec<_> = server.listeners().collect();
    assert_eq!(listeners, [("127.0.0.1:0", true), ("127.0.0.1:0", false)]);
    let client = rpc_transport::ClientConfig::builder()
        .no_env()
        .load_file(&file)
        .unwrap();
    let client = client.build().unwrap();
    let tls = client.tls().expect("[client.tls] read");
    assert_eq!(tls.expected_name(), Some("localhost"));
    assert_eq!(tls.client_identity().unwrap().1, setup.client.1);
    assert_eq!(tls.min_version(), rpc_transport::config::TlsVersion::V1_2);
    assert_eq!(tls.suites(), ["TLS13_CHACHA20_POLY1305_SHA256"]);
}

#[tokio::test]
async fn a_server_that_allows_tls_1_2_still_serves_its_clients() {
    let setup = Setup::new();
    let tls = setup
        .server_tls()
        .with_min_version(rpc_transport::config::TlsVersion::V1_2);
    let config = common::server_builder().tls(tls).build().unwrap();
    let server = serve_with(config, registry()).await;
    let client = connect(setup.client(&server.address, "json").build().unwrap()).await;
    assert_eq!(within("echo", client.unwrap().echo(3)).await.unwrap(), 3);
}

/// Large payloads at every alignment, in flight together over TLS: each is
/// spliced by reference (rustls copies it into its records, so no place is
/// slow), and the records of several frames share vectored writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_at_every_alignment_come_back_intact_over_tls() {
    use examples::bench::{BenchClient, BenchImpl, BenchServer};
    let setup = Setup::new();
    let registry = rpc_core::Registry::new()
        .with(BenchServer::new(BenchImpl))
        .unwrap();
    let server = serve_with(setup.server().build().unwrap(), registry).await;
    let config = setup.client(&server.address, "bincode").build().unwrap();
    let client = within("the client to connect", rpc_transport::connect(&config)).await;
    let bench = BenchClient::new(client.expect("a bincode client connects over TLS"));
    let mut calls = tokio::task::JoinSet::new();
    for skip in 0..64usize {
        let bench = bench.clone();
        calls.spawn(async move {
            let block: Vec<u8> = (0..(256 << 10) + skip)
                .map(|i| (i as u8).wrapping_mul(31) ^ skip as u8)
                .collect();
            let sent = rpc_core::Bytes(bytes::Bytes::from(block).slice(skip..));
            let back = bench.echo(sent.clone()).await.expect("echo");
            assert!(
                back == sent,
                "the payload at offset {skip} came back changed"
            );
        });
    }
    within("64 echoes over TLS", async {
        while let Some(done) = calls.join_next().await {
            done.expect("an echo task");
        }
    })
    .await;
}
