//! The client connection: many calls in flight on one connection, matched by
//! request id.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rpc_core::Error> {
//! use rpc_transport::ClientConfig;
//! let config = ClientConfig::builder().connect("127.0.0.1:17000").authkey("peekaboo").build().unwrap();
//! let client: rpc_core::Client = rpc_transport::connect(&config).await?;
//! // CalculatorClient::new(client).add(2, 3).await?
//! # Ok(()) }
//! ```
//!
//! A caller encodes its request straight into the connection's outbox and
//! registers a one-shot waiter under its id; it writes the outbox itself
//! when the socket is idle, else leaves it to the connection's task, which
//! also reads replies and hands each frame to its waiter. The caller decodes
//! its result in its own task. When the connection fails, every pending
//! call fails at once with the reason.
//!
//! Timeouts cost no timer per call: each waiter carries its deadline, and
//! the connection's task sleeps until the earliest one, then fails the
//! calls past theirs.

pub mod reconnect;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Poll, ready};

use bytes::BytesMut;
use rpc_core::client::{Response, ResponseFuture};
use rpc_core::codec::{Codec, Inbound, OutRequest};
use rpc_core::{Client, Error, ErrorKind, Transport};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_util::codec::{Decoder, Framed};
use tracing::debug;

use self::reconnect::Reconnecting;
use crate::config::ClientConfig;
use crate::net::{self, Io};
use crate::outbox::{Chunks, Outbox, Pushed};
use crate::wire::frame::{FrameCodec, FrameError};
use crate::wire::handshake::AuthOptions;
use crate::wire::hello::{Answer, Hello, PROTOCOL_VERSION};
use crate::wire::session::{self, frame_error};

/// Connects as `config` says and returns a client handle for generated
/// clients (`CalculatorClient::new(client)`).
///
/// With `codec = "pickle"` or `"py-json"` the server is a Python
/// `multiprocessing` server in the pattern: see [`crate::python`]. With a
/// `[client.reconnect]` policy the handle reconnects after the connection
/// drops (see [`crate::client::reconnect`]); without one, a lost connection stays
/// lost and every later call fails at once.
pub async fn connect(config: &ClientConfig) -> Result<Client, Error> {
    if crate::config::PYTHON_CODECS.contains(&config.codec()) {
        return Ok(Client::new(
            crate::python::PythonConnection::connect(config).await?,
        ));
    }
    if config.reconnect().is_some() {
        return Ok(Client::new(Reconnecting::connect(config).await?));
    }
    Ok(Client::new(Connection::connect(config).await?))
}

/// An authenticated connection to a server; implements [`Transport`].
///
/// Dropping it closes the connection; calls still pending fail with
/// [`ErrorKind::ConnectionLost`].
#[derive(Debug)]
pub struct Connection {
    shared: Arc<Shared>,
    task: AbortHandle,
}

struct Shared {
    outbox: Outbox,
    /// The socket's write half and the bytes taken from the outbox but not
    /// yet written. Callers write through it directly when no one else is.
    sink: Mutex<Sink>,
    waiters: Mutex<Waiters>,
    /// A call was given a deadline earlier than the one the connection's
    /// task sleeps until.
    deadline_moved: Notify,
    codec: &'static dyn Codec,
    /// The largest frame the server accepts.
    server_max_frame: usize,
    call_timeout: Duration,
    /// Replies handed to callers that have not taken them yet: while some
    /// have not, the request just queued waits for what those callers
    /// queue next (see [`Shared::send_queued`]). Each is counted down
    /// exactly once, when its caller takes it or drops the call.
    woken: AtomicUsize,
    /// A request was left queued for the woken callers and the writer has
    /// been woken to write it once they have had their turn (see
    /// [`write_loop`]): set at most once per batch, so one wake covers it.
    write_owed: AtomicBool,
    /// Turns `true` when the connection has ended.
    ended: watch::Sender<bool>,
    /// Turns `true` when it takes no new calls: ended, or the server is going away.
    stopping: watch::Sender<bool>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("codec", &self.codec)
            .finish_non_exhaustive()
    }
}

struct Sink {
    io: net::WriteHalf,
    pending: Chunks,
}

type Waiter = oneshot::Sender<Result<Response, Error>>;

