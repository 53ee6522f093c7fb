//! The WebSocket at `GET /rpc`: JSON-RPC 2.0 in text messages, as on
//! `POST /rpc` (one call, a batch, notifications), plus subscriptions to
//! the streams methods return ([`super::ws_sub`]).
//!
//! ```text
//! → GET /rpc  Upgrade: websocket  Authorization: Basic …   ← 101
//! → {"jsonrpc":"2.0","id":1,"method":"Calculator.add","params":[2,3]}
//! ← {"jsonrpc":"2.0","id":1,"result":5}
//! → [{"jsonrpc":"2.0","id":2,"method":"Calculator.add","params":[1,1]}, …]
//! ← [{"jsonrpc":"2.0","id":2,"result":2}, …]
//! ```
//!
//! The upgrade request passes the password, origin and drain checks of
//! every request. Calls of one connection run concurrently, at most
//! `max_in_flight` at once (reading pauses beyond that), each with the
//! request timeout counted from its message's arrival; answers come in the
//! order calls finish. A message is at most `max_body_bytes`, an answer at
//! most `max_frame_bytes`; a binary message is answered with an error.
//! A connection holds at most `max_streams` subscriptions. When the
//! server drains, calls not yet started are refused, and after
//! `shutdown_grace_ms` each subscription ends with a ShuttingDown error
//! and the connection closes.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures::StreamExt;
use futures::stream::SplitStream;
use rpc_core::codec::Id;
use rpc_core::{Error, ErrorKind};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::caller::Caller;
use super::jsonrpc::{Read, read};
use super::member::{Member, encode, encode_within, run};
use super::ws_out::{Outgoing, write};
use super::ws_sub::{Subscribe, Subscriptions};
use super::{ANSWER_MARGIN, Gateway};

/// The method that ends a subscription: `params` `[ID]`.
pub(crate) const UNSUBSCRIBE: &str = "rpc.unsubscribe";

/// `GET /rpc` with `Upgrade: websocket`.
pub(crate) async fn upgrade(
    State(gateway): State<Arc<Gateway>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let caller = Caller::current().by("websocket");
    let limit = gateway.max_body_bytes;
    upgrade
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| serve(gateway, socket, caller))
}

