//! Streams: [`Stream<T>`], the type a `#[rpc_service]` method takes or
//! returns to send many values one way, with per-stream flow control.
//!
//! ```ignore
//! #[rpc_service]
//! pub trait KeyValue {
//!     /// Every change under `prefix`, as it happens (a server stream).
//!     async fn watch(&self, prefix: String) -> rpc_core::Stream<Change>;
//!     /// Stores every pair it is sent (a client stream).
//!     async fn set_many(&self, pairs: rpc_core::Stream<(String, Value)>) -> u64;
//! }
//! ```
//!
//! Where it is received, a `Stream<T>` is a [`futures::Stream`] of `T`;
//! once it has ended, [`Stream::end`] says why (a value: finished, or an
//! [`Error`] whose kind tells the method's error, a cancel, a lost
//! connection, a server shutting down, a limit). The sending side builds
//! one from any stream ([`Stream::new`], [`Stream::try_new`] to end with an
//! error), an iterator ([`Stream::iter`]) or a bounded [`Sender`]
//! ([`Stream::channel`]). Items may be `Result<T, E>`: typed per-item
//! errors travel as any other value.
//!
//! # How a stream crosses the wire
//!
//! A `Stream<T>` value is a placeholder inside a call's arguments or
//! result (nothing in bincode, `null` in JSON); its items travel beside the
//! call, in stream messages under the call's id (see [`crate::codec`]).
//! The transport finds the streams in what it encodes and decodes with
//! two scopes, this module's only link to I/O:
//!
//! - [`capturing`]: while a call's arguments or result are encoded, a
//!   `Stream<T>` hands its items over as a [`Source`], which the transport
//!   polls as the receiver grants credit;
//! - [`receiving`]: while they are decoded, a `Stream<T>` takes the
//!   [`Inbox`] the transport made for the call, where arriving items wait
//!   for the consumer, bounded by the window the consumer's side granted.
//!
//! Outside those scopes (a door that cannot stream: XML-RPC, a stock
//! Python peer, a JSON-RPC batch), encoding a stream fails with an error
//! that names the doors that can.

mod channel;
mod inbox;
mod schema;
mod source;

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::codec::Codec;
use crate::error::{Error, ErrorKind};

pub use self::channel::Sender;
pub use self::inbox::{Control, Inbox, Window};
pub use self::source::{Filled, Pulled, Source, capturing};

/// Why a stream ended: `Ok(())` when its sender finished it, else the
/// error that ended it. The error's kind tells which:
///
/// | kind | the stream ended because |
/// |---|---|
/// | [`ErrorKind::Application`] (or any the sender chose) | the sender ended it with an error ([`Stream::try_new`], [`Sender::fail`]) |
/// | [`ErrorKind::Cancelled`] | the receiver dropped it |
/// | [`ErrorKind::ConnectionLost`] | the connection was lost |
/// | [`ErrorKind::ShuttingDown`] | the server shut down (after its grace period) |
/// | [`ErrorKind::OverBudget`] | a limit was hit: `max_streams`, or a peer sent past its credit |
/// | [`ErrorKind::FrameTooLarge`] | an item did not fit the receiver's frame limit |
/// | [`ErrorKind::Parse`] | an item did not decode as a `T` |
pub type End = Result<(), Error>;

/// Items of type `T` sent one way, as a call's argument or result.
///
/// Receiving, it is a [`futures::Stream<Item = T>`](futures::Stream);
/// dropping it before its end cancels it at the sender. Sending, build it
/// with [`Stream::new`], [`Stream::try_new`], [`Stream::iter`] or
/// [`Stream::channel`].
pub struct Stream<T> {
    /// Behind a lock only so that `Serialize` (which sees `&self`) can
    /// take the items; polling goes through `get_mut`, without locking.
    inner: Mutex<Inner<T>>,
    end: Option<End>,
}

/// Decodes a message's items (see [`decode_items`]).
type Decode<T> = fn(
    &dyn Codec,
    &bytes::Bytes,
    std::ops::Range<usize>,
    u32,
    &mut VecDeque<T>,
) -> Result<(), Error>;

type BoxItems<T> = Pin<Box<dyn futures::Stream<Item = Result<T, Error>> + Send>>;

