//! The example binaries over TLS: `calc-server` with `[server.tls]` serves
//! `calc-client` with `[client.tls]` (the same two lines as in plaintext),
//! and re-reads its certificate on SIGHUP, so that after the files are
//! swapped for ones from a new CA a client trusting only that CA connects.
//! Certificates are made with rcgen into a temp dir at test time.

mod common;
#[path = "common/tls.rs"]
mod tls;

use std::path::Path;
use std::time::{Duration, Instant};

use common::bins::{ServerProcess, TempConfig, command, run, text};
use common::{CODECS, KEY};
use tls::{Leaf, Pki, replace};

const CLIENT_OUTPUT: &str = "add(2, 3) = 5\nsub(2, 3) = -1\n";

/// A path as a TOML string.
fn toml(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}

/// `[server]` on 127.0.0.1:0 with `[server.tls]` on `cert`/`key`.
fn server_config(cert: &Path, key: &Path) -> TempConfig {
    TempConfig::new(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nauthkey = \"{KEY}\"\n\
         [server.tls]\ncert_file = {}\nkey_file = {}\n",
        toml(cert),
        toml(key)
    ))
}

/// `[client]` for `address` with `[client.tls]` trusting only `ca`, expecting `localhost`.
fn client_config(address: &str, codec: &str, ca: &Path) -> TempConfig {
    TempConfig::new(&format!(
        "[client]\nconnect = \"{address}\"\nauthkey = \"{KEY}\"\ncodec = \"{codec}\"\n\
         call_timeout_ms = 30000\n[client.tls]\nca_file = {}\nserver_name = \"localhost\"\n",
        toml(ca)
    ))
}

/// Runs calc-client with `config`: (success, stdout, stderr).
async fn calc_client(config: &TempConfig) -> (bool, String, String) {
    let mut client = command("calc-client");
    client.arg("--config").arg(&config.path);
    let out = run(client, "calc-client").await;
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[tokio::test]
async fn calc_server_with_tls_serves_calc_client_and_reloads_its_certificate_on_sighup() {
    let pki = Pki::new();
    let (old_ca, new_ca) = (pki.ca("old-ca"), pki.ca("new-ca"));
    let old = pki.leaf(&old_ca, "old", Leaf::SERVER);
    let new = pki.leaf(&new_ca, "new", Leaf::SERVER);
    let live = (pki.path("live.pem"), pki.path("live.key"));
    replace(&live.0, &old.0);
    replace(&live.1, &old.1);
    let config = server_config(&live.0, &live.1);
    let mut serve = command("calc-server");
    serve
        .arg("--config")
        .arg(&config.path)
        .env("RUST_LOG", "info");
    let server = ServerProcess::spawn("calc-server", serve).await;

    for codec in CODECS {
        let client = client_config(&server.address, codec, &old_ca.cert_file);
        let (ok, stdout, stderr) = calc_client(&client).await;
        assert!(ok, "{codec}: {stderr}");
        assert_eq!(stdout, CLIENT_OUTPUT, "{codec}");
    }
    let trusts_new = client_config(&server.address, "bincode", &new_ca.cert_file);
    let (ok, _, stderr) = calc_client(&trusts_new).await;
    assert!(
        !ok,
        "a client trusting only the new CA connected before the swap"
    );
    assert!(stderr.contains("certificate"), "{stderr}");

    replace(&live.0, &new.0);
    replace(&live.1, &new.1);
    let pid = server.child.id().expect("the server runs").to_string();
    let status = tokio::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .await
        .expect("kill -HUP");
    assert!(status.success());

    // The signal is handled asynchronously: retry briefly.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (ok, stdout, stderr) = calc_client(&trusts_new).await;
        if ok {
            assert_eq!(stdout, CLIENT_OUTPUT);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still refused after SIGHUP: {stderr}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let trusts_old = client_config(&server.address, "bincode", &old_ca.cert_file);
    let (ok, _, _) = calc_client(&trusts_old).await;
    assert!(!ok, "new connections still get the old certificate");
    assert!(
        server
            .stderr_text()
            .contains("SIGHUP: TLS certificates and keys reloaded"),
        "{}",
        server.stderr_text()
    );
}

#[tokio::test]
async fn calc_server_prints_every_listening_address_the_tls_one_first() {
    let pki = Pki::new();
    let ca = pki.ca("ca");
    let (cert, key) = pki.leaf(&ca, "server", Leaf::SERVER);
    let config = TempConfig::new(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nlisten_plain = [\"127.0.0.1:0\"]\nauthkey = \"{KEY}\"\n\
         [server.tls]\ncert_file = {}\nkey_file = {}\n",
        toml(&cert),
        toml(&key)
    ));
    let mut server = ServerProcess::start("calc-server", &config).await;
    let second = server.next_line("the plaintext address").await;
    let plain = second.strip_prefix("listening ").expect("`listening ADDR`");
    assert_ne!(plain, server.address);

    let tls_client = client_config(&server.address, "bincode", &ca.cert_file);
    let (ok, stdout, stderr) = calc_client(&tls_client).await;
    assert!(ok, "{stderr}");
    assert_eq!(stdout, CLIENT_OUTPUT);
    let plain_client = TempConfig::new(&format!(
        "[client]\nconnect = \"{plain}\"\nauthkey = \"{KEY}\"\ncodec = \"json\"\n"
    ));
    let (ok, stdout, stderr) = calc_client(&plain_client).await;
    assert!(ok, "{stderr}");
    assert_eq!(stdout, CLIENT_OUTPUT);
}
