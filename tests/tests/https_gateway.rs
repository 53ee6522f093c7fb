//! The HTTP gateway over HTTPS (`[http.tls]`), on `127.0.0.1:0`, with
//! certificates made by rcgen at test time: JSON-RPC from a tokio-rustls
//! client, curl and Python's `urllib` with an `ssl` context trusting the
//! test CA; Server-Sent Events and the WebSocket over TLS; a plain HTTP
//! client on the HTTPS port; certificate rotation; and the refusal of a
//! password in clear off loopback.
//!
//! Needs `python3` and `curl` on the `PATH`.

mod common;
#[path = "common/tls.rs"]
mod tls;

use std::sync::Arc;
use std::time::Duration;

use common::http::basic;
use common::{server_builder, within, within_for};
use examples::bench::{BenchImpl, BenchServer};
use examples::calculator::{Calc, CalculatorServer};
use futures::{SinkExt, StreamExt};
use rpc_core::{ErrorKind, Registry};
use rpc_transport::Server;
use rpc_transport::config::Limits;
use rpc_transport::http::{HttpConfig, HttpConfigBuilder, HttpGateway, TlsReloader};
use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use tls::{Leaf, Setup};

const PASSWORD: &str = "https-test-password";
const ADD: &str = r#"{"jsonrpc":"2.0","id":1,"method":"Calculator.add","params":[2,3]}"#;

/// A gateway serving HTTPS, stopped when dropped.
struct Https {
    address: String,
    reloader: Option<TlsReloader>,
    task: JoinHandle<()>,
}

impl Drop for Https {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn server(limits: Limits) -> Server {
    let registry = Registry::new()
        .with(CalculatorServer::new(Calc))
        .and_then(|r| r.with(BenchServer::new(BenchImpl)))
        .expect("the services register");
    let config = server_builder()
        .limits(limits)
        .build()
        .expect("a server config");
    Server::new(config, registry)
}

fn http(setup: &Setup) -> HttpConfigBuilder {
    HttpConfig::builder()
        .listen("127.0.0.1:0")
        .password(PASSWORD)
        .tls(setup.server_tls())
}

async fn start_with(config: HttpConfigBuilder, limits: Limits) -> Result<Https, rpc_core::Error> {
    let config = config.build().expect("a valid [http] config");
    let gateway = HttpGateway::new(config, &server(limits))?;
    let listening = within("the gateway to bind", gateway.bind()).await?;
    // Connect through loopback whatever the address bound.
    let port = listening
        .local_addr()
        .rsplit_once(':')
        .unwrap()
        .1
        .to_owned();
    Ok(Https {
        address: format!("127.0.0.1:{port}"),
        reloader: listening.tls_reloader(),
        task: tokio::spawn(listening.serve()),
    })
}

async fn start(setup: &Setup) -> Https {
    start_with(http(setup), Limits::default())
        .await
        .expect("the gateway starts")
}

/// A TLS connection to `address` trusting `ca` (PEM), offering ALPN http/1.1.
async fn tls_connect(
    address: &str,
    ca: &std::path::Path,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(ca).expect("the CA file");
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots
            .add(cert.expect("a CA certificate"))
            .expect("a usable CA");
    }
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = within("connect", TcpStream::connect(address))
        .await
        .expect("connects");
    let name = ServerName::try_from("localhost").unwrap();
    let connecting = TlsConnector::from(Arc::new(config)).connect(name, tcp);
    within("the TLS handshake", connecting)
        .await
        .expect("the TLS handshake")
}

