//! Helpers for the stream tests (`streams_*.rs`): a service whose streams
//! count what they produce and say how they ended, a server that can be
//! shut down gracefully, and raw protocol-2 sessions that speak the hello
//! with a stream window and then write stream messages by hand.
//!
//! Included with `#[path = "common/streams.rs"] mod streams;` next to `mod common;`.

#![allow(dead_code)]

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use futures::StreamExt;
use rpc_core::codec::{Codec, Inbound, OutRequest};
use rpc_core::stream::Sender;
use rpc_core::{Error, ErrorKind, Registry, Stream, rpc_service};
use rpc_transport::{Server, ServerConfig};
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::common::{
    KEY, WAIT, client_handshake, expect_frame, expect_json, raw_connect, within, within_for,
    write_frame,
};

/// The typed error of [`Flows::open_or_refuse`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Refusal {
    /// Asked not to open.
    Closed,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("refused to open")
    }
}

impl std::error::Error for Refusal {}

/// Streams every way they can end.
#[rpc_service]
pub(crate) trait Flows {
    /// `x + y`.
    async fn add(&self, x: u64, y: u64) -> u64;
    /// `0..n`, finished.
    async fn count(&self, n: u64) -> Stream<u64>;
    /// `0..n`, then ends with an Application error "ran dry".
    async fn count_then_fail(&self, n: u64) -> Stream<u64>;
    /// `0..3`, or the typed refusal when `open` is false.
    async fn open_or_refuse(&self, open: bool) -> Result<Stream<u64>, Refusal>;
    /// `0..` as fast as it is taken, counted in `produced`; `dropped` when dropped.
    async fn endless(&self) -> Stream<u64>;
    /// `0..`, one item each `every_ms`, from a [`Sender`] on a task that
    /// reports why its `send` failed in `sender_ends`.
    async fn fed(&self, every_ms: u64) -> Stream<u64>;
    /// Nothing until the test sends on the sender kept in `quiet`.
    async fn quiet(&self) -> Stream<u64>;
    /// The sum of its items; its stream's end goes to `upload_ends`.
    async fn sum(&self, items: Stream<u64>) -> u64;
    /// [`Flows::sum`], taking each item after `delay_ms` and counting it in `taken`.
    async fn slow_sum(&self, items: Stream<u64>, delay_ms: u64) -> u64;
    /// The sum of the first three items; drops the stream then.
    async fn take3(&self, items: Stream<u64>) -> u64;
}

/// How a stream ended, as comparable values.
pub(crate) type Ended = Result<(), (ErrorKind, String)>;

/// What the service's streams did.
pub(crate) struct FlowState {
    /// Items the endless producers made.
    pub(crate) produced: AtomicU64,
    /// Endless producers dropped.
    pub(crate) dropped: AtomicU64,
    /// Items `slow_sum` took.
    pub(crate) taken: AtomicU64,
    /// Why each `fed` sender stopped.
    sender_ends: Mutex<Option<mpsc::UnboundedSender<Error>>>,
    /// How each stream `sum`/`slow_sum`/`take3` read ended.
    upload_ends: Mutex<Option<mpsc::UnboundedSender<Ended>>>,
    /// The senders of `quiet` streams.
    quiet: Mutex<Vec<Sender<u64>>>,
}

/// The receiving ends of a [`FlowState`]'s reports.
pub(crate) struct FlowReports {
    pub(crate) sender_ends: mpsc::UnboundedReceiver<Error>,
    pub(crate) upload_ends: mpsc::UnboundedReceiver<Ended>,
}

impl FlowReports {
    /// Why the next `fed` sender stopped.
    pub(crate) async fn next_sender_end(&mut self) -> Error {
        within("a server-side sender to stop", self.sender_ends.recv())
            .await
            .expect("the state lives")
    }

    /// How the next uploaded stream ended, as its handler saw it.
    pub(crate) async fn next_upload_end(&mut self) -> Ended {
        within("an uploaded stream to end", self.upload_ends.recv())
            .await
            .expect("the state lives")
    }
}

impl FlowState {
    pub(crate) fn new() -> (Arc<FlowState>, FlowReports) {
        let (sender_tx, sender_ends) = mpsc::unbounded_channel();
        let (upload_tx, upload_ends) = mpsc::unbounded_channel();
        let state = Arc::new(FlowState {
            produced: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            taken: AtomicU64::new(0),
            sender_ends: Mutex::new(Some(sender_tx)),
            upload_ends: Mutex::new(Some(upload_tx)),
            quiet: Mutex::new(Vec::new()),
        });
        (
            state,
            FlowReports {
                sender_ends,
                upload_ends,
            },
        )
    }