#[derive(Debug, Default)]
struct Waiters {
    next_id: u64,
    /// Each pending call's waiter and deadline.
    by_id: HashMap<u64, (Waiter, Instant), BuildHasherDefault<IdHasher>>,
    /// When the connection's task next looks for calls past their
    /// deadline: no later than the earliest deadline (earlier when that
    /// call was answered since; it then looks again). `None`: no call is
    /// pending since it last looked.
    next_check: Option<Instant>,
    /// Why the connection ended, once it has.
    closed: Option<(ErrorKind, String)>,
}

/// Hashes the request ids this side hands out (sequential, never chosen by
/// the peer) with one multiplication: SipHash's defence against chosen keys
/// buys nothing here and costs more than the rest of the map lookup.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(self.0.rotate_left(8) ^ u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        // Fibonacci hashing: spreads consecutive ids over the high bits the
        // table's control bytes use, as well as over the low ones.
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl Connection {
    /// Connects to `config.connect()`, authenticates and says hello.
    pub async fn connect(config: &ClientConfig) -> Result<Connection, Error> {
        let address = config.connect();
        let stream = net::connect(address).await.map_err(|e| {
            Error::new(ErrorKind::Io, format!("cannot connect to {address}: {e}")).with_source(e)
        })?;
        Connection::over(stream, config).await
    }

    /// Opens a session over an already connected stream.
    pub async fn over<S: Io>(io: S, config: &ClientConfig) -> Result<Connection, Error> {
        if crate::config::PYTHON_CODECS.contains(&config.codec()) {
            let why = format!(
                "codec `{}` calls Python servers; use `rpc_transport::connect` or `PythonConnection::over`",
                config.codec()
            );
            return Err(Error::new(ErrorKind::Config, why));
        }
        let mut framed = Framed::new(io, FrameCodec::new(config.max_frame_bytes()));
        let opts = AuthOptions {
            timeout: config.handshake_timeout(),
            allow_legacy: config.allow_legacy_auth(),
        };
        session::connect(&mut framed, config.authkey().as_bytes(), &opts).await?;
        let hello = Hello {
            protocol: PROTOCOL_VERSION,
            codec: config.codec().to_owned(),
            max_frame_bytes: config.max_frame_bytes(),
        };
        session::send_frame(&mut framed, hello.encode()).await?;
        let answer = session::read_frame(
            &mut framed,
            config.handshake_timeout(),
            "answer to the hello",
        )
        .await?;
        let server = Answer::decode(&answer)?;
        let codec = rpc_core::codec::by_name(&hello.codec).ok_or_else(|| {
            Error::new(
                ErrorKind::CodecRejected,
                format!("this client has no codec `{}`", hello.codec),
            )
        })?;
        let parts = framed.into_parts();
        let (read, write) = net::split(parts.io);
        let shared = Arc::new(Shared {
            outbox: Outbox::default(),
            sink: Mutex::new(Sink {
                io: write,
                pending: Chunks::default(),
            }),
            waiters: Mutex::default(),
            deadline_moved: Notify::new(),
            codec,
            server_max_frame: server.max_frame_bytes,
            call_timeout: config.call_timeout(),
            woken: AtomicUsize::new(0),
            write_owed: AtomicBool::new(false),
            ended: watch::Sender::new(false),
            stopping: watch::Sender::new(false),
        });
        let reader = Reader {
            io: read,
            codec: parts.codec,
            input: parts.read_buf,
        };
        let task = tokio::spawn(run(shared.clone(), reader)).abort_handle();
        Ok(Connection { shared, task })
    }
}

impl Connection {
    /// Completes once the connection has ended, for whatever reason.
    pub async fn closed(&self) {
        let mut ended = self.shared.ended.subscribe();
        let _ = ended.wait_for(|&e| e).await;
    }

    /// Completes once the connection takes no new calls: it has ended, or
    /// the server said it is going away (calls in flight may still finish).
    pub async fn stopping(&self) {
        let mut stopping = self.shared.stopping.subscribe();
        let _ = stopping.wait_for(|&s| s).await;
    }

    /// Whether the connection has ended (or the server said it is going away).
    pub fn is_closed(&self) -> bool {
        self.shared
            .waiters
            .lock()
            .expect("waiters lock")
            .closed
            .is_some()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.shared.close(
            ErrorKind::ConnectionLost,
            "the client closed the connection".into(),
        );
        self.task.abort();
    }
}

impl Transport for Connection {
    fn call<'a>(
        &'a self,
        method: &'a str,
        args: &'a (dyn erased_serde::Serialize + Sync),
        timeout: Option<Duration>,
    ) -> ResponseFuture<'a> {
        self.send(method, args, timeout)
    }
}

