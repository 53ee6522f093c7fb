//! Server layers on every door: each of tower's layers (and ours) over TCP
//! in both codecs; on every door (TCP, a stock Python client, JSON-RPC,
//! XML-RPC and REST over HTTP, a stream opened over TCP, SSE and the
//! WebSocket) a refusing rate limit, a waiting one, load shedding and a
//! `from_fn` layer that reads metadata and arguments, and on the unary
//! doors a concurrency limit and a timeout; a layer's error as each client
//! sees it; a batch's members each through the layer; the layers' order,
//! `Server::layer`'s included; `Context::current` in a layer naming its
//! door; and a call that waits for a permit or is abandoned letting go.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rpc_core::layer::{BoxError, Call, Next, RefuseOverRateLayer, from_fn};
use rpc_core::service::Reply;
use rpc_core::{Context, Error, ErrorKind};
use serde_json::{Value, json};
use tower::ServiceBuilder;
use tower::util::BoxCloneService;

use common::middleware::{
    Door, Doors, assert_refused, invoke, json_rpc, mw_client, nap, python_available, start,
    start_server,
};
use common::{CODECS, json_round_trip, raw_json_session, within};

const HOUR: Duration = Duration::from_secs(3600);

/// The doors this machine can drive (Python's only with `python3`).
fn drivable() -> Vec<Door> {
    let python = python_available();
    if !python {
        eprintln!("the Python door is skipped: no python3 on the PATH");
    }
    Door::ALL
        .into_iter()
        .filter(|d| python || *d != Door::Python)
        .collect()
}

// ---------------------------------------------------------------------------
// Each layer over TCP.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_concurrency_limit_makes_tcp_calls_wait_and_refuses_none() {
    for codec in CODECS {
        let doors = start(|r| {
            r.layer(tower::limit::ConcurrencyLimitLayer::new(1));
        })
        .await;
        let client = mw_client(&doors.tcp, codec).await;
        let (a, b) = within("two naps", async {
            tokio::join!(client.nap(300), client.nap(300))
        })
        .await;
        assert_eq!((a.unwrap(), b.unwrap()), (300, 300), "{codec}");
        // The second started only once the first had ended.
        assert_eq!(doors.state.peak(), 1, "{codec}");
    }
}

#[tokio::test]
async fn a_rate_limit_makes_tcp_calls_wait_and_refuses_none() {
    for codec in CODECS {
        let doors = start(|r| {
            r.layer(tower::limit::RateLimitLayer::new(
                1,
                Duration::from_millis(500),
            ));
        })
        .await;
        let client = mw_client(&doors.tcp, codec).await;
        let (a, b, c) = within("three calls", async {
            tokio::join!(client.add(1, 1), client.add(2, 1), client.add(3, 1))
        })
        .await;
        assert_eq!((a.unwrap(), b.unwrap(), c.unwrap()), (2, 3, 4), "{codec}");
        let gap = doors.state.shortest_gap();
        assert!(gap >= Duration::from_millis(250), "{codec}: {gap:?}");
    }
}

#[tokio::test]
async fn a_timeout_layer_refuses_a_slow_tcp_call_as_timeout() {
    for codec in CODECS {
        let doors = start(|r| {
            r.layer(tower::timeout::TimeoutLayer::new(Duration::from_millis(
                200,
            )));
        })
        .await;
        let client = mw_client(&doors.tcp, codec).await;
        let e = within("a slow call", client.nap(10_000)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout, "{codec}: {e}");
        assert_eq!(within("a quick call", client.nap(1)).await.unwrap(), 1);
    }
}

