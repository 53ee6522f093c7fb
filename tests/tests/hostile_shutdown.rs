//! Ctrl-C under attack: the kv-server process exits within
//! `shutdown_grace_ms` + 1.5 s with a client that reads none of its replies,
//! one that reads them a byte at a time, a Python peer that logged in and
//! sent nothing, and a junk batch on its way in; and the honest call in
//! flight at SIGINT is answered.

mod common;

use std::time::{Duration, Instant};

use common::bins::{PROCESS_LIMIT, ServerProcess, TempConfig};
use common::hostile::{raw_session, write_raw};
use common::{KEY, client_handshake, expect_json, raw_connect, within, within_for, write_frame};
use serde_json::json;
use tokio::io::AsyncReadExt;

const GRACE_MS: u64 = 1000;

#[tokio::test]
async fn the_server_exits_within_its_grace_period_whatever_its_peers_do() {
    let config = TempConfig::new(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nauthkey = \"{KEY}\"\npython_compat = true\n\
         [server.limits]\nshutdown_grace_ms = {GRACE_MS}\n"
    ));
    let mut server = ServerProcess::start("kv-server", &config).await;
    let address = server.address.clone();

    // A value of 1 MiB, then a non-reader asking for it 64 times.
    let mut setup = raw_session(&address, "json", 1 << 30).await;
    let big = "x".repeat(1 << 20);
    let set = json!({"jsonrpc": "2.0", "id": 1, "method": "KeyValue.set", "params": ["big", big]});
    write_frame(&mut setup, set.to_string().as_bytes()).await;
    let reply = expect_json(&mut setup, "the set's reply").await;
    assert!(reply.get("error").is_none(), "{reply}");
    let mut non_reader = raw_session(&address, "json", 1 << 30).await;
    for id in 0..64 {
        let get = json!({"jsonrpc": "2.0", "id": id, "method": "KeyValue.get", "params": ["big"]});
        write_frame(&mut non_reader, get.to_string().as_bytes()).await;
    }
    // A slow reader: the same, read a byte at a time.
    let mut slow = raw_session(&address, "json", 1 << 30).await;
    for id in 0..16 {
        let get = json!({"jsonrpc": "2.0", "id": id, "method": "KeyValue.get", "params": ["big"]});
        write_frame(&mut slow, get.to_string().as_bytes()).await;
    }
    let trickle = tokio::spawn(async move {
        let mut byte = [0; 1];
        while let Ok(1..) = slow.read(&mut byte).await {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let _trickle = common::TaskGuard(trickle);
    // A Python peer that logged in and said nothing.
    let mut python = raw_connect(&address).await;
    client_handshake(&mut python, KEY).await;
    // A junk batch, half sent.
    let mut junk = raw_session(&address, "json", 1 << 30).await;
    let mut batch = b"[".to_vec();
    batch.extend(b"0,".repeat(4 << 20));
    let len = (16u32 << 20) - 1;
    let mut header = len.to_be_bytes().to_vec();
    header.extend(&batch);
    write_raw(&mut junk, &header).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let started = interrupt(&server).await;
    let status = within_for(PROCESS_LIMIT, "kv-server to exit", server.child.wait())
        .await
        .expect("waiting for kv-server");
    let took = started.elapsed();
    eprintln!("exited {took:?} after SIGINT, with a grace of {GRACE_MS} ms");
    assert!(
        took < Duration::from_millis(GRACE_MS + 1500),
        "exited {took:?} after SIGINT; stderr: {}",
        server.stderr_text()
    );
    assert!(
        status.success(),
        "{status}; stderr: {}",
        server.stderr_text()
    );
    // The idle Python peer was closed, not left to the process's end.
    let mut rest = Vec::new();
    let _ = within(
        "the Python peer's connection to close",
        python.read_to_end(&mut rest),
    )
    .await;
}

#[tokio::test]
async fn a_python_peer_that_logged_in_and_said_nothing_is_closed_at_once_at_shutdown() {
    let config = TempConfig::new(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nauthkey = \"{KEY}\"\npython_compat = true\n\
         [server.limits]\nshutdown_grace_ms = 20000\n"
    ));
    let mut server = ServerProcess::start("kv-server", &config).await;
    let mut python = raw_connect(&server.address).await;
    client_handshake(&mut python, KEY).await;
    let started = interrupt(&server).await;
    let mut rest = Vec::new();
    let _ = within(
        "the Python peer's connection to close",
        python.read_to_end(&mut rest),
    )
    .await;
    let status = within_for(PROCESS_LIMIT, "kv-server to exit", server.child.wait())
        .await
        .expect("waiting for kv-server");
    let took = started.elapsed();
    eprintln!("exited {took:?} after SIGINT, with an idle Python peer and 20 s of grace");
    // Nothing was running: nothing to give the 20 s of grace to.
    assert!(
        took < Duration::from_secs(3),
        "exited {took:?} after SIGINT"
    );
    assert!(
        status.success(),
        "{status}; stderr: {}",
        server.stderr_text()
    );
}

/// Sends the server SIGINT (Ctrl-C); returns when.
async fn interrupt(server: &ServerProcess) -> Instant {
    let pid = server.child.id().expect("the server is running");
    let started = Instant::now();
    let killed = tokio::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    let killed = within("kill -INT", killed).await.expect("running kill");
    assert!(killed.success(), "kill -INT {pid}: {killed}");
    started
}
