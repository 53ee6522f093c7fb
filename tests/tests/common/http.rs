//! The client side of HTTP/1.1 by hand, for the hostile HTTP tests: one
//! kept-alive connection (from a chosen loopback source address), requests
//! written as bytes, responses read by `Content-Length`, every wait bounded.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

use super::within_for;

/// One response: status, headers (names lower-cased), body.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    /// The value of header `name` (lower-case), if present.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text, lossily.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A kept-alive HTTP/1.1 connection.
pub(crate) struct Connection {
    stream: BufReader<TcpStream>,
}

impl Connection {
    /// Connects to `address` from 127.0.0.1.
    pub(crate) async fn open(address: &str) -> Connection {
        Connection::open_from(address, "127.0.0.1").await
    }

    /// Connects to `address` from the loopback address `source`.
    pub(crate) async fn open_from(address: &str, source: &str) -> Connection {
        let target: SocketAddr = address.parse().expect("a socket address");
        let socket = TcpSocket::new_v4().expect("a socket");
        let from: SocketAddr = format!("{source}:0").parse().expect("a source address");
        socket
            .bind(from)
            .expect("binds the loopback source address");
        let stream = within_for(Duration::from_secs(10), "connect", socket.connect(target))
            .await
            .expect("connects");
        Connection {
            stream: BufReader::new(stream),
        }
    }

    /// Writes `request` without reading the answer.
    pub(crate) async fn send(&mut self, request: &[u8]) {
        let write = self.stream.get_mut().write_all(request);
        within_for(Duration::from_secs(30), "the request to be written", write)
            .await
            .expect("the request is written");
    }

    /// Reads one response; `None` if the connection ends before one.
    pub(crate) async fn answer(&mut self, limit: Duration) -> Option<Answer> {
        within_for(limit, "an HTTP answer", self.read_answer()).await
    }

    /// Writes `request` and reads its answer, within `limit`.
    pub(crate) async fn exchange(&mut self, request: &[u8], limit: Duration) -> Option<Answer> {
        self.send(request).await;
        self.answer(limit).await
    }

    /// Whether the server closes the connection within `limit` (an EOF,
    /// or a reset, with no bytes before it).
    pub(crate) async fn closed(&mut self, limit: Duration) -> bool {
        let mut byte = [0u8; 1];
        matches!(
            tokio::time::timeout(limit, self.stream.read(&mut byte)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    async fn read_answer(&mut self) -> Option<Answer> {
        let mut line = String::new();
        if self.stream.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let status = line.split_whitespace().nth(1)?.parse().ok()?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await.ok()? == 0 {
                return None;
            }
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            let (name, value) = trimmed.split_once(':')?;
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map_or(Some(0), |(_, v)| v.parse().ok())?;
        let mut body = vec![0u8; length];
        self.stream.read_exact(&mut body).await.ok()?;
        Some(Answer {
            status,
            headers,
            body,
        })
    }
}

/// `Basic base64(rpc:password)`.
pub(crate) fn basic(password: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut encoded = String::new();
    for chunk in format!("rpc:{password}").as_bytes().chunks(3) {
        let bits = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            encoded.push(if i <= chunk.len() {
                char::from(ALPHABET[(bits >> (18 - 6 * i) & 63) as usize])
            } else {
                '='
            });
        }
    }
    format!("Basic {encoded}")
}

/// A `POST path` of a JSON `body` with `password`.
pub(crate) fn post_json(path: &str, password: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        basic(password),
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

/// A `GET path` with `password`.
pub(crate) fn get(path: &str, password: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: test\r\nAuthorization: {}\r\n\r\n",
        basic(password)
    )
    .into_bytes()
}
