//! Subscriptions on the WebSocket: a call to a method that returns a
//! stream answers with a subscription id, and the stream's items and end
//! follow as notifications under the method's name, in the shape
//! jsonrpsee's and Ethereum's clients read.
//!
//! ```text
//! → {"jsonrpc":"2.0","id":1,"method":"KeyValue.watch","params":["a/"]}
//! ← {"jsonrpc":"2.0","id":1,"result":1}
//! ← {"jsonrpc":"2.0","method":"KeyValue.watch","params":{"subscription":1,"result":{"Set":…}}}
//! ← {"jsonrpc":"2.0","method":"KeyValue.watch","params":{"subscription":1,"error":{"code":0,"message":"the stream finished"}}}
//! → {"jsonrpc":"2.0","id":2,"method":"rpc.unsubscribe","params":[1]}
//! ← {"jsonrpc":"2.0","id":2,"result":false}
//! ```
//!
//! Every end carries an `error` member, a normal finish too (code 0,
//! [`FINISHED`]): jsonrpsee ends a subscription only on one. Other ends
//! carry the stream's error object (-32003 when the server shut down).
//! `rpc.unsubscribe` ends a subscription quietly: its `true` answer is
//! the last message about it (`false` for an id not open).
//!
//! Each subscription is one task that polls its source only when the
//! connection's queue has taken its last item ([`super::ws_out`]): a
//! stream's producer never runs more than one item ahead of the socket.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::BytesMut;
use rpc_core::codec::{Id, Json};
use rpc_core::stream::{Pulled, Source};
use rpc_core::{Error, ErrorKind};
use serde_json::value::RawValue;
use tokio::task::{AbortHandle, JoinSet};

use super::Gateway;
use super::call::Streaming;
use super::caller::Caller;
use super::member::encode;
use super::opened::{Opened, error_object, poll_item, shutting_down};
use super::ws_out::Outgoing;

/// The reason in the end of a stream that finished.
pub(crate) const FINISHED: &str = "the stream finished";

/// One connection's open subscriptions, at most `max_streams`.
pub(crate) struct Subscriptions {
    open: HashMap<u64, AbortHandle>,
    pub(crate) tasks: JoinSet<()>,
    next: u64,
    max: usize,
}

/// A subscribing call, read from a message.
pub(crate) struct Subscribe {
    pub(crate) id: Id,
    pub(crate) method: String,
    pub(crate) deadline: Option<std::time::Duration>,
    pub(crate) params: bytes::Bytes,
}

impl Subscriptions {
    pub(crate) fn new(max: usize) -> Subscriptions {
        Subscriptions {
            open: HashMap::new(),
            tasks: JoinSet::new(),
            next: 1,
            max,
        }
    }

    /// Starts `call`'s subscription, or answers why not.
    pub(crate) async fn open(
        &mut self,
        gateway: &Arc<Gateway>,
        out: &Outgoing,
        caller: Caller,
        call: Subscribe,
    ) {
        self.open.retain(|_, task| !task.is_finished());
        if self.open.len() >= self.max {
            let why = format!(
                "this connection has {} subscriptions open, the limit (max_streams); end one with rpc.unsubscribe",
                self.max
            );
            let error = Error::new(ErrorKind::OverBudget, why);
            out.send(encode(&call.id, &Err(error.into()))).await;
            return;
        }
        let number = self.next;
        self.next += 1;
        let run = subscription(gateway.clone(), out.clone(), caller, call, number);
        self.open.insert(number, self.tasks.spawn(run));
    }

    /// Ends subscription `number` quietly: whether it was open.
    pub(crate) fn unsubscribe(&mut self, number: u64) -> bool {
        match self.open.remove(&number) {
            Some(task) => {
                let open = !task.is_finished();
                task.abort();
                open
            }
            None => false,
        }
    }
}

/// Runs a subscribing call; once it opens, sends its stream.
async fn subscription(
    gateway: Arc<Gateway>,
    out: Outgoing,
    caller: Caller,
    call: Subscribe,
    number: u64,
) {
    let _counted = Streaming::new(gateway.clone());
    let Subscribe {
        id,
        method,
        deadline,
        params,
    } = call;
    let start =
        |registry: &rpc_core::Registry, _| registry.dispatch_encoded(&method, &Json, &params);
    let opened = caller.scope(gateway.open(&method, deadline, start)).await;
    let source = match opened {
        Ok(Opened::Stream(source)) => source,
        Ok(Opened::Value(json)) => {
            let value = RawValue::from_string(String::from_utf8_lossy(&json).into_owned());
            let reply = value.map_err(|e| Error::new(ErrorKind::Internal, e.to_string()));
            out.send(encode(
                &id,
                &reply.map(|v| Box::new(v) as _).map_err(Into::into),
            ))
            .await;
            return;
        }
        Err(fault) => {
            out.send(encode(&id, &Err(fault))).await;
            return;
        }
    };
    let mut guard = Closing(Some(source));
    if !out.send(encode(&id, &Ok(Box::new(number)))).await {
        return;
    }
    let name = serde_json::to_string(&method).unwrap_or_else(|_| "\"\"".to_owned());
    let head = format!(r#"{{"jsonrpc":"2.0","method":{name},"params":{{"subscription":{number},"#);
    let item_head = format!(r#"{head}"result":"#);
    let limit = gateway.max_reply_bytes;
    let grace = gateway.grace_over();
    tokio::pin!(grace);
    let end = loop {
        let Some(source) = guard.0.as_mut() else {
            return;
        };
        let mut message = BytesMut::new();
        let framing: (&[u8], &[u8]) = (item_head.as_bytes(), b"}}");
        let pulled = tokio::select! {
            biased;
            () = &mut grace => {
                let why = shutting_down();
                guard.close(Error::new(why.kind(), why.message()));
                break Err(why);
            }
            pulled = std::future::poll_fn(|cx| poll_item(&mut **source, cx, &mut message, framing, limit)) => pulled,
        };
        match pulled {
            Pulled::Item => {
                if !out.send(message).await {
                    return;
                }
            }
            Pulled::End(end) => {
                // Ended by itself: nothing to tell it.
                guard.0 = None;
                break end;
            }
        }
    };
    let mut message = BytesMut::from(head.as_bytes());
    message.extend_from_slice(br#""error":"#);
    match &end {
        Ok(()) => {
            message.extend_from_slice(format!(r#"{{"code":0,"message":"{FINISHED}"}}"#).as_bytes())
        }
        Err(e) => error_object(&mut message, e),
    }
    message.extend_from_slice(b"}}");
    out.send(message).await;
}

/// Closes the source it holds when dropped: the subscription was ended
/// by `rpc.unsubscribe`, or its connection closed.
struct Closing(Option<Box<dyn Source>>);

impl Closing {
    fn close(&mut self, why: Error) {
        if let Some(source) = self.0.take() {
            source.close(why);
        }
    }
}

impl Drop for Closing {
    fn drop(&mut self) {
        self.close(Error::new(
            ErrorKind::Cancelled,
            "the WebSocket client unsubscribed or closed the connection",
        ));
    }
}