impl Connection {
    /// [`Transport::call`], with the request queued before this returns,
    /// so the future borrows only the method's name (for its timeout error).
    pub(crate) fn send<'m>(
        &self,
        method: &'m str,
        args: &dyn erased_serde::Serialize,
        timeout: Option<Duration>,
    ) -> ResponseFuture<'m> {
        let timeout = timeout.unwrap_or(self.shared.call_timeout);
        // The request is queued now, so the waiter is removed however the
        // future ends: with a reply, at the timeout, or dropped unpolled.
        let started = self
            .shared
            .start(method, args, timeout)
            .map(|(id, rx)| Waiting {
                shared: self.shared.clone(),
                id,
                rx,
                answered: false,
            });
        Box::pin(async move {
            let mut waiting = started?;
            let outcome = (&mut waiting.rx).await;
            // The reader, `expire` or `close` removed the waiter already.
            waiting.answered = true;
            if let Ok(Ok(_)) = &outcome {
                waiting.shared.resumed();
            }
            drop(waiting);
            match outcome {
                Ok(Err(e)) if e.kind() == ErrorKind::Timeout => Err(Error::new(
                    ErrorKind::Timeout,
                    format!("no reply to `{method}` within {timeout:?}"),
                )),
                Ok(outcome) => outcome,
                Err(_) => Err(Error::new(
                    ErrorKind::ConnectionLost,
                    "the connection closed before the reply",
                )),
            }
        })
    }
}

