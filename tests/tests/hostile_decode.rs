//! Decoders that would turn few bytes into much memory: `kv-server` as a
//! process, fed through every decoder (bincode, JSON, Python's JSON form,
//! pickle, XML-RPC, a REST query) the densest value each can carry. Its peak
//! resident set (`VmHWM`) may grow by less than 64× the bytes sent, what is
//! over the decode budget is refused with the exact `OverBudget` error, and
//! once the value is deleted and the connection closed, the resident set
//! comes back within 20% of its baseline.
//!
//! With `HOSTILE_DECODE_REPORT=1` each case prints its figures; with
//! `KV_SERVER_BIN=path` another `kv-server` build is measured (the tests
//! then say how it fares rather than pass).

mod common;

use std::time::Duration;

use common::bins::{ServerProcess, TempConfig, bin};
use common::{KEY, client_handshake, connect, expect_frame, within, write_frame};
use examples::kv::KeyValueClient;
use rpc_core::python::{PyValue, write};
use rpc_core::{ErrorKind, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;

const PASSWORD: &str = "decode-test-password";
/// `rpc:decode-test-password`, for the `Authorization` header.
const BASIC: &str = "cnBjOmRlY29kZS10ZXN0LXBhc3N3b3Jk";

/// The most a peer's bytes may grow the server's peak resident set, per byte.
const MAX_GROWTH: u64 = 64;

/// How long memory freed may take to be given back.
const RETURN_WITHIN: Duration = Duration::from_secs(3);

/// About how many bytes each case sends.
const SEND: usize = 1 << 20;

/// The decode budget's error for a message of `len` bytes, as every
/// decoder reports it.
fn over_budget(len: usize) -> String {
    format!(
        "the value would take more than {} bytes of memory, the decode budget \
         for its message (32 bytes per byte received, at least 65536)",
        rpc_core::budget::for_message(len)
    )
}

// ---------------------------------------------------------------------------
// The server and its memory.
// ---------------------------------------------------------------------------

struct Kv {
    server: ServerProcess,
    http: String,
}

impl Kv {
    async fn start() -> Kv {
        let config = TempConfig::new(&format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nauthkey = \"{KEY}\"\npython_compat = true\n\n\
             [http]\nlisten = \"127.0.0.1:0\"\npassword = \"{PASSWORD}\"\n"
        ));
        let path = std::env::var_os("KV_SERVER_BIN").map_or_else(|| bin("kv-server"), Into::into);
        let mut command = Command::new(path);
        command
            .arg("--config")
            .arg(&config.path)
            .env_remove("RPC_AUTHKEY")
            .env_remove("RPC_CODEC")
            .env("RUST_LOG", "error")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut server = ServerProcess::spawn("kv-server", command).await;
        let line = server.next_line("the HTTP line").await;
        let http = line
            .strip_prefix("http listening ")
            .unwrap_or_else(|| panic!("the second line is {line:?}"))
            .to_owned();
        drop(config);
        Kv { server, http }
    }

    /// (VmRSS, VmHWM) in bytes.
    fn memory(&self) -> (u64, u64) {
        let pid = self.server.child.id().expect("the server runs");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("its status");
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
                .unwrap_or_else(|| panic!("no {name} line"))
                * 1024
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// The resident set once it has settled: the least of a few readings.
    async fn settled(&self) -> u64 {
        let mut least = u64::MAX;
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(40)).await;
            least = least.min(self.memory().0);
        }
        least
    }

    /// The resident set once it is back within 20% of `baseline` (or 4 MiB
    /// of a small one), or the least seen in [`RETURN_WITHIN`] if it is not:
    /// an allocator may give memory back a little after it is freed.
    async fn returned_to(&self, baseline: u64) -> u64 {
        let target = baseline + (baseline / 5).max(4 << 20);
        let started = std::time::Instant::now();
        let mut least = u64::MAX;
        while started.elapsed() < RETURN_WITHIN {
            tokio::time::sleep(Duration::from_millis(100)).await;
            least = least.min(self.memory().0);
            if least <= target {
                break;
            }
        }
        least
    }
}

/// What one case measured.
struct Measured {
    sent: usize,
    baseline: u64,
    peak: u64,
    after: u64,
}

impl Measured {
    fn growth(&self) -> u64 {
        self.peak.saturating_sub(self.baseline)
    }