#[tokio::test]
async fn load_shedding_over_a_concurrency_limit_refuses_a_second_tcp_call_as_overloaded() {
    for codec in CODECS {
        let doors = start(|r| {
            r.layer(ServiceBuilder::new().load_shed().concurrency_limit(1));
        })
        .await;
        let client = mw_client(&doors.tcp, codec).await;
        let slow = tokio::spawn({
            let client = client.clone();
            async move { client.nap(1_000).await }
        });
        doors.state.wait_napping(1).await;
        let handled = doors.state.handled();
        let e = within("a shed call", client.add(1, 1)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Overloaded, "{codec}: {e}");
        assert_eq!(doors.state.handled(), handled, "the shed call did not run");
        assert_eq!(within("the slow call", slow).await.unwrap().unwrap(), 1_000);
        assert_eq!(within("a later call", client.add(1, 1)).await.unwrap(), 2);
    }
}

#[tokio::test]
async fn a_layer_boxed_into_a_box_clone_service_still_runs_on_tcp() {
    for codec in CODECS {
        let doors = start(|r| {
            r.layer(tower::layer::layer_fn(|next: Next| {
                BoxCloneService::new(
                    ServiceBuilder::new()
                        .layer(RefuseOverRateLayer::new(2, HOUR))
                        .service(next),
                )
            }));
        })
        .await;
        let client = mw_client(&doors.tcp, codec).await;
        assert_eq!(within("a call", client.add(1, 1)).await.unwrap(), 2);
        assert_eq!(within("a call", client.add(1, 2)).await.unwrap(), 3);
        let e = within("a refused call", client.add(1, 3))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RateLimited, "{codec}: {e}");
        assert_eq!(doors.state.handled(), 2, "{codec}");
    }
}

#[tokio::test]
async fn refuse_over_rate_refuses_a_tcp_call_over_the_rate_as_rate_limited() {
    for codec in CODECS {
        let doors = start(|r| {
            r.layer(RefuseOverRateLayer::new(2, HOUR));
        })
        .await;
        let client = mw_client(&doors.tcp, codec).await;
        let mut kinds = Vec::new();
        for i in 0..4 {
            kinds.push(
                within("a call", client.add(i, 1))
                    .await
                    .map_err(|e| e.kind()),
            );
        }
        assert_eq!(
            kinds,
            [
                Ok(1),
                Ok(2),
                Err(ErrorKind::RateLimited),
                Err(ErrorKind::RateLimited)
            ],
            "{codec}"
        );
        let e = within("a refused call", client.add(0, 0))
            .await
            .unwrap_err();
        assert!(e.message().contains("rate limited"), "{e}");
        assert_eq!(doors.state.handled(), 2, "{codec}");
    }
}

