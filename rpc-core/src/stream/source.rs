//! The sending side as a transport sees it: a [`Source`] of items it polls
//! when the receiver has granted credit, and the [`capturing`] scope in
//! which a `Stream<T>` being encoded hands its items over.

use std::cell::RefCell;
use std::task::{Context, Poll};

use bytes::BytesMut;

use super::{BoxItems, Stream};
use crate::codec::Codec;
use crate::error::{Error, ErrorKind};

/// What [`Source::poll_item`] found.
#[derive(Debug)]
pub enum Pulled {
    /// One item, handed to the encoder.
    Item,
    /// The stream ended: finished (`Ok`) or with an error.
    End(super::End),
}

/// What [`Source::poll_batch`] wrote.
#[derive(Debug)]
pub struct Filled {
    /// Items appended.
    pub items: u32,
    /// Where in `dst` the last item appended begins (with the codec's
    /// separator before it, if it is not the first).
    pub last: usize,
    /// The stream ended after them (finished, or with an error).
    pub end: Option<super::End>,
}

/// A stream's items, type-erased, for a transport to send.
pub trait Source: Send + 'static {
    /// Appends the items that are ready to `dst` in `codec`'s encoding
    /// ([`Codec::encode_item`]; the first one as the first of a message if
    /// `first`), until `max_items` are appended or `dst` grew by
    /// `max_bytes`, the stream ends, or no item is ready. Pending only if
    /// no item was appended and the stream has not ended.
    fn poll_batch(
        &mut self,
        cx: &mut Context<'_>,
        codec: &dyn Codec,
        dst: &mut BytesMut,
        first: bool,
        (max_items, max_bytes): (u32, usize),
    ) -> Poll<Filled> {
        fill(dst, first, (max_items, max_bytes), |dst, first| {
            self.poll_item(cx, &mut |item| codec.encode_item(dst, first, item))
                .map(|pulled| match pulled {
                    Pulled::Item => None,
                    Pulled::End(end) => Some(end),
                })
        })
    }

    /// Polls for the next item; when one is ready, hands it to `encode`. An
    /// item `encode` refuses ends the stream with its error.
    fn poll_item(
        &mut self,
        cx: &mut Context<'_>,
        encode: &mut dyn FnMut(&dyn erased_serde::Serialize) -> Result<(), Error>,
    ) -> Poll<Pulled>;

    /// The receiver stopped reading, for the reason `why`: tells a
    /// [`super::Sender`], then drops the items' producer.
    fn close(self: Box<Self>, why: Error);
}

/// Appends items with `next` (which encodes one, the first of its message
/// if told so, and says `Some(end)` once the stream ended) within the
/// limits; see [`Source::poll_batch`].
fn fill(
    dst: &mut BytesMut,
    first: bool,
    (max_items, max_bytes): (u32, usize),
    mut next: impl FnMut(&mut BytesMut, bool) -> Poll<Option<super::End>>,
) -> Poll<Filled> {
    let start = dst.len();
    let (mut items, mut last) = (0, start);
    while items < max_items && dst.len() - start < max_bytes {
        let at = dst.len();
        match next(dst, first && items == 0) {
            Poll::Ready(None) => {
                items += 1;
                last = at;
            }
            Poll::Ready(Some(end)) => {
                return Poll::Ready(Filled {
                    items,
                    last,
                    end: Some(end),
                });
            }
            Poll::Pending if items == 0 => return Poll::Pending,
            Poll::Pending => break,
        }
    }
    Poll::Ready(Filled {
        items,
        last,
        end: None,
    })
}

/// Items made in this process.
pub(super) struct Local<T> {
    pub(super) items: BoxItems<T>,
    pub(super) on_close: Option<Box<dyn FnOnce(Error) + Send>>,
}

