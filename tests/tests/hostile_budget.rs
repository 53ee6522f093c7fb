//! What one logged-in peer can make a server connection hold, and for how
//! long: replies (`max_queued_reply_bytes`, and a batch's reply cut at the
//! smaller frame limit), frames trickled a byte at a time
//! (`frame_timeout_ms`), replies read a little at a time (`write_timeout_ms`
//! as a progress window), and a call sent after the going-away notice.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rpc_transport::config::Limits;
use rpc_transport::{Server, ServerConfig};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::hostile::{
    ObservedServer, assert_still_serves, frame, raw_session, serve_probe_with, write_raw,
};
use common::{expect_json, server_builder, within, write_frame};

/// A server configuration with `limits` and a frame limit of `max_frame`.
fn config(limits: Limits, max_frame: usize) -> ServerConfig {
    server_builder()
        .max_frame_bytes(max_frame)
        .limits(limits)
        .build()
        .expect("a valid server config")
}

/// Held by the tests that measure this process's memory, so that no other
/// test of this file allocates meanwhile.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A JSON-RPC batch of `n` calls of `Probe.blob` for `len` bytes each, ids 1..=n.
fn blob_batch(n: u64, len: u64) -> Vec<u8> {
    let calls: Vec<Value> = (1..=n)
        .map(|id| json!({"jsonrpc": "2.0", "id": id, "method": "Probe.blob", "params": [len, 0]}))
        .collect();
    serde_json::to_vec(&calls).unwrap()
}

#[tokio::test]
async fn a_batch_whose_reply_would_pass_the_frame_limit_answers_its_later_members_over_budget() {
    // The client announces 1 GiB; the server's own limit, 1 MiB, is the one
    // its replies keep to.
    let limit = 1 << 20;
    let (server, state) = serve_probe_with(config(Limits::default(), limit)).await;
    let mut stream = raw_session(&server.address, "json", 1 << 30).await;
    let request = blob_batch(256, 64 * 1024);
    let _alone = SERIAL.lock().await;
    let before = common::resident_bytes();
    write_frame(&mut stream, &request).await;
    let (len, reply) = within("the batch's reply", read_sized_json(&mut stream)).await;
    let grown = common::resident_bytes().saturating_sub(before);
    assert!(
        len <= limit,
        "a reply of {len} bytes over the limit of {limit}"
    );
    let members = reply.as_array().expect("a batch reply");
    assert_eq!(members.len(), 256, "every member is answered once");
    let ok = members.iter().filter(|m| m.get("result").is_some()).count();
    let refused: Vec<&Value> = members
        .iter()
        .filter(|m| m.get("error").is_some())
        .collect();
    assert!(
        ok > 0 && !refused.is_empty(),
        "{ok} answered, {} refused",
        refused.len()
    );
    for member in &refused {
        assert_eq!(member["error"]["code"], -32012, "{member}");
        let message = member["error"]["message"].as_str().unwrap();
        assert!(message.contains("max_frame_bytes"), "{message}");
    }
    let not_run = refused
        .iter()
        .filter(|m| {
            m["error"]["message"]
                .as_str()
                .unwrap()
                .contains("did not run")
        })
        .count();
    assert!(not_run > 0, "members past the limit are not run");
    // 256 × 64 KiB, as JSON, is over 50 MiB; the server ran far fewer.
    let ran = state.entered.load(Ordering::SeqCst);
    assert!(ran < 64, "{ran} of 256 members ran");
    assert!(grown < 48 << 20, "the process grew by {grown} bytes");
    assert_still_serves(&server.address).await;
}

/// Reads one frame and parses it as JSON; returns its length too.
async fn read_sized_json(stream: &mut tokio::net::TcpStream) -> (usize, Value) {
    let mut header = [0; 4];
    stream
        .read_exact(&mut header)
        .await
        .expect("a frame header");
    let len = i32::from_be_bytes(header) as usize;
    let mut payload = vec![0; len];
    stream.read_exact(&mut payload).await.expect("a payload");
    (len, serde_json::from_slice(&payload).expect("JSON"))
}

