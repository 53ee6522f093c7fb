//! Codec `http` of `rpc-bench client`: one caller's keep-alive HTTP/1.1
//! connection to the gateway ([`super::gateway`]), through hyper's client
//! connection API, one request at a time, as a caller in another language
//! would hold one.
//!
//! ```text
//! → POST /rpc  {"jsonrpc":"2.0","id":7,"method":"Bench.add","params":[4,3]}
//! ← 200        {"jsonrpc":"2.0","id":7,"result":7}
//! → GET /Bench/stream?n=18446744073709551615   Accept: text/event-stream
//! ← 200        data: 0 (blank line) data: 1 (blank line) …
//! ```
//!
//! `echo`'s `Bytes` travel as a base64 string, as the JSON codec writes
//! them; the client sends the same encoded payload on every call and checks
//! that the same string comes back. `stream` is the gateway's
//! Server-Sent Events door (JSON-RPC over `POST /rpc` refuses streams).

use std::future::poll_fn;
use std::pin::Pin;

use hyper::body::{Body, Bytes, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rpc_core::{Error, ErrorKind};
use serde::Deserialize;

use super::gateway::HTTP_PASSWORD;

/// The item count that asks `Bench.stream` for an endless stream.
const ENDLESS: u64 = u64::MAX;

/// One caller's connection to the gateway.
pub struct HttpCaller {
    send: SendRequest<String>,
    host: HeaderValue,
    authorization: HeaderValue,
    next_id: u64,
}

/// A JSON-RPC response: the result, or the error object as it came.
#[derive(Deserialize)]
struct Answer<'a, T> {
    id: u64,
    result: Option<T>,
    #[serde(borrow)]
    error: Option<&'a serde_json::value::RawValue>,
}

