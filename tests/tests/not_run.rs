//! The did-not-run mark: every refusal made before a call's handler starts
//! says so (bincode status `03`, JSON `"not_run":true`, protocol 2), and
//! `Error::not_run()` reads it on the client; a failure after the handler
//! started does not carry it, and a protocol-1 peer sees the old frames.

mod common;
#[path = "common/streams.rs"]
mod streams;

use std::time::Duration;

use rpc_core::layer::{RefuseOverRateLayer, from_fn};
use rpc_core::{Error, ErrorKind, Registry};
use serde_json::json;

use common::hostile::{bincode_request, raw_session};
use common::{CODECS, connect, expect_frame, json_round_trip, serve, within, write_frame};

/// Calls that fail in several ways.
#[rpc_core::rpc_service]
pub trait Refusals {
    /// Fails with its own error, having run.
    async fn fail(&self) -> Result<(), String>;

    /// Sleeps `ms`.
    async fn nap(&self, ms: u64) -> u64;

    /// Adds.
    async fn add(&self, x: i64, y: i64) -> i64;
}

struct Impl;

impl Refusals for Impl {
    async fn fail(&self) -> Result<(), String> {
        Err("it ran and failed".into())
    }

    async fn nap(&self, ms: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    }

    async fn add(&self, x: i64, y: i64) -> i64 {
        x + y
    }
}

fn registry() -> Registry {
    let mut registry = Registry::new().with(RefusalsServer::new(Impl)).unwrap();
    // Refuses `add(13, _)` before the handler; ends `nap` after 200 ms.
    registry.layer(from_fn(|call, next| async move {
        if call.method() == "add" && call.arg::<i64>("x")? == 13 {
            return Err(Error::new(ErrorKind::PermissionDenied, "not 13").into());
        }
        next.run(call).await
    }));
    registry.layer(tower::timeout::TimeoutLayer::new(Duration::from_millis(
        200,
    )));
    registry
}

#[tokio::test]
async fn refusals_before_the_handler_are_marked_and_failures_after_are_not() {
    let server = serve(registry()).await;
    for codec in CODECS {
        let client = connect(&server.address, codec).await;
        let calls = RefusalsClient::new(client.clone());
        let refused = within("a refused call", calls.add(13, 1))
            .await
            .unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::PermissionDenied, "{codec}");
        assert!(refused.not_run(), "{codec}: a layer's refusal did not run");

        let unknown = within(
            "an unknown method",
            client.call::<_, ()>("Refusals.nope", &()),
        )
        .await
        .unwrap_err();
        assert!(unknown.not_run(), "{codec}: {unknown}");
        let bad = within(
            "bad arguments",
            client.call::<_, i64>("Refusals.add", &(1i64,)),
        )
        .await
        .unwrap_err();
        assert_eq!(bad.kind(), ErrorKind::InvalidParams, "{codec}");
        assert!(bad.not_run(), "{codec}: {bad}");

        let ran = within("a failing call", calls.fail()).await.unwrap_err();
        assert!(
            matches!(ran, rpc_core::CallError::Application(_)),
            "{codec}"
        );
        let cut = within("a call the timeout layer ends", calls.nap(5_000))
            .await
            .unwrap_err();
        assert_eq!(cut.kind(), ErrorKind::Timeout, "{codec}");
        assert!(!cut.not_run(), "{codec}: the handler had started");
        assert_eq!(within("a call", calls.add(1, 2)).await.unwrap(), 3);
    }
}

