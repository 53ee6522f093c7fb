//! Who watches which keys: the registry behind [`KeyValue::watch`], and how
//! a change reaches each watcher without holding up the writer.
//!
//! [`KeyValue::watch`]: super::KeyValue::watch

use futures::FutureExt;
use rpc_core::stream::Sender;
use rpc_core::{Error, ErrorKind, Stream};

use super::Change;

/// The open watches of one store.
#[derive(Debug)]
pub(super) struct Watchers {
    list: Vec<Watcher>,
    buffer: usize,
}

#[derive(Debug)]
struct Watcher {
    prefix: String,
    sender: Sender<Change>,
}

/// What offering a change to a watcher came to.
enum Offer {
    /// Taken, or not the watcher's business.
    Kept,
    /// The watcher stopped reading (dropped its stream, lost its connection).
    Gone,
    /// Its buffer is full.
    Lagged,
}

impl Watchers {
    /// No watchers; each new one may leave `buffer` changes unread.
    pub(super) fn new(buffer: usize) -> Watchers {
        Watchers {
            list: Vec::new(),
            buffer: buffer.max(1),
        }
    }

    /// A new watch of the keys under `prefix`.
    pub(super) fn add(&mut self, prefix: String) -> Stream<Change> {
        let (sender, stream) = Stream::channel(self.buffer);
        self.list.push(Watcher { prefix, sender });
        stream
    }

    /// How many watches are open.
    pub(super) fn len(&self) -> usize {
        self.list.len()
    }

    /// Hands the change to `key` (made by `change`) to every watcher of
    /// `key`, without waiting: a watcher that has stopped is removed, and
    /// one whose buffer is full is ended with [`lagged`].
    pub(super) fn notify(&mut self, key: &str, change: impl Fn() -> Change) {
        let mut i = 0;
        while i < self.list.len() {
            match self.list[i].offer(key, &change) {
                Offer::Kept => i += 1,
                Offer::Gone => drop(self.list.swap_remove(i)),
                Offer::Lagged => {
                    let watcher = self.list.swap_remove(i);
                    let why = lagged(&watcher.prefix, self.buffer);
                    watcher.sender.fail(why);
                }
            }
        }
    }
}

impl Watcher {
    fn offer(&self, key: &str, change: impl Fn() -> Change) -> Offer {
        if self.sender.is_closed() {
            return Offer::Gone;
        }
        if !key.starts_with(&self.prefix) {
            return Offer::Kept;
        }
        // `send` waits only when the buffer is full; never wait here.
        match self.sender.send(change()).now_or_never() {
            Some(Ok(())) => Offer::Kept,
            Some(Err(_)) => Offer::Gone,
            None => Offer::Lagged,
        }
    }
}

/// The end a lagging watcher sees, after every change it was sent.
pub(super) fn lagged(prefix: &str, buffer: usize) -> Error {
    Error::new(
        ErrorKind::OverBudget,
        format!(
            "the watch of `{prefix}` lagged: {buffer} changes waited unread, \
             so it was ended rather than hold up writers or skip changes; \
             read the keys again and watch anew"
        ),
    )
}
