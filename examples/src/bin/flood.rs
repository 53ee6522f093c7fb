//! `flood`: do honest clients still log in while a flood of junk
//! connections arrives? Loopback only, bounded in count and time.
//!
//! ```sh
//! cargo build --release -p examples --bin flood --bin rpc-bench
//! target/release/rpc-bench server --addr 127.0.0.1:7000 &
//! # 2,000 silent connections a second for 6 s from 127.0.0.2-5; meanwhile 8
//! # logins from 127.0.0.1, each message sent 50 ms after the last one came
//! target/release/flood --addr 127.0.0.1:7000 --rate 2000 --seconds 6 \
//!     --junk-from 127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5 --honest 8 --rtt-ms 50
//! # silent connections to another port (an HTTP gateway), logins on the TCP port
//! target/release/flood --addr 127.0.0.1:7000 --junk-to 127.0.0.1:8080 --rate 500 --seconds 4
//! ```
//!
//! Junk connections connect and send nothing; each is held until the server
//! closes it or `--hold-ms` after the flood ends. An honest login is the client side of the
//! authkey handshake and the hello, written by hand so that each message
//! can wait `--rtt-ms` first (a round trip the server has to wait out); it
//! counts when the hello is accepted, within 10 s. The honest logins start
//! evenly spread over the flood, after its first half second. It prints one
//! JSON line: logins ok of logins tried, junk opened and refused, and the
//! first errors seen.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use rpc_transport::handshake::{
    CHALLENGE, WELCOME, answer_challenge, make_challenge, verify_answer,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// The most junk connections one run opens.
const MAX_JUNK: u64 = 200_000;
/// The longest run.
const MAX_SECONDS: u64 = 60;
/// How long one honest login may take.
const LOGIN_LIMIT: Duration = Duration::from_secs(10);

#[derive(Parser, Debug)]
#[command(about = "junk connections against honest logins, on loopback")]
struct Args {
    /// The server's TCP address (loopback).
    #[arg(long)]
    addr: SocketAddr,
    /// Where the junk goes (default: --addr), e.g. an HTTP gateway's port.
    #[arg(long)]
    junk_to: Option<SocketAddr>,
    /// Junk connections a second.
    #[arg(long, default_value_t = 2000)]
    rate: u64,
    /// How long the flood lasts.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Source addresses of the junk, round robin (loopback).
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.2")]
    junk_from: Vec<IpAddr>,
    /// Honest logins, spread over the flood.
    #[arg(long, default_value_t = 8)]
    honest: u64,
    /// Source address of the honest clients.
    #[arg(long, default_value = "127.0.0.1")]
    honest_from: IpAddr,
    /// Wait before each message an honest client sends, in ms.
    #[arg(long, default_value_t = 0)]
    rtt_ms: u64,
    /// The authkey.
    #[arg(long, default_value = "peerbench")]
    key: String,
    /// How long the junk is held after the flood ends, in ms.
    #[arg(long, default_value_t = 500)]
    hold_ms: u64,
    /// The codec of the hello.
    #[arg(long, default_value = "bincode")]
    codec: String,
}

#[derive(Default)]
struct Counts {
    junk_opened: AtomicU64,
    junk_failed: AtomicU64,
    junk_closed_by_server: AtomicU64,
    logins_ok: AtomicU64,
    errors: std::sync::Mutex<Vec<String>>,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let loopback = |ip: &IpAddr| ip.is_loopback();
    let junk_to = args.junk_to.unwrap_or(args.addr);
    if !loopback(&args.addr.ip())
        || !loopback(&junk_to.ip())
        || !args.junk_from.iter().all(loopback)
        || !loopback(&args.honest_from)
    {
        eprintln!("flood runs on loopback only");
        std::process::exit(2);
    }
    let seconds = args.seconds.min(MAX_SECONDS);
    let counts = Arc::new(Counts::default());
    let args = Arc::new(args);
    let start = Instant::now();
    let run = Duration::from_secs(seconds);
    let junk = tokio::spawn(flood(args.clone(), junk_to, run, counts.clone()));
    let mut logins = Vec::new();
    let spread = run.saturating_sub(Duration::from_millis(1500)) / args.honest.max(1) as u32;
    for i in 0..args.honest {
        let at = Duration::from_millis(500) + spread * i as u32;
        let (args, counts) = (args.clone(), counts.clone());
        logins.push(tokio::spawn(async move {
            tokio::time::sleep_until((start + at).into()).await;
            let began = Instant::now();
            match tokio::time::timeout(LOGIN_LIMIT, login(&args)).await {
                Ok(Ok(())) => {
                    counts.logins_ok.fetch_add(1, Ordering::Relaxed);
                    Some(began.elapsed())
                }
                Ok(Err(e)) => {
                    counts.errors.lock().unwrap().push(e);
                    None
                }
                Err(_) => {
                    counts.errors.lock().unwrap().push("login timed out".into());
                    None
                }
            }
        }));
    }
    let mut took = Vec::new();
    for login in logins {
        if let Ok(Some(t)) = login.await {
            took.push(t.as_millis() as u64);
        }
    }
    let _ = junk.await;
    let mut errors = counts.errors.lock().unwrap().clone();
    errors.sort();
    errors.dedup();
    errors.truncate(5);
    let line = serde_json::json!({
        "rate": args.rate,
        "seconds": seconds,
        "rtt_ms": args.rtt_ms,
        "junk_from": args.junk_from,
        "logins_ok": counts.logins_ok.load(Ordering::Relaxed),
        "logins": args.honest,
        "login_ms": took,
        "junk_opened": counts.junk_opened.load(Ordering::Relaxed),
        "junk_failed": counts.junk_failed.load(Ordering::Relaxed),
        "junk_closed_by_server": counts.junk_closed_by_server.load(Ordering::Relaxed),
        "errors": errors,
    });
    println!("{line}");
}