enum Inner<T> {
    /// Items made here.
    Local {
        items: BoxItems<T>,
        /// Tells a [`Sender`] why its receiver went away.
        on_close: Option<Box<dyn FnOnce(Error) + Send>>,
    },
    /// Items arriving from the peer.
    Remote {
        inbox: Arc<Inbox>,
        decode: Decode<T>,
        /// The message whose items are being taken.
        current: Current<T>,
    },
    /// Its items were handed to a transport, or it has ended.
    Gone,
}

impl<T: Send + 'static> Stream<T> {
    /// A stream of `items`'s values, finishing when it does.
    pub fn new(items: impl futures::Stream<Item = T> + Send + 'static) -> Stream<T> {
        Stream::try_new(futures::StreamExt::map(items, Ok))
    }

    /// A stream of `items`'s values that ends with the first error, which
    /// its receiver sees as [`Stream::end`].
    pub fn try_new(
        items: impl futures::Stream<Item = Result<T, Error>> + Send + 'static,
    ) -> Stream<T> {
        Stream::local(Box::pin(items), None)
    }

    /// A stream of `items`.
    pub fn iter<I>(items: I) -> Stream<T>
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
    {
        Stream::new(futures::stream::iter(items))
    }

    /// A stream with no items, finished.
    pub fn empty() -> Stream<T> {
        Stream::iter(std::iter::empty())
    }

    /// A bounded channel: items sent on the [`Sender`] (at most `capacity`
    /// waiting) become the stream's. The stream finishes when every sender
    /// is dropped, or ends with the error given to [`Sender::fail`]; a
    /// sender learns why the receiver stopped from [`Sender::send`] and
    /// [`Sender::closed`].
    pub fn channel(capacity: usize) -> (Sender<T>, Stream<T>) {
        channel::channel(capacity)
    }

    fn local(items: BoxItems<T>, on_close: Option<Box<dyn FnOnce(Error) + Send>>) -> Stream<T> {
        Stream {
            inner: Mutex::new(Inner::Local { items, on_close }),
            end: None,
        }
    }
}

impl<T> Stream<T> {
    /// Why the stream ended, once it has (after `next()` gave `None`).
    pub fn end(&self) -> Option<&End> {
        self.end.as_ref()
    }

    /// A stream fed by `inbox`, decoding each item as a `T`.
    pub fn remote(inbox: Arc<Inbox>) -> Stream<T>
    where
        T: DeserializeOwned,
    {
        Stream {
            inner: Mutex::new(Inner::Remote {
                inbox,
                decode: decode_items::<T>,
                current: Current::default(),
            }),
            end: None,
        }
    }

