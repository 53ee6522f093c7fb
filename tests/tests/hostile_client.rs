//! The client against hostile or broken servers, played by hand over a raw
//! socket: oversized and malformed frames, answers to calls never made,
//! servers that die mid-answer or with calls queued, and servers that break
//! the handshake or the hello. Every pending call gets a clear error at once
//! (the call timeout is minutes long), and so does every later one.

mod common;

use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::hostile::{
    ProbeClient, fake_listener, fake_server_session, frame, long_header, write_raw,
};
use common::{CODECS, client_builder, expect_frame, read_frame, within, write_frame};
use rpc_core::codec::{Bincode, Codec, Id, Incoming};
use rpc_core::{Error, ErrorKind};
use rpc_transport::handshake::{CHALLENGE, WELCOME, make_challenge, make_legacy_challenge};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// A typed client connected to the fake server at `address`, and the fake
/// server's end of the connection, past the hello.
async fn fake_session(codec: &str) -> (ProbeClient, TcpStream) {
    let (listener, address) = fake_listener().await;
    let config = client_builder(&address, codec)
        .build()
        .expect("a valid client config");
    let (client, (stream, asked)) = tokio::join!(
        within("the client to connect", rpc_transport::connect(&config)),
        fake_server_session(&listener),
    );
    assert_eq!(asked, codec);
    (
        ProbeClient::new(client.expect("the client connects")),
        stream,
    )
}

/// Starts `n` `add(i, 0)` calls and returns them once the fake server has
/// read every request, with the ids it read.
async fn pending_calls(
    probe: &ProbeClient,
    stream: &mut TcpStream,
    codec: &str,
    n: i64,
) -> (JoinSet<Result<i64, Error>>, Vec<u64>) {
    let mut calls = JoinSet::new();
    for i in 0..n {
        let probe = probe.clone();
        calls.spawn(async move { probe.add(i, 0).await });
    }
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(request_id(codec, &expect_frame(stream, "a request").await));
    }
    (calls, ids)
}

/// The id of a request payload in `codec`.
fn request_id(codec: &str, payload: &[u8]) -> u64 {
    read_add(codec, payload).0
}

/// The id and first argument of an `add` request payload in `codec`.
fn read_add(codec: &str, payload: &[u8]) -> (u64, i64) {
    if codec == "json" {
        let request: serde_json::Value = serde_json::from_slice(payload).expect("a JSON request");
        let id = request["id"].as_u64().expect("a numeric id");
        return (id, request["params"][0].as_i64().expect("x"));
    }
    match Bincode.decode_request(payload) {
        Incoming::Request(request) => {
            let Some(Id::Num(id)) = request.id else {
                panic!("not a numeric id: {:?}", request.id)
            };
            let (x, _y): (i64, i64) =
                rpc_core::codec::decode(&Bincode, request.params).expect("add's arguments");
            (id, x)
        }
        other => panic!("not a request: {other:?}"),
    }
}

/// A successful response payload in `codec`.
fn response(codec: &str, id: u64, result: i64) -> Vec<u8> {
    if codec == "json" {
        return format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#).into_bytes();
    }
    let mut buf = BytesMut::new();
    Bincode
        .encode_response(&mut buf, &Id::Num(id), &Ok(Box::new(result)))
        .expect("a response encodes");
    buf.to_vec()
}