/// One request over a fresh connection (`Connection: close`), the whole answer as text.
async fn exchange<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    io: &mut S,
    body: &str,
) -> String {
    let request = format!(
        "POST /rpc HTTP/1.1\r\nHost: localhost\r\nAuthorization: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        basic(PASSWORD),
        body.len()
    );
    within("the request", io.write_all(request.as_bytes()))
        .await
        .expect("written");
    let mut answer = Vec::new();
    let _ = within("the answer", io.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// Runs `program args…` to its end, bounded; stdout if it succeeded.
async fn run(program: &str, args: &[&str]) -> String {
    let child = Command::new(program).args(args).kill_on_drop(true).output();
    let output = within_for(Duration::from_secs(60), program, child)
        .await
        .unwrap_or_else(|e| panic!("cannot run `{program}` ({e}); is it installed?"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{program} failed: {stderr}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn json_rpc_over_https_from_a_rustls_client_with_alpn_http_1_1() {
    let setup = Setup::new();
    let gateway = start(&setup).await;
    let mut stream = tls_connect(&gateway.address, &setup.ca.cert_file).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let answer = exchange(&mut stream, ADD).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.ends_with(r#"{"jsonrpc":"2.0","id":1,"result":5}"#),
        "{answer}"
    );
}

#[tokio::test]
async fn curl_calls_json_rpc_over_https_trusting_the_test_ca() {
    let setup = Setup::new();
    let gateway = start(&setup).await;
    let ca = setup.ca.cert_file.to_str().unwrap();
    let url = format!("https://{}/rpc", gateway.address);
    let auth = format!("rpc:{PASSWORD}");
    let got = run(
        "curl",
        &[
            "-sS",
            "--max-time",
            "20",
            "--cacert",
            ca,
            "-u",
            &auth,
            "-d",
            ADD,
            &url,
        ],
    )
    .await;
    assert_eq!(got, r#"{"jsonrpc":"2.0","id":1,"result":5}"#);
}

#[tokio::test]
async fn python_urllib_posts_json_rpc_over_https_with_an_ssl_context_trusting_the_ca() {
    let setup = Setup::new();
    let gateway = start(&setup).await;
    let script = r#"
import base64, json, ssl, sys, urllib.request
url, ca, password = sys.argv[1:4]
context = ssl.create_default_context(cafile=ca)
body = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "Calculator.add", "params": [40, 2]}).encode()
request = urllib.request.Request(url, data=body, headers={
    "Content-Type": "application/json",
    "Authorization": "Basic " + base64.b64encode(b"rpc:" + password.encode()).decode(),
})
with urllib.request.urlopen(request, context=context, timeout=20) as answer:
    print(json.dumps(json.load(answer)))
"#;
    let url = format!(
        "https://localhost:{}/rpc",
        gateway.address.rsplit_once(':').unwrap().1
    );
    let ca = setup.ca.cert_file.to_str().unwrap();
    let got = run("python3", &["-c", script, &url, ca, PASSWORD]).await;
    let got: Value = serde_json::from_str(got.trim()).expect("JSON from Python");
    assert_eq!(got, json!({"jsonrpc": "2.0", "id": 7, "result": 42}));
}

#[tokio::test]
async fn sse_over_https_with_curl() {
    let setup = Setup::new();
    let gateway = start(&setup).await;
    let ca = setup.ca.cert_file.to_str().unwrap();
    let url = format!("https://{}/Bench/stream?n=3", gateway.address);
    let auth = format!("rpc:{PASSWORD}");
    let accept = "Accept: text/event-stream";
    let got = run(
        "curl",
        &[
            "-sS",
            "-N",
            "--max-time",
            "20",
            "--cacert",
            ca,
            "-u",
            &auth,
            "-H",
            accept,
            &url,
        ],
    )
    .await;
    assert_eq!(
        got,
        "data: 0\n\ndata: 1\n\ndata: 2\n\nevent: end\ndata: {\"ok\":true}\n\n"
    );
}

#[tokio::test]
async fn the_websocket_at_get_rpc_works_over_tls() {
    let setup = Setup::new();
    let gateway = start(&setup).await;
    let stream = tls_connect(&gateway.address, &setup.ca.cert_file).await;
    let mut request = format!("wss://{}/rpc", gateway.address)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", basic(PASSWORD).parse().unwrap());
    let upgrade = tokio_tungstenite::client_async(request, stream);
    let (mut socket, response) = within("the upgrade", upgrade).await.expect("upgrades");
    assert_eq!(response.status(), 101);
    within("a message sent", socket.send(Message::text(ADD)))
        .await
        .unwrap();
    let answer = within("the answer", socket.next())
        .await
        .expect("a message")
        .unwrap();
    let answer: Value = serde_json::from_str(answer.to_text().unwrap()).unwrap();
    assert_eq!(answer, json!({"jsonrpc": "2.0", "id": 1, "result": 5}));
}

#[tokio::test]
async fn plain_http_to_the_https_port_is_told_and_closed_and_others_are_still_served() {
    let setup = Setup::new();
    let gateway = start(&setup).await;
    let mut plain = within("connect", TcpStream::connect(&gateway.address))
        .await
        .unwrap();
    let answer = exchange(&mut plain, ADD).await;
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{answer}"
    );
    assert!(
        answer.ends_with("this port speaks HTTPS: call it with an https:// URL"),
        "{answer}"
    );
    let mut tls = tls_connect(&gateway.address, &setup.ca.cert_file).await;
    assert!(exchange(&mut tls, ADD).await.ends_with(r#""result":5}"#));
}

#[tokio::test]
async fn a_client_silent_before_its_tls_handshake_is_closed_at_the_header_timeout() {
    let setup = Setup::new();
    let limits = Limits {
        http_header_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let gateway = start_with(http(&setup), limits).await.unwrap();
    let mut silent = within("connect", TcpStream::connect(&gateway.address))
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let read = within_for(Duration::from_secs(10), "the close", silent.read(&mut buf)).await;
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

#[tokio::test]
async fn a_password_in_clear_off_loopback_is_refused_unless_allowed() {
    let plain = || HttpConfig::builder().listen("0.0.0.0:0").password(PASSWORD);
    let e = start_with(plain(), Limits::default())
        .await
        .err()
        .expect("refused");
    assert_eq!(e.kind(), ErrorKind::Config);
    for word in ["in clear", "[http.tls]", "allow_plaintext_password = true"] {
        assert!(e.to_string().contains(word), "{e}");
    }
    let allowed = plain().allow_plaintext_password(true);
    let gateway = start_with(allowed, Limits::default())
        .await
        .expect("starts");
    let mut tcp = within("connect", TcpStream::connect(&gateway.address))
        .await
        .unwrap();
    assert!(exchange(&mut tcp, ADD).await.ends_with(r#""result":5}"#));
    let setup = Setup::new();
    let tls = http(&setup).listen("0.0.0.0:0");
    let gateway = start_with(tls, Limits::default())
        .await
        .expect("TLS starts off loopback");
    let mut stream = tls_connect(&gateway.address, &setup.ca.cert_file).await;
    assert!(exchange(&mut stream, ADD).await.ends_with(r#""result":5}"#));
}

#[tokio::test]
async fn the_servers_reload_reloads_the_gateways_certificate_too() {
    let setup = Setup::new();
    let server = server(Limits::default());
    let config = http(&setup).build().expect("a valid [http] config");
    let gateway = HttpGateway::new(config, &server).expect("the gateway builds");
    let listening = within("the gateway to bind", gateway.bind())
        .await
        .expect("binds");
    let port = listening
        .local_addr()
        .rsplit_once(':')
        .unwrap()
        .1
        .to_owned();
    let address = format!("127.0.0.1:{port}");
    let task = tokio::spawn(listening.serve());
    let other = setup.pki.ca("other-ca");
    let (cert, key) = setup.pki.leaf(&other, "other-server", Leaf::SERVER);
    tls::replace(&setup.server.0, &cert);
    tls::replace(&setup.server.1, &key);
    // The server has no [server.tls]: its reload is the gateway's.
    server
        .reload_tls()
        .expect("the gateway's certificate reloads");
    let mut stream = tls_connect(&address, &other.cert_file).await;
    assert!(exchange(&mut stream, ADD).await.ends_with(r#""result":5}"#));
    task.abort();
}

#[tokio::test]
async fn reloading_swaps_the_certificate_for_new_connections() {
    let setup = Setup::new();
    let gateway = start(&setup).await;
    let other = setup.pki.ca("other-ca");
    let (cert, key) = setup.pki.leaf(&other, "other-server", Leaf::SERVER);
    tls::replace(&setup.server.0, &cert);
    tls::replace(&setup.server.1, &key);
    gateway
        .reloader
        .as_ref()
        .expect("a TLS gateway")
        .reload()
        .expect("reloads");
    let mut stream = tls_connect(&gateway.address, &other.cert_file).await;
    assert!(exchange(&mut stream, ADD).await.ends_with(r#""result":5}"#));
}
