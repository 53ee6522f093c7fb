//! Stream parameters and results: a server stream, a client stream, a
//! bidirectional method and a fallible stream, with the client methods'
//! types and the description's flags and type strings.
#![deny(warnings)]

use futures::StreamExt;
use rpc_core::{CallError, Error, Service, Stream, rpc_service};
use serde::{Deserialize, Serialize};

/// One change to a watched key.
#[derive(Debug, Serialize, Deserialize)]
pub struct Change {
    /// The new value.
    pub value: String,
}

/// Not a stream: a type of one's own whose name ends in `Stream`.
#[derive(Debug, Serialize, Deserialize)]
pub struct EventStream {
    /// Its name.
    pub name: String,
}

/// Why a key cannot be followed.
#[derive(Debug, Serialize, Deserialize)]
pub enum FollowError {
    /// There is no such key.
    Missing,
}

/// Keys that change.
#[rpc_service]
pub trait Feed {
    /// Server stream: the changes of `p`.
    async fn watch(&self, p: String) -> Stream<Change>;
    /// Client stream: how many bytes were sent.
    async fn upload(&self, name: String, chunks: Stream<Vec<u8>>) -> u64;
    /// Bidirectional: each line echoed.
    async fn chat(&self, lines: Stream<String>) -> Stream<String>;
    /// A fallible server stream, with the path written out.
    async fn follow(&self, key: String) -> Result<rpc_core::Stream<u64>, FollowError>;
    /// No stream at all.
    async fn rename(&self, s: EventStream) -> EventStream;
}

struct Keys;

impl Feed for Keys {
    async fn watch(&self, p: String) -> Stream<Change> {
        Stream::iter([Change { value: p }])
    }

    async fn upload(&self, _name: String, chunks: Stream<Vec<u8>>) -> u64 {
        chunks.fold(0, |n, c| async move { n + c.len() as u64 }).await
    }

    async fn chat(&self, lines: Stream<String>) -> Stream<String> {
        Stream::new(lines)
    }

    async fn follow(&self, key: String) -> Result<Stream<u64>, FollowError> {
        match key.as_str() {
            "" => Err(FollowError::Missing),
            _ => Ok(Stream::empty()),
        }
    }

    async fn rename(&self, s: EventStream) -> EventStream {
        s
    }
}

#[allow(dead_code)]
async fn client_types(client: FeedClient) {
    let _: Result<Stream<Change>, Error> = client.watch("k".to_owned()).await;
    let _: Result<u64, Error> = client.upload("f".to_owned(), Stream::iter([vec![1]])).await;
    let _: Result<Stream<String>, Error> = client.chat(Stream::empty()).await;
    let _: Result<Stream<u64>, CallError<FollowError>> = client.follow("k".to_owned()).await;
}

fn main() {
    let info = FeedServer::new(Keys).info();
    let flags: Vec<(bool, bool)> = info
        .methods
        .iter()
        .map(|m| (m.takes_stream, m.returns_stream))
        .collect();
    assert_eq!(flags, [
            (false, true),
            (true, false),
            (true, true),
            (false, true),
            (false, false)
        ]);
    assert_eq!(info.methods[0].returns, "Stream<Change>");
    assert_eq!(info.methods[1].params[1].ty, "Stream<Vec<u8>>");
    assert_eq!(info.methods[2].params[0].ty, "Stream<String>");
    assert_eq!(info.methods[3].returns, "rpc_core::Stream<u64>");
    assert_eq!(info.methods[3].error, Some("FollowError"));
    assert_eq!(info.methods[4].returns, "EventStream");
}