/// One WebSocket connection, until the client closes it, the socket fails
/// or the server has drained.
async fn serve(gateway: Arc<Gateway>, socket: WebSocket, caller: Caller) {
    let (sink, incoming) = socket.split();
    let (out, queue) = Outgoing::new();
    let mut writer = tokio::spawn(write(sink, queue));
    let max_streams = gateway.server.config().limits().max_streams;
    let mut connection = Connection {
        running: Arc::new(Semaphore::new(gateway.max_in_flight.max(1))),
        gateway,
        out,
        caller,
        calls: JoinSet::new(),
        subscriptions: Subscriptions::new(max_streams),
    };
    tokio::select! {
        () = connection.read(incoming) => {}
        _ = &mut writer => {}
    }
    // Ends what still runs: each open subscription's source is closed.
    drop(connection);
    if tokio::time::timeout(ANSWER_MARGIN, &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
}

struct Connection {
    gateway: Arc<Gateway>,
    out: Outgoing,
    caller: Caller,
    /// Calls running, at most `max_in_flight` (`running`'s permits).
    calls: JoinSet<()>,
    running: Arc<Semaphore>,
    subscriptions: Subscriptions,
}

impl Connection {
    async fn read(&mut self, mut incoming: SplitStream<WebSocket>) {
        let gateway = self.gateway.clone();
        let grace = gateway.grace_over();
        tokio::pin!(grace);
        loop {
            tokio::select! {
                message = incoming.next() => match message {
                    Some(Ok(Message::Text(text))) => self.handle(Bytes::from(text)).await,
                    Some(Ok(Message::Binary(_))) => {
                        let error = Error::new(
                            ErrorKind::InvalidRequest,
                            "send JSON-RPC in text messages, not binary ones",
                        );
                        self.out.send(encode(&Id::Null, &Err(error.into()))).await;
                    }
                    // Pings are answered by the socket itself.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                },
                Some(_) = self.calls.join_next(), if !self.calls.is_empty() => {}
                Some(_) = self.subscriptions.tasks.join_next(), if !self.subscriptions.tasks.is_empty() => {}
                () = &mut grace => {
                    // Each subscription sends its ShuttingDown end.
                    let ended = async {
                        while self.subscriptions.tasks.join_next().await.is_some() {}
                    };
                    let _ = tokio::time::timeout(ANSWER_MARGIN, ended).await;
                    return;
                }
            }
        }
    }

    /// Answers one text message.
    async fn handle(&mut self, text: Bytes) {
        let member = match read(text, self.gateway.max_batch).await {
            Err(e) => {
                self.out.send(encode(&Id::Null, &Err(e.into()))).await;
                return;
            }
            Ok(Read::Batch(members)) => {
                let gateway = self.gateway.clone();
                self.spawn(async move { super::batch::answer(&gateway, members).await })
                    .await;
                return;
            }
            Ok(Read::One(member)) => member,
        };
        match member {
            Member::Call {
                id,
                method,
                deadline,
                params,
                metadata,
            } if self.streams(&method) => {
                // A subscription needs an id to be answered under.
                let Some(id) = id else { return };
                let caller = match self.caller.renewed().with_own(metadata) {
                    Ok(caller) => caller,
                    Err(e) => {
                        self.out.send(encode(&id, &Err(e.into()))).await;
                        return;
                    }
                };
                let call = Subscribe {
                    id,
                    method,
                    deadline,
                    params,
                };
                self.subscriptions
                    .open(&self.gateway, &self.out, caller, call)
                    .await;
            }
            Member::Call {
                id, method, params, ..
            } if method == UNSUBSCRIBE => {
                let ended = subscription_number(&params)
                    .map(|number| Box::new(self.subscriptions.unsubscribe(number)) as _)
                    .map_err(Into::into);
                if let Some(id) = id {
                    self.out.send(encode(&id, &ended)).await;
                }
            }
            member => {
                let (gateway, limit) = (self.gateway.clone(), self.gateway.max_reply_bytes);
                self.spawn(async move {
                    let (id, reply) = run(&gateway, member).await;
                    id.map(|id| {
                        encode_within(&id, &reply, limit).unwrap_or_else(|| {
                            encode(&id, &Err(super::reply::reply_too_large(limit).into()))
                        })
                    })
                })
                .await;
            }
        }
    }

    /// Whether `method` returns a stream (or takes one, which the
    /// subscription refuses with its reason).
    fn streams(&self, method: &str) -> bool {
        let registry = &self.gateway.registry;
        registry
            .resolve(method)
            .is_ok_and(|route| registry.method(route).streams())
    }

    /// Runs `call` once fewer than `max_in_flight` calls run, and sends
    /// its answer, if any.
    async fn spawn<F>(&mut self, call: F)
    where
        F: Future<Output = Option<bytes::BytesMut>> + Send + 'static,
    {
        let Ok(permit) = self.running.clone().acquire_owned().await else {
            return;
        };
        let (out, caller) = (self.out.clone(), self.caller.renewed());
        self.calls.spawn(async move {
            if let Some(answer) = caller.scope(call).await {
                out.send(answer).await;
            }
            drop(permit);
        });
    }
}

/// The `ID` of `rpc.unsubscribe`'s `[ID]` (a number, or a string of one).
fn subscription_number(params: &[u8]) -> Result<u64, Error> {
    let invalid =
        || Error::invalid_params(UNSUBSCRIBE, "write params as [ID], ID a subscription id");
    let [id]: [serde_json::Value; 1] = serde_json::from_slice(params).map_err(|_| invalid())?;
    match id {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(invalid)
}