#[tokio::test]
async fn the_mark_on_the_wire_and_not_for_protocol_1() {
    let mut registry = Registry::new().with(RefusalsServer::new(Impl)).unwrap();
    registry.layer(RefuseOverRateLayer::new(0, Duration::from_secs(1)));
    let server = serve(registry).await;

    // bincode, protocol 2: status 03.
    let (mut raw, _) = streams::raw_session2(&server.address, "bincode", 64, 4096).await;
    write_frame(
        &mut raw,
        &bincode_request(7, "Refusals.add", None, &(1i64, 2i64)),
    )
    .await;
    let payload = expect_frame(&mut raw, "the refusal").await;
    assert_eq!(&payload[..3], [0x01, 7, 0x03], "{payload:?}");
    // JSON, protocol 2: `"not_run":true`.
    let (mut raw, _) = streams::raw_session2(&server.address, "json", 64, 4096).await;
    let call = json!({"jsonrpc": "2.0", "id": 8, "method": "Refusals.add", "params": [1, 2]});
    let answer = json_round_trip(&mut raw, &call.to_string()).await;
    assert_eq!(
        answer["error"]["code"],
        ErrorKind::RateLimited.code(),
        "{answer}"
    );
    assert_eq!(answer["error"]["not_run"], true, "{answer}");

    // bincode, protocol 1: status 01, as before.
    let mut raw = raw_session(&server.address, "bincode", 1 << 20).await;
    write_frame(
        &mut raw,
        &bincode_request(9, "Refusals.add", None, &(1i64, 2i64)),
    )
    .await;
    let payload = expect_frame(&mut raw, "the refusal").await;
    assert_eq!(&payload[..3], [0x01, 9, 0x01], "{payload:?}");
    // JSON, protocol 1: no mark.
    let mut raw = raw_session(&server.address, "json", 1 << 20).await;
    let answer = json_round_trip(&mut raw, &call.to_string()).await;
    assert_eq!(
        answer["error"]["code"],
        ErrorKind::RateLimited.code(),
        "{answer}"
    );
    assert!(answer["error"].get("not_run").is_none(), "{answer}");
}

/// Counts its handler's runs.
#[rpc_core::rpc_service]
pub trait Counted {
    /// Counts one run.
    async fn tick(&self) -> u64;
}

#[derive(Clone, Default)]
struct Ticks(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl Counted for Ticks {
    async fn tick(&self) -> u64 {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1
    }
}

impl Ticks {
    fn count(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[tokio::test]
async fn an_error_a_layer_passes_on_after_the_handler_ran_is_not_marked() {
    let ticks = Ticks::default();
    let mut registry = Registry::new()
        .with(CountedServer::new(ticks.clone()))
        .unwrap();
    // The handler runs, then the layer fails with a refusal from elsewhere
    // (a downstream server's, marked as not run there).
    registry.layer(from_fn(|call, next| async move {
        let _ran = next.run(call).await?;
        Err(
            Error::new(ErrorKind::RateLimited, "the audit service refused")
                .did_not_run()
                .into(),
        )
    }));
    let server = serve(registry).await;
    for codec in CODECS {
        let client = CountedClient::new(connect(&server.address, codec).await);
        let e = within("a call", client.tick()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RateLimited, "{codec}");
        assert!(
            !e.not_run(),
            "{codec}: the handler ran, so it must not say it did not"
        );
    }
    assert_eq!(ticks.count(), 2);
}

#[tokio::test]
async fn a_call_answered_as_refused_never_runs_later() {
    let ticks = Ticks::default();
    let mut registry = Registry::new()
        .with(CountedServer::new(ticks.clone()))
        .unwrap();
    // The inner layer hands the call to another task, which runs it late;
    // the outer timeout answers first.
    registry.layer(from_fn(|call, next| async move {
        let late = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            next.run(call).await
        });
        late.await.expect("the late task")
    }));
    registry.layer(tower::timeout::TimeoutLayer::new(Duration::from_millis(50)));
    let server = serve(registry).await;
    let client = CountedClient::new(connect(&server.address, "bincode").await);
    let e = within("a call", client.tick()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert!(e.not_run(), "answered before the handler could start: {e}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(ticks.count(), 0, "a call answered as not run ran after all");
}

#[tokio::test]
async fn a_reused_id_is_refused_without_the_mark() {
    let server = serve(registry()).await;
    let (mut raw, _) = streams::raw_session2(&server.address, "json", 64, 4096).await;
    let slow = json!({"jsonrpc": "2.0", "id": 5, "method": "Refusals.nap", "params": [150]});
    write_frame(&mut raw, slow.to_string().as_bytes()).await;
    let again = json!({"jsonrpc": "2.0", "id": 5, "method": "Refusals.add", "params": [1, 2]});
    let answer = json_round_trip(&mut raw, &again.to_string()).await;
    assert_eq!(
        answer["error"]["code"],
        ErrorKind::InvalidRequest.code(),
        "{answer}"
    );
    // The id names the call still running, which did run.
    assert!(answer["error"].get("not_run").is_none(), "{answer}");
}
