//! Server-Sent Events, read by curl, a raw TCP client and Python's urllib.

use std::sync::atomic::Ordering;
use std::time::Duration;

use rpc_transport::config::Limits;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::Command;

use crate::common::http::{Connection, basic};
use crate::common::{within, within_for};
use crate::service::{PASSWORD, paused, producer_dropped, python, start, start_with};

/// Runs curl with `args` against the gateway and returns its stdout.
async fn curl(args: &[&str]) -> String {
    let output = within_for(
        Duration::from_secs(30),
        "curl",
        Command::new("curl")
            .args(["-sS", "-N", "--max-time", "20", "-u"])
            .arg(format!("rpc:{PASSWORD}"))
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("curl runs");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The `data:` lines of an event stream, and its end reason.
fn events(text: &str) -> (Vec<String>, Option<String>) {
    let mut data = Vec::new();
    let mut end = None;
    for block in text.split("\n\n").filter(|b| !b.is_empty()) {
        let line = |prefix: &str| block.lines().find_map(|l| l.strip_prefix(prefix));
        match (line("event: "), line("data: ")) {
            (Some("end"), Some(reason)) => end = Some(reason.to_owned()),
            (None, Some(item)) => data.push(item.to_owned()),
            other => panic!("an unexpected event {other:?} in {text:?}"),
        }
    }
    (data, end)
}

fn numbers(n: u64) -> Vec<String> {
    (0..n).map(|i| i.to_string()).collect()
}

#[tokio::test]
async fn curl_reads_a_stream_by_get_and_by_post_with_its_end() {
    let gateway = start().await;
    let base = format!("http://{}", gateway.http);
    let accept = "Accept: text/event-stream";
    let got = curl(&["-H", accept, &format!("{base}/Ticks/count?n=5")]).await;
    assert_eq!(events(&got), (numbers(5), Some(r#"{"ok":true}"#.into())));
    let got = curl(&["-H", accept, "-d", "[3]", &format!("{base}/Ticks/count")]).await;
    assert_eq!(events(&got), (numbers(3), Some(r#"{"ok":true}"#.into())));
    let got = curl(&[
        "-H",
        accept,
        "-d",
        r#"{"n":2}"#,
        &format!("{base}/Ticks/fail_after"),
    ])
    .await;
    let (items, end) = events(&got);
    assert_eq!(items, numbers(2));
    assert_eq!(
        end.as_deref(),
        Some(r#"{"code":-32000,"message":"ran out of ticks"}"#)
    );
}

#[tokio::test]
async fn an_item_json_cannot_carry_ends_the_stream_with_the_reason() {
    let gateway = start().await;
    let url = format!("http://{}/Ticks/ratios", gateway.http);
    let got = curl(&["-H", "Accept: text/event-stream", &url]).await;
    let (items, end) = events(&got);
    assert_eq!(items, ["1.5"]);
    let end = end.expect("an end event");
    assert!(end.starts_with(r#"{"code":-32603,"#), "{end}");
    assert!(end.contains("NaN"), "{end}");
}

#[tokio::test]
async fn a_plain_method_over_sse_is_one_item_and_the_end() {
    let gateway = start().await;
    let url = format!("http://{}/Ticks/add", gateway.http);
    let got = curl(&["-H", "Accept: text/event-stream", "-d", "[2,3]", &url]).await;
    assert_eq!(
        events(&got),
        (vec!["5".into()], Some(r#"{"ok":true}"#.into()))
    );
}

#[tokio::test]
async fn get_is_refused_for_a_stream_method_not_marked_idempotent() {
    let gateway = start().await;
    let mut connection = Connection::open(&gateway.http).await;
    let request = format!(
        "GET /Ticks/fail_after?n=2 HTTP/1.1\r\nHost: t\r\nAuthorization: {}\r\nAccept: text/event-stream\r\n\r\n",
        basic(PASSWORD)
    );
    let answer = connection
        .exchange(request.as_bytes(), Duration::from_secs(10))
        .await
        .expect("an answer");
    assert_eq!(answer.status, 405, "{}", answer.text());
    assert!(answer.text().contains("use POST"), "{}", answer.text());
}

/// Sends an SSE `GET path` over a raw connection and returns the reader,
/// past the response head (checked to be a 200 event stream).
async fn open_events(address: &str, path: &str) -> BufReader<TcpStream> {
    let mut stream = within("connect", TcpStream::connect(address))
        .await
        .unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: t\r\nAuthorization: {}\r\nAccept: text/event-stream\r\n\r\n",
        basic(PASSWORD)
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        within("the response head", reader.read_line(&mut line))
            .await
            .unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        head.push_str(&line);
    }
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/event-stream"),
        "{head}"
    );
    reader
}

/// Reads lines until one containing `needle`; returns everything read.
async fn read_until(reader: &mut BufReader<TcpStream>, needle: &str) -> String {
    let mut seen = String::new();
    within("an event", async {
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await.unwrap() == 0 {
                panic!("the stream closed before {needle:?}: {seen}");
            }
            seen.push_str(&line);
            if line.contains(needle) {
                return;
            }
        }
    })
    .await;
    seen
}

#[tokio::test]
async fn a_raw_client_reads_chunked_events_and_closing_it_drops_the_producer() {
    let gateway = start().await;
    let mut reader = open_events(&gateway.http, "/Ticks/forever").await;
    let seen = read_until(&mut reader, "data: 20\n").await;
    assert!(seen.contains("data: 0\n"), "{seen}");
    assert!(!gateway.ticks.dropped.load(Ordering::SeqCst));
    drop(reader);
    producer_dropped(&gateway.ticks).await;
}

#[tokio::test]
async fn an_event_stream_no_one_reads_pauses_its_producer() {
    let gateway = start().await;
    let mut reader = open_events(&gateway.http, "/Ticks/many").await;
    read_until(&mut reader, "data: 1\n").await;
    let held = paused(&gateway.ticks.produced).await;
    println!("paused at {held} items");
    // Socket buffers and one chunk: nowhere near the unbounded stream.
    assert!(
        held < 2_000_000,
        "{held} items produced for a client that reads none"
    );
    within_for(Duration::from_secs(30), "the producer to resume", async {
        let mut line = String::new();
        while gateway.ticks.produced.load(Ordering::Relaxed) <= held {
            line.clear();
            assert!(
                reader.read_line(&mut line).await.unwrap() > 0,
                "the stream ended"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn a_draining_server_ends_an_event_stream_as_shutting_down_after_the_grace() {
    let limits = Limits {
        shutdown_grace: Duration::from_millis(300),
        ..Limits::default()
    };
    let gateway = start_with(limits).await;
    let mut reader = open_events(&gateway.http, "/Ticks/forever").await;
    read_until(&mut reader, "data: 3\n").await;
    gateway.server.shut_down();
    let seen = read_until(&mut reader, "event: end").await;
    let seen = seen + &read_until(&mut reader, "}\n").await;
    assert!(
        seen.contains(r#"data: {"code":-32003,"message":"the server is shutting down"#),
        "{seen}"
    );
    producer_dropped(&gateway.ticks).await;
}

#[tokio::test]
async fn python_urllib_reads_an_event_stream() {
    let gateway = start().await;
    let script = r#"
import base64, sys, urllib.request
url, password = sys.argv[1], sys.argv[2]
request = urllib.request.Request(url, headers={
    "Accept": "text/event-stream",
    "Authorization": "Basic " + base64.b64encode(("rpc:" + password).encode()).decode(),
})
with urllib.request.urlopen(request, timeout=20) as response:
    event = None
    for raw in response:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            print(("end " if event == "end" else "item ") + line[6:])
            if event == "end":
                break
"#;
    let url = format!("http://{}/Ticks/count?n=3", gateway.http);
    let stdout = python(script, &[&url, PASSWORD]).await;
    assert_eq!(stdout, "item 0\nitem 1\nitem 2\nend {\"ok\":true}\n");
}
