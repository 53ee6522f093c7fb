//! Client layers: tower's rate limit makes calls wait, its timeout ends
//! them as `Timeout` (and the server lets go of the call), `RefuseOverRate`
//! refuses as `RateLimited`; a stream opens through layers; a retry policy
//! that reads `Outgoing::idempotent` and `Response::error_kind` retries an
//! idempotent method and not another; and a layer sees each call (method,
//! description, timeout, metadata, arguments) before it is encoded, and
//! may refuse it there.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use rpc_core::client::{Outgoing, Response, ResponseFuture};
use rpc_core::layer::{BoxError, Call, Next, RefuseOverRateLayer, from_fn};
use rpc_core::service::Reply;
use rpc_core::{Client, Error, ErrorKind, Registry};
use tower::ServiceBuilder;
use tower::retry::{Policy, RetryLayer};

use common::middleware::{Doors, MwClient, start};
use common::{connect, within};

const HOUR: Duration = Duration::from_secs(3600);

async fn plain() -> Doors {
    start(|_: &mut Registry| {}).await
}

#[tokio::test]
async fn a_client_rate_limit_makes_calls_wait_and_refuses_none() {
    let doors = plain().await;
    let conn = connect(&doors.tcp, "bincode").await;
    let client =
        MwClient::new(conn.layer(ServiceBuilder::new().rate_limit(1, Duration::from_millis(500))));
    let (a, b, c) = within("three calls", async {
        tokio::join!(client.add(1, 1), client.add(2, 1), client.add(3, 1))
    })
    .await;
    assert_eq!((a.unwrap(), b.unwrap(), c.unwrap()), (2, 3, 4));
    let gap = doors.state.shortest_gap();
    assert!(gap >= Duration::from_millis(250), "{gap:?}");
}

#[tokio::test]
async fn a_stream_opened_through_client_layers_still_flows() {
    let doors = plain().await;
    let conn = connect(&doors.tcp, "bincode").await;
    let client = MwClient::new(
        conn.layer(
            ServiceBuilder::new()
                .layer(RefuseOverRateLayer::new(10, HOUR))
                .rate_limit(10, Duration::from_secs(1))
                .timeout(Duration::from_secs(30)),
        ),
    );
    let stream = within("a stream to open", client.count(5)).await.unwrap();
    let items: Vec<u64> = within("the stream", futures::StreamExt::collect(stream)).await;
    assert_eq!(items, [0, 1, 2, 3, 4]);
}