impl Shared {
    /// Registers a waiter and queues the request.
    fn start(
        &self,
        method: &str,
        args: &dyn erased_serde::Serialize,
        timeout: Duration,
    ) -> Result<(u64, oneshot::Receiver<Result<Response, Error>>), Error> {
        let (tx, rx) = oneshot::channel();
        let now = Instant::now();
        // A timeout too long to represent waits a year: for ever, in effect.
        let deadline = now
            .checked_add(timeout)
            .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600));
        let (id, earliest) = {
            let mut waiters = self.waiters.lock().expect("waiters lock");
            if let Some((kind, why)) = &waiters.closed {
                return Err(Error::new(*kind, why.clone()));
            }
            waiters.next_id += 1;
            let id = waiters.next_id;
            waiters.by_id.insert(id, (tx, deadline));
            let earliest = waiters.next_check.is_none_or(|at| deadline < at);
            if earliest {
                waiters.next_check = Some(deadline);
            }
            (id, earliest)
        };
        if earliest {
            self.deadline_moved.notify_one();
        }
        let request = OutRequest {
            id,
            method,
            deadline: Some(timeout),
            args,
        };
        let queued = self.outbox.push(self.server_max_frame, |buf| {
            self.codec.encode_request(buf, &request)
        });
        let failed = match queued {
            Ok(Some(())) => {
                self.send_queued();
                return Ok((id, rx));
            }
            Ok(None) => Error::new(ErrorKind::ConnectionLost, "the connection is closed"),
            Err(Pushed::Encode(e)) => Error::new(
                ErrorKind::InvalidParams,
                format!(
                    "the arguments of `{method}` could not be encoded: {}",
                    e.message()
                ),
            ),
            Err(Pushed::Frame(FrameError::TooLarge { len, limit })) => Error::new(
                ErrorKind::FrameTooLarge,
                format!(
                    "the request to `{method}` is {len} bytes, over the server's frame limit of {limit} bytes"
                ),
            ),
            Err(Pushed::Frame(e)) => Error::new(ErrorKind::Internal, e.to_string()),
            Err(Pushed::Panicked(why)) => Error::new(
                ErrorKind::InvalidParams,
                format!("encoding the arguments of `{method}` panicked: {why}"),
            ),
        };
        self.forget(id);
        Err(failed)
    }

    /// Gets what was just queued on its way: written here, in the caller's
    /// task, unless callers woken with a reply are about to queue more.
    /// Then the writer, woken once per batch, writes it after them, and
    /// the last of them, finding none left to come, writes what is queued
    /// with its own request. By the writer, too, if the socket is full.
    fn send_queued(&self) {
        if self.woken.load(Ordering::SeqCst) > 0 {
            if !self.write_owed.swap(true, Ordering::AcqRel) {
                self.outbox.wake();
            }
            return;
        }
        if !self.write_now() {
            self.outbox.wake();
        }
    }

    /// Writes the queue without waiting; true if all of it went out, or if
    /// someone else is writing it (they look at the queue again after
    /// letting go of the socket, so nothing queued before that is left
    /// behind). False when the writer must finish: the socket is full.
    fn write_now(&self) -> bool {
        loop {
            let Ok(mut sink) = self.sink.try_lock() else {
                return true;
            };
            if !sink.pending.is_empty() {
                // The writer is waiting for the socket: leave it its turn.
                return false;
            }
            // A write that cannot finish registers this waker for the
            // socket's readiness; the writer, woken by the caller, polls
            // again and puts its own waker back.
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            let flushed = matches!(self.poll_flush(&mut sink, &mut cx), Poll::Ready(Ok(false)));
            drop(sink);
            // What was queued while this held the socket: its caller found
            // the socket taken and left it to this one.
            if !flushed || self.outbox.is_empty() {
                return flushed;
            }
        }
    }

    /// Writes queued bytes until none are left (`Ready(Ok(closed))`) or the
    /// socket is full (`Pending`).
    fn poll_flush(
        &self,
        sink: &mut Sink,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<bool>> {
        loop {
            let closed = sink.pending.is_empty() && self.outbox.take(&mut sink.pending);
            if sink.pending.is_empty() {
                // A buffering stream (TLS, `BufWriter`) holds bytes until flushed.
                ready!(Pin::new(&mut sink.io).poll_flush(cx))?;
                return Poll::Ready(Ok(closed));
            }
            let Sink { io, pending } = sink;
            match ready!(pending.poll_write_to(io, cx)) {
                Ok(0) => return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into())),
                Ok(_) => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Removes call `id`'s waiter; if the call was still waiting, asks the
    /// server to stop it.
    fn forget(&self, id: u64) {
        let waiting = self.waiters.lock().expect("waiters lock").by_id.remove(&id);
        if waiting.is_some() {
            self.cancel(id);
        }
    }

    /// Asks the server to stop call `id`, whose caller no longer waits.
    fn cancel(&self, id: u64) {
        let cancel = self.outbox.push(self.server_max_frame, |buf| {
            self.codec.encode_cancel(buf, id);
            Ok::<_, Error>(())
        });
        if let Ok(Some(())) = cancel {
            self.send_queued();
        }
    }

    /// Fails the calls whose deadline has passed by `now` with
    /// [`ErrorKind::Timeout`] (their caller words the message), asks the
    /// server to stop them, and notes when to look again.
    ///
    /// It scans every pending call, but runs about once per timeout
    /// period: when the earliest deadline it last saw comes.
    fn expire(&self, now: Instant) {
        let expired = {
            let mut waiters = self.waiters.lock().expect("waiters lock");
            let ids: Vec<u64> = waiters
                .by_id
                .iter()
                .filter(|(_, (_, deadline))| *deadline <= now)
                .map(|(id, _)| *id)
                .collect();
            let expired: Vec<(u64, Waiter)> = ids
                .into_iter()
                .filter_map(|id| Some((id, waiters.by_id.remove(&id)?.0)))
                .collect();
            waiters.next_check = waiters.by_id.values().map(|(_, deadline)| *deadline).min();
            expired
        };
        for (id, waiter) in expired {
            let _ = waiter.send(Err(Error::new(ErrorKind::Timeout, "")));
            self.cancel(id);
        }
    }

    /// Hands the reply frames read together to their waiters: decoded
    /// outside the lock, then one lock for the whole read rather than one
    /// per reply (callers registering new calls contend for it).
    ///
    /// `decoded` and `answered` are the reader's scratch space, left empty.
    fn deliver(
        &self,
        frames: &mut Vec<bytes::Bytes>,
        decoded: &mut Vec<(u64, Response)>,
        answered: &mut Vec<(Waiter, Response)>,
    ) -> Result<(), Error> {
        let mut failed = None;
        let mut going_away = None;
        let drained;
        for frame in frames.drain(..) {
            match self.codec.decode_response(&frame) {
                Ok(Inbound::Response { id, outcome }) => {
                    decoded.push((id, Response::new(self.codec, frame, outcome)));
                }
                Ok(Inbound::GoingAway { reason }) => going_away = Some(reason),
                Ok(other) => {
                    failed = Some(Error::new(
                        ErrorKind::Protocol,
                        format!("unexpected message from the server: {other:?}"),
                    ));
                }
                Err(e) => failed = Some(e),
            }
            if failed.is_some() {
                break;
            }
        }
        {
            let mut waiters = self.waiters.lock().expect("waiters lock");
            for (id, response) in decoded.drain(..) {
                match waiters.by_id.remove(&id) {
                    Some((waiter, _)) => answered.push((waiter, response)),
                    // A call that timed out or was dropped: its reply has no taker.
                    None => debug!(id, "a reply for a call no longer waiting"),
                }
            }
            if let Some(reason) = going_away {
                // Calls in flight still get their answers; new ones fail.
                let why = format!("the server is going away ({reason}); no new calls are sent");
                waiters.closed.get_or_insert((ErrorKind::ShuttingDown, why));
                self.stopping.send_replace(true);
            }
            // Gone away and nothing left to wait for: close this side, so
            // the server need not keep the connection for its grace period.
            drained = waiters.by_id.is_empty()
                && matches!(waiters.closed, Some((ErrorKind::ShuttingDown, _)));
        }
        // Counted before any caller can take its reply (and count it down).
        self.woken.fetch_add(answered.len(), Ordering::SeqCst);
        for (waiter, response) in answered.drain(..) {
            if waiter.send(Ok(response)).is_err() {
                // The call was dropped in the meantime: no one takes it.
                self.resumed();
            }
        }
        if drained && failed.is_none() {
            let why = "the server went away and every call has been answered";
            failed = Some(Error::new(ErrorKind::ConnectionLost, why));
        }
        failed.map_or(Ok(()), Err)
    }

    /// Counts down a reply taken by its caller (or left untaken).
    fn resumed(&self) {
        self.woken.fetch_sub(1, Ordering::SeqCst);
    }

    /// Ends the connection: every pending call and every later one fails
    /// with `kind` and `why`.
    ///
    /// After a going-away notice, calls still pending when the connection
    /// ends fail with the server's shutdown reason instead.
    fn close(&self, kind: ErrorKind, why: String) {
        let (pending, (kind, why)) = {
            let mut waiters = self.waiters.lock().expect("waiters lock");
            let reason = waiters.closed.get_or_insert((kind, why)).clone();
            (std::mem::take(&mut waiters.by_id), reason)
        };
        for (waiter, _) in pending.into_values() {
            let _ = waiter.send(Err(Error::new(kind, why.clone())));
        }
        self.outbox.close();
        self.stopping.send_replace(true);
        self.ended.send_replace(true);
    }
}

/// Fails every pending call when the connection's task ends; the first
/// reason given to [`Shared::close`] is the one callers see.
struct CloseOnDrop(Arc<Shared>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close(
            ErrorKind::ConnectionLost,
            "the connection's task ended".into(),
        );
    }
}

