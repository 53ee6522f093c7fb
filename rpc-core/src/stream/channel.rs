//! [`Sender`]: the bounded handle that feeds a [`Stream`] built with
//! [`Stream::channel`], and learns why its receiver stopped.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use super::Stream;
use crate::error::{Error, ErrorKind};

/// Sends items into a [`Stream`]; see [`Stream::channel`]. Clones send
/// into the same stream, which finishes once every clone is dropped.
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

struct Chan<T> {
    capacity: usize,
    state: Mutex<State<T>>,
}

struct State<T> {
    queue: VecDeque<Result<T, Error>>,
    senders: usize,
    /// Why the receiver stopped, once it has.
    closed: Option<(ErrorKind, String)>,
    /// A sender ended the stream with an error.
    failed: bool,
    receiver: Option<Waker>,
    waiting: Vec<Waker>,
}

impl<T> Chan<T> {
    fn state(&self) -> std::sync::MutexGuard<'_, State<T>> {
        match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The receiver stopped: senders learn `why`.
    fn close(&self, why: Error) {
        let waiting = {
            let mut state = self.state();
            if state.closed.is_none() {
                state.closed = Some((why.kind(), why.message().to_owned()));
            }
            state.queue.clear();
            std::mem::take(&mut state.waiting)
        };
        waiting.into_iter().for_each(Waker::wake);
    }
}

pub(super) fn channel<T: Send + 'static>(capacity: usize) -> (Sender<T>, Stream<T>) {
    let chan = Arc::new(Chan {
        capacity: capacity.max(1),
        state: Mutex::new(State {
            queue: VecDeque::new(),
            senders: 1,
            closed: None,
            failed: false,
            receiver: None,
            waiting: Vec::new(),
        }),
    });
    let on_close = {
        let chan = chan.clone();
        Box::new(move |why: Error| chan.close(why)) as Box<dyn FnOnce(Error) + Send>
    };
    let items = Box::pin(Receiver { chan: chan.clone() });
    (Sender { chan }, Stream::local(items, Some(on_close)))
}

impl<T> Sender<T> {
    /// Sends `item`, waiting while `capacity` items wait already. Fails
    /// once the receiver has stopped (the item is dropped); the error says
    /// why: [`ErrorKind::Cancelled`] (dropped), [`ErrorKind::ConnectionLost`],
    /// [`ErrorKind::ShuttingDown`], …
    pub async fn send(&self, item: T) -> Result<(), Error> {
        let mut item = Some(item);
        std::future::poll_fn(|cx| {
            let waker = {
                let mut state = self.chan.state();
                if let Some((kind, why)) = &state.closed {
                    return Poll::Ready(Err(Error::new(*kind, why.clone())));
                }
                if state.queue.len() >= self.chan.capacity {
                    wait(&mut state.waiting, cx);
                    return Poll::Pending;
                }
                if let Some(item) = item.take() {
                    state.queue.push_back(Ok(item));
                }
                state.receiver.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
            Poll::Ready(Ok(()))
        })
        .await
    }

    /// Ends the stream with `error` after the items already sent; the
    /// receiver sees it as [`Stream::end`].
    pub fn fail(self, error: Error) {
        let waker = {
            let mut state = self.chan.state();
            if state.closed.is_some() || state.failed {
                return;
            }
            state.failed = true;
            state.queue.push_back(Err(error));
            state.receiver.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Whether the receiver has stopped.
    pub fn is_closed(&self) -> bool {
        self.chan.state().closed.is_some()
    }

    /// Completes once the receiver has stopped, with why.
    pub async fn closed(&self) -> Error {
        std::future::poll_fn(|cx| {
            let mut state = self.chan.state();
            match &state.closed {
                Some((kind, why)) => Poll::Ready(Error::new(*kind, why.clone())),
                None => {
                    wait(&mut state.waiting, cx);
                    Poll::Pending
                }
            }
        })
        .await
    }
}

/// Adds `cx`'s waker to `waiting`, unless it is there already: a sender
/// polled again and again while it waits adds it once.
fn wait(waiting: &mut Vec<Waker>, cx: &Context<'_>) {
    if !waiting.iter().any(|w| w.will_wake(cx.waker())) {
        waiting.push(cx.waker().clone());
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Sender<T> {
        self.chan.state().senders += 1;
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut state = self.chan.state();
            state.senders -= 1;
            if state.senders > 0 {
                return;
            }
            state.receiver.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> std::fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

/// The channel's receiving end, inside the [`Stream`].
struct Receiver<T> {
    chan: Arc<Chan<T>>,
}

impl<T> futures::Stream for Receiver<T> {
    type Item = Result<T, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<T, Error>>> {
        let (item, waiting) = {
            let mut state = self.chan.state();
            match state.queue.pop_front() {
                Some(item) => {
                    let waiting = std::mem::take(&mut state.waiting);
                    (Poll::Ready(Some(item)), waiting)
                }
                None if state.senders == 0 || state.failed => (Poll::Ready(None), Vec::new()),
                None => {
                    state.receiver = Some(cx.waker().clone());
                    (Poll::Pending, Vec::new())
                }
            }
        };
        waiting.into_iter().for_each(Waker::wake);
        item
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.chan.close(Error::new(
            ErrorKind::Cancelled,
            "the receiver dropped the stream",
        ));
    }
}