/// Waits for every call to fail, promptly, with a lost connection whose
/// message contains `needle`; then checks a later call fails the same way.
async fn assert_all_fail(probe: &ProbeClient, calls: JoinSet<Result<i64, Error>>, needle: &str) {
    let started = Instant::now();
    for outcome in within("every pending call to fail", calls.join_all()).await {
        let e = outcome.expect_err("the connection broke");
        assert_eq!(e.kind(), ErrorKind::ConnectionLost, "{e}");
        assert!(e.message().contains(needle), "expected {needle:?} in: {e}");
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    let e = within("a later call", probe.add(1, 1))
        .await
        .expect_err("the connection is gone");
    assert_eq!(e.kind(), ErrorKind::ConnectionLost, "{e}");
    assert!(e.message().contains(needle), "expected {needle:?} in: {e}");
}

#[tokio::test]
async fn an_oversized_frame_from_the_server_fails_every_pending_call_at_once() {
    for codec in CODECS {
        for header in [i32::MAX.to_be_bytes().to_vec(), long_header(1 << 63)] {
            let (probe, mut stream) = fake_session(codec).await;
            let (calls, _) = pending_calls(&probe, &mut stream, codec, 50).await;
            write_raw(&mut stream, &header).await;
            assert_all_fail(&probe, calls, "bytes exceeds the limit of 16777216 bytes").await;
        }
    }
}

#[tokio::test]
async fn a_negative_frame_length_from_the_server_fails_every_pending_call_at_once() {
    for codec in CODECS {
        let (probe, mut stream) = fake_session(codec).await;
        let (calls, _) = pending_calls(&probe, &mut stream, codec, 50).await;
        write_raw(&mut stream, &(-7i32).to_be_bytes()).await;
        assert_all_fail(&probe, calls, "invalid frame length -7").await;
    }
}

#[tokio::test]
async fn a_malformed_response_fails_every_pending_call_at_once() {
    for codec in CODECS {
        for garbage in [
            &b"\xff\xfe garbage"[..],
            b"",
            b"{\"jsonrpc\":\"2.0\",\"id\":\"seven\",\"result\":1}",
        ] {
            let (probe, mut stream) = fake_session(codec).await;
            let (calls, _) = pending_calls(&probe, &mut stream, codec, 20).await;
            write_frame(&mut stream, garbage).await;
            assert_all_fail(&probe, calls, "the connection failed: ").await;
        }
    }
}

#[tokio::test]
async fn a_json_response_with_both_result_and_error_is_refused_by_name() {
    let (probe, mut stream) = fake_session("json").await;
    let (calls, ids) = pending_calls(&probe, &mut stream, "json", 3).await;
    let both = format!(
        r#"{{"jsonrpc":"2.0","id":{},"result":1,"error":{{"code":1,"message":"x"}}}}"#,
        ids[0]
    );
    write_frame(&mut stream, both.as_bytes()).await;
    assert_all_fail(&probe, calls, "exactly one of `result` and `error`").await;
}

#[tokio::test]
async fn a_server_that_closes_mid_response_fails_every_pending_call_at_once() {
    for codec in CODECS {
        let (probe, mut stream) = fake_session(codec).await;
        let (calls, ids) = pending_calls(&probe, &mut stream, codec, 20).await;
        let whole = frame(&response(codec, ids[0], 0));
        write_raw(&mut stream, &whole[..whole.len() - 2]).await;
        drop(stream);
        let needle = format!("connection closed mid-frame after {} of", whole.len() - 2);
        assert_all_fail(&probe, calls, &needle).await;
    }
}

#[tokio::test]
async fn a_server_that_dies_with_calls_queued_fails_every_one_at_once() {
    for codec in CODECS {
        let (probe, mut stream) = fake_session(codec).await;
        let (calls, _) = pending_calls(&probe, &mut stream, codec, 500).await;
        stream.set_zero_linger().expect("SO_LINGER 0");
        drop(stream);
        let started = Instant::now();
        for outcome in within("every pending call to fail", calls.join_all()).await {
            let e = outcome.expect_err("the server is gone");
            assert_eq!(e.kind(), ErrorKind::ConnectionLost, "{codec}: {e}");
        }
        assert!(started.elapsed() < Duration::from_secs(5), "{codec}");
    }
}

#[tokio::test]
async fn a_server_that_closes_cleanly_fails_every_pending_call_saying_so() {
    for codec in CODECS {
        let (probe, mut stream) = fake_session(codec).await;
        let (calls, _) = pending_calls(&probe, &mut stream, codec, 100).await;
        drop(stream);
        assert_all_fail(&probe, calls, "the server closed the connection").await;
    }
}

#[tokio::test]
async fn answers_to_calls_never_made_are_ignored_and_real_answers_still_delivered() {
    for codec in CODECS {
        let (probe, mut stream) = fake_session(codec).await;
        let mut calls = JoinSet::new();
        for x in 0..10i64 {
            let probe = probe.clone();
            calls.spawn(async move { (x, probe.add(x, 0).await) });
        }
        let mut requests = Vec::new();
        for _ in 0..10 {
            requests.push(read_add(
                codec,
                &expect_frame(&mut stream, "a request").await,
            ));
        }
        // Strangers first, then the real answers, then a second answer to a
        // call already answered.
        let mut out = Vec::new();
        for stranger in [0, 999_999, u64::MAX] {
            out.extend(frame(&response(codec, stranger, -1)));
        }
        for &(id, x) in &requests {
            out.extend(frame(&response(codec, id, x)));
        }
        out.extend(frame(&response(codec, requests[0].0, -1)));
        write_raw(&mut stream, &out).await;
        for (x, sum) in within("the real answers", calls.join_all()).await {
            assert_eq!(sum.expect("answered"), x, "{codec}");
        }

        // The connection is still good.
        let next = tokio::spawn({
            let probe = probe.clone();
            async move { probe.add(4, 4).await }
        });
        let id = request_id(codec, &expect_frame(&mut stream, "a request").await);
        write_raw(&mut stream, &frame(&response(codec, id, 8))).await;
        let sum = within("the next call", next)
            .await
            .expect("the call's task");
        assert_eq!(sum.expect("answered"), 8, "{codec}");
    }
}

// ---------------------------------------------------------------------------
// Servers that break the handshake or the hello.
// ---------------------------------------------------------------------------

/// What a client connecting to a fake server that runs `script` ends with;
/// the handshake timeout is 300 ms.
async fn connect_to<F, Fut>(script: F) -> Error
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let (listener, address) = fake_listener().await;
    let server = common::TaskGuard(tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("a client connects");
        script(stream).await;
    }));
    let config = client_builder(&address, "json")
        .handshake_timeout(Duration::from_millis(300))
        .build()
        .expect("a valid client config");
    let e = within("the client to give up", rpc_transport::connect(&config))
        .await
        .expect_err("the fake server is not to be trusted");
    drop(server);
    e
}

