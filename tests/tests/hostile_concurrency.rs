//! Concurrency under abuse: 10,000 calls in flight on one connection, storms
//! of calls dropped mid-flight, duplicate ids, a client that never reads its
//! answers, clients that vanish mid-call, and handlers that panic or never
//! return. Every call that is still wanted gets its own answer, promptly.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::hostile::{
    ObservedServer, ProbeClient, ProbeState, assert_still_serves, bincode_request, bincode_value,
    frame, raw_session, read_bincode_response, serve_probe, serve_probe_with, write_raw,
};
use common::{CODECS, connect, expect_frame, expect_json, raw_json_session, within};
use rpc_core::ErrorKind;
use rpc_transport::config::Limits;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::task::JoinSet;

/// A typed probe client on a fresh connection.
async fn probe_client(address: &str, codec: &str) -> ProbeClient {
    ProbeClient::new(connect(address, codec).await)
}

/// `hold` calls in flight: what each sent, and what it got back.
type HeldCalls = JoinSet<(u64, Result<u64, rpc_core::Error>)>;

/// Starts `n` `hold` calls, each in its own task, and waits until every
/// handler has started.
async fn hold_calls(probe: &ProbeClient, state: &ProbeState, n: u64) -> HeldCalls {
    let before = state.entered.load(Ordering::SeqCst);
    let mut calls = JoinSet::new();
    for i in 0..n {
        let probe = probe.clone();
        calls.spawn(async move { (i, probe.hold(i).await) });
    }
    state.wait_entered(before + n).await;
    calls
}

#[tokio::test]
async fn ten_thousand_calls_in_flight_on_one_connection_each_get_their_own_answer() {
    const N: u64 = 10_000;
    for codec in CODECS {
        let (server, state) = serve_probe_with(in_flight(N as usize)).await;
        let probe = probe_client(&server.address, codec).await;
        let mut calls = hold_calls(&probe, &state, N).await;
        assert_eq!(state.in_flight.load(Ordering::SeqCst), N, "{codec}");
        state.release();
        let mut seen = 0;
        while let Some(joined) = within("the next held call", calls.join_next()).await {
            let (sent, got) = joined.expect("a call's task");
            assert_eq!(got.expect("hold returns"), sent, "{codec}");
            seen += 1;
        }
        assert_eq!(seen, N, "{codec}");
        assert_eq!(state.in_flight.load(Ordering::SeqCst), 0, "{codec}");
    }
}

#[tokio::test]
async fn at_the_default_limit_a_burst_of_ten_thousand_calls_runs_a_bounded_number_at_once() {
    let limit = Limits::default().max_in_flight as u64;
    for codec in CODECS {
        let (server, state) = serve_probe().await;
        let probe = probe_client(&server.address, codec).await;
        let mut calls = JoinSet::new();
        for i in 0..10_000u64 {
            let probe = probe.clone();
            calls.spawn(async move { (i, probe.hold(i).await) });
        }
        state.wait_entered(limit).await;
        // The server stops reading at the limit: no more handlers start.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(state.entered.load(Ordering::SeqCst), limit, "{codec}");
        state.release();
        let mut seen = 0;
        while let Some(joined) = within("the next held call", calls.join_next()).await {
            let (sent, got) = joined.expect("a call's task");
            assert_eq!(got.expect("hold returns"), sent, "{codec}");
            seen += 1;
        }
        assert_eq!(seen, 10_000, "{codec}");
        assert_eq!(
            state.peak_in_flight.load(Ordering::SeqCst),
            limit,
            "{codec}"
        );
    }
}

/// A server config whose connections may run `n` calls at once.
fn in_flight(n: usize) -> rpc_transport::ServerConfig {
    let limits = Limits {
        max_in_flight: n,
        ..Limits::default()
    };
    common::server_builder()
        .limits(limits)
        .build()
        .expect("a valid config")
}