/// Opens `rate` silent connections a second to `to` for `run`, each held
/// until the server closes it or the run ends.
async fn flood(args: Arc<Args>, to: SocketAddr, run: Duration, counts: Arc<Counts>) {
    let start = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let mut opened = 0u64;
    let mut holders = tokio::task::JoinSet::new();
    let total = (args.rate * run.as_secs()).min(MAX_JUNK);
    while start.elapsed() < run && opened < total {
        tick.tick().await;
        let due = (args.rate as f64 * start.elapsed().as_secs_f64()) as u64;
        while opened < due.min(total) {
            let from = args.junk_from[(opened as usize) % args.junk_from.len()];
            opened += 1;
            let counts = counts.clone();
            holders.spawn(async move {
                match connect_from(from, to).await {
                    Ok(mut stream) => {
                        counts.junk_opened.fetch_add(1, Ordering::Relaxed);
                        let mut sink = [0u8; 256];
                        // Read (and drop) what the server says until it closes.
                        while let Ok(n) = stream.read(&mut sink).await {
                            if n == 0 {
                                break;
                            }
                        }
                        counts.junk_closed_by_server.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        counts.junk_failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        while holders.try_join_next().is_some() {}
    }
    // Held a while longer (the honest logins' last ones), then all closed.
    let hold = Duration::from_millis(args.hold_ms).min(Duration::from_secs(MAX_SECONDS));
    tokio::time::sleep(hold).await;
    holders.abort_all();
    while holders.join_next().await.is_some() {}
}

async fn connect_from(from: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = match to {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(to).await
}

/// One login by hand: the handshake, then the hello, each message sent
/// `rtt_ms` after the last one came.
async fn login(args: &Args) -> Result<(), String> {
    let rtt = Duration::from_millis(args.rtt_ms);
    let mut s = connect_from(args.honest_from, args.addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    let challenge = read_frame(&mut s, "the challenge").await?;
    let answer = answer_challenge(args.key.as_bytes(), &challenge, false)
        .map_err(|e| format!("the challenge: {e}"))?;
    tokio::time::sleep(rtt).await;
    write_frame(&mut s, &answer).await?;
    let verdict = read_frame(&mut s, "the verdict").await?;
    if verdict != WELCOME {
        return Err(format!("verdict {:?}", String::from_utf8_lossy(&verdict)));
    }
    let mut random = [0u8; 40];
    getrandom::fill(&mut random).map_err(|e| e.to_string())?;
    let ours = make_challenge(&random);
    tokio::time::sleep(rtt).await;
    write_frame(&mut s, &ours).await?;
    let theirs = read_frame(&mut s, "the server's answer").await?;
    verify_answer(
        args.key.as_bytes(),
        &ours[CHALLENGE.len()..],
        &theirs,
        false,
    )
    .map_err(|e| format!("the server's answer: {e}"))?;
    tokio::time::sleep(rtt).await;
    write_frame(&mut s, WELCOME).await?;
    let hello =
        serde_json::json!({"protocol": 1, "codec": args.codec, "max_frame_bytes": 1_048_576});
    write_frame(&mut s, hello.to_string().as_bytes()).await?;
    let answer = read_frame(&mut s, "the answer to the hello").await?;
    let answer: serde_json::Value =
        serde_json::from_slice(&answer).map_err(|e| format!("the hello's answer: {e}"))?;
    match answer.get("error") {
        Some(error) => Err(format!("hello refused: {error}")),
        None => Ok(()),
    }
}

async fn write_frame(s: &mut TcpStream, payload: &[u8]) -> Result<(), String> {
    let mut frame = (payload.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(payload);
    s.write_all(&frame).await.map_err(|e| format!("write: {e}"))
}

async fn read_frame(s: &mut TcpStream, what: &str) -> Result<Vec<u8>, String> {
    let mut header = [0u8; 4];
    s.read_exact(&mut header)
        .await
        .map_err(|e| format!("{what}: {e}"))?;
    let len = u32::from_be_bytes(header) as usize;
    if len > 1 << 20 {
        return Err(format!("{what}: a frame of {len} bytes"));
    }
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload)
        .await
        .map_err(|e| format!("{what}: {e}"))?;
    Ok(payload)
}