#[tokio::test]
async fn a_client_that_reads_no_replies_makes_the_server_hold_at_most_max_queued_reply_bytes() {
    let limits = Limits {
        max_queued_reply_bytes: 2 << 20,
        ..Limits::default()
    };
    let (server, state) = serve_probe_with(config(limits, 16 << 20)).await;
    let mut stream = raw_session(&server.address, "json", 16 << 20).await;
    // 100 calls in one write, each answered at once with 512 KiB (about
    // 1.8 MiB as JSON): 180 MiB of replies for a client that reads none.
    let mut requests = Vec::new();
    for id in 1..=100 {
        let call =
            json!({"jsonrpc": "2.0", "id": id, "method": "Probe.blob", "params": [512 * 1024, 0]});
        requests.extend(frame(call.to_string().as_bytes()));
    }
    let _alone = SERIAL.lock().await;
    let before = common::resident_bytes();
    write_raw(&mut stream, &requests).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let ran = state.entered.load(Ordering::SeqCst);
    let grown = common::resident_bytes().saturating_sub(before);
    // What the sockets' buffers take (a few MiB on loopback) lets a few
    // more run; without the cap, every call one read holds runs.
    assert!(
        ran < 15,
        "{ran} calls ran for a client that reads no replies"
    );
    assert!(grown < 32 << 20, "the process grew by {grown} bytes");
    assert_still_serves(&server.address).await;
}

#[tokio::test]
async fn a_frame_trickled_a_byte_at_a_time_is_closed_after_frame_timeout() {
    let limits = Limits {
        frame_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let (server, _state) = serve_probe_with(config(limits, 16 << 20)).await;
    let mut stream = raw_session(&server.address, "json", 16 << 20).await;
    let started = Instant::now();
    // A 100-byte frame, one byte every 50 ms: each byte would restart an
    // idle timer, so only a deadline on the whole frame ends it.
    stream.write_all(&100u32.to_be_bytes()).await.unwrap();
    let mut closed = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if stream.write_all(b" ").await.is_err() {
            closed = true;
            break;
        }
        let mut byte = [0; 1];
        if let Ok(read) = tokio::time::timeout(Duration::ZERO, stream.read(&mut byte)).await {
            closed = matches!(read, Ok(0) | Err(_));
            if closed {
                break;
            }
        }
    }
    assert!(closed, "still open after {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn a_client_that_reads_its_replies_a_little_at_a_time_is_closed_after_the_window() {
    let limits = Limits {
        write_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let (mut server, _state) = ObservedServer::probe_with(config(limits, 64 << 20)).await;
    let mut stream = raw_session(&server.address, "bincode", 64 << 20).await;
    // One 24 MiB reply, more than the sockets' buffers hold.
    let request = common::hostile::bincode_request(1, "Probe.blob", None, &(24u64 << 20, 0u64));
    write_frame(&mut stream, &request).await;
    // 4 KiB every 100 ms: some progress in every window, but less than 64 KiB.
    let reading = tokio::spawn(async move {
        let mut buf = vec![0; 4096];
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    });
    let _reading = common::TaskGuard(reading);
    let error = server.next_error().await;
    assert!(error.message().contains("write_timeout_ms"), "{error}");
    assert!(error.message().contains("65536 bytes"), "{error}");
}

#[tokio::test]
async fn a_call_sent_after_the_going_away_notice_is_answered_shutting_down() {
    let (server, address, serving) = serve_with_grace(Duration::from_secs(5)).await;
    let mut stream = raw_session(&address, "json", 16 << 20).await;
    server.shut_down();
    let notice = expect_json(&mut stream, "the going-away notice").await;
    assert!(notice.to_string().contains("shutting down"), "{notice}");
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "Probe.add", "params": [1, 2]});
    write_frame(&mut stream, call.to_string().as_bytes()).await;
    let reply = expect_json(&mut stream, "the answer to a call after the notice").await;
    assert_eq!(reply["id"], 7, "{reply}");
    assert_eq!(reply["error"]["code"], -32003, "{reply}");
    drop(stream);
    within("the server to finish draining", serving)
        .await
        .unwrap();
}

#[tokio::test]
async fn our_client_closes_once_the_server_went_away_so_shutdown_does_not_wait_for_it() {
    let (server, address, serving) = serve_with_grace(Duration::from_secs(30)).await;
    let config = common::client_builder(&address, "bincode").build().unwrap();
    let client = within(
        "the client to connect",
        rpc_transport::Connection::connect(&config),
    )
    .await
    .unwrap();
    let started = Instant::now();
    server.shut_down();
    within("the server to drain an idle client", serving)
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    within("the client to see the end", client.closed()).await;
}

/// A probe server with `shutdown_grace`, its address and its serving task.
async fn serve_with_grace(
    shutdown_grace: Duration,
) -> (Server, String, tokio::task::JoinHandle<()>) {
    let (registry, _state) = common::hostile::probe();
    let limits = Limits {
        shutdown_grace,
        ..Limits::default()
    };
    let server = Server::new(config(limits, 16 << 20), registry);
    let listening = server.clone().bind().await.unwrap();
    let address = listening.local_addr().to_owned();
    (server, address, tokio::spawn(listening.serve()))
}