#[tokio::test]
async fn a_client_timeout_layer_ends_a_slow_call_as_timeout() {
    let doors = plain().await;
    let conn = connect(&doors.tcp, "json").await;
    let client =
        MwClient::new(conn.layer(ServiceBuilder::new().timeout(Duration::from_millis(200))));
    let e = within("a slow call", client.nap(10_000)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert_eq!(within("a quick call", client.nap(1)).await.unwrap(), 1);
}

#[tokio::test]
async fn a_call_a_client_layer_times_out_is_cancelled_on_the_server() {
    let doors = start(|r| {
        r.layer(tower::limit::ConcurrencyLimitLayer::new(1));
    })
    .await;
    let conn = connect(&doors.tcp, "bincode").await;
    let timed =
        MwClient::new(conn.layer(ServiceBuilder::new().timeout(Duration::from_millis(300))));
    let e = within("a slow call", timed.nap(60_000)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    // The server let go of the call, and of the limit's one permit.
    let other = MwClient::new(connect(&doors.tcp, "json").await);
    assert_eq!(within("another call", other.add(1, 1)).await.unwrap(), 2);
    // The connection is kept.
    assert_eq!(within("a call", timed.add(2, 2)).await.unwrap(), 4);
}

#[tokio::test]
async fn a_client_refuse_over_rate_layer_refuses_as_rate_limited_before_sending() {
    let doors = plain().await;
    let conn = connect(&doors.tcp, "bincode").await;
    let limited = conn.layer(RefuseOverRateLayer::new(2, HOUR));
    // Clones of the layered handle share the bucket.
    let (a, b) = (MwClient::new(limited.clone()), MwClient::new(limited));
    assert_eq!(within("a call", a.add(1, 1)).await.unwrap(), 2);
    assert_eq!(within("a call", b.add(1, 1)).await.unwrap(), 2);
    let e = within("a refused call", a.add(1, 1)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
    assert_eq!(doors.state.handled(), 2, "the refused call was not sent");
}

// ---------------------------------------------------------------------------
// Retries.
// ---------------------------------------------------------------------------

/// What a retry policy reads an error's kind from.
trait KindOf {
    fn kind_of(&self) -> Option<ErrorKind>;
}

impl KindOf for Error {
    fn kind_of(&self) -> Option<ErrorKind> {
        Some(self.kind())
    }
}

impl KindOf for BoxError {
    fn kind_of(&self) -> Option<ErrorKind> {
        self.downcast_ref::<Error>().map(Error::kind)
    }
}

/// Retries an idempotent call refused as `Overloaded` or `RateLimited`
/// (in a reply, or as a layer's error), `left` more times, after `pause`.
#[derive(Clone, Debug)]
struct RetryRefused {
    left: usize,
    pause: Duration,
}

impl<'a, E: KindOf> Policy<Outgoing<'a>, Response, E> for RetryRefused {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        call: &mut Outgoing<'a>,
        result: &mut Result<Response, E>,
    ) -> Option<Self::Future> {
        let kind = match result {
            Ok(response) => response.error_kind(),
            Err(e) => e.kind_of(),
        };
        let refused = matches!(kind, Some(ErrorKind::Overloaded | ErrorKind::RateLimited));
        if !(refused && call.idempotent() && self.left > 0) {
            return None;
        }
        self.left -= 1;
        Some(tokio::time::sleep(self.pause))
    }

    fn clone_request(&mut self, call: &Outgoing<'a>) -> Option<Outgoing<'a>> {
        Some(*call)
    }
}

/// Refuses the first two attempts of each method: as `Overloaded`, then
/// as `RateLimited`; counts every attempt in `attempts`.
fn flaky(
    attempts: Arc<Mutex<HashMap<&'static str, usize>>>,
) -> impl Fn(Call, Next) -> futures::future::BoxFuture<'static, Result<Reply, BoxError>>
+ Clone
+ Send
+ 'static {
    move |call, next| {
        let attempt = {
            let mut attempts = attempts.lock().unwrap();
            let n = attempts.entry(call.method()).or_default();
            *n += 1;
            *n
        };
        Box::pin(async move {
            match attempt {
                1 => Err(Error::new(ErrorKind::Overloaded, "busy").into()),
                2 => Err(Error::new(ErrorKind::RateLimited, "slow down").into()),
                _ => next.run(call).await,
            }
        })
    }
}

#[tokio::test]
async fn a_retry_policy_retries_refused_idempotent_calls_only() {
    let attempts = Arc::new(Mutex::new(HashMap::new()));
    let doors = start(|r| {
        r.layer(from_fn(flaky(attempts.clone())));
    })
    .await;
    let conn = connect(&doors.tcp, "bincode").await;
    let policy = RetryRefused {
        left: 3,
        pause: Duration::from_millis(10),
    };
    let client = MwClient::new(conn.layer(RetryLayer::new(policy)));
    // `add` is idempotent: refused twice, then run.
    assert_eq!(within("a retried call", client.add(2, 3)).await.unwrap(), 5);
    // `bump` is not, so the policy leaves it alone; the connection itself
    // sends it once more after `Overloaded` (a refusal marked did-not-run:
    // it never ran), and the `RateLimited` that follows, a refusal about
    // the call, reaches the caller.
    let e = within("a refused call", client.bump()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
    let attempts = attempts.lock().unwrap().clone();
    assert_eq!(attempts.get("add"), Some(&3), "{attempts:?}");
    assert_eq!(attempts.get("bump"), Some(&2), "{attempts:?}");
    assert_eq!(doors.state.handled(), 1);
}

#[tokio::test]
async fn a_retry_policy_retries_a_layers_rate_limited_error_for_idempotent_calls_only() {
    let doors = plain().await;
    let conn = connect(&doors.tcp, "json").await;
    let policy = RetryRefused {
        left: 20,
        pause: Duration::from_millis(100),
    };
    let client = MwClient::new(
        conn.layer(
            ServiceBuilder::new()
                .layer(RetryLayer::new(policy))
                .layer(RefuseOverRateLayer::new(1, Duration::from_millis(300))),
        ),
    );
    assert_eq!(within("a call", client.add(1, 1)).await.unwrap(), 2);
    // The bucket is empty: retried until a token comes.
    assert_eq!(within("a retried call", client.add(1, 2)).await.unwrap(), 3);
    // Not retried.
    let e = within("a refused call", client.bump()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
    assert_eq!(doors.state.handled(), 2);
}

// ---------------------------------------------------------------------------
// What a client layer sees.
// ---------------------------------------------------------------------------

/// One call as [`Spy`] saw it.
#[derive(Clone, Debug, PartialEq)]
struct Seen {
    method: String,
    described: Option<&'static str>,
    idempotent: bool,
    timeout: Option<Duration>,
    metadata: Vec<String>,
    args: serde_json::Value,
}

/// Notes each call in `seen`; refuses `bump` before it is encoded.
#[derive(Clone)]
struct Spy {
    inner: Client,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl<'a> tower::Service<Outgoing<'a>> for Spy {
    type Response = Response;
    type Error = Error;
    type Future = ResponseFuture<'a>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: Outgoing<'a>) -> ResponseFuture<'a> {
        self.seen.lock().unwrap().push(Seen {
            method: call.method.to_owned(),
            described: call.info.map(|i| i.name),
            idempotent: call.idempotent(),
            timeout: call.timeout,
            metadata: call
                .metadata
                .map(|m| m.iter().map(|(k, _)| k.to_owned()).collect())
                .unwrap_or_default(),
            args: serde_json::to_value(call.args).expect("arguments as JSON"),
        });
        if call.method.ends_with("bump") {
            let e = Error::new(ErrorKind::PermissionDenied, "no bumps from here");
            return Box::pin(std::future::ready(Err(e)));
        }
        tower::Service::call(&mut self.inner, call)
    }
}

#[tokio::test]
async fn a_client_layer_sees_the_call_before_it_is_encoded() {
    let doors = plain().await;
    let conn = connect(&doors.tcp, "bincode").await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let spy = {
        let seen = seen.clone();
        tower::layer::layer_fn(move |inner| Spy {
            inner,
            seen: seen.clone(),
        })
    };
    let layered = conn
        .with_timeout(Duration::from_secs(7))
        .with_metadata("tenant", "acme")
        .layer(spy);
    let client = MwClient::new(layered.clone());
    assert_eq!(within("a call", client.add(2, 3)).await.unwrap(), 5);
    let e = within("a refused call", client.bump()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert_eq!(doors.state.handled(), 1, "the refused call was not sent");
    let seen_log = seen;
    let seen = seen_log.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[0].method.ends_with("add"), "{seen:?}");
    assert_eq!(seen[0].described, Some("add"));
    assert!(seen[0].idempotent);
    assert!(!seen[1].idempotent, "{seen:?}");
    assert_eq!(seen[0].timeout, Some(Duration::from_secs(7)));
    assert_eq!(seen[0].metadata, ["tenant"]);
    assert_eq!(seen[0].args, serde_json::json!([2, 3]));
    // A plain `Client::call` does not describe its method.
    let raw: i64 = within("a raw call", layered.call("Mw.add", &(1i64, 1i64)))
        .await
        .unwrap();
    assert_eq!(raw, 2);
    let last = seen_last(&seen_log);
    assert_eq!((last.described, last.idempotent), (None, false), "{last:?}");
}

fn seen_last(log: &Mutex<Vec<Seen>>) -> Seen {
    log.lock().unwrap().last().cloned().expect("a call seen")
}
