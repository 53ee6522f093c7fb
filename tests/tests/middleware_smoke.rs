//! Middleware over TCP, the first checks: a `from_fn` layer sees the call
//! (its name, metadata, arguments, `Context::current`), refuses with its own
//! kind, and passes calls on; tower's layers refuse with theirs.

mod common;

use std::time::Duration;

use rpc_core::layer::{BoxError, Call, Next, RefuseOverRateLayer, from_fn};
use rpc_core::service::Reply;
use rpc_core::{Context, Error, ErrorKind, Registry};

use common::{CODECS, connect, serve, within};

/// A service behind a guard.
#[rpc_core::rpc_service]
pub trait Guarded {
    /// Adds.
    #[rpc(idempotent)]
    async fn add(&self, x: i64, y: i64) -> i64;

    /// The metadata value of `key`, as the handler sees it.
    async fn seen(&self, key: String) -> Option<String>;

    /// Sleeps `ms`.
    async fn nap(&self, ms: u64) -> u64;
}

struct Impl;

impl Guarded for Impl {
    async fn add(&self, x: i64, y: i64) -> i64 {
        x + y
    }

    async fn seen(&self, key: String) -> Option<String> {
        Context::current().and_then(|c| c.metadata().text(&key).map(str::to_owned))
    }

    async fn nap(&self, ms: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    }
}

async fn token_check(call: Call, next: Next) -> Result<Reply, BoxError> {
    // The context is installed for layers too.
    let current = Context::current().expect("a context inside a layer");
    assert_eq!(current.transport(), Some("tcp"));
    if call.method() == "add" {
        let (x, y): (i64, i64) = call.args()?;
        assert_eq!(call.arg::<i64>("y")?, y);
        if x == 13 {
            return Err(Error::new(ErrorKind::PermissionDenied, "13 is unlucky").into());
        }
    }
    match call.metadata().text("authorization") {
        Some("Bearer good") => next.run(call).await,
        _ => Err(Error::new(ErrorKind::Authentication, "no good token").into()),
    }
}

#[tokio::test]
async fn a_layer_sees_metadata_and_arguments_and_refuses_with_its_kind() {
    let mut registry = Registry::new().with(GuardedServer::new(Impl)).unwrap();
    registry.layer(from_fn(token_check));
    let server = serve(registry).await;
    for codec in CODECS {
        let client = connect(&server.address, codec).await;
        let anonymous = GuardedClient::new(client.clone());
        let e = within("a refused call", anonymous.add(2, 3))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Authentication, "{codec}: {e}");
        assert!(e.message().contains("no good token"), "{e}");

        let good = GuardedClient::new(client.with_metadata("authorization", "Bearer good"));
        assert_eq!(within("a call", good.add(2, 3)).await.unwrap(), 5);
        let e = within("an unlucky call", good.add(13, 1))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{codec}: {e}");
        let tagged = GuardedClient::new(
            client
                .with_metadata("authorization", "Bearer good")
                .with_metadata("x-request-id", "r-1"),
        );
        assert_eq!(
            within("metadata", tagged.seen("x-request-id".into()))
                .await
                .unwrap()
                .as_deref(),
            Some("r-1")
        );
    }
}

#[tokio::test]
async fn tower_layers_refuse_with_their_own_kinds() {
    let mut registry = Registry::new().with(GuardedServer::new(Impl)).unwrap();
    registry.layer(tower::timeout::TimeoutLayer::new(Duration::from_millis(
        200,
    )));
    let server = serve(registry).await;
    let client = GuardedClient::new(connect(&server.address, "bincode").await);
    let e = within("a slow call", client.nap(5_000)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert_eq!(within("a quick call", client.nap(1)).await.unwrap(), 1);

    let mut registry = Registry::new().with(GuardedServer::new(Impl)).unwrap();
    registry.layer(RefuseOverRateLayer::new(3, Duration::from_secs(3600)));
    let server = serve(registry).await;
    let client = GuardedClient::new(connect(&server.address, "json").await);
    let mut outcomes = Vec::new();
    for _ in 0..5 {
        outcomes.push(
            within("a call", client.add(1, 1))
                .await
                .map_err(|e| e.kind()),
        );
    }
    assert_eq!(
        outcomes,
        [
            Ok(2),
            Ok(2),
            Ok(2),
            Err(ErrorKind::RateLimited),
            Err(ErrorKind::RateLimited)
        ]
    );
}

#[tokio::test]
async fn a_client_layer_sees_the_call_before_it_is_encoded() {
    let server = serve(Registry::new().with(GuardedServer::new(Impl)).unwrap()).await;
    let conn = connect(&server.address, "bincode").await;
    let limited = conn.layer(RefuseOverRateLayer::new(1, Duration::from_secs(3600)));
    let client = GuardedClient::new(limited);
    assert_eq!(within("a call", client.add(1, 2)).await.unwrap(), 3);
    let e = within("a refused call", client.add(1, 2))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
    let timed = GuardedClient::new(
        conn.layer(
            tower::ServiceBuilder::new()
                .timeout(Duration::from_millis(100))
                .concurrency_limit(4),
        ),
    );
    let e = within("a slow call", timed.nap(5_000)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
}

/// A service written around a generated one, as users wrote middleware
/// before layers: it sees the call's context in `call()`, and an error it
/// returns keeps its kind.
struct Wrapper(GuardedServer<Impl>);

impl rpc_core::Service for Wrapper {
    fn info(&self) -> &'static rpc_core::service::ServiceInfo {
        self.0.info()
    }

    fn call(
        &self,
        method: &str,
        args: &mut dyn rpc_core::__private::erased_serde::Deserializer<'_>,
    ) -> Result<rpc_core::service::BoxCall, Error> {
        let context = Context::current().expect("the context, while the call starts");
        assert_eq!(context.transport(), Some("tcp"));
        if method == "nap" {
            return Err(Error::new(ErrorKind::PermissionDenied, "no naps"));
        }
        self.0.call(method, args)
    }
}

#[tokio::test]
async fn a_wrapping_service_sees_the_context_and_its_error_keeps_its_kind() {
    let server = serve(
        Registry::new()
            .with(Wrapper(GuardedServer::new(Impl)))
            .unwrap(),
    )
    .await;
    for codec in CODECS {
        let client = GuardedClient::new(connect(&server.address, codec).await);
        assert_eq!(within("a call", client.add(2, 3)).await.unwrap(), 5);
        let e = within("a refused call", client.nap(1)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{codec}: {e}");
        assert!(e.message().contains("no naps"), "{e}");
        assert!(e.not_run(), "{codec}: refused before it ran");
    }
}

#[tokio::test]
async fn a_layer_reads_arguments_within_a_bound() {
    let mut registry = Registry::new().with(GuardedServer::new(Impl)).unwrap();
    // Reading the arguments is the layer's first step; its error is the answer.
    registry.layer(from_fn(|call: Call, next: Next| async move {
        let _key: String = call.arg("key")?;
        next.run(call).await
    }));
    let server = serve(registry).await;
    let client = GuardedClient::new(connect(&server.address, "bincode").await);
    assert_eq!(
        within("a small key", client.seen("k".into()))
            .await
            .unwrap(),
        None
    );
    let huge = "x".repeat(rpc_core::layer::ARGS_READ_LIMIT + 1);
    let e = within("a huge key", client.seen(huge)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OverBudget, "{e}");
    assert!(e.message().contains("too large for a layer to read"), "{e}");
}