    fn report(&self) {
        if std::env::var_os("HOSTILE_DECODE_REPORT").is_some() {
            let mib = |b: u64| b as f64 / (1 << 20) as f64;
            println!(
                "| {} B | +{:.1} MiB (×{:.0}) | {:+.1} MiB |",
                self.sent,
                mib(self.growth()),
                self.growth() as f64 / self.sent as f64,
                mib(self.after) - mib(self.baseline),
            );
        }
    }

    fn check(&self, case: &str) {
        assert!(
            self.growth() < MAX_GROWTH * self.sent as u64,
            "{case}: {} bytes sent grew the peak resident set by {} bytes (×{})",
            self.sent,
            self.growth(),
            self.growth() / self.sent as u64
        );
        // Within 20% of the baseline, or 4 MiB for a baseline this small.
        let slack = (self.baseline / 5).max(4 << 20);
        assert!(
            self.after <= self.baseline + slack,
            "{case}: the resident set stayed at {} bytes after the value was deleted \
             and the connection closed (baseline {})",
            self.after,
            self.baseline
        );
    }
}

/// Runs `send` (which returns the bytes it sent and the server's answer)
/// against a fresh server, then deletes `k` over bincode.
async fn measure<F, Fut>(send: F) -> (Measured, Result<(), String>)
where
    F: FnOnce(Kv) -> Fut,
    Fut: std::future::Future<Output = (Kv, usize, Result<(), String>)>,
{
    let kv = Kv::start().await;
    // Warm up the allocator and the connection machinery.
    let warm = KeyValueClient::new(connect(&kv.server.address, "bincode").await);
    warm.set("w".into(), Value::from(vec![1; 1000]))
        .await
        .unwrap();
    warm.delete("w".into()).await.unwrap();
    drop(warm);
    let baseline = kv.settled().await;
    let (kv, sent, answer) = within("a case to run", send(kv)).await;
    if let Err(e) = &answer {
        if std::env::var_os("HOSTILE_DECODE_REPORT").is_some() {
            println!("answer: {:.200}", e);
        }
    }
    let peak = kv.memory().1;
    let cleanup = KeyValueClient::new(connect(&kv.server.address, "bincode").await);
    let _ = cleanup.delete("k".into()).await;
    drop(cleanup);
    let after = kv.returned_to(baseline).await;
    let measured = Measured {
        sent,
        baseline,
        peak,
        after,
    };
    measured.report();
    (measured, answer)
}

// ---------------------------------------------------------------------------
// The densest values, per decoder.
// ---------------------------------------------------------------------------

/// `[{"a":null}, …]` of about `SEND` bytes of JSON: a B-tree leaf (about 640
/// bytes) for every 11 bytes sent.
fn objects() -> Value {
    let one = serde_json::json!({"a": null});
    Value::from(vec![one; SEND / 11])
}

/// Calls `set("k", value)` with a client speaking `codec`.
async fn client_set(kv: Kv, codec: &str, value: Value) -> (Kv, usize, Result<(), String>) {
    let sent = match codec {
        "json" => serde_json::to_vec(&value).unwrap().len(),
        _ => bincode::serde::encode_to_vec(&value, bincode::config::standard())
            .unwrap()
            .len(),
    };
    let client = KeyValueClient::new(connect(&kv.server.address, codec).await);
    let answer = client
        .set("k".into(), value)
        .await
        .map_err(|e| e.to_string());
    (kv, sent, answer)
}

/// A Python client's call frame: `payload`, after the handshake, and the
/// reply frame.
async fn python_call(kv: &Kv, frame: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(&kv.server.address).await.unwrap();
    client_handshake(&mut stream, KEY).await;
    write_frame(&mut stream, frame).await;
    expect_frame(&mut stream, "the Python reply").await
}

/// The text of a Python reply frame: a pickled `str` (JSON form) or a
/// pickled exception's message.
fn python_answer(reply: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(reply);
    if text.contains("error") || text.contains("Error") {
        Err(text.into_owned())
    } else {
        Ok(())
    }
}

