//! `rpc_core::Bytes` and typed errors as clients in other languages see
//! them: a stock Python `multiprocessing` client sends and gets `bytes`
//! (nested in structs, enums and lists too), Python's `xmlrpc.client`
//! sends and gets `<base64>` (`xmlrpc.client.Binary`), and a Python client
//! gets a typed error's data along with its message
//! (`tests/python/bytes_client.py`). Without `python3` on the `PATH` the
//! tests say so and pass.

mod common;

use std::fmt;
use std::process::Stdio;
use std::time::Duration;

use common::{KEY, server_builder, within, within_for};
use rpc_core::codec::Id;
use rpc_core::service::{Fault, Payload};
use rpc_core::{Bytes, Registry};
use rpc_transport::Server;
use rpc_transport::http::{HttpConfig, HttpGateway};
use serde::{Deserialize, Serialize};
use tokio::process::Command;
use tokio::task::JoinHandle;

const PASSWORD: &str = "bytes-test-password";

/// A named payload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Thumb {
    /// What it is called.
    pub name: String,
    /// Its bytes.
    pub data: Bytes,
}

/// Payloads nested in an enum.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Image {
    /// A PNG file's bytes.
    Png(Bytes),
    /// A named payload.
    Named(Thumb),
    /// No image.
    Empty,
}

/// Why `limit` refused a size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum LimitError {
    /// Over the limit.
    TooLarge {
        /// The size asked for.
        size: u64,
        /// The largest allowed.
        limit: u64,
    },
    /// Zero bytes.
    Empty,
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitError::TooLarge { size, limit } => {
                write!(f, "{size} bytes is over the limit of {limit}")
            }
            LimitError::Empty => f.write_str("nothing to store"),
        }
    }
}

impl std::error::Error for LimitError {}

/// Bytes in, bytes out.
#[rpc_core::rpc_service]
pub trait Media {
    /// `data`, back to front.
    async fn reverse(&self, data: Bytes) -> Bytes;
    /// `images` as they came.
    async fn echo(&self, images: Vec<Image>) -> Vec<Image>;
    /// The first four bytes of `data`, named.
    async fn thumb(&self, data: Bytes) -> Thumb;
    /// `size`, if it is between 1 and 10.
    async fn limit(&self, size: u64) -> Result<u64, LimitError>;
}

struct Store;

impl Media for Store {
    async fn reverse(&self, data: Bytes) -> Bytes {
        Bytes::from(data.iter().rev().copied().collect::<Vec<u8>>())
    }

    async fn echo(&self, images: Vec<Image>) -> Vec<Image> {
        images
    }

    async fn thumb(&self, data: Bytes) -> Thumb {
        Thumb {
            name: "thumb".into(),
            data: Bytes::copy_from_slice(&data[..4.min(data.len())]),
        }
    }

    async fn limit(&self, size: u64) -> Result<u64, LimitError> {
        match size {
            0 => Err(LimitError::Empty),
            1..=10 => Ok(size),
            _ => Err(LimitError::TooLarge { size, limit: 10 }),
        }
    }
}