impl<T: serde::Serialize + Send + 'static> Source for Local<T> {
    fn poll_item(
        &mut self,
        cx: &mut Context<'_>,
        encode: &mut dyn FnMut(&dyn erased_serde::Serialize) -> Result<(), Error>,
    ) -> Poll<Pulled> {
        match self.items.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => Poll::Ready(Pulled::End(Ok(()))),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Pulled::End(Err(e))),
            Poll::Ready(Some(Ok(item))) => Poll::Ready(match encode(&item) {
                Ok(()) => Pulled::Item,
                Err(e) => Pulled::End(Err(e)),
            }),
        }
    }

    fn poll_batch(
        &mut self,
        cx: &mut Context<'_>,
        codec: &dyn Codec,
        dst: &mut BytesMut,
        first: bool,
        (max_items, max_bytes): (u32, usize),
    ) -> Poll<Filled> {
        // As the default, with the item's type known: no erasure per item.
        let encode = crate::codec::item_encoder::<T>(codec);
        fill(dst, first, (max_items, max_bytes), |dst, first| {
            self.items.as_mut().poll_next(cx).map(|next| match next {
                None => Some(Ok(())),
                Some(Err(e)) => Some(Err(e)),
                Some(Ok(item)) => encode(codec, dst, first, &item).err().map(Err),
            })
        })
    }

    fn close(self: Box<Self>, why: Error) {
        if let Some(on_close) = self.on_close {
            on_close(why);
        }
    }
}

/// Items received from one peer, sent on to another (a proxy returning
/// the stream it was given).
pub(super) struct Relay<T> {
    pub(super) stream: Stream<T>,
}

impl<T: serde::Serialize + Send + 'static> Source for Relay<T> {
    fn poll_item(
        &mut self,
        cx: &mut Context<'_>,
        encode: &mut dyn FnMut(&dyn erased_serde::Serialize) -> Result<(), Error>,
    ) -> Poll<Pulled> {
        match futures::Stream::poll_next(std::pin::Pin::new(&mut self.stream), cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(item)) => Poll::Ready(match encode(&item) {
                Ok(()) => Pulled::Item,
                Err(e) => Pulled::End(Err(e)),
            }),
            Poll::Ready(None) => {
                let end = match self.stream.end.take() {
                    Some(Err(e)) => Err(e),
                    _ => Ok(()),
                };
                self.stream.end = Some(Ok(()));
                Poll::Ready(Pulled::End(end))
            }
        }
    }

    fn close(mut self: Box<Self>, why: Error) {
        self.stream.close(why);
        self.stream.end = Some(Ok(()));
    }
}

thread_local! {
    /// The open [`capturing`] scope: `Some(None)` while it waits for a
    /// stream, `Some(Some(_))` once one was handed over.
    static CAPTURE: RefCell<Option<Option<Box<dyn Source>>>> = const { RefCell::new(None) };
}

/// Runs `encode` (a transport encoding a call's arguments or result) and
/// returns the [`Source`] of the `Stream<T>` it met, if any.
///
/// A call carries at most one stream each way: a second one in the same
/// value fails to encode.
pub fn capturing<R>(encode: impl FnOnce() -> R) -> (R, Option<Box<dyn Source>>) {
    struct Restore(Option<Option<Box<dyn Source>>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CAPTURE.with(|c| *c.borrow_mut() = self.0.take());
        }
    }
    let outer = CAPTURE.with(|c| c.borrow_mut().replace(None));
    let restore = Restore(outer);
    let out = encode();
    let captured = CAPTURE.with(|c| c.borrow_mut().take()).flatten();
    drop(restore);
    (out, captured)
}

/// Whether a stream being encoded has somewhere to go; the error says why not.
pub(super) fn can_hand_over() -> Result<(), String> {
    CAPTURE.with(|c| match &*c.borrow() {
        Some(None) => Ok(()),
        Some(Some(_)) => Err("a call carries at most one stream each way".to_owned()),
        None => Err(format!(
            "this door cannot carry a stream ({})",
            super::DOORS
        )),
    })
}

/// Hands `source` to the open scope, which [`can_hand_over`] found empty.
pub(super) fn hand_over(source: Box<dyn Source>) {
    CAPTURE.with(|c| {
        if let Some(slot) = &mut *c.borrow_mut() {
            *slot = Some(source);
        } else {
            source.close(Error::new(
                ErrorKind::Internal,
                "no transport took the stream",
            ));
        }
    });
}
