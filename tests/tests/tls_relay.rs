//! The channel binding at work: a relay that terminates TLS with a
//! certificate the client trusts, opens its own TLS connection to the
//! server and forwards the bytes both ways. The authkey handshake must fail
//! through it (each side's answers cover its own session's exporter), and
//! pass when a test build turns the binding off on both sides.

mod common;
#[path = "common/tls.rs"]
mod tls;

use std::sync::Arc;

use common::{CODECS, TaskGuard, serve_with, within};
use rpc_core::ErrorKind;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tls::{Leaf, Setup, WhoamiClient, registry};
use tokio::net::{TcpListener, TcpStream};

#[allow(deprecated)] // ring's provider, as the transport uses
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A relay on 127.0.0.1:0 presenting `cert`/`key` to clients and trusting
/// `ca` for its own connection to `upstream`; its address.
async fn relay(setup: &Setup, upstream: String) -> (String, TaskGuard<()>) {
    let (cert, key) = setup.pki.leaf(&setup.ca, "relay", Leaf::SERVER);
    let chain = CertificateDer::pem_file_iter(&cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&key).unwrap();
    let front = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(&setup.ca.cert_file).unwrap())
        .unwrap();
    let back = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(front));
    let connector = tokio_rustls::TlsConnector::from(Arc::new(back));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        loop {
            let (client, _) = listener.accept().await.unwrap();
            let (acceptor, connector, upstream) =
                (acceptor.clone(), connector.clone(), upstream.clone());
            tokio::spawn(async move {
                let mut client = acceptor.accept(client).await.unwrap();
                let server = TcpStream::connect(&upstream).await.unwrap();
                let name = ServerName::try_from("localhost").unwrap();
                let mut server = connector.connect(name, server).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
    (address, TaskGuard(task))
}

#[tokio::test]
async fn the_handshake_fails_through_a_relay_that_terminates_tls() {
    let setup = Setup::new();
    let server = serve_with(setup.server().build().unwrap(), registry()).await;
    let (relay, _relay) = relay(&setup, server.address.clone()).await;
    for codec in CODECS {
        let config = setup.client(&relay, codec).build().unwrap();
        let e = match within("the client to give up", rpc_transport::connect(&config)).await {
            Ok(_) => panic!("a relayed handshake must fail with the binding on"),
            Err(e) => e,
        };
        assert_eq!(e.kind(), ErrorKind::Authentication, "{e}");
        assert!(e.message().contains("rejected our authkey"), "{e}");
    }
}

#[tokio::test]
async fn the_handshake_passes_the_relay_with_the_binding_turned_off() {
    let setup = Setup::new();
    let config = setup.server().without_channel_binding().build().unwrap();
    let server = serve_with(config, registry()).await;
    let (relay, _relay) = relay(&setup, server.address.clone()).await;
    for codec in CODECS {
        let config = setup
            .client(&relay, codec)
            .without_channel_binding()
            .build()
            .unwrap();
        let client = within("the client to connect", rpc_transport::connect(&config)).await;
        let client = WhoamiClient::new(client.expect("unbound, the relay goes unnoticed"));
        assert_eq!(within("echo", client.echo(5)).await.unwrap(), 5);
    }
}