fn python_available() -> bool {
    std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

macro_rules! require_python {
    () => {
        if !python_available() {
            eprintln!("skipped: no python3 on the PATH");
            return;
        }
    };
}

/// The media service over TCP (Python peers welcome) and HTTP, stopped
/// when dropped.
struct Servers {
    tcp_port: String,
    http: String,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

async fn start() -> Servers {
    let config = server_builder()
        .python_compat(true)
        .allow_legacy_auth(true)
        .build()
        .expect("a valid server config");
    let registry = Registry::new().with(MediaServer::new(Store)).unwrap();
    let server = Server::new(config, registry);
    let http_config = HttpConfig::builder()
        .listen("127.0.0.1:0")
        .password(PASSWORD)
        .build()
        .expect("a valid [http] config");
    let gateway = HttpGateway::new(http_config, &server).expect("the gateway builds");
    let http = within("the gateway to bind", gateway.bind()).await.unwrap();
    let tcp = within("the server to bind", server.bind()).await.unwrap();
    let tcp_port = tcp.local_addr().rsplit(':').next().unwrap().to_owned();
    let http_addr = http.local_addr().to_owned();
    Servers {
        tcp_port,
        http: http_addr,
        tasks: vec![tokio::spawn(tcp.serve()), tokio::spawn(http.serve())],
    }
}

/// Runs `bytes_client.py args…` to its end; fails on a non-zero exit.
async fn bytes_client(args: &[&str]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/bytes_client.py");
    let mut command = Command::new("python3");
    command.arg("-u").arg(script).args(args).kill_on_drop(true);
    let output = within_for(Duration::from_secs(60), "bytes_client.py", command.output())
        .await
        .expect("python3 starts");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "bytes_client.py {args:?} failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    println!("--- bytes_client.py {}\n{stdout}", args.join(" "));
    stdout
}

#[tokio::test]
async fn a_python_pickle_client_sends_and_gets_bytes_nested_too() {
    require_python!();
    let servers = start().await;
    let out = bytes_client(&["pickle", &servers.tcp_port, KEY]).await;
    for line in [
        "reverse(PNG) -> b'\\xff\\x00\\n\\x1a\\n\\rGNP\\x89'\n",
        "echo(images) -> [{'Png': b'\\x89PNG\\r\\n\\x1a\\n\\x00\\xff'}, \
         {'Named': {'name': 'icon', 'data': b'\\x00'}}, 'Empty']\n",
        "thumb(PNG) -> {'name': 'thumb', 'data': b'\\x89PNG'}\n",
        "all good\n",
    ] {
        assert!(out.contains(line), "{line:?} in\n{out}");
    }
}

#[tokio::test]
async fn python_xmlrpc_sends_and_gets_base64() {
    require_python!();
    let servers = start().await;
    let out = bytes_client(&["xmlrpc", &servers.http, PASSWORD]).await;
    for line in [
        "reverse(Binary(PNG)) -> <xmlrpc.client.Binary",
        "thumb(Binary(PNG)) -> {'name': 'thumb', 'data': <xmlrpc.client.Binary",
        "reverse(PNG) with builtin types -> b'\\xff\\x00\\n\\x1a\\n\\rGNP\\x89'\n",
        "all good\n",
    ] {
        assert!(out.contains(line), "{line:?} in\n{out}");
    }
}

/// `bytes_client.py frame FORM` reading `payload` as a reply.
async fn read_in_python(form: &str, payload: &[u8]) -> String {
    use tokio::io::AsyncWriteExt;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/bytes_client.py");
    let mut child = Command::new("python3")
        .args(["-u", script, "frame", form])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 starts");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(payload).await.unwrap();
    drop(stdin);
    let output = within("bytes_client.py frame", child.wait_with_output())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The reply frame `codec` writes for `limit`'s error `error`.
fn error_frame(codec: &dyn rpc_core::Codec, error: LimitError) -> Vec<u8> {
    let fault = Fault::application(
        format!("`Media.limit` failed: {error}"),
        Box::new(error) as Payload,
    );
    let mut frame = bytes::BytesMut::new();
    codec
        .encode_response(&mut frame, &Id::Null, &Err(fault))
        .unwrap();
    frame.to_vec()
}

#[tokio::test]
async fn a_python_peer_reads_a_typed_errors_data_from_the_reply() {
    require_python!();
    let too_large = LimitError::TooLarge {
        size: 99,
        limit: 10,
    };
    let pickled = error_frame(&rpc_core::python::Pickle, too_large.clone());
    let out = read_in_python("pickle", &pickled).await;
    assert_eq!(
        out,
        "str(e) -> '`Media.limit` failed: 99 bytes is over the limit of 10'\n\
         e.args -> ('`Media.limit` failed: 99 bytes is over the limit of 10',)\n\
         e.data -> {'TooLarge': {'limit': 10, 'size': 99}}\n"
    );
    let json = error_frame(&rpc_core::python::PyJson, too_large);
    let out = read_in_python("json", &json).await;
    assert_eq!(
        out,
        "json.loads -> {'error': {'data': {'TooLarge': {'limit': 10, 'size': 99}}, \
         'message': '`Media.limit` failed: 99 bytes is over the limit of 10', 'type': 'RuntimeError'}}\n"
    );
}

/// End to end: the reply carries the typed error's data, and the message
/// names the method as `Service.method`.
#[tokio::test]
async fn a_python_client_gets_a_typed_errors_data_with_its_message() {
    require_python!();
    let servers = start().await;
    let out = bytes_client(&["errors", &servers.tcp_port, KEY]).await;
    for line in [
        "str(e) -> '`Media.limit` failed: 99 bytes is over the limit of 10'\n",
        "e.data -> {'TooLarge': {'limit': 10, 'size': 99}}\n",
        "e.data -> 'Empty'\n",
        "all good\n",
    ] {
        assert!(out.contains(line), "{line:?} in\n{out}");
    }
}

#[tokio::test]
async fn our_pickle_and_py_json_clients_send_and_get_bytes_too() {
    let servers = start().await;
    let address = format!("127.0.0.1:{}", servers.tcp_port);
    let png = Bytes::from(&b"\x89PNG\r\n\x1a\n"[..]);
    for codec in ["pickle", "py-json"] {
        let config = common::client_builder(&address, codec).build().unwrap();
        let client = within("connecting", rpc_transport::connect(&config))
            .await
            .unwrap();
        let media = MediaClient::new(client);
        let reversed = media.reverse(png.clone()).await.unwrap();
        assert_eq!(&reversed[..], b"\n\x1a\n\rGNP\x89", "{codec}");
        let images = vec![
            Image::Png(png.clone()),
            Image::Named(Thumb {
                name: "icon".into(),
                data: Bytes::from(vec![0u8, 255]),
            }),
            Image::Empty,
        ];
        assert_eq!(media.echo(images.clone()).await.unwrap(), images, "{codec}");
    }
}
