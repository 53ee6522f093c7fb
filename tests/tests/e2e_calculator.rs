//! The typed client over TCP, in both codecs: results, typed errors, several
//! services on one port, every framework failure a caller can meet, and
//! test-only services that panic, stall or never answer.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{
    CODECS, ServerGuard, TaskGuard, client_builder, connect, impostor_handshake, serve, serve_with,
    server_builder, within,
};
use examples::calculator::{Calc, CalculatorClient, CalculatorServer, MathError};
use examples::kv::{KeyValueClient, KeyValueServer, MemoryStore};
use rpc_core::{CallError, Context, ErrorKind, Registry, Value};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::Notify;

// ---------------------------------------------------------------------------
// Test-only services.
// ---------------------------------------------------------------------------

/// A service whose `boom` panics.
#[rpc_core::rpc_service]
trait Fragile {
    /// Panics with "boom".
    async fn boom(&self, n: u64) -> u64;

    /// Returns `n`.
    async fn fine(&self, n: u64) -> u64;
}

struct FragileImpl;

impl Fragile for FragileImpl {
    async fn boom(&self, _n: u64) -> u64 {
        panic!("boom")
    }

    async fn fine(&self, n: u64) -> u64 {
        n
    }
}

/// A service with calls that take their time.
#[rpc_core::rpc_service]
trait Pace {
    /// Signals `entered`, then waits for `release`; returns 7.
    async fn slow(&self) -> u64;

    /// Returns `n` at once.
    async fn fast(&self, n: u64) -> u64;

    /// Yields to the scheduler `n % 7` times, then returns `n`.
    async fn echo_later(&self, n: u64) -> u64;

    /// Signals `entered`, then never returns.
    async fn never(&self) -> u64;
}

#[derive(Default)]
struct PaceImpl {
    entered: Arc<Notify>,
    release: Arc<Notify>,
}

impl Pace for PaceImpl {
    async fn slow(&self) -> u64 {
        self.entered.notify_one();
        self.release.notified().await;
        7
    }

    async fn fast(&self, n: u64) -> u64 {
        n
    }

    async fn echo_later(&self, n: u64) -> u64 {
        for _ in 0..n % 7 {
            tokio::task::yield_now().await;
        }
        n
    }

    async fn never(&self) -> u64 {
        self.entered.notify_one();
        std::future::pending::<u64>().await
    }
}

/// What a handler saw of its call through `Context::current()`.
#[derive(Debug, Serialize, Deserialize)]
struct CallInfo {
    peer_ip: Option<String>,
    has_deadline: bool,
    deadline_ahead: bool,
}

/// A service that reports its call's context.
#[rpc_core::rpc_service]
trait Introspect {
    /// The context of this very call.
    async fn whoami(&self) -> CallInfo;
}

struct IntrospectImpl;

impl Introspect for IntrospectImpl {
    async fn whoami(&self) -> CallInfo {
        let context = Context::current();
        let deadline = context.as_ref().and_then(Context::deadline);
        CallInfo {
            peer_ip: context
                .as_ref()
                .and_then(Context::peer)
                .map(|peer| peer.ip().to_string()),
            has_deadline: deadline.is_some(),
            deadline_ahead: deadline.is_some_and(|d| d > std::time::Instant::now()),
        }
    }
}

// ---------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------

/// The arguments of `Calculator.add`, for raw calls.
#[derive(Serialize)]
struct AddArgs {
    x: i64,
    y: i64,
}

/// Arguments of the wrong types for `Calculator.add`.
#[derive(Serialize)]
struct WrongArgs {
    x: String,
    y: String,
}

fn calculator() -> Registry {
    Registry::new()
        .with(CalculatorServer::new(Calc))
        .expect("the calculator registers")
}

fn calculator_and_kv() -> Registry {
    calculator()
        .with(KeyValueServer::new(MemoryStore::default()))
        .expect("the key-value store registers next to the calculator")
}