    fn inner(&mut self) -> &mut Inner<T> {
        match self.inner.get_mut() {
            Ok(inner) => inner,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Stops the stream early, telling its sender `why`.
    fn close(&mut self, why: Error) {
        match std::mem::replace(self.inner(), Inner::Gone) {
            Inner::Local { on_close, .. } => {
                if let Some(on_close) = on_close {
                    on_close(why);
                }
            }
            Inner::Remote { inbox, .. } => inbox.cancel(),
            Inner::Gone => {}
        }
    }
}

/// Decodes the `count` items at `items` (of `frame`) into `out`, in one
/// decode budget (that of the message) and with [`crate::Bytes`] sliced
/// from the frame.
fn decode_items<T: DeserializeOwned>(
    codec: &dyn Codec,
    frame: &bytes::Bytes,
    items: std::ops::Range<usize>,
    count: u32,
    out: &mut VecDeque<T>,
) -> Result<(), Error> {
    let bytes = &frame[items];
    crate::budget::within(crate::budget::for_message(bytes.len()), || {
        crate::blob::decoding_from(frame, || {
            crate::codec::decode_items::<T>(codec, bytes, count, out)
                .map(drop)
                .map_err(|e| {
                    let what = format!("a stream item (type `{}`)", std::any::type_name::<T>());
                    let why = crate::explain::explain(codec.name(), &what, e.message());
                    Error::new(ErrorKind::Parse, why)
                })
        })
    })
}

/// Takes the next item of a remote stream: from the message being taken,
/// else from the next one to arrive, whose items are decoded together.
/// The message's credit is given back once its last item is taken.
fn poll_remote<T>(
    inbox: &Inbox,
    decode: Decode<T>,
    current: &mut Current<T>,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<T, Error>>> {
    loop {
        if let Some(item) = current.items.pop_front() {
            if current.items.is_empty() {
                let (count, bytes) = std::mem::take(&mut current.owed);
                inbox.taken(count, bytes);
            }
            return Poll::Ready(Some(Ok(item)));
        }
        match inbox.poll_batch(cx) {
            Poll::Ready(Some(batch)) => {
                let range = batch.at..batch.end;
                if let Err(e) = decode(
                    inbox.codec(),
                    &batch.frame,
                    range,
                    batch.count,
                    &mut current.items,
                ) {
                    current.items.clear();
                    inbox.cancel();
                    return Poll::Ready(Some(Err(e)));
                }
                current.owed = (batch.count, batch.bytes);
                if current.items.is_empty() {
                    inbox.taken(batch.count, batch.bytes);
                }
            }
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        }
    }
}

/// The items of the message being taken, decoded, and the credit they
/// give back once taken.
struct Current<T> {
    items: VecDeque<T>,
    owed: (u32, usize),
}

impl<T> Default for Current<T> {
    fn default() -> Current<T> {
        Current {
            items: VecDeque::new(),
            owed: (0, 0),
        }
    }
}

/// Nothing in a stream is pinned in place (its producer is boxed), so it
/// moves freely whatever `T` is.
impl<T> Unpin for Stream<T> {}

impl<T> futures::Stream for Stream<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = &mut *self;
        if this.end.is_some() {
            return Poll::Ready(None);
        }
        let polled = match this.inner() {
            Inner::Local { items, .. } => items.as_mut().poll_next(cx),
            Inner::Remote {
                inbox,
                decode,
                current,
            } => poll_remote(inbox, *decode, current, cx),
            Inner::Gone => Poll::Ready(Some(Err(Error::new(
                ErrorKind::Internal,
                "this stream's items were handed to a call",
            )))),
        };
        match polled {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(item))) => Poll::Ready(Some(item)),
            Poll::Ready(Some(Err(e))) => {
                this.finish(Err(e));
                Poll::Ready(None)
            }
            Poll::Ready(None) => {
                let end = match this.inner() {
                    Inner::Remote { inbox, .. } => inbox.take_end(),
                    _ => Ok(()),
                };
                this.finish(end);
                Poll::Ready(None)
            }
        }
    }
}

impl<T> Stream<T> {
    fn finish(&mut self, end: End) {
        *self.inner() = Inner::Gone;
        self.end = Some(end);
    }
}

impl<T> Drop for Stream<T> {
    fn drop(&mut self) {
        if self.end.is_none() {
            self.close(Error::new(
                ErrorKind::Cancelled,
                "the receiver dropped the stream",
            ));
        }
    }
}

impl<T> std::fmt::Debug for Stream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("item", &std::any::type_name::<T>())
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

impl<T: Serialize + Send + 'static> Serialize for Stream<T> {
    /// Hands the items to the transport encoding the call ([`capturing`])
    /// and writes the placeholder: a unit.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if crate::finite::walking() {
            return serializer.serialize_unit();
        }
        source::can_hand_over().map_err(serde::ser::Error::custom)?;
        let mut inner = match self.inner.lock() {
            Ok(inner) => inner,
            Err(poisoned) => poisoned.into_inner(),
        };
        let source: Box<dyn Source> = match std::mem::replace(&mut *inner, Inner::Gone) {
            Inner::Local { items, on_close } => Box::new(source::Local { items, on_close }),
            remote @ Inner::Remote { .. } => Box::new(source::Relay {
                stream: Stream {
                    inner: Mutex::new(remote),
                    end: None,
                },
            }),
            Inner::Gone => {
                return Err(serde::ser::Error::custom(
                    "a stream can be sent once: this one's items were already handed to a call",
                ));
            }
        };
        source::hand_over(source);
        serializer.serialize_unit()
    }
}

impl<'de, T: DeserializeOwned + Send + 'static> Deserialize<'de> for Stream<T> {
    /// Reads the placeholder and takes the inbox the transport made for
    /// the call ([`receiving`]).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Stream<T>, D::Error> {
        <()>::deserialize(deserializer)?;
        match inbox::take_incoming() {
            Ok(inbox) => Ok(Stream::remote(inbox)),
            Err(why) => Err(serde::de::Error::custom(why)),
        }
    }
}

pub use self::inbox::receiving;

/// What a door that cannot carry streams says: which doors can.
pub const DOORS: &str = "streams travel over TCP (protocol 2, either codec), \
    Server-Sent Events (`GET` or `POST /{Service}/{method}` with `Accept: text/event-stream`) \
    and the WebSocket at `GET /rpc`";

#[cfg(test)]
mod tests;