    /// Sends `item` on every open `quiet` stream.
    pub(crate) async fn speak(&self, item: u64) {
        let senders: Vec<Sender<u64>> = self.quiet.lock().unwrap().drain(..).collect();
        for sender in &senders {
            within("a quiet stream to take an item", sender.send(item))
                .await
                .expect("the quiet stream is open");
        }
        self.quiet.lock().unwrap().extend(senders);
    }

    fn upload_ended<T>(&self, stream: &Stream<T>) {
        let end = match stream.end() {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err((e.kind(), e.message().to_owned())),
            None => Err((ErrorKind::Internal, "not ended".to_owned())),
        };
        if let Some(tx) = &*self.upload_ends.lock().unwrap() {
            let _ = tx.send(end);
        }
    }
}

/// An always-ready stream of `0..`, counting what it makes.
pub(crate) struct Counting {
    next: u64,
    state: Arc<FlowState>,
}

impl futures::Stream for Counting {
    type Item = u64;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<u64>> {
        self.state.produced.fetch_add(1, Ordering::SeqCst);
        self.next += 1;
        Poll::Ready(Some(self.next - 1))
    }
}

impl Drop for Counting {
    fn drop(&mut self) {
        self.state.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

/// The service's implementation.
pub(crate) struct FlowsImpl(pub Arc<FlowState>);

impl Flows for FlowsImpl {
    async fn add(&self, x: u64, y: u64) -> u64 {
        x.wrapping_add(y)
    }

    async fn count(&self, n: u64) -> Stream<u64> {
        Stream::iter(0..n)
    }

    async fn count_then_fail(&self, n: u64) -> Stream<u64> {
        let items = (0..n).map(Ok).chain(std::iter::once(Err(Error::new(
            ErrorKind::Application,
            "ran dry",
        ))));
        Stream::try_new(futures::stream::iter(items))
    }

    async fn open_or_refuse(&self, open: bool) -> Result<Stream<u64>, Refusal> {
        if open {
            Ok(Stream::iter(0..3))
        } else {
            Err(Refusal::Closed)
        }
    }

    async fn endless(&self) -> Stream<u64> {
        Stream::new(Counting {
            next: 0,
            state: self.0.clone(),
        })
    }

    async fn fed(&self, every_ms: u64) -> Stream<u64> {
        let (sender, stream) = Stream::channel(4);
        let report = self.0.sender_ends.lock().unwrap().clone();
        tokio::spawn(async move {
            let mut n = 0;
            let why = loop {
                if let Err(e) = sender.send(n).await {
                    break e;
                }
                n += 1;
                tokio::time::sleep(Duration::from_millis(every_ms)).await;
            };
            // `closed()` agrees with what `send` said.
            let closed = within("closed() once send failed", sender.closed()).await;
            assert_eq!(closed.kind(), why.kind(), "{closed} / {why}");
            assert!(sender.is_closed());
            if let Some(report) = report {
                let _ = report.send(why);
            }
        });
        stream
    }

    async fn quiet(&self) -> Stream<u64> {
        let (sender, stream) = Stream::channel(4);
        self.0.quiet.lock().unwrap().push(sender);
        stream
    }

    async fn sum(&self, mut items: Stream<u64>) -> u64 {
        let mut total = 0u64;
        while let Some(x) = items.next().await {
            total = total.wrapping_add(x);
        }
        self.0.upload_ended(&items);
        total
    }

    async fn slow_sum(&self, mut items: Stream<u64>, delay_ms: u64) -> u64 {
        let mut total = 0u64;
        loop {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            let Some(x) = items.next().await else { break };
            self.0.taken.fetch_add(1, Ordering::SeqCst);
            total = total.wrapping_add(x);
        }
        self.0.upload_ended(&items);
        total
    }

    async fn take3(&self, items: Stream<u64>) -> u64 {
        items.take(3).fold(0, |a, b| async move { a + b }).await
    }
}

/// A registry with a fresh [`Flows`] service, its state and reports.
pub(crate) fn flows() -> (Registry, Arc<FlowState>, FlowReports) {
    let (state, reports) = FlowState::new();
    let registry = Registry::new()
        .with(FlowsServer::new(FlowsImpl(state.clone())))
        .expect("the flows service registers");
    (registry, state, reports)
}

/// A served [`Flows`] and the server itself, to shut it down or read its
/// metrics; aborting its task (on drop, or with [`FlowServer::stop`])
/// closes the listener and every connection.
pub(crate) struct FlowServer {
    pub(crate) address: String,
    task: Option<JoinHandle<()>>,
    pub(crate) server: Server,
    pub(crate) state: Arc<FlowState>,
    pub(crate) reports: FlowReports,
}

/// Serves a fresh [`Flows`] with `config`.
pub(crate) async fn serve_flows(config: ServerConfig) -> FlowServer {
    let (registry, state, reports) = flows();
    let listening = within("the server to bind", Server::new(config, registry).bind())
        .await
        .expect("the server binds 127.0.0.1:0");
    let server = listening.server().clone();
    let address = listening.local_addr().to_owned();
    FlowServer {
        address,
        task: Some(tokio::spawn(listening.serve())),
        server,
        state,
        reports,
    }
}

impl FlowServer {
    /// Stops the server (abruptly: every connection is dropped) and waits
    /// until its task has ended.
    pub(crate) async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = within("the server task to end", task).await;
        }
    }
}