async fn pace_server() -> (ServerGuard, Arc<Notify>, Arc<Notify>) {
    let pace = PaceImpl::default();
    let (entered, release) = (pace.entered.clone(), pace.release.clone());
    let registry = Registry::new()
        .with(PaceServer::new(pace))
        .expect("the pace service registers");
    (serve(registry).await, entered, release)
}

// ---------------------------------------------------------------------------
// Results and typed errors.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn add_and_sub_return_their_results_in_both_codecs() {
    let server = serve(calculator()).await;
    for codec in CODECS {
        let calc = CalculatorClient::new(connect(&server.address, codec).await);
        assert_eq!(within("add", calc.add(2, 3)).await.unwrap(), 5, "{codec}");
        assert_eq!(within("sub", calc.sub(2, 3)).await.unwrap(), -1, "{codec}");
        assert_eq!(
            within("add", calc.add(i64::MAX, 1)).await.unwrap(),
            i64::MIN,
            "{codec}"
        );
        assert_eq!(
            within("sub", calc.sub(-40, -2)).await.unwrap(),
            -38,
            "{codec}"
        );
    }
}

#[tokio::test]
async fn div_by_zero_is_the_typed_application_error_and_div_by_three_succeeds() {
    let server = serve(calculator()).await;
    for codec in CODECS {
        let calc = CalculatorClient::new(connect(&server.address, codec).await);
        match within("div(1, 0)", calc.div(1, 0)).await {
            Err(CallError::Application(MathError::DivideByZero)) => {}
            other => panic!("{codec}: div(1, 0) should fail with DivideByZero, got {other:?}"),
        }
        match within("div(6, 3)", calc.div(6, 3)).await {
            Ok(2) => {}
            other => panic!("{codec}: div(6, 3) should be Ok(2), got {other:?}"),
        }
    }
}