impl HttpCaller {
    /// Connects to the gateway at `addr` (TCP_NODELAY on) and starts the
    /// connection's HTTP/1.1 driver on a task of its own.
    pub async fn connect(addr: &str) -> Result<HttpCaller, Error> {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| io(format!("cannot connect to {addr}: {e}")))?;
        tcp.set_nodelay(true).map_err(|e| io(e.to_string()))?;
        let (send, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| io(e.to_string()))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(HttpCaller {
            send,
            host: HeaderValue::from_str(addr).map_err(|e| io(e.to_string()))?,
            authorization: basic_credentials(),
            next_id: 1,
        })
    }

    /// `Bench.add(x, y)` over `POST /rpc`.
    pub async fn add(&mut self, x: i64, y: i64) -> Result<i64, Error> {
        let id = self.id();
        let body =
            format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"Bench.add","params":[{x},{y}]}}"#);
        let bytes = self.post_rpc(body).await?;
        answer::<i64>(&bytes, id)
    }

    /// `Bench.echo(data)` over `POST /rpc`, `data` given as its JSON form
    /// (a quoted base64 string, [`encoded`]); returns the length of the
    /// string that came back after checking it is the same.
    pub async fn echo(&mut self, data: &str) -> Result<usize, Error> {
        let id = self.id();
        let body =
            format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"Bench.echo","params":[{data}]}}"#);
        let bytes = self.post_rpc(body).await?;
        let back = answer::<&str>(&bytes, id)?;
        if back.len() + 2 != data.len() || data[1..data.len() - 1] != *back {
            return Err(internal("echo returned another payload".to_owned()));
        }
        Ok(back.len())
    }

    /// Opens the endless `Bench.stream` as Server-Sent Events and hands
    /// each item, checked to be the next number, to `item`, until `item`
    /// returns false (the caller's window closed).
    pub async fn stream(&mut self, mut item: impl FnMut(u64) -> bool) -> Result<(), Error> {
        let request = Request::builder()
            .method(Method::GET)
            .uri(format!("/Bench/stream?n={ENDLESS}"))
            .header(HOST, self.host.clone())
            .header(AUTHORIZATION, self.authorization.clone())
            .header(ACCEPT, "text/event-stream")
            .body(String::new())
            .map_err(|e| internal(e.to_string()))?;
        let mut body = self.send(request).await?.into_body();
        let (mut next, mut line) = (0u64, Vec::new());
        while let Some(chunk) = data(&mut body).await? {
            for &b in chunk.iter() {
                if b != b'\n' {
                    line.push(b);
                    continue;
                }
                if let Some(value) = line.strip_prefix(b"data: ") {
                    let got: u64 = std::str::from_utf8(value)
                        .ok()
                        .and_then(|v| v.parse().ok())
                        .ok_or_else(|| internal(format!("not an item: {line:?}")))?;
                    if got != next {
                        return Err(internal(format!("stream item {got}, expected {next}")));
                    }
                    next += 1;
                    if !item(got) {
                        return Ok(());
                    }
                } else if line.starts_with(b"event: end") {
                    return Err(internal("the server ended an endless stream".to_owned()));
                }
                line.clear();
            }
        }
        Err(io("the event stream closed".to_owned()))
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Sends one JSON-RPC request body; returns the response body.
    async fn post_rpc(&mut self, body: String) -> Result<Bytes, Error> {
        let request = Request::builder()
            .method(Method::POST)
            .uri("/rpc")
            .header(HOST, self.host.clone())
            .header(AUTHORIZATION, self.authorization.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .map_err(|e| internal(e.to_string()))?;
        let response = self.send(request).await?;
        let mut body = response.into_body();
        // A small answer comes as one data frame: no copy then.
        let Some(first) = data(&mut body).await? else {
            return Ok(Bytes::new());
        };
        let Some(second) = data(&mut body).await? else {
            return Ok(first);
        };
        let mut all = Vec::with_capacity(first.len() + second.len());
        all.extend_from_slice(&first);
        all.extend_from_slice(&second);
        while let Some(more) = data(&mut body).await? {
            all.extend_from_slice(&more);
        }
        Ok(Bytes::from(all))
    }

    /// Sends `request` once the connection is free; fails unless the
    /// status is 200.
    async fn send(&mut self, request: Request<String>) -> Result<Response<Incoming>, Error> {
        self.send.ready().await.map_err(|e| io(e.to_string()))?;
        let response = self
            .send
            .send_request(request)
            .await
            .map_err(|e| io(e.to_string()))?;
        if response.status() != StatusCode::OK {
            return Err(internal(format!("HTTP status {}", response.status())));
        }
        Ok(response)
    }
}

/// `value` as its JSON form, the argument [`HttpCaller::echo`] takes: a
/// payload of `Bytes` is a quoted base64 string.
pub fn encoded(value: &rpc_core::Bytes) -> String {
    serde_json::to_string(value).expect("Bytes serialize to JSON")
}

/// `Authorization: Basic base64("rpc:" + HTTP_PASSWORD)`: any user name,
/// the gateway's password.
fn basic_credentials() -> HeaderValue {
    let user_password = rpc_core::Bytes::from(format!("rpc:{HTTP_PASSWORD}").into_bytes());
    let base64 = encoded(&user_password);
    HeaderValue::from_str(&format!("Basic {}", base64.trim_matches('"')))
        .expect("base64 is a valid header value")
}

/// The next data frame of `body` (trailers skipped), or `None` at its end.
async fn data(body: &mut Incoming) -> Result<Option<Bytes>, Error> {
    loop {
        match poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await {
            None => return Ok(None),
            Some(Err(e)) => return Err(io(e.to_string())),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    return Ok(Some(data));
                }
            }
        }
    }
}

/// The result of the JSON-RPC response `bytes` to request `id`.
fn answer<'a, T: Deserialize<'a>>(bytes: &'a [u8], id: u64) -> Result<T, Error> {
    let answer: Answer<'a, T> = serde_json::from_slice(bytes)
        .map_err(|e| internal(format!("not a JSON-RPC response ({e})")))?;
    if answer.id != id {
        return Err(internal(format!(
            "response to id {}, expected {id}",
            answer.id
        )));
    }
    match (answer.result, answer.error) {
        (Some(result), None) => Ok(result),
        (_, Some(error)) => Err(internal(format!("JSON-RPC error {}", error.get()))),
        (None, None) => Err(internal("a response without result".to_owned())),
    }
}

fn io(message: String) -> Error {
    Error::new(ErrorKind::Io, message)
}

fn internal(message: String) -> Error {
    Error::new(ErrorKind::Internal, message)
}