#[tokio::test]
async fn storms_of_dropped_calls_leave_every_other_call_its_own_answer() {
    for codec in CODECS {
        let (server, state) = serve_probe_with(in_flight(10_000)).await;
        let probe = probe_client(&server.address, codec).await;
        // Calls parked in their handlers, then abandoned by their callers.
        let held = hold_calls(&probe, &state, 2_000).await;
        drop(held);
        // Calls dropped at every point of their life, beside calls that are awaited.
        let mut kept = JoinSet::new();
        for n in 0..3_000i64 {
            let probe = probe.clone();
            match n % 3 {
                0 => drop(probe.add(n, 0)),
                1 => drop(tokio::time::timeout(Duration::ZERO, probe.add(n, 0)).await),
                _ => {
                    kept.spawn(async move { (n, probe.add(n, 0).await) });
                }
            }
        }
        // The abandoned handlers answer now; nobody is waiting for those answers.
        state.release();
        while let Some(joined) = within("a kept call", kept.join_next()).await {
            let (n, sum) = joined.expect("a call's task");
            assert_eq!(sum.expect("a kept call succeeds"), n, "{codec}");
        }
        let sum = within("a call after the storm", probe.add(40, 2)).await;
        assert_eq!(sum.expect("add succeeds"), 42, "{codec}");
    }
}

#[tokio::test]
async fn a_dropped_call_cancels_its_handler_on_the_server() {
    for codec in CODECS {
        let (server, state) = serve_probe().await;
        let probe = probe_client(&server.address, codec).await;
        let held = hold_calls(&probe, &state, 100).await;
        drop(held);
        state.wait_cancelled(100).await;
        assert_eq!(state.in_flight.load(Ordering::SeqCst), 0, "{codec}");
    }
}

