//! How TCP streams end, seen from both ends, in both codecs: finished, the
//! method's error, cancelled, connection lost, server shutting down, a
//! limit hit; a cancel drops the producer at once; a quiet stream keeps
//! its connection from idling out; the call timeout bounds opening only.

mod common;
#[path = "common/streams.rs"]
mod streams;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::StreamExt;
use rpc_core::{CallError, ErrorKind};
use rpc_transport::ServerConfig;
use rpc_transport::config::Limits;

use common::{CODECS, client_builder, server_builder, within};
use streams::{Refusal, drain, flows_client, kind_of, serve_flows, wait_until};

fn config(limits: Limits) -> ServerConfig {
    server_builder()
        .limits(limits)
        .build()
        .expect("a valid server config")
}

fn default_config() -> ServerConfig {
    config(Limits::default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_stream_ends_ok_at_both_ends() {
    for codec in CODECS {
        let mut served = serve_flows(default_config()).await;
        let client = flows_client(&served.address, codec).await;
        let (items, end) = drain(client.count(10_000).await.expect("count opens")).await;
        assert_eq!(items, (0..10_000).collect::<Vec<_>>(), "{codec}");
        assert_eq!(end, Ok(()), "{codec}");
        // The other way: the server's handler sees the finish.
        let total = within("sum", client.sum(rpc_core::Stream::iter(1..=100_000u64))).await;
        assert_eq!(total.expect("sum"), 5_000_050_000, "{codec}");
        assert_eq!(served.reports.next_upload_end().await, Ok(()), "{codec}");
        served.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_ending_with_the_methods_error_ends_so_at_both_ends() {
    for codec in CODECS {
        let mut served = serve_flows(default_config()).await;
        let client = flows_client(&served.address, codec).await;
        let (items, end) = drain(client.count_then_fail(5).await.expect("opens")).await;
        assert_eq!(items, vec![0, 1, 2, 3, 4], "{codec}");
        let (kind, message) = end.expect_err("ends with the error");
        assert_eq!(kind, ErrorKind::Application, "{codec}: {message}");
        assert!(message.contains("ran dry"), "{codec}: {message}");

        // An upload ending with an error: the handler sees it.
        let failing = futures::stream::iter(vec![
            Ok(1u64),
            Ok(2),
            Err(rpc_core::Error::new(
                ErrorKind::Application,
                "the client gave up",
            )),
        ]);
        let total = within("sum", client.sum(rpc_core::Stream::try_new(failing))).await;
        assert_eq!(total.expect("sum answers"), 3, "{codec}");
        let end = served.reports.next_upload_end().await;
        assert_eq!(
            kind_of(&end),
            Some(ErrorKind::Application),
            "{codec}: {end:?}"
        );
        assert!(
            format!("{end:?}").contains("the client gave up"),
            "{codec}: {end:?}"
        );
        served.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_returning_result_of_stream_refuses_with_its_typed_error() {
    for codec in CODECS {
        let mut served = serve_flows(default_config()).await;
        let client = flows_client(&served.address, codec).await;
        match within("refused", client.open_or_refuse(false)).await {
            Err(CallError::Application(e)) => assert_eq!(e, Refusal::Closed, "{codec}"),
            other => panic!("{codec}: expected the typed refusal, got {other:?}"),
        }
        let opened = within("opened", client.open_or_refuse(true))
            .await
            .unwrap_or_else(|e| panic!("{codec}: {e:?}"));
        let (items, end) = drain(opened).await;
        assert_eq!((items, end), (vec![0, 1, 2], Ok(())), "{codec}");
        // The connection is fine after a refusal.
        assert_eq!(within("add", client.add(2, 3)).await.unwrap(), 5);
        served.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_stream_is_cancelled_at_the_servers_sender() {
    for codec in CODECS {
        let mut served = serve_flows(default_config()).await;
        let client = flows_client(&served.address, codec).await;
        let mut stream = client.fed(5).await.expect("fed opens");
        for expected in 0..3 {
            assert_eq!(within("an item", stream.next()).await, Some(expected));
        }
        drop(stream);
        let why = served.reports.next_sender_end().await;
        assert_eq!(why.kind(), ErrorKind::Cancelled, "{codec}: {why}");
        // The connection still serves.
        assert_eq!(within("add", client.add(40, 2)).await.unwrap(), 42);
        served.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_stream_drops_its_producer_at_once() {
    for codec in CODECS {
        let mut served = serve_flows(default_config()).await;
        let client = flows_client(&served.address, codec).await;
        let mut stream = client.endless().await.expect("endless opens");
        for expected in 0..10 {
            assert_eq!(within("an item", stream.next()).await, Some(expected));
        }
        assert_eq!(served.state.dropped.load(Ordering::SeqCst), 0);
        let dropped_at = Instant::now();
        drop(stream);
        // The connection is otherwise idle: nothing but the cancel can do it.
        let state = served.state.clone();
        wait_until(
            Duration::from_secs(3),
            "the producer to be dropped after the cancel",
            || state.dropped.load(Ordering::SeqCst) == 1,
        )
        .await;
        eprintln!(
            "{codec}: producer dropped {:?} after the cancel",
            dropped_at.elapsed()
        );
        drop(client);
        served.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_ends_the_clients_stream_with_connection_lost() {
    for codec in CODECS {
        let mut served = serve_flows(default_config()).await;
        let client = flows_client(&served.address, codec).await;
        let mut stream = client.fed(5).await.expect("fed opens");
        assert_eq!(within("an item", stream.next()).await, Some(0));
        served.stop().await;
        // The server's sender learns it too.
        let why = served.reports.next_sender_end().await;
        assert_eq!(why.kind(), ErrorKind::ConnectionLost, "{codec}: {why}");
        let (_, end) = drain(stream).await;
        assert_eq!(
            kind_of(&end),
            Some(ErrorKind::ConnectionLost),
            "{codec}: {end:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_gone_mid_stream_ends_the_servers_sender_with_connection_lost() {
    for codec in CODECS {
        let mut served = serve_flows(default_config()).await;
        let client = flows_client(&served.address, codec).await;
        let mut stream = client.fed(5).await.expect("fed opens");
        assert_eq!(within("an item", stream.next()).await, Some(0));
        // The client goes, its stream still held: the connection closes
        // with the stream open, which is not the consumer's cancel.
        drop(client);
        let why = served.reports.next_sender_end().await;
        assert_eq!(why.kind(), ErrorKind::ConnectionLost, "{codec}: {why}");
        let (_, end) = drain(stream).await;
        assert_eq!(
            kind_of(&end),
            Some(ErrorKind::ConnectionLost),
            "{codec}: {end:?}"
        );
        served.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_shutdown_ends_streams_shutting_down_after_the_grace() {
    const GRACE: Duration = Duration::from_millis(600);
    for codec in CODECS {
        let mut served = serve_flows(config(Limits {
            shutdown_grace: GRACE,
            ..Limits::default()
        }))
        .await;
        let client = flows_client(&served.address, codec).await;
        let mut stream = client.fed(10).await.expect("fed opens");
        assert_eq!(within("an item", stream.next()).await, Some(0));
        let started = Instant::now();
        served.server.shut_down();
        // Items keep coming during the grace.
        let mut during = 0;
        while started.elapsed() < GRACE / 2 {
            match within("an item during the grace", stream.next()).await {
                Some(_) => during += 1,
                None => panic!(
                    "{codec}: the stream ended {:?} after shutdown began, within the grace of \
                     {GRACE:?}: {:?}",
                    started.elapsed(),
                    stream.end()
                ),
            }
        }
        assert!(during > 0, "{codec}");
        let (_, end) = drain(stream).await;
        let took = started.elapsed();
        assert_eq!(
            kind_of(&end),
            Some(ErrorKind::ShuttingDown),
            "{codec}: {end:?}"
        );
        assert!(took >= GRACE, "{codec}: ended after {took:?}");
        let why = served.reports.next_sender_end().await;
        assert_eq!(why.kind(), ErrorKind::ShuttingDown, "{codec}: {why}");
        served.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_past_max_streams_is_refused_over_budget_and_the_others_still_flow() {
    for codec in CODECS {
        let mut served = serve_flows(config(Limits {
            max_streams: 2,
            ..Limits::default()
        }))
        .await;
        let client = flows_client(&served.address, codec).await;
        let mut first = client.fed(5).await.expect("first opens");
        let mut second = client.fed(5).await.expect("second opens");
        let third = within("the third stream call", client.count(3)).await;
        let e = third.expect_err("the third stream is refused");
        assert_eq!(e.kind(), ErrorKind::OverBudget, "{codec}: {e}");
        assert!(e.message().contains("max_streams"), "{codec}: {e}");
        // An upload is refused the same way.
        let upload = within(
            "an upload past the limit",
            client.sum(rpc_core::Stream::iter(0..3u64)),
        )
        .await;
        let e = upload.expect_err("the upload is refused");
        assert_eq!(e.kind(), ErrorKind::OverBudget, "{codec}: {e}");
        for _ in 0..3 {
            assert!(within("first", first.next()).await.is_some(), "{codec}");
            assert!(within("second", second.next()).await.is_some(), "{codec}");
        }
        assert_eq!(within("add", client.add(1, 1)).await.unwrap(), 2);
        // Room again once one ends.
        drop(first);
        let _ = served.reports.next_sender_end().await;
        let (items, end) = drain(client.count(3).await.expect("opens after a cancel")).await;
        assert_eq!((items, end), (vec![0, 1, 2], Ok(())), "{codec}");
        drop(second);
        served.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_stream_keeps_its_connection_from_idling_out() {
    for codec in CODECS {
        let mut served = serve_flows(config(Limits {
            idle_timeout: Some(Duration::from_millis(300)),
            ..Limits::default()
        }))
        .await;
        let client = flows_client(&served.address, codec).await;
        let mut stream = client.quiet().await.expect("quiet opens");
        tokio::time::sleep(Duration::from_secs(1)).await;
        served.state.speak(7).await;
        assert_eq!(
            within("the item after 1 s", stream.next()).await,
            Some(7),
            "{codec}: {:?}",
            stream.end()
        );
        assert_eq!(within("add", client.add(1, 2)).await.unwrap(), 3, "{codec}");
        // Without a stream, the same connection idles out.
        drop(stream);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let after = within("add after idling", client.add(1, 2)).await;
        assert!(after.is_err(), "{codec}: the idle connection stayed open");
        served.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_timeout_bounds_opening_a_stream_not_its_life() {
    for codec in CODECS {
        let mut served = serve_flows(default_config()).await;
        let config = client_builder(&served.address, codec)
            .call_timeout(Duration::from_millis(300))
            .build()
            .expect("a valid client config");
        let client = streams::FlowsClient::new(
            within("connect", rpc_transport::connect(&config))
                .await
                .expect("connects"),
        );
        // A server stream read for 1 s.
        let mut stream = client.fed(10).await.expect("fed opens");
        let started = Instant::now();
        let mut n = 0;
        while started.elapsed() < Duration::from_secs(1) {
            let item = within("an item", stream.next()).await;
            assert_eq!(item, Some(n), "{codec}: {:?}", stream.end());
            n += 1;
        }
        drop(stream);
        // An upload read for 1 s.
        let total = within(
            "a slow upload",
            client.slow_sum(rpc_core::Stream::iter(0..50u64), 20),
        )
        .await;
        assert_eq!(total.expect("the slow upload answers"), 1225, "{codec}");
        served.stop().await;
    }
}

/// An upload fed by a task that sends `0..` every `every_ms` until its
/// sender fails; the task returns why.
fn fed_upload(
    every_ms: u64,
) -> (
    rpc_core::Stream<u64>,
    tokio::task::JoinHandle<rpc_core::Error>,
) {
    let (sender, stream) = rpc_core::Stream::channel(4);
    let task = tokio::spawn(async move {
        let mut n = 0;
        loop {
            if let Err(e) = sender.send(n).await {
                return e;
            }
            n += 1;
            tokio::time::sleep(Duration::from_millis(every_ms)).await;
        }
    });
    (stream, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_connection_ends_an_upload_with_connection_lost_at_both_ends() {
    for codec in CODECS {
        // The server goes: the client's sender learns it.
        let mut served = serve_flows(default_config()).await;
        let client = flows_client(&served.address, codec).await;
        let (stream, producer) = fed_upload(5);
        let call = tokio::spawn(async move { client.sum(stream).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        served.stop().await;
        let why = within("the producer to stop", producer).await.unwrap();
        assert_eq!(why.kind(), ErrorKind::ConnectionLost, "{codec}: {why}");
        let answer = within("the call to fail", call).await.unwrap();
        let e = answer.expect_err("the call fails with its connection");
        assert_eq!(e.kind(), ErrorKind::ConnectionLost, "{codec}: {e}");
        // (The server's handler went with its server: it sees nothing.)

        // The client goes: the server's handler sees its stream end so.
        let mut served = serve_flows(default_config()).await;
        let client = flows_client(&served.address, codec).await;
        let (stream, producer) = fed_upload(5);
        let call = tokio::spawn(async move { client.sum(stream).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        // The call and its client dropped: the handler is cancelled with
        // the call, and the client's producer is told to stop.
        call.abort();
        let _ = call.await;
        let why = within("the producer to stop", producer).await.unwrap();
        eprintln!("{codec}: dropping an upload's call and client stopped its sender with: {why}");
        assert!(
            matches!(why.kind(), ErrorKind::ConnectionLost | ErrorKind::Cancelled),
            "{codec}: {why}"
        );
        served.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_shutdown_ends_an_upload_shutting_down_after_the_grace() {
    const GRACE: Duration = Duration::from_millis(600);
    for codec in CODECS {
        let mut served = serve_flows(config(Limits {
            shutdown_grace: GRACE,
            ..Limits::default()
        }))
        .await;
        let client = flows_client(&served.address, codec).await;
        let (stream, producer) = fed_upload(10);
        let call = tokio::spawn(async move { client.sum(stream).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        served.server.shut_down();
        let why = within("the producer to stop", producer).await.unwrap();
        let took = started.elapsed();
        // The handler is stopped at the end of the grace, its call answered so.
        let answer = within("the call's answer", call).await.unwrap();
        eprintln!(
            "{codec}: the upload's call answered {answer:?}; its sender stopped after {took:?}: {why}"
        );
        let e = answer.expect_err("the call is stopped by the shutdown");
        assert_eq!(e.kind(), ErrorKind::ShuttingDown, "{codec}: {e}");
        assert!(
            took >= GRACE,
            "{codec}: the sender stopped after {took:?}: {why}"
        );
        assert_eq!(why.kind(), ErrorKind::ShuttingDown, "{codec}: {why}");
        served.stop().await;
    }
}
