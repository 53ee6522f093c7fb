//! A deep pipeline's batches are cut: a connection with many calls in
//! flight writes a batch a dozen frames at a time, so that its peer starts
//! on the first ones, on the server's side (replies) and the client's
//! (requests).
//!
//! Each test runs on one thread, where the order of the tasks is fixed,
//! and watches the frames each `write` of one end carries through a stream
//! wrapper that can also hold that end's reads back, so that a whole batch
//! arrives in one read.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use rpc_core::{Client, Registry, rpc_service};
use rpc_transport::{ClientConfig, Connection, Server, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};

/// The service the calls go to.
#[rpc_service]
pub trait Adder {
    /// `x + y`.
    async fn add(&self, x: i64, y: i64) -> i64;
}

struct Sums;

impl Adder for Sums {
    async fn add(&self, x: i64, y: i64) -> i64 {
        x + y
    }
}

/// Calls in flight at once: over the dozen a cut is made at.
const CALLS: i64 = 40;

/// How long any wait here may take before the test fails.
const LIMIT: Duration = Duration::from_secs(10);

/// The connections a cut is made for are counted process-wide: the tests
/// of this file take turns, so that one's connections do not stop the
/// other's cuts.
static SERIAL: Mutex<()> = Mutex::new(());

/// Runs `test` on a runtime of one thread, the other tests waiting until
/// that runtime and every connection on it are gone.
fn serially<F: Future<Output = ()>>(test: impl FnOnce() -> F) {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // Time moves only when every task waits: a slow machine cannot
        // make a connection seem quiet.
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(test());
}

/// Frames written, per `write` call.
#[derive(Default)]
struct Log {
    header: Vec<u8>,
    left: usize,
    writes: Vec<usize>,
}

impl Log {
    /// Counts the frames that end in `bytes`, one `write`'s worth.
    fn record(&mut self, mut bytes: &[u8]) {
        let mut ended = 0;
        while !bytes.is_empty() {
            if self.left == 0 {
                let take = (4 - self.header.len()).min(bytes.len());
                self.header.extend_from_slice(&bytes[..take]);
                bytes = &bytes[take..];
                if self.header.len() == 4 {
                    let len = i32::from_be_bytes(self.header[..].try_into().unwrap());
                    self.left = usize::try_from(len).expect("no 8-byte lengths here");
                    self.header.clear();
                    ended += usize::from(self.left == 0);
                }
            } else {
                let take = self.left.min(bytes.len());
                self.left -= take;
                bytes = &bytes[take..];
                ended += usize::from(self.left == 0);
            }
        }
        self.writes.push(ended);
    }
}

/// Holds reads back while closed.
#[derive(Default)]
struct Gate {
    closed: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Gate {
    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    fn open(&self) {
        self.closed.store(false, Ordering::SeqCst);
        if let Some(waker) = self.waker.lock().unwrap().take() {
            waker.wake();
        }
    }
}

/// One end of the pipe, its writes logged, its reads gated and at most
/// `max_read` bytes each.
struct Tap {
    inner: DuplexStream,
    gate: Arc<Gate>,
    log: Arc<Mutex<Log>>,
    max_read: usize,
}

impl Tap {
    fn new(inner: DuplexStream, max_read: usize) -> Tap {
        Tap {
            inner,
            gate: Arc::default(),
            log: Arc::default(),
            max_read,
        }
    }
}

impl AsyncRead for Tap {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.gate.closed.load(Ordering::SeqCst) {
            *self.gate.waker.lock().unwrap() = Some(cx.waker().clone());
            // Opened between the look and the registration: read now.
            if self.gate.closed.load(Ordering::SeqCst) {
                return Poll::Pending;
            }
        }
        let mut room = vec![0; self.max_read.min(buf.remaining())];
        let mut limited = ReadBuf::new(&mut room);
        let read = Pin::new(&mut self.inner).poll_read(cx, &mut limited);
        buf.put_slice(limited.filled());
        read
    }
}