#[tokio::test]
async fn div_that_overflows_is_overflow_not_division_by_zero() {
    let server = serve(calculator()).await;
    for codec in CODECS {
        let calc = CalculatorClient::new(connect(&server.address, codec).await);
        match within("div(i64::MIN, -1)", calc.div(i64::MIN, -1)).await {
            Err(CallError::Application(MathError::Overflow)) => {}
            other => panic!("{codec}: div(i64::MIN, -1) should fail with Overflow, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Several services, names.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn two_services_share_one_server_and_port_and_one_connection() {
    let server = serve(calculator_and_kv()).await;
    for codec in CODECS {
        let client = connect(&server.address, codec).await;
        let calc = CalculatorClient::new(client.clone());
        let kv = KeyValueClient::new(client);
        assert_eq!(within("add", calc.add(2, 3)).await.unwrap(), 5, "{codec}");
        within("set", kv.set("n".into(), Value::from(5)))
            .await
            .unwrap_or_else(|e| panic!("{codec}: set: {e}"));
        match within("get", kv.get("n".into())).await {
            Ok(v) => assert_eq!(v, Value::from(5), "{codec}"),
            Err(e) => panic!("{codec}: get: {e:?}"),
        }

        let other_kv = KeyValueClient::new(connect(&server.address, codec).await);
        let keys = within("keys", other_kv.keys()).await.unwrap();
        assert_eq!(keys, ["n"], "{codec}");
        let other_calc = CalculatorClient::new(connect(&server.address, codec).await);
        assert_eq!(
            within("sub", other_calc.sub(9, 4)).await.unwrap(),
            5,
            "{codec}"
        );
    }
}

#[test]
fn registering_two_services_with_one_name_fails_at_registration() {
    let e = calculator()
        .with(CalculatorServer::new(Calc))
        .expect_err("a second `Calculator` is refused");
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.message().contains("`Calculator`"), "{e}");
}

#[tokio::test]
async fn bare_and_qualified_method_names_both_resolve() {
    let server = serve(calculator_and_kv()).await;
    for codec in CODECS {
        let client = connect(&server.address, codec).await;
        for name in ["add", "Calculator.add"] {
            let sum: i64 = within(name, client.call(name, &AddArgs { x: 2, y: 3 }))
                .await
                .unwrap_or_else(|e| panic!("{codec}: `{name}`: {e}"));
            assert_eq!(sum, 5, "{codec}: `{name}`");
        }
    }
}

// ---------------------------------------------------------------------------
// Failures a caller meets.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn an_unknown_method_is_method_not_found_and_lists_the_known_methods() {
    let server = serve(calculator()).await;
    for codec in CODECS {
        let client = connect(&server.address, codec).await;
        let e = within(
            "Calculator.mul",
            client.call::<_, i64>("Calculator.mul", &AddArgs { x: 2, y: 3 }),
        )
        .await
        .expect_err("there is no `mul`");
        assert_eq!(e.kind(), ErrorKind::MethodNotFound, "{codec}: {e}");
        let message = e.message();
        assert!(message.contains("Calculator.mul"), "{codec}: {e}");
        for known in ["Calculator.add", "Calculator.sub", "Calculator.div"] {
            assert!(
                message.contains(known),
                "{codec}: {known} not listed in: {e}"
            );
        }
        // The connection is still good.
        let sum: i64 = within(
            "add",
            client.call("Calculator.add", &AddArgs { x: 1, y: 1 }),
        )
        .await
        .unwrap();
        assert_eq!(sum, 2, "{codec}");
    }
}

#[tokio::test]
async fn arguments_of_the_wrong_types_are_invalid_params_naming_the_method() {
    let server = serve(calculator()).await;
    for codec in CODECS {
        let client = connect(&server.address, codec).await;
        let wrong = WrongArgs {
            x: "two".into(),
            y: "three".into(),
        };
        let e = within(
            "add with strings",
            client.call::<_, i64>("Calculator.add", &wrong),
        )
        .await
        .expect_err("strings are not numbers");
        assert_eq!(e.kind(), ErrorKind::InvalidParams, "{codec}: {e}");
        assert!(e.message().contains("Calculator.add"), "{codec}: {e}");
        let sum: i64 = within(
            "add",
            client.call("Calculator.add", &AddArgs { x: 1, y: 1 }),
        )
        .await
        .unwrap();
        assert_eq!(sum, 2, "{codec}");
    }
}

#[tokio::test]
async fn a_panicking_handler_fails_the_call_at_once_and_the_connection_keeps_working() {
    let registry = Registry::new()
        .with(FragileServer::new(FragileImpl))
        .unwrap();
    let server = serve(registry).await;
    for codec in CODECS {
        // The call timeout is LONG_CALL (minutes); the panic must come back
        // long before it, within the ordinary bound.
        let fragile = FragileClient::new(connect(&server.address, codec).await);
        let e = within("the panicking call", fragile.boom(1))
            .await
            .expect_err("boom panics");
        assert_eq!(e.kind(), ErrorKind::HandlerPanic, "{codec}: {e}");
        assert!(e.message().contains("boom"), "{codec}: {e}");
        assert_eq!(
            within("the next call", fragile.fine(3)).await.unwrap(),
            3,
            "{codec}"
        );
    }
}

#[tokio::test]
async fn a_slow_call_does_not_block_a_fast_one_on_the_same_connection() {
    let (server, entered, release) = pace_server().await;
    for codec in CODECS {
        let pace = PaceClient::new(connect(&server.address, codec).await);
        let mut slow = TaskGuard(tokio::spawn({
            let pace = pace.clone();
            async move { pace.slow().await }
        }));
        within("the slow call to start", entered.notified()).await;
        assert_eq!(
            within("the fast call", pace.fast(5)).await.unwrap(),
            5,
            "{codec}"
        );
        assert!(
            !slow.0.is_finished(),
            "{codec}: the slow call is still pending"
        );
        release.notify_one();
        let out = within("the released slow call", &mut slow.0)
            .await
            .expect("the slow call's task");
        assert_eq!(out.unwrap(), 7, "{codec}");
    }
}

#[tokio::test]
async fn two_hundred_concurrent_calls_on_one_connection_each_get_their_own_result() {
    let (server, _, _) = pace_server().await;
    for codec in CODECS {
        let pace = PaceClient::new(connect(&server.address, codec).await);
        let mut calls = tokio::task::JoinSet::new();
        for n in 0..200u64 {
            let pace = pace.clone();
            calls.spawn(async move { (n, pace.echo_later(n).await) });
        }
        let mut seen = 0;
        while let Some(joined) = within("the next of 200 calls", calls.join_next()).await {
            let (n, out) = joined.expect("a call's task");
            assert_eq!(out.unwrap(), n, "{codec}");
            seen += 1;
        }
        assert_eq!(seen, 200, "{codec}");
    }
}

#[tokio::test]
async fn a_call_past_its_timeout_is_timeout_and_the_connection_still_works() {
    let (server, _, _) = pace_server().await;
    for codec in CODECS {
        let pace = PaceClient::new(connect(&server.address, codec).await);
        let e = within(
            "the timed-out call",
            pace.with_timeout(Duration::from_millis(100)).never(),
        )
        .await
        .expect_err("never never returns");
        assert_eq!(e.kind(), ErrorKind::Timeout, "{codec}: {e}");
        assert_eq!(
            within("the next call", pace.fast(9)).await.unwrap(),
            9,
            "{codec}"
        );
    }
}

#[tokio::test]
async fn a_short_timeout_behind_a_long_one_on_the_same_connection_fires_on_time() {
    // Deadlines are kept per connection: a later call with an earlier
    // deadline must move the connection's next check forward, and the
    // long call must stay pending after the short one fails.
    let (server, entered, _) = pace_server().await;
    for codec in CODECS {
        let pace = PaceClient::new(connect(&server.address, codec).await);
        let long = TaskGuard(tokio::spawn({
            let pace = pace.with_timeout(Duration::from_secs(30));
            async move { pace.never().await }
        }));
        within("the long call to reach the handler", entered.notified()).await;
        let started = std::time::Instant::now();
        let e = within(
            "the short call",
            pace.with_timeout(Duration::from_millis(150)).never(),
        )
        .await
        .expect_err("never never returns");
        assert_eq!(e.kind(), ErrorKind::Timeout, "{codec}: {e}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{codec}: the short call waited for the long call's deadline ({:?})",
            started.elapsed()
        );
        assert!(!long.0.is_finished(), "{codec}: the long call ended too");
        assert_eq!(within("a call after", pace.fast(4)).await.unwrap(), 4);
    }
}

#[tokio::test]
async fn a_reply_left_untaken_does_not_hold_back_later_calls_on_the_connection() {
    // Requests queued while callers still have replies to take wait for
    // them; a caller that keeps its call's future without polling it must
    // not make every later request on the connection wait with it.
    let (server, _, _) = pace_server().await;
    for codec in CODECS {
        let pace = PaceClient::new(connect(&server.address, codec).await);
        let mut kept = Box::pin(pace.fast(2));
        let first = futures::future::poll_fn(|cx| {
            std::task::Poll::Ready(kept.as_mut().poll(cx).is_pending())
        });
        assert!(first.await, "{codec}: the first poll only sends");
        // Its reply arrives while no one polls it.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(within("a later call", pace.fast(3)).await.unwrap(), 3);
        assert_eq!(within("the kept call", kept).await.unwrap(), 2);
    }
}

#[tokio::test]
async fn a_connection_lost_mid_call_fails_the_pending_call_and_later_ones_at_once() {
    for codec in CODECS {
        let (mut server, entered, _) = pace_server().await;
        let pace = PaceClient::new(connect(&server.address, codec).await);
        let mut pending = TaskGuard(tokio::spawn({
            let pace = pace.clone();
            async move { pace.never().await }
        }));
        within("the call to reach the handler", entered.notified()).await;
        server.stop().await;

        // The call timeout is LONG_CALL (minutes): failing within the
        // ordinary bound shows the lost connection, not the timer, ended it.
        let e = within("the pending call to fail", &mut pending.0)
            .await
            .expect("the pending call's task")
            .expect_err("the server is gone");
        assert_eq!(e.kind(), ErrorKind::ConnectionLost, "{codec}: {e}");

        let e = within("a later call to fail", pace.fast(1))
            .await
            .expect_err("the server is gone");
        assert_eq!(e.kind(), ErrorKind::ConnectionLost, "{codec}: {e}");
    }
}

// ---------------------------------------------------------------------------
// Authentication and the hello.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_client_with_the_wrong_authkey_is_refused_and_the_server_keeps_serving() {
    let server = serve(calculator()).await;
    for codec in CODECS {
        let config = client_builder(&server.address, codec)
            .authkey("not-the-key")
            .build()
            .unwrap();
        let e = within("the wrong-key connect", rpc_transport::connect(&config))
            .await
            .expect_err("the wrong key is refused");
        assert_eq!(e.kind(), ErrorKind::Authentication, "{codec}: {e}");
    }
    for codec in CODECS {
        let calc = CalculatorClient::new(connect(&server.address, codec).await);
        assert_eq!(within("add", calc.add(2, 3)).await.unwrap(), 5, "{codec}");
    }
}