/// Removes a call's waiter when the caller stops waiting (timeout or drop).
struct Waiting {
    shared: Arc<Shared>,
    id: u64,
    rx: oneshot::Receiver<Result<Response, Error>>,
    /// The waiter is gone already: the call was answered or failed.
    answered: bool,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        // After `close`, a reply is either here already or never sent.
        self.rx.close();
        match self.rx.try_recv() {
            // A reply came as the caller gave up: it was counted as woken.
            Ok(Ok(_)) => self.shared.resumed(),
            Ok(Err(_)) => {}
            Err(_) => self.shared.forget(self.id),
        }
    }
}

/// Writes what callers queued but did not write themselves, until the
/// outbox is closed and drained.
///
/// Callers write their own requests when they can (see
/// [`Shared::send_queued`]); the writer is woken for the rest: what the
/// callers of one read queued together, and what a full socket left.
///
/// When callers woken with a reply have not all taken it, the writer
/// yields so that those ready to run can queue their next requests first,
/// for as long as they are taking their replies; then it writes, whether or
/// not they all did (one may never be polled again).
async fn write_loop(shared: &Shared) -> std::io::Result<()> {
    loop {
        shared.outbox.ready().await;
        let mut left = shared.woken.load(Ordering::SeqCst);
        for _ in 0..MAX_WRITER_YIELDS {
            if left == 0 {
                break;
            }
            tokio::task::yield_now().await;
            let now_left = shared.woken.load(Ordering::SeqCst);
            if now_left >= left {
                break;
            }
            left = now_left;
        }
        // Reads the flag a caller set after queueing (acquire), so what it
        // queued is seen by the flush below; a caller queueing later wakes
        // this task again.
        shared.write_owed.swap(false, Ordering::AcqRel);
        loop {
            // Never waits for a caller that is writing: see below.
            let flushed = poll_fn(|cx| match shared.sink.try_lock() {
                Ok(mut sink) => shared.poll_flush(&mut sink, cx).map_ok(Some),
                Err(std::sync::TryLockError::WouldBlock) => Poll::Ready(Ok(None)),
                Err(std::sync::TryLockError::Poisoned(_)) => panic!("sink lock poisoned"),
            })
            .await?;
            match flushed {
                Some(true) => {
                    return poll_fn(|cx| {
                        Pin::new(&mut shared.sink.lock().expect("sink lock").io).poll_shutdown(cx)
                    })
                    .await;
                }
                // Queued by a caller who found the socket taken by this task
                // and left the request to it.
                Some(false) if !shared.outbox.is_empty() => {}
                Some(false) => break,
                // A caller is writing: it writes the queue as it stands when
                // it lets go (see `Shared::write_now`), and wakes this task
                // if the socket does not take it all.
                None => break,
            }
        }
    }
}