impl AsyncWrite for Tap {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let wrote = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = wrote {
            self.log.lock().unwrap().record(&buf[..n]);
        }
        wrote
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A client and a server joined by a pipe, each end tapped.
struct Pair {
    adder: AdderClient,
    /// Holds the server's reads back.
    server_gate: Arc<Gate>,
    /// Holds the client's reads back.
    client_gate: Arc<Gate>,
    /// The server's writes.
    replies: Arc<Mutex<Log>>,
    /// The client's writes.
    requests: Arc<Mutex<Log>>,
}

/// Joins a client and a server whose reads take at most `server_read` bytes.
async fn pair(server_read: usize) -> Pair {
    let (near, far) = tokio::io::duplex(1 << 16);
    let (server_end, client_end) = (Tap::new(far, server_read), Tap::new(near, 1 << 16));
    let (server_gate, replies) = (server_end.gate.clone(), server_end.log.clone());
    let (client_gate, requests) = (client_end.gate.clone(), client_end.log.clone());
    let config = ServerConfig::builder()
        .authkey("k")
        .no_env()
        .build()
        .unwrap();
    let server = Server::new(
        config,
        Registry::new().with(AdderServer::new(Sums)).unwrap(),
    );
    tokio::spawn(async move { server.serve_stream(server_end, None).await });
    let config = ClientConfig::builder()
        .authkey("k")
        .no_env()
        .build()
        .unwrap();
    let connection = Connection::over(client_end, &config).await.unwrap();
    Pair {
        adder: AdderClient::new(Client::new(connection)),
        server_gate,
        client_gate,
        replies,
        requests,
    }
}

/// Checks that `writes` carried a batch in dozens or fewer, in four writes
/// at least (without the cut: one write of all 40).
fn in_dozens(writes: &[usize], what: &str) {
    assert!(writes.len() >= 4, "the {what} went out in {writes:?}");
    assert!(
        writes.iter().all(|&n| n <= 12),
        "the {what} went out in {writes:?}"
    );
}

/// Waits until `log` holds `frames` frames written since its write `mark`.
async fn written(log: &Mutex<Log>, mark: usize, frames: usize) {
    let count = || log.lock().unwrap().writes[mark..].iter().sum::<usize>();
    tokio::time::timeout(LIMIT, async {
        while count() < frames {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{} of {frames} frames written", count()));
}

/// The frames of each write since `mark`, the writes that carried none left out.
fn since(log: &Mutex<Log>, mark: usize) -> Vec<usize> {
    let log = log.lock().unwrap();
    log.writes[mark..]
        .iter()
        .copied()
        .filter(|&n| n > 0)
        .collect()
}

/// Closes `gate` (the server's reads) and starts `n` calls `add(i, 1)`,
/// returning once all their requests are written (`requests` logs the
/// client's writes): the server reads them at once when the gate opens.
async fn held_back(
    adder: &AdderClient,
    gate: &Gate,
    requests: &Mutex<Log>,
    n: i64,
) -> Vec<tokio::task::JoinHandle<Result<i64, rpc_core::Error>>> {
    gate.close();
    let asked = requests.lock().unwrap().writes.len();
    let calls: Vec<_> = (0..n)
        .map(|i| {
            let adder = adder.clone();
            tokio::spawn(async move { adder.add(i, 1).await })
        })
        .collect();
    written(requests, asked, n as usize).await;
    calls
}

/// Waits for calls `add(i, 1)` made by [`held_back`], checking each sum.
async fn answered(calls: Vec<tokio::task::JoinHandle<Result<i64, rpc_core::Error>>>) {
    for (i, call) in (0..).zip(calls) {
        let sum = tokio::time::timeout(LIMIT, call).await.unwrap().unwrap();
        assert_eq!(sum.unwrap(), i + 1);
    }
}

/// The writes that carried the replies to `CALLS` requests the server read
/// at once.
async fn server_batch() -> Vec<usize> {
    let Pair {
        adder,
        server_gate: gate,
        replies,
        requests,
        ..
    } = pair(1 << 16).await;
    assert_eq!(adder.add(1, 2).await.unwrap(), 3);

    // The server reads the whole batch at once, once it has all come.
    let mark = replies.lock().unwrap().writes.len();
    let calls = held_back(&adder, &gate, &requests, CALLS).await;
    gate.open();
    answered(calls).await;
    let writes = since(&replies, mark);
    assert_eq!(writes.iter().sum::<usize>(), CALLS as usize, "{writes:?}");
    writes
}

#[test]
fn a_server_writes_a_deep_pipeline_s_replies_a_dozen_at_a_time() {
    serially(|| async {
        in_dozens(&server_batch().await, "replies");
    });
}

#[test]
fn batches_stay_whole_while_more_connections_pipeline_deeply_than_there_are_workers() {
    serially(|| async {
        // Another connection with a dozen calls in flight (its server reads
        // none of them): with the batch's own client, two such connections on
        // a runtime of one worker.
        let busy = pair(1 << 16).await;
        let stuck = held_back(&busy.adder, &busy.server_gate, &busy.requests, 12).await;

        let writes = server_batch().await;
        assert_eq!(
            writes,
            [CALLS as usize],
            "the replies went out in {writes:?}"
        );

        busy.server_gate.open();
        answered(stuck).await;
    });
}

#[test]
fn a_client_writes_a_deep_pipeline_s_requests_a_dozen_at_a_time() {
    serially(|| async {
        // The server reads a frame or two at a time: it is never one of the
        // connections that pipeline deeply, and the client alone decides.
        let Pair {
            adder,
            client_gate: gate,
            replies,
            requests,
            ..
        } = pair(40).await;
        assert_eq!(adder.add(1, 2).await.unwrap(), 3);

        // Every caller makes two calls: the first ones' replies reach the
        // client in one read, and wake all the callers to make their second.
        gate.close();
        let answered = replies.lock().unwrap().writes.len();
        let calls: Vec<_> = (0..CALLS)
            .map(|i| {
                let adder = adder.clone();
                tokio::spawn(async move {
                    let first = adder.add(i, 1).await?;
                    let second = adder.add(i, 2).await?;
                    Ok::<_, rpc_core::Error>((first, second))
                })
            })
            .collect();
        written(&replies, answered, CALLS as usize).await;
        let asked = requests.lock().unwrap().writes.len();
        gate.open();
        for (i, call) in (0..CALLS).zip(calls) {
            let sums = tokio::time::timeout(LIMIT, call).await.unwrap().unwrap();
            assert_eq!(sums.unwrap(), (i + 1, i + 2));
        }

        let writes = since(&requests, asked);
        assert_eq!(writes.iter().sum::<usize>(), CALLS as usize, "{writes:?}");
        // Without the cut: one write of all 40, by the last caller woken.
        in_dozens(&writes, "requests");
    });
}

#[test]
fn a_server_connection_that_pipelined_deeply_counts_until_it_has_been_quiet() {
    serially(|| async {
        let Pair {
            adder,
            server_gate: gate,
            requests,
            ..
        } = pair(1 << 16).await;
        // A read of 40 requests, then a read of one: the server's connection
        // counts itself in at the second, and its client has none in flight.
        let calls = held_back(&adder, &gate, &requests, CALLS).await;
        gate.open();
        answered(calls).await;
        assert_eq!(adder.add(1, 2).await.unwrap(), 3);

        // With another connection's deep client: two, on one worker.
        let writes = server_batch().await;
        assert_eq!(
            writes,
            [CALLS as usize],
            "the replies went out in {writes:?}"
        );

        tokio::time::sleep(Duration::from_millis(300)).await;
        in_dozens(&server_batch().await, "replies");
        drop(adder);
    });
}