impl Drop for FlowServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A typed [`Flows`] client over a fresh connection.
pub(crate) async fn flows_client(address: &str, codec: &str) -> FlowsClient {
    FlowsClient::new(crate::common::connect(address, codec).await)
}

/// Polls `done` every 10 ms until it holds, for at most `limit`.
pub(crate) async fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    within_for(limit, what, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// Reads `stream` to its end (bounded by [`WAIT`]): its items and how it ended.
pub(crate) async fn drain<T: Send + 'static>(mut stream: Stream<T>) -> (Vec<T>, Ended) {
    let mut items = Vec::new();
    within("a stream to end", async {
        while let Some(item) = stream.next().await {
            items.push(item);
        }
    })
    .await;
    let end = match stream.end() {
        Some(Ok(())) => Ok(()),
        Some(Err(e)) => Err((e.kind(), e.message().to_owned())),
        None => panic!("a stream gave None without an end"),
    };
    (items, end)
}

/// The kind of an end.
pub(crate) fn kind_of(end: &Ended) -> Option<ErrorKind> {
    end.as_ref().err().map(|(kind, _)| *kind)
}

// ---------------------------------------------------------------------------
// Raw protocol-2 sessions.
// ---------------------------------------------------------------------------

/// The codec named `name`.
pub(crate) fn codec(name: &str) -> &'static dyn Codec {
    rpc_core::codec::by_name(name).expect("a known codec")
}

/// A raw connection to `address`, authenticated and past a protocol-2
/// hello for `codec` announcing `items`/`bytes` as the window it receives
/// streams with; returns the server's answer too.
pub(crate) async fn raw_session2(
    address: &str,
    codec: &str,
    items: u32,
    bytes: u32,
) -> (TcpStream, serde_json::Value) {
    let mut stream = raw_connect(address).await;
    client_handshake(&mut stream, KEY).await;
    let hello = serde_json::json!({
        "protocol": 2,
        "codec": codec,
        "max_frame_bytes": 16_777_216,
        "stream_window": {"items": items, "bytes": bytes},
    });
    write_frame(&mut stream, hello.to_string().as_bytes()).await;
    let answer = expect_json(&mut stream, "the answer to the hello").await;
    assert_eq!(answer["codec"], codec, "{answer}");
    (stream, answer)
}

/// One message, encoded by `encode` with `codec`, written as a frame.
pub(crate) async fn send_with(
    stream: &mut TcpStream,
    codec: &'static dyn Codec,
    encode: impl FnOnce(&dyn Codec, &mut BytesMut),
) {
    let mut buf = BytesMut::new();
    encode(codec, &mut buf);
    write_frame(stream, &buf).await;
}

/// Sends request `id` to `method` with `args` (a `()` stands for a stream).
pub(crate) async fn send_request(
    stream: &mut TcpStream,
    codec: &'static dyn Codec,
    id: u64,
    method: &str,
    args: &(impl Serialize + Sync),
) {
    send_with(stream, codec, |codec, buf| {
        let request = OutRequest {
            id,
            method,
            deadline: None,
            args,
            metadata: None,
        };
        codec
            .encode_request(buf, &request)
            .expect("a request encodes");
    })
    .await;
}

/// Sends `items` as one items message of stream `id`.
pub(crate) async fn send_items(
    stream: &mut TcpStream,
    codec: &'static dyn Codec,
    id: u64,
    items: &[u64],
) {
    send_with(stream, codec, |codec, buf| {
        codec.begin_items(buf, id);
        for (i, item) in items.iter().enumerate() {
            codec
                .encode_item(buf, i == 0, item)
                .expect("an item encodes");
        }
        codec.finish_items(buf, 0, u32::try_from(items.len()).unwrap());
    })
    .await;
}

/// Sends the end of stream `id`: finished.
pub(crate) async fn send_end(stream: &mut TcpStream, codec: &'static dyn Codec, id: u64) {
    send_with(stream, codec, |codec, buf| {
        codec.encode_end(buf, id, Ok(())).expect("an end encodes");
    })
    .await;
}