#[tokio::test]
async fn a_request_reusing_the_id_of_a_running_call_is_refused_and_both_are_answered() {
    let (server, state) = ObservedServer::probe().await;
    let mut stream = raw_json_session(&server.address).await;
    let held = r#"{"jsonrpc":"2.0","id":1,"method":"Probe.hold","params":[7]}"#;
    let add = r#"{"jsonrpc":"2.0","id":1,"method":"Probe.add","params":[2,3]}"#;
    write_raw(
        &mut stream,
        &[frame(held.as_bytes()), frame(add.as_bytes())].concat(),
    )
    .await;
    // The second is refused before its handler runs: cancels and replies
    // are matched by id, so two running calls may not share one.
    let first = expect_json(&mut stream, "the refusal").await;
    assert_eq!(first["id"], 1, "{first}");
    assert_eq!(
        first["error"]["code"],
        ErrorKind::InvalidRequest.code(),
        "{first}"
    );
    let message = first["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("already used by a call in flight"),
        "{first}"
    );
    state.release();
    let second = expect_json(&mut stream, "the second answer").await;
    assert_eq!(second, json!({"jsonrpc": "2.0", "id": 1, "result": 7}));

    let mut stream = raw_session(&server.address, "bincode", 1 << 20).await;
    let twice = bincode_request(5, "Probe.add", None, &(1i64, 1i64));
    write_raw(&mut stream, &[frame(&twice), frame(&twice)].concat()).await;
    for _ in 0..2 {
        let (id, outcome) = read_bincode_response(&expect_frame(&mut stream, "an answer").await);
        assert_eq!((id, outcome), (5, Ok(bincode_value(&2i64))));
    }
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn a_client_that_never_reads_its_answers_stops_being_read() {
    let (server, state) = serve_probe().await;
    let stream = raw_session(&server.address, "bincode", 1 << 20).await;
    let (_read, mut write) = stream.into_split();
    // Each request asks for 64 KiB, answered at once: once the socket
    // buffers are full the server must stop reading, and our writes stall.
    let request = frame(&bincode_request(1, "Probe.blob", None, &(65_536u64, 0u64)));
    let batch = request.repeat(64);
    let mut written = 0usize;
    let stalled = loop {
        match tokio::time::timeout(Duration::from_secs(1), write.write_all(&batch)).await {
            Ok(Ok(())) => written += batch.len(),
            Ok(Err(e)) => panic!("the server closed the connection: {e}"),
            Err(_) => break true,
        }
        if written > 64 << 20 {
            break false;
        }
    };
    let taken = state.entered.load(Ordering::SeqCst);
    assert!(
        stalled,
        "the server read {written} bytes of requests whose answers go unread"
    );
    assert!(
        taken < 2_000,
        "the server took {taken} calls whose answers go unread"
    );
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn a_client_that_never_reads_answers_of_slow_calls_neither_grows_the_server_nor_starves_others()
 {
    let (server, state) = serve_probe().await;
    let stream = raw_session(&server.address, "bincode", 1 << 20).await;
    let (_read, mut write) = stream.into_split();
    let before = common::resident_bytes();
    // Slow calls: none has answered while the flood is read, so the server
    // would read all of it and queue every answer (16 KiB each, 125 MiB in
    // all) for a client that reads none of them, but for max_in_flight.
    // Each call its own id: a repeated id would be refused as in use, and
    // the flood would never reach max_in_flight.
    let flood: Vec<u8> = (1..=8_000u64)
        .flat_map(|id| {
            frame(&bincode_request(
                id,
                "Probe.blob",
                None,
                &(16_384u64, 200u64),
            ))
        })
        .collect();
    let _ = tokio::time::timeout(Duration::from_secs(2), write.write_all(&flood)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    assert_still_serves(&server.address).await;
    let took = started.elapsed();
    let grown = common::resident_bytes().saturating_sub(before);
    let taken = state.entered.load(Ordering::SeqCst);
    assert!(
        grown < 64 << 20,
        "the server grew by {} MiB, taking {taken} calls whose answers go unread",
        grown >> 20
    );
    // max_in_flight (64 by default, and one more the loop holds) was reached.
    assert!(
        taken > 32,
        "only {taken} calls ran: the flood did not fill max_in_flight"
    );
    assert!(
        took < Duration::from_secs(2),
        "another client waited {took:?}"
    );
}

#[tokio::test]
async fn a_client_that_disconnects_mid_call_has_its_handlers_cancelled() {
    for codec in CODECS {
        let (server, state) = serve_probe().await;
        let probe = probe_client(&server.address, codec).await;
        let held = hold_calls(&probe, &state, 100).await;
        drop(probe);
        drop(held);
        state.wait_cancelled(100).await;
        assert_eq!(state.in_flight.load(Ordering::SeqCst), 0, "{codec}");
        assert_still_serves(&server.address).await;
    }
}

#[tokio::test]
async fn a_handler_that_panics_after_yielding_fails_its_call_at_once() {
    let (server, _) = serve_probe().await;
    for codec in CODECS {
        let probe = probe_client(&server.address, codec).await;
        let started = Instant::now();
        let e = within("the panicking call", probe.panic_later())
            .await
            .expect_err("panic_later panics");
        assert_eq!(e.kind(), ErrorKind::HandlerPanic, "{codec}: {e}");
        // Said once (the kind says "handler panicked"), with the method's name.
        assert_eq!(e.message(), "`Probe.panic_later`: probe panicked later");
        assert_eq!(
            e.to_string(),
            "handler panicked: `Probe.panic_later`: probe panicked later"
        );
        assert!(started.elapsed() < Duration::from_secs(5), "{codec}");
        let sum = within("the next call", probe.add(1, 2)).await;
        assert_eq!(sum.expect("add succeeds"), 3, "{codec}");
    }
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn a_thousand_concurrent_panics_each_fail_their_own_call() {
    let (server, state) = serve_probe().await;
    for codec in CODECS {
        let probe = probe_client(&server.address, codec).await;
        let mut calls = JoinSet::new();
        for n in 0..1_000i64 {
            let probe = probe.clone();
            calls.spawn(async move {
                match n % 3 {
                    0 => probe.panic_now().await.map(|_| 0),
                    1 => probe.panic_later().await.map(|_| 0),
                    _ => probe.add(n, 0).await,
                }
                .map_err(|e| (n, e))
            });
        }
        while let Some(joined) = within("the next call", calls.join_next()).await {
            match joined.expect("a call's task") {
                Ok(sum) => assert_eq!(sum % 3, 2, "{codec}"),
                Err((n, e)) => {
                    assert_ne!(n % 3, 2, "{codec}: {e}");
                    assert_eq!(e.kind(), ErrorKind::HandlerPanic, "{codec}: {e}");
                }
            }
        }
    }
    assert_eq!(state.in_flight.load(Ordering::SeqCst), 0);
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn a_panic_inside_a_batch_fails_only_that_member() {
    let (server, _) = ObservedServer::probe().await;
    let mut stream = raw_json_session(&server.address).await;
    let answer = common::json_round_trip(
        &mut stream,
        r#"[{"jsonrpc":"2.0","id":1,"method":"Probe.panic_now"},
            {"jsonrpc":"2.0","id":2,"method":"Probe.panic_later"},
            {"jsonrpc":"2.0","id":3,"method":"Probe.add","params":[2,3]}]"#,
    )
    .await;
    let items = answer.as_array().unwrap_or_else(|| panic!("{answer}"));
    let by_id = |id: i64| items.iter().find(|item| item["id"] == id).cloned();
    let panics = [
        (1, "`Probe.panic_now`: probe panicked at once"),
        (2, "`Probe.panic_later`: probe panicked later"),
    ];
    for (id, text) in panics {
        let item = by_id(id).unwrap_or_else(|| panic!("no answer {id}: {answer}"));
        assert_eq!(
            item["error"]["code"],
            ErrorKind::HandlerPanic.code(),
            "{item}"
        );
        assert_eq!(item["error"]["message"], text);
    }
    assert_eq!(
        by_id(3),
        Some(json!({"jsonrpc": "2.0", "id": 3, "result": 5}))
    );
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn a_handler_that_never_returns_is_ended_at_the_callers_deadline() {
    let (server, state) = ObservedServer::probe().await;
    let mut stream = raw_json_session(&server.address).await;
    let started = Instant::now();
    let answer = common::json_round_trip(
        &mut stream,
        r#"{"jsonrpc":"2.0","id":4,"method":"Probe.never","deadline_ms":200}"#,
    )
    .await;
    let waited = started.elapsed();
    assert_eq!(answer["id"], 4, "{answer}");
    assert_eq!(
        answer["error"]["code"],
        ErrorKind::Timeout.code(),
        "{answer}"
    );
    assert_eq!(
        answer["error"]["message"],
        "`Probe.never` did not finish within 200ms"
    );
    assert!(
        waited >= Duration::from_millis(200),
        "answered after {waited:?}"
    );
    state.wait_cancelled(1).await;

    let mut stream = raw_session(&server.address, "bincode", 1 << 20).await;
    let request = bincode_request(6, "Probe.never", Some(Duration::from_millis(200)), &());
    write_raw(&mut stream, &frame(&request)).await;
    let (id, outcome) = read_bincode_response(&expect_frame(&mut stream, "an answer").await);
    assert_eq!(id, 6);
    let (code, message) = outcome.expect_err("never never returns");
    assert_eq!(code, ErrorKind::Timeout.code(), "{message}");
    assert_eq!(message, "`Probe.never` did not finish within 200ms");
    state.wait_cancelled(2).await;
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn a_typed_call_to_a_handler_that_never_returns_times_out_and_frees_the_handler() {
    let (server, state) = serve_probe().await;
    for (n, codec) in (1..).zip(CODECS) {
        let probe = probe_client(&server.address, codec).await;
        let short = ProbeClient::new(
            connect(&server.address, codec)
                .await
                .with_timeout(Duration::from_millis(200)),
        );
        let e = within("the call to time out", short.never())
            .await
            .expect_err("never never returns");
        assert_eq!(e.kind(), ErrorKind::Timeout, "{codec}: {e}");
        assert_eq!(
            e.message(),
            "`Probe.never` did not finish within 200ms",
            "{codec}"
        );
        // The deadline travelled with the call: the server ends the handler too.
        state.wait_cancelled(n).await;
        let sum = within("the next call", probe.add(1, 2)).await;
        assert_eq!(sum.expect("add succeeds"), 3, "{codec}");
    }
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn calls_racing_a_server_shutdown_all_end_promptly() {
    for codec in CODECS {
        let (mut server, state) = serve_probe().await;
        let probe = probe_client(&server.address, codec).await;
        let held = hold_calls(&probe, &state, 500).await;
        let mut racing = JoinSet::new();
        for n in 0..500i64 {
            let probe = probe.clone();
            racing.spawn(async move { probe.add(n, 0).await });
        }
        server.stop().await;
        // The call timeout is minutes long: each call ends with the connection.
        for (_, outcome) in within("every held call to end", held.join_all()).await {
            let e = outcome.expect_err("the server stopped before releasing");
            assert_eq!(e.kind(), ErrorKind::ConnectionLost, "{codec}: {e}");
        }
        for outcome in within("every racing call to end", racing.join_all()).await {
            if let Err(e) = outcome {
                assert_eq!(e.kind(), ErrorKind::ConnectionLost, "{codec}: {e}");
            }
        }
        state.wait_cancelled(500).await;
    }
}