#[tokio::test]
async fn a_server_that_says_nothing_is_given_up_on_at_the_handshake_timeout() {
    let started = Instant::now();
    let e = connect_to(|stream| async move {
        std::future::pending::<()>().await;
        drop(stream);
    })
    .await;
    assert_eq!(e.kind(), ErrorKind::Authentication, "{e}");
    assert_eq!(
        e.message(),
        "no challenge from the server within 300ms: if it speaks TLS, configure [client.tls]"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn a_server_speaking_http_is_refused_from_its_first_bytes() {
    let e = connect_to(|mut stream| async move {
        write_raw(&mut stream, b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        std::future::pending::<()>().await;
    })
    .await;
    assert_eq!(e.kind(), ErrorKind::Authentication, "{e}");
    assert_eq!(
        e.message(),
        "handshake frame of 1213486160 bytes exceeds the 256-byte cap"
    );
}

#[tokio::test]
async fn a_legacy_challenge_is_refused_while_legacy_auth_is_off() {
    let e = connect_to(|mut stream| async move {
        write_frame(&mut stream, &make_legacy_challenge(&[1; 20])).await;
        let _ = read_frame(&mut stream).await;
    })
    .await;
    assert_eq!(e.kind(), ErrorKind::Authentication, "{e}");
    assert!(
        e.message().contains("refused a legacy (Python <= 3.11)"),
        "{e}"
    );
}

#[tokio::test]
async fn a_server_that_reflects_the_clients_challenge_is_refused() {
    let e = connect_to(|mut stream| async move {
        let ours = make_challenge(&[3; 40]);
        write_frame(&mut stream, &ours).await;
        let _ = read_frame(&mut stream).await;
        write_frame(&mut stream, WELCOME).await;
        let theirs = expect_frame(&mut stream, "the client's challenge").await;
        write_frame(&mut stream, &theirs[CHALLENGE.len()..]).await;
        let _ = read_frame(&mut stream).await;
    })
    .await;
    assert_eq!(e.kind(), ErrorKind::Authentication, "{e}");
    assert_eq!(e.message(), "the peer's answer does not match the authkey");
}

#[tokio::test]
async fn a_malformed_or_missing_answer_to_the_hello_is_reported() {
    for (answer, kind, needle) in [
        (
            Some(&b"not json"[..]),
            ErrorKind::Protocol,
            "the server's answer to the hello is malformed",
        ),
        (
            Some(b"{\"error\":\"go away\"}"),
            ErrorKind::Protocol,
            "go away",
        ),
        (
            None,
            ErrorKind::Timeout,
            "no answer to the hello within 300ms",
        ),
    ] {
        let e = connect_to(move |mut stream| async move {
            let key = common::KEY.as_bytes();
            let ours = make_challenge(&[4; 40]);
            write_frame(&mut stream, &ours).await;
            let _ = read_frame(&mut stream).await;
            write_frame(&mut stream, WELCOME).await;
            let theirs = expect_frame(&mut stream, "the client's challenge").await;
            let reply = rpc_transport::handshake::answer_challenge(key, &theirs, false)
                .expect("a modern challenge");
            write_frame(&mut stream, &reply).await;
            let _ = read_frame(&mut stream).await;
            let _hello = read_frame(&mut stream).await;
            if let Some(answer) = answer {
                write_frame(&mut stream, answer).await;
            }
            std::future::pending::<()>().await;
        })
        .await;
        assert_eq!(e.kind(), kind, "{e}");
        assert!(e.message().contains(needle), "expected {needle:?} in: {e}");
    }
}