/// An HTTP request and the response's text, on a connection of its own.
async fn http(kv: &Kv, head: &str, body: &[u8]) -> String {
    let mut stream = TcpStream::connect(&kv.http).await.unwrap();
    let request = format!(
        "{head}\r\nHost: x\r\nAuthorization: Basic {BASIC}\r\nConnection: close\r\n\
         Content-Type: text/xml\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

fn xml_set(items: &str, count: usize) -> Vec<u8> {
    format!(
        "<methodCall><methodName>KeyValue.set</methodName><params>\
         <param><value>k</value></param><param><value><array><data>{}</data></array></value></param>\
         </params></methodCall>",
        items.repeat(count)
    )
    .into_bytes()
}

/// Pickle opcodes leaving one value on the stack: `levels` lists of ten
/// memo references each to the level below, over a one-entry dict
/// `{'a': None}`, memo 0: 10^levels dicts from a few bytes per level. As
/// dynamic values, each dict is a B-tree leaf of about 640 bytes, where the
/// old budget charged three Python nodes.
fn memo_bomb_ops(levels: u8) -> Vec<u8> {
    let mut p = vec![b'}', 0x8c, 1, b'a', b'N', b's', 0x94, b'0'];
    for level in 0..levels {
        p.extend_from_slice(b"](");
        for _ in 0..10 {
            p.extend_from_slice(&[b'h', level]);
        }
        p.extend_from_slice(&[b'e', 0x94]);
        if level + 1 < levels {
            p.push(b'0');
        }
    }
    p
}

/// A Python client's `set("k", bomb)` as one pickle:
/// `("set", ("k", bomb), {})`.
fn memo_bomb_call(levels: u8) -> Vec<u8> {
    let mut p = vec![0x80, 4, 0x8c, 3, b's', b'e', b't', 0x8c, 1, b'k'];
    p.extend(memo_bomb_ops(levels));
    p.extend_from_slice(&[0x86, b'}', 0x87, b'.']);
    p
}

// ---------------------------------------------------------------------------
// The cases.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn bincode_values_are_held_to_the_budget() {
    let (m, answer) = measure(|kv| client_set(kv, "bincode", objects())).await;
    let e = answer.expect_err("refused");
    assert!(e.contains("the decode budget for its message"), "{e}");
    m.check("bincode");
}

#[tokio::test]
async fn json_values_are_held_to_the_budget() {
    let (m, answer) = measure(|kv| client_set(kv, "json", objects())).await;
    let e = answer.expect_err("refused");
    assert!(e.contains("the decode budget for its message"), "{e}");
    m.check("json");
}

#[tokio::test]
async fn python_json_values_are_held_to_the_budget() {
    let (m, answer) = measure(|kv| async move {
        let text = format!(
            r#"["set", ["k", [{}{{"a":null}}]], {{}}]"#,
            r#"{"a":null},"#.repeat(SEND / 11)
        );
        let frame = write(&PyValue::Str(text));
        let reply = python_call(&kv, &frame).await;
        (kv, frame.len(), python_answer(&reply))
    })
    .await;
    let e = answer.expect_err("refused");
    assert!(
        e.contains("OverBudget") || e.contains("decode budget"),
        "{e}"
    );
    m.check("py-json");
}

#[tokio::test]
async fn pickled_values_are_held_to_the_budget() {
    // A list of small ints: 2 bytes of pickle each, honest and dense.
    let (m, answer) = measure(|kv| async move {
        let ints = PyValue::List(
            (0..SEND / 2)
                .map(|i| PyValue::Int((i % 200) as i128))
                .collect(),
        );
        let call = PyValue::Tuple(vec![
            PyValue::Str("set".into()),
            PyValue::Tuple(vec![PyValue::Str("k".into()), ints]),
            PyValue::Dict(Vec::new()),
        ]);
        let frame = write(&call);
        let reply = python_call(&kv, &frame).await;
        (kv, frame.len(), python_answer(&reply))
    })
    .await;
    answer.expect("a list of small ints is stored");
    m.check("pickle");
}

#[tokio::test]
async fn a_pickle_memo_bomb_is_refused_at_the_values_real_size() {
    let (m, answer) = measure(|kv| async move {
        let frame = memo_bomb_call(4);
        let reply = python_call(&kv, &frame).await;
        (kv, frame.len(), python_answer(&reply))
    })
    .await;
    let e = answer.expect_err("refused");
    assert!(e.contains("would take more than"), "{e}");
    // Far below what 10^4 dicts would take (7 MiB and more).
    assert!(m.growth() < 2 << 20, "grew by {} bytes", m.growth());
}

#[tokio::test]
async fn xml_rpc_values_are_held_to_the_budget() {
    let (m, answer) = measure(|kv| async move {
        let body = xml_set("<value/>", SEND / 8);
        let response = http(&kv, "POST /RPC2 HTTP/1.1", &body).await;
        let answer = if response.contains("<fault>") {
            Err(response)
        } else {
            Ok(())
        };
        (kv, body.len(), answer)
    })
    .await;
    if let Err(e) = &answer {
        assert!(e.contains("decode budget"), "{e}");
    }
    m.check("xml-rpc");
}

#[tokio::test]
async fn rest_query_pairs_are_held_to_the_budget() {
    let (m, answer) = measure(|kv| async move {
        // 2 bytes a pair, under the gateway's URI limit (64 KiB).
        let query = "&a".repeat(30_000);
        let head = format!("GET /KeyValue/exists?name=k{query} HTTP/1.1");
        let response = http(&kv, &head, b"").await;
        let answer = if response.starts_with("HTTP/1.1 200") {
            Ok(())
        } else {
            Err(response)
        };
        (kv, head.len(), answer)
    })
    .await;
    // Refused as over budget (413, -32012), not as bad arguments.
    let response = answer.expect_err("refused");
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.contains("-32012"), "{response}");
    m.check("rest query");
}