// ---------------------------------------------------------------------------
// Every door.
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuse_over_rate_refuses_on_every_door() {
    for door in drivable() {
        let doors = start(|r| {
            r.layer(RefuseOverRateLayer::new(2, HOUR));
        })
        .await;
        for n in [2, 3] {
            let got = invoke(&doors, door, n, None).await;
            assert_eq!(got.unwrap(), door.expected(n), "{door:?}");
        }
        let got = invoke(&doors, door, 4, None).await;
        assert_refused(door, &got, ErrorKind::RateLimited);
        assert_eq!(doors.state.handled(), 2, "{door:?}: the refused call ran");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_makes_calls_wait_on_every_door() {
    for door in drivable() {
        let doors = start(|r| {
            r.layer(tower::limit::RateLimitLayer::new(
                1,
                Duration::from_millis(500),
            ));
        })
        .await;
        let (a, b, c) = within("three calls", async {
            tokio::join!(
                invoke(&doors, door, 2, None),
                invoke(&doors, door, 3, None),
                invoke(&doors, door, 4, None)
            )
        })
        .await;
        assert_eq!(a.unwrap(), door.expected(2), "{door:?}");
        assert_eq!(b.unwrap(), door.expected(3), "{door:?}");
        assert_eq!(c.unwrap(), door.expected(4), "{door:?}");
        let gap = doors.state.shortest_gap();
        assert!(gap >= Duration::from_millis(250), "{door:?}: {gap:?}");
    }
}

/// Starts `nap(60 s)` through `door` (TCP, HTTP or Python) under a
/// concurrency limit of 1, lets its caller go away, and checks another
/// call then runs: the permit went with the abandoned call.
async fn an_abandoned_call_frees_its_permit(door: Door) {
    let doors = start(|r| {
        r.layer(tower::limit::ConcurrencyLimitLayer::new(1));
    })
    .await;
    let abandoned = {
        let doors = &doors;
        async move { nap(doors, door, 60_000).await }
    };
    tokio::select! {
        _ = abandoned => panic!("{door:?}: the long nap ended"),
        () = doors.state.wait_napping(1) => {}
    }
    // The caller is gone (its connection, or its Python process, with it).
    let got = within(
        "a call after the abandoned one",
        invoke(&doors, Door::Rest, 1, None),
    )
    .await;
    assert_eq!(got.unwrap(), Door::Rest.expected(1), "{door:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_or_http_caller_that_goes_away_frees_its_concurrency_permit() {
    for door in [Door::Bincode, Door::Json, Door::Rest, Door::JsonRpc] {
        an_abandoned_call_frees_its_permit(door).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_caller_that_goes_away_frees_its_concurrency_permit() {
    if python_available() {
        an_abandoned_call_frees_its_permit(Door::Python).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_waiting_for_a_permit_ends_at_its_deadline() {
    let doors = start(|r| {
        r.layer(tower::limit::ConcurrencyLimitLayer::new(1));
    })
    .await;
    let holder = mw_client(&doors.tcp, "bincode").await;
    let _held = common::TaskGuard(tokio::spawn(async move { holder.nap(20_000).await }));
    doors.state.wait_napping(1).await;
    // TCP: the caller's deadline travels with the call.
    let conn = common::connect(&doors.tcp, "json").await;
    let waiting = rpc_core::Client::with_timeout(&conn, Duration::from_millis(300));
    let e = within(
        "a waiting call",
        common::middleware::MwClient::new(waiting).add(1, 1),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    // HTTP: `x-rpc-timeout-ms`.
    let request = common::middleware::request(
        "POST",
        "/Mw/add",
        &[("x-rpc-timeout-ms", "300")],
        "application/json",
        b"[1, 1]",
    );
    let answer = within(
        "a waiting HTTP call",
        common::middleware::exchange(&doors, &request),
    )
    .await;
    assert_eq!(answer.status, 504, "{}", answer.text());
    assert_eq!(doors.state.handled(), 1, "a call that waited ran");
}

#[tokio::test]
async fn a_rate_limit_makes_batch_members_wait_and_refuses_none() {
    let doors = start(|r| {
        r.layer(tower::limit::RateLimitLayer::new(
            1,
            Duration::from_millis(50),
        ));
    })
    .await;
    let mut raw = raw_json_session(&doors.tcp).await;
    let answer = json_round_trip(&mut raw, &batch_of_ten().to_string()).await;
    assert_ten_answers(&answer);
    let answer = common::middleware::post(&doors, "/rpc", &batch_of_ten(), &[]).await;
    assert_ten_answers(&serde_json::from_slice(&answer.body).unwrap());
    let gap = doors.state.shortest_gap();
    assert!(gap >= Duration::from_millis(25), "{gap:?}");
}

/// The unary doors this machine can drive.
fn unary_doors() -> Vec<Door> {
    drivable().into_iter().filter(|d| !d.streams()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrency_limit_makes_calls_wait_on_every_unary_door() {
    for door in unary_doors() {
        let doors = start(|r| {
            r.layer(tower::limit::ConcurrencyLimitLayer::new(1));
        })
        .await;
        let (a, b) = within("two naps", async {
            tokio::join!(nap(&doors, door, 300), nap(&doors, door, 300))
        })
        .await;
        assert_eq!(
            (a.unwrap(), b.unwrap()),
            (json!(300), json!(300)),
            "{door:?}"
        );
        assert_eq!(doors.state.peak(), 1, "{door:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_layer_refuses_slow_calls_on_every_unary_door() {
    let doors = start(|r| {
        r.layer(tower::timeout::TimeoutLayer::new(Duration::from_millis(
            200,
        )));
    })
    .await;
    for door in unary_doors() {
        let got = nap(&doors, door, 10_000).await;
        assert_refused(door, &got, ErrorKind::Timeout);
        assert_eq!(nap(&doors, door, 1).await.unwrap(), json!(1), "{door:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_shedding_refuses_on_every_door_while_a_call_runs() {
    let doors = start(|r| {
        r.layer(ServiceBuilder::new().load_shed().concurrency_limit(1));
    })
    .await;
    let client = mw_client(&doors.tcp, "bincode").await;
    let slow = common::TaskGuard(tokio::spawn(async move { client.nap(20_000).await }));
    doors.state.wait_napping(1).await;
    for door in drivable() {
        let got = invoke(&doors, door, 2, Some("acme")).await;
        assert_refused(door, &got, ErrorKind::Overloaded);
    }
    assert_eq!(doors.state.handled(), 1, "a shed call ran");
    drop(slow);
}

/// Refuses calls whose first argument is 13 and callers whose `tenant` is
/// `evil`; reads the arguments every way a layer can.
async fn tenant_and_argument_check(call: Call, next: Next) -> Result<Reply, BoxError> {
    let first = match call.method() {
        "add" => {
            let (x, y): (i64, i64) = call.args()?;
            assert_eq!(call.arg::<i64>("y")?, y);
            x
        }
        "count" => call.arg::<i64>("n")?,
        other => panic!("an unexpected method {other}"),
    };
    if first == 13 {
        return Err(Error::new(ErrorKind::PermissionDenied, "13 is unlucky").into());
    }
    if call.metadata().text("tenant") == Some("evil") {
        return Err(Error::new(ErrorKind::PermissionDenied, "not for evil tenants").into());
    }
    next.run(call).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_from_fn_layer_checks_metadata_and_arguments_on_every_door() {
    for door in drivable() {
        let doors = start(|r| {
            r.layer(from_fn(tenant_and_argument_check));
        })
        .await;
        let got = invoke(&doors, door, 3, Some("acme")).await;
        assert_eq!(got.unwrap(), door.expected(3), "{door:?}");
        let got = invoke(&doors, door, 13, Some("acme")).await;
        assert_refused(door, &got, ErrorKind::PermissionDenied);
        if door.carries_metadata() {
            let got = invoke(&doors, door, 3, Some("evil")).await;
            assert_refused(door, &got, ErrorKind::PermissionDenied);
        }
        assert_eq!(doors.state.handled(), 1, "{door:?}: a refused call ran");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_current_in_a_layer_names_every_door() {
    for door in drivable() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let doors = start(|r| {
            let seen = seen.clone();
            r.layer(from_fn(move |call: Call, next: Next| {
                let seen = seen.clone();
                async move {
                    let current = Context::current().expect("a context in a layer");
                    assert_eq!(current.transport(), call.context().transport());
                    seen.lock().unwrap().push(current.transport());
                    next.run(call).await
                }
            }));
        })
        .await;
        invoke(&doors, door, 2, None).await.unwrap();
        assert_eq!(*seen.lock().unwrap(), [Some(door.transport())], "{door:?}");
    }
}

// ---------------------------------------------------------------------------
// A layer's error, as each client sees it.
// ---------------------------------------------------------------------------

/// Refuses every call with an error chosen by its first argument: 1 ours
/// `RateLimited`, 2 tower's `Overloaded`, 3 ours `PermissionDenied`, 4
/// tower's `Elapsed`.
async fn refuse_by_argument(call: Call, _: Next) -> Result<Reply, BoxError> {
    let args: Vec<Value> = call.args()?;
    Err(match args[0].as_i64() {
        Some(1) => Error::new(ErrorKind::RateLimited, "slow down").into(),
        Some(2) => tower::load_shed::error::Overloaded::new().into(),
        Some(3) => Error::new(ErrorKind::PermissionDenied, "not yours").into(),
        Some(4) => tower::timeout::error::Elapsed::new().into(),
        other => panic!("an unexpected first argument {other:?}"),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layers_error_reaches_every_client_with_its_code_status_fault_and_exception() {
    // The table as the issue states it, so a wrong row fails here too.
    let table = [
        (
            1,
            ErrorKind::RateLimited,
            -32013,
            429,
            -32513,
            "ConnectionRefusedError",
        ),
        (
            2,
            ErrorKind::Overloaded,
            -32014,
            503,
            -32514,
            "ConnectionRefusedError",
        ),
        (
            3,
            ErrorKind::PermissionDenied,
            -32015,
            403,
            -32515,
            "PermissionError",
        ),
        (4, ErrorKind::Timeout, -32002, 504, -32502, "TimeoutError"),
    ];
    for (_, kind, code, status, fault, python) in table {
        assert_eq!(kind.code(), code, "{kind:?}");
        assert_eq!(kind.http_status(), status, "{kind:?}");
        assert_eq!(kind.xmlrpc_fault(), fault, "{kind:?}");
        assert_eq!(kind.python_exception(), python, "{kind:?}");
    }
    let doors_here = drivable();
    let doors = start(|r| {
        r.layer(from_fn(refuse_by_argument));
    })
    .await;
    for door in doors_here {
        for (n, kind, ..) in table {
            let got = invoke(&doors, door, n, None).await;
            assert_refused(door, &got, kind);
            let refusal = got.unwrap_err();
            // Each door said it its own way.
            match door {
                Door::Python => assert!(refusal.python.is_some(), "{refusal:?}"),
                Door::XmlRpc => assert!(refusal.fault.is_some(), "{refusal:?}"),
                Door::Rest | Door::Sse => assert!(
                    refusal.status.is_some() && refusal.code.is_some(),
                    "{refusal:?}"
                ),
                _ => assert!(refusal.code.is_some(), "{refusal:?}"),
            }
        }
    }
    assert_eq!(doors.state.handled(), 0);
}

// ---------------------------------------------------------------------------
// Batches, order.
// ---------------------------------------------------------------------------

/// A layer counting the calls it sees in `seen`.
fn counting(
    seen: Arc<AtomicUsize>,
) -> impl Fn(Call, Next) -> futures::future::BoxFuture<'static, Result<Reply, BoxError>>
+ Clone
+ Send
+ 'static {
    move |call, next| {
        seen.fetch_add(1, Ordering::SeqCst);
        Box::pin(next.run(call))
    }
}

fn batch_of_ten() -> Value {
    Value::from(
        (0..10)
            .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "Mw.add", "params": [i, 1]}))
            .collect::<Vec<_>>(),
    )
}

fn assert_ten_answers(answer: &Value) {
    let answers = answer
        .as_array()
        .unwrap_or_else(|| panic!("a batch answer: {answer}"));
    assert_eq!(answers.len(), 10, "{answer}");
    for a in answers {
        assert_eq!(a["result"].as_i64(), a["id"].as_i64().map(|i| i + 1), "{a}");
    }
}

#[tokio::test]
async fn a_batch_of_ten_goes_through_the_layer_ten_times_over_tcp_json_http_and_websocket() {
    let seen = Arc::new(AtomicUsize::new(0));
    let doors: Doors = start(|r| {
        r.layer(from_fn(counting(seen.clone())));
    })
    .await;
    let mut raw = raw_json_session(&doors.tcp).await;
    let answer = json_round_trip(&mut raw, &batch_of_ten().to_string()).await;
    assert_ten_answers(&answer);
    assert_eq!(seen.load(Ordering::SeqCst), 10);

    let answer = common::middleware::post(&doors, "/rpc", &batch_of_ten(), &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_ten_answers(&serde_json::from_slice(&answer.body).unwrap());
    assert_eq!(seen.load(Ordering::SeqCst), 20);

    let mut socket = common::middleware::ws_connect(&doors, &[]).await;
    let answer = common::middleware::ws_exchange(&mut socket, &batch_of_ten()).await;
    assert_ten_answers(&answer);
    assert_eq!(seen.load(Ordering::SeqCst), 30);
    assert_eq!(doors.state.handled(), 30);
}

#[tokio::test]
async fn a_refusing_layer_refuses_batch_members_one_by_one() {
    let doors = start(|r| {
        r.layer(RefuseOverRateLayer::new(4, HOUR));
    })
    .await;
    let answer = common::middleware::post(&doors, "/rpc", &batch_of_ten(), &[]).await;
    let answers: Value = serde_json::from_slice(&answer.body).unwrap();
    let answers = answers.as_array().expect("a batch answer");
    let refused = answers
        .iter()
        .filter(|a| a["error"]["code"] == ErrorKind::RateLimited.code())
        .count();
    assert_eq!((answers.len(), refused), (10, 6), "{answers:?}");
    // One more, alone: the bucket is empty.
    let one = json!({"jsonrpc": "2.0", "id": 1, "method": "Mw.add", "params": [1, 1]});
    let got = json_rpc(&doors, &one, &[]).await;
    assert_refused(Door::JsonRpc, &got, ErrorKind::RateLimited);
}

/// A layer that notes `name` in `log` as each call passes it.
fn note(
    log: &Arc<Mutex<Vec<&'static str>>>,
    name: &'static str,
) -> tower::util::MapRequestLayer<impl FnMut(Call) -> Call + Clone + Send + 'static> {
    let log = log.clone();
    tower::util::MapRequestLayer::new(move |call: Call| {
        log.lock().unwrap().push(name);
        call
    })
}

#[tokio::test]
async fn the_last_layer_added_runs_first_and_a_service_builder_keeps_its_order() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let doors = start(|r| {
        r.layer(note(&log, "first added"));
        r.layer(note(&log, "last added"));
        r.layer(
            ServiceBuilder::new()
                .layer(note(&log, "builder's first"))
                .layer(note(&log, "builder's second")),
        );
    })
    .await;
    let client = mw_client(&doors.tcp, "bincode").await;
    assert_eq!(within("a call", client.add(1, 1)).await.unwrap(), 2);
    assert_eq!(
        *log.lock().unwrap(),
        [
            "builder's first",
            "builder's second",
            "last added",
            "first added"
        ]
    );
}

#[tokio::test]
async fn server_layers_run_before_the_registrys_and_reach_every_door() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let doors = start_server(
        |r| {
            r.layer(note(&log, "registry's"));
        },
        |server| {
            server
                .layer(note(&log, "server's first"))
                .layer(note(&log, "server's last"))
        },
    )
    .await;
    let client = mw_client(&doors.tcp, "json").await;
    assert_eq!(within("a call", client.add(1, 1)).await.unwrap(), 2);
    let order = ["server's last", "server's first", "registry's"];
    assert_eq!(*log.lock().unwrap(), order);
    let got = invoke(&doors, Door::Rest, 1, None).await;
    assert_eq!(got.unwrap(), Door::Rest.expected(1));
    assert_eq!(
        log.lock().unwrap().len(),
        6,
        "the gateway runs the server's layers"
    );

    let doors = start_server(
        |_| {},
        |server| server.layer(RefuseOverRateLayer::new(1, HOUR)),
    )
    .await;
    assert!(invoke(&doors, Door::JsonRpc, 1, None).await.is_ok());
    let got = invoke(&doors, Door::Rest, 1, None).await;
    assert_refused(Door::Rest, &got, ErrorKind::RateLimited);
}

#[test]
#[should_panic(expected = "before the server is cloned")]
fn server_layer_panics_once_the_server_is_shared() {
    let config = common::server_builder().build().expect("a config");
    let server = rpc_transport::Server::new(config, rpc_core::Registry::new());
    let _listener_holds = server.clone();
    let _ = server.layer(RefuseOverRateLayer::new(1, HOUR));
}