/// One message from the server, decoded as a client would.
pub(crate) async fn next_inbound(
    stream: &mut TcpStream,
    codec: &'static dyn Codec,
) -> (Vec<u8>, Inbound) {
    let payload = expect_frame(stream, "a message from the server").await;
    let inbound = codec.decode_response(&payload).unwrap_or_else(|e| {
        panic!(
            "not a message a client reads ({e}): {:?}",
            String::from_utf8_lossy(&payload)
        )
    });
    (payload, inbound)
}

/// Sends a ping with `nonce` and reads until its pong, returning what came
/// before it. The pong must carry the same nonce.
pub(crate) async fn ping(
    stream: &mut TcpStream,
    codec: &'static dyn Codec,
    nonce: u64,
) -> Vec<(Vec<u8>, Inbound)> {
    send_with(stream, codec, |codec, buf| {
        codec.encode_ping(buf, nonce, false)
    })
    .await;
    let mut before = Vec::new();
    within("the pong", async {
        loop {
            let (payload, inbound) = next_inbound(stream, codec).await;
            if let Inbound::Flow(rpc_core::codec::Flow::Ping { nonce: n, pong }) = &inbound {
                assert!(*pong, "the server answered a ping with a ping");
                assert_eq!(*n, nonce, "the pong's nonce");
                return;
            }
            before.push((payload, inbound));
        }
    })
    .await;
    before
}

/// The bound on waits that should end at once.
pub(crate) const SHORT: Duration = WAIT;

// ---------------------------------------------------------------------------
// A fake protocol-2 server.
// ---------------------------------------------------------------------------

/// Accepts one client on `listener` and plays a correct server through the
/// handshake and a protocol-2 hello (window `items`/`bytes`); returns the
/// stream and the codec the client asked for.
pub(crate) async fn fake_server_session2(
    listener: &tokio::net::TcpListener,
    items: u32,
    bytes: u32,
) -> (TcpStream, &'static dyn Codec) {
    use rpc_transport::handshake::{
        CHALLENGE, WELCOME, answer_challenge, make_challenge, verify_answer,
    };
    let (mut stream, _) = within("a client to connect", listener.accept())
        .await
        .expect("accepting a client");
    stream.set_nodelay(true).expect("TCP_NODELAY");
    let ours = make_challenge(&[0x3c; 40]);
    write_frame(&mut stream, &ours).await;
    let answer = expect_frame(&mut stream, "the client's answer").await;
    verify_answer(KEY.as_bytes(), &ours[CHALLENGE.len()..], &answer, false)
        .expect("the client knows the key");
    write_frame(&mut stream, WELCOME).await;
    let theirs = expect_frame(&mut stream, "the client's challenge").await;
    let answer = answer_challenge(KEY.as_bytes(), &theirs, false).expect("a modern challenge");
    write_frame(&mut stream, &answer).await;
    let verdict = expect_frame(&mut stream, "the client's verdict").await;
    assert_eq!(verdict, WELCOME);
    let hello = expect_json(&mut stream, "the client's hello").await;
    assert_eq!(hello["protocol"], 2, "{hello}");
    let name = hello["codec"].as_str().expect("a codec").to_owned();
    let answer = serde_json::json!({
        "protocol": 2,
        "codec": name,
        "max_frame_bytes": 16_777_216,
        "stream_window": {"items": items, "bytes": bytes},
    });
    write_frame(&mut stream, answer.to_string().as_bytes()).await;
    (stream, codec(&name))
}

/// Reads the client's next request; returns its id.
pub(crate) async fn next_request_id(stream: &mut TcpStream, codec: &'static dyn Codec) -> u64 {
    let payload = expect_frame(stream, "a request").await;
    match codec.decode_request(&payload) {
        rpc_core::codec::Incoming::Request(request) => match request.id {
            Some(rpc_core::codec::Id::Num(id)) => id,
            other => panic!("a request without a numeric id: {other:?}"),
        },
        other => panic!("not a request: {other:?}"),
    }
}

/// Answers request `id` as opening a stream.
pub(crate) async fn open_stream(stream: &mut TcpStream, codec: &'static dyn Codec, id: u64) {
    let payload = match codec.name() {
        "json" => serde_json::json!({"jsonrpc": "2.0", "id": id, "result": null, "stream": true})
            .to_string()
            .into_bytes(),
        _ => {
            let mut payload = vec![0x01];
            payload.extend(bincode::serde::encode_to_vec(id, bincode::config::standard()).unwrap());
            payload.push(0x02);
            payload
        }
    };
    write_frame(stream, &payload).await;
}