#[tokio::test]
async fn a_value_over_the_budget_is_refused_with_the_exact_error_by_every_rpc_core_decoder() {
    use rpc_core::codec::{self, Bincode, Codec, Json};
    use rpc_core::python::{Pickle, PyJson};
    let value = objects();
    let json = serde_json::to_vec(&value).unwrap();
    let bin = bincode::serde::encode_to_vec(&value, bincode::config::standard()).unwrap();
    let py_json = json.clone();
    let cases: [(&dyn Codec, &[u8]); 3] = [(&Json, &json), (&Bincode, &bin), (&PyJson, &py_json)];
    for (codec, bytes) in cases {
        let e = codec::decode::<Value>(codec, bytes).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::OverBudget, "{}: {e}", codec.name());
        assert_eq!(e.message(), over_budget(bytes.len()), "{}", codec.name());
    }
    // The memo bomb's value alone, as a pickled reply value.
    let bomb = [&[0x80, 4][..], &memo_bomb_ops(4), b"."].concat();
    let e = codec::decode::<Value>(&Pickle, &bomb).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OverBudget, "{e}");
    assert_eq!(
        e.message(),
        format!(
            "pickle refused: the value (memo references expand each time they are used) \
             would take more than {} bytes of memory",
            2 * rpc_core::budget::for_message(bomb.len())
        )
    );
}

#[tokio::test]
async fn a_burst_of_large_values_returns_its_memory_once_deleted() {
    let kv = Kv::start().await;
    let address = kv.server.address.clone();
    let one = KeyValueClient::new(connect(&address, "bincode").await);
    one.set("w".into(), Value::from(vec![1; 1000]))
        .await
        .unwrap();
    one.delete("w".into()).await.unwrap();
    let baseline = kv.settled().await;
    // A 1 MiB value stored, then 8 clients each setting and getting 1 MiB
    // values of their own, ROUNDS times over.
    const ROUNDS: usize = 4;
    let big = Value::from(vec!["x".repeat(1000); 1000]);
    one.set("big".into(), big.clone()).await.unwrap();
    let burst = (0..8).map(|c| {
        let (address, big) = (address.clone(), big.clone());
        tokio::spawn(async move {
            let codec = if c % 2 == 0 { "bincode" } else { "json" };
            let kv = KeyValueClient::new(connect(&address, codec).await);
            for round in 0..ROUNDS {
                let name = format!("c{c}r{round}");
                kv.set(name.clone(), big.clone()).await.unwrap();
                kv.get(name).await.unwrap();
                kv.get("big".into()).await.unwrap();
            }
        })
    });
    // A debug build on a busy machine: bounded, but not by the usual 10 s.
    let burst = futures::future::join_all(burst);
    common::within_for(Duration::from_secs(90), "the burst", burst).await;
    let peak = kv.memory().1;
    let after_burst = kv.settled().await;
    for c in 0..8 {
        for round in 0..ROUNDS {
            one.delete(format!("c{c}r{round}")).await.unwrap();
        }
    }
    one.delete("big".into()).await.unwrap();
    drop(one);
    let after = kv.returned_to(baseline).await;
    if std::env::var_os("HOSTILE_DECODE_REPORT").is_some() {
        let mib = |b: u64| b / (1 << 20);
        println!(
            "| burst | baseline {} MiB | peak {} MiB | after burst {} MiB | after delete {} MiB |",
            mib(baseline),
            mib(peak),
            mib(after_burst),
            mib(after)
        );
    }
    let slack = (baseline / 5).max(4 << 20);
    assert!(
        after <= baseline + slack,
        "the resident set stayed at {after} bytes after the burst's values were deleted \
         (baseline {baseline}, peak {peak})"
    );
}