/// How many turns the writer leaves callers to take their replies before
/// it writes what the others queued.
const MAX_WRITER_YIELDS: usize = 16;

/// Fails calls past their deadline: sleeps until the earliest one, or
/// until a call brings an earlier one.
async fn expire_loop(shared: &Shared) -> std::convert::Infallible {
    loop {
        let next = shared.waiters.lock().expect("waiters lock").next_check;
        match next {
            // `notify_one` leaves a permit when no one waits, so a deadline
            // set between the lock above and this wait is not missed.
            None => shared.deadline_moved.notified().await,
            Some(at) => tokio::select! {
                () = shared.deadline_moved.notified() => {}
                () = tokio::time::sleep_until(at) => {
                    shared.expire(Instant::now());
                }
            },
        }
    }
}

/// The read half of the connection and the bytes read but not yet handed
/// over.
struct Reader<R> {
    io: R,
    codec: FrameCodec,
    input: BytesMut,
}

/// Room the reader keeps free for the next read.
const READ_ROOM: usize = 8 * 1024;

impl<R: AsyncRead + Unpin> Reader<R> {
    /// Reads replies and hands them to their waiters, every frame that
    /// arrived together as one batch, until the connection fails or the
    /// server closes it.
    async fn run(mut self, shared: &Shared) -> Result<(), Error> {
        let (mut frames, mut decoded, mut answered) = (Vec::new(), Vec::new(), Vec::new());
        loop {
            while let Some(frame) = self.codec.decode(&mut self.input).map_err(frame_error)? {
                frames.push(frame.freeze());
            }
            if !frames.is_empty() {
                shared.deliver(&mut frames, &mut decoded, &mut answered)?;
            }
            if self.input.capacity() - self.input.len() < READ_ROOM / 2 {
                self.input.reserve(READ_ROOM);
            }
            let n = self
                .io
                .read_buf(&mut self.input)
                .await
                .map_err(|e| frame_error(FrameError::Io(e)))?;
            if n == 0 {
                // A frame cut short is an error of its own.
                self.codec
                    .decode_eof(&mut self.input)
                    .map_err(frame_error)?;
                return Err(Error::new(
                    ErrorKind::ConnectionLost,
                    "the server closed the connection",
                ));
            }
        }
    }
}

/// The connection's task: writes queued requests and reads replies until
/// either side fails, then fails every pending call with the reason.
async fn run<R: AsyncRead + Unpin>(shared: Arc<Shared>, reader: Reader<R>) {
    // However this task ends (even by a panic), pending calls fail at once.
    let _closing = CloseOnDrop(shared.clone());
    let reading = reader.run(&shared);
    let writing = write_loop(&shared);
    let expiring = expire_loop(&shared);
    let error = tokio::select! {
        // Each branch loops inside and returns only when the connection
        // ends, so a fixed order starves none of them.
        biased;
        Err(e) = reading => e,
        written = writing => match written {
            Ok(()) => Error::new(ErrorKind::ConnectionLost, "the connection was closed"),
            Err(e) => Error::new(ErrorKind::ConnectionLost, format!("writing to the server failed: {e}")),
        },
        never = expiring => match never {},
    };
    debug!(error = %error, "client connection ended");
    let message = match error.kind() {
        ErrorKind::ConnectionLost => error.message().to_owned(),
        _ => format!("the connection failed: {error}"),
    };
    shared.close(ErrorKind::ConnectionLost, message);
    // The write half outlives this task (callers hold it): end it, so that
    // the server sees the connection close.
    let shutdown = poll_fn(|cx| match shared.sink.try_lock() {
        Ok(mut sink) => Pin::new(&mut sink.io).poll_shutdown(cx),
        Err(_) => Poll::Ready(Ok(())),
    });
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), shutdown).await;
}
