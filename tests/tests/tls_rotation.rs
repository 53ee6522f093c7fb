//! Certificate rotation: `reload_tls` re-reads the files while calls run;
//! no call is lost, open connections keep their session, and connections
//! made after it see the new certificate.

mod common;
#[path = "common/tls.rs"]
mod tls;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::{CODECS, TaskGuard, client_builder, within};
use rpc_core::ErrorKind;
use rpc_transport::config::{ClientTls, ServerTls};
use tls::{Leaf, Pki, WhoamiClient, registry, replace};

/// Calls each client task makes, before and after the reload.
const CALLS: u64 = 400;

#[tokio::test]
async fn a_reload_under_load_loses_no_call_and_new_connections_see_the_new_certificate() {
    let pki = Pki::new();
    let (old_ca, new_ca) = (pki.ca("old-ca"), pki.ca("new-ca"));
    let old = pki.leaf(&old_ca, "old", Leaf::SERVER);
    let new = pki.leaf(&new_ca, "new", Leaf::SERVER);
    let live = (pki.path("live.pem"), pki.path("live.key"));
    replace(&live.0, &old.0);
    replace(&live.1, &old.1);
    let both = pki.path("both.pem");
    let bundle = [old_ca.cert_file.clone(), new_ca.cert_file.clone()]
        .map(|p| std::fs::read_to_string(p).unwrap());
    std::fs::write(&both, bundle.concat()).unwrap();

    let config = common::server_builder()
        .tls(ServerTls::new(&live.0, &live.1))
        .build()
        .unwrap();
    let listening = rpc_transport::Server::new(config, registry())
        .bind()
        .await
        .unwrap();
    let address = listening.local_addr().to_owned();
    let server = listening.server().clone();
    let _serving = TaskGuard(tokio::spawn(listening.serve()));
    let trusting = |ca: &std::path::Path, codec: &str| {
        client_builder(&address, codec)
            .tls(ClientTls::new().ca_file(ca))
            .build()
            .unwrap()
    };

    // Open connections and fresh ones both call through the reload.
    let done = Arc::new(AtomicU64::new(0));
    let mut load = Vec::new();
    for codec in CODECS {
        let config = trusting(&both, codec);
        let done = done.clone();
        load.push(tokio::spawn(async move {
            let client = WhoamiClient::new(rpc_transport::connect(&config).await?);
            for n in 0..CALLS {
                assert_eq!(client.echo(n).await?, n);
                done.fetch_add(1, Ordering::Relaxed);
                if n % 100 == 99 {
                    let fresh = WhoamiClient::new(rpc_transport::connect(&config).await?);
                    assert_eq!(fresh.echo(n).await?, n);
                }
            }
            Ok::<_, rpc_core::Error>(())
        }));
    }
    within("calls before the reload", async {
        while done.load(Ordering::Relaxed) < CALLS / 2 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    replace(&live.0, &new.0);
    replace(&live.1, &new.1);
    server.reload_tls().expect("the new files load");
    for task in load {
        within("the load to finish", task)
            .await
            .unwrap()
            .expect("no call lost");
    }
    assert_eq!(done.load(Ordering::Relaxed), CALLS * CODECS.len() as u64);

    let e = match rpc_transport::connect(&trusting(&old_ca.cert_file, "json")).await {
        Ok(_) => panic!("a client trusting only the old CA is refused after the reload"),
        Err(e) => e,
    };
    assert_eq!(e.kind(), ErrorKind::Authentication, "{e}");
    assert!(e.message().contains("unknown CA"), "{e}");
    let fresh = rpc_transport::connect(&trusting(&new_ca.cert_file, "json")).await;
    let fresh = WhoamiClient::new(fresh.expect("the new certificate is served"));
    assert_eq!(within("echo", fresh.echo(7)).await.unwrap(), 7);
}

#[tokio::test]
async fn a_reload_that_fails_keeps_the_certificate_in_force() {
    let pki = Pki::new();
    let ca = pki.ca("ca");
    let (cert, key) = pki.leaf(&ca, "server", Leaf::SERVER);
    let config = common::server_builder()
        .tls(ServerTls::new(&cert, &key))
        .build()
        .unwrap();
    let listening = rpc_transport::Server::new(config, registry())
        .bind()
        .await
        .unwrap();
    std::fs::write(&cert, "not a certificate").unwrap();
    let e = listening
        .reload_tls()
        .expect_err("a broken file does not load");
    assert!(e.message().contains("server.tls.cert_file"), "{e}");
    let address = listening.local_addr().to_owned();
    let _serving = TaskGuard(tokio::spawn(listening.serve()));
    let tls = ClientTls::new().ca_file(&ca.cert_file);
    let config = client_builder(&address, "bincode")
        .tls(tls)
        .build()
        .unwrap();
    let client = WhoamiClient::new(rpc_transport::connect(&config).await.unwrap());
    assert_eq!(within("echo", client.echo(1)).await.unwrap(), 1);
}

#[tokio::test]
async fn reloading_a_server_without_tls_says_so() {
    let listening =
        rpc_transport::Server::new(common::server_builder().build().unwrap(), registry())
            .bind()
            .await
            .unwrap();
    let e = listening.reload_tls().expect_err("nothing to reload");
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.message().contains("[server.tls]"), "{e}");
}