#[tokio::test]
async fn a_client_refuses_an_impostor_server_that_does_not_know_the_key() {
    for codec in CODECS {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let mut impostor = TaskGuard(tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("the client connects");
            impostor_handshake(&mut stream, "not-the-key").await
        }));
        let config = client_builder(&address, codec).build().unwrap();
        let e = within(
            "the connect to the impostor",
            rpc_transport::connect(&config),
        )
        .await
        .expect_err("the impostor is refused");
        assert_eq!(e.kind(), ErrorKind::Authentication, "{codec}: {e}");
        let verdict = within("the impostor to hear the verdict", &mut impostor.0)
            .await
            .expect("the impostor's task");
        assert_eq!(
            verdict.as_deref(),
            Some(rpc_transport::handshake::FAILURE),
            "{codec}: the client tells the impostor it failed"
        );
    }
}

#[tokio::test]
async fn a_codec_the_server_does_not_accept_is_codec_rejected_naming_both_sides() {
    for (accepted, asked) in [("bincode", "json"), ("json", "bincode")] {
        let config = server_builder().codecs([accepted]).build().unwrap();
        let server = serve_with(config, calculator()).await;
        let config = client_builder(&server.address, asked).build().unwrap();
        let e = within("the refused connect", rpc_transport::connect(&config))
            .await
            .expect_err("the codec is not accepted");
        assert_eq!(e.kind(), ErrorKind::CodecRejected, "{asked}: {e}");
        assert!(e.message().contains(&format!("`{asked}`")), "{e}");
        assert!(e.message().contains(&format!("accepts: {accepted}")), "{e}");
        let calc = CalculatorClient::new(connect(&server.address, accepted).await);
        assert_eq!(
            within("add", calc.add(2, 3)).await.unwrap(),
            5,
            "{accepted}"
        );
    }
}

// ---------------------------------------------------------------------------
// Context.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_handler_sees_its_callers_address_and_deadline_in_the_context() {
    let registry = Registry::new()
        .with(IntrospectServer::new(IntrospectImpl))
        .unwrap();
    let server = serve(registry).await;
    for codec in CODECS {
        let introspect = IntrospectClient::new(connect(&server.address, codec).await);
        let info = within("whoami", introspect.whoami()).await.unwrap();
        assert_eq!(
            info.peer_ip.as_deref(),
            Some("127.0.0.1"),
            "{codec}: {info:?}"
        );
        assert!(info.has_deadline, "{codec}: {info:?}");
        assert!(info.deadline_ahead, "{codec}: {info:?}");
    }
}
