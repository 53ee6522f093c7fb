//! [`Streams`]: a connection's open streams by call id, each with the
//! inbox it receives into, the pump it sends with, or both.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use rpc_core::stream::{Control, End, Inbox, Source, Window};
use rpc_core::{Error, ErrorKind};
use tokio::task::AbortHandle;

use super::{Credit, Out, pump};

/// One connection's streams.
#[derive(Debug)]
pub(crate) struct Streams {
    table: Mutex<Table>,
    /// How many streams may be open at once (`max_streams`).
    max: usize,
    /// The window this side receives with.
    pub(crate) window: Window,
    /// The window the peer receives with.
    pub(crate) peer_window: Window,
}

#[derive(Debug, Default)]
struct Table {
    by_id: HashMap<u64, Entry>,
    /// Why the connection's streams were all ended; none opens after.
    closed: Option<(ErrorKind, String)>,
}

#[derive(Debug, Default)]
struct Entry {
    inbox: Option<Arc<Inbox>>,
    sending: Option<Sending>,
}

#[derive(Debug)]
struct Sending {
    credit: Arc<Credit>,
    task: Option<AbortHandle>,
}

impl Entry {
    fn is_empty(&self) -> bool {
        self.inbox.is_none() && self.sending.is_none()
    }
}

impl Streams {
    pub(crate) fn new(max: usize, window: Window, peer_window: Window) -> Streams {
        Streams {
            table: Mutex::default(),
            max,
            window,
            peer_window,
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many streams are open (each way counts once per call).
    pub(crate) fn open(&self) -> usize {
        self.table().by_id.len()
    }

    /// The refusal of a stream past `max_streams`, or on an ended connection.
    fn refuse(&self, table: &Table, id: u64) -> Option<Error> {
        if let Some((kind, why)) = &table.closed {
            return Some(Error::new(*kind, why.clone()));
        }
        let new = !table.by_id.contains_key(&id);
        (new && table.by_id.len() >= self.max).then(|| {
            Error::new(
                ErrorKind::OverBudget,
                format!(
                    "this connection has {} streams open, the most it may (max_streams)",
                    self.max
                ),
            )
        })
    }

    /// Whether one more stream may open.
    pub(crate) fn check_room(&self) -> Result<(), Error> {
        let table = self.table();
        match self.refuse(&table, u64::MAX) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Opens the inbox of stream `id`, which the peer sends.
    pub(crate) fn receive(
        &self,
        id: u64,
        codec: &'static dyn rpc_core::Codec,
        control: Arc<dyn Control>,
    ) -> Result<Arc<Inbox>, Error> {
        let mut table = self.table();
        if let Some(e) = self.refuse(&table, id) {
            return Err(e);
        }
        let inbox = Inbox::new(id, codec, self.window, control);
        table.by_id.entry(id).or_default().inbox = Some(inbox.clone());
        Ok(inbox)
    }

    /// Starts sending `source` as stream `id`; on refusal, closes it with
    /// the reason and returns it.
    pub(crate) fn send(
        self: &Arc<Self>,
        id: u64,
        source: Box<dyn Source>,
        out: Arc<dyn Out>,
    ) -> Result<(), Error> {
        let credit = Arc::new(Credit::new(self.peer_window));
        let mut table = self.table();
        if let Some(e) = self.refuse(&table, id) {
            source.close(Error::new(e.kind(), e.message()));
            return Err(e);
        }
        let streams = Arc::downgrade(self);
        let mine = credit.clone();
        // Spawned under the lock, so that a cancel or the connection's end
        // always finds the task to abort.
        let task = tokio::spawn(async move {
            pump(id, source, mine.clone(), out).await;
            if let Some(streams) = streams.upgrade() {
                streams.sent(id, &mine);
            }
        });
        let replaced = table.by_id.entry(id).or_default().sending.replace(Sending {
            credit,
            task: Some(task.abort_handle()),
        });
        drop(table);
        // A call that reused the id of a stream still being sent: that
        // stream stops, rather than run on where no cancel reaches it.
        if let Some(old) = replaced {
            let why = Error::new(
                ErrorKind::InvalidRequest,
                "a new call reused this stream's id",
            );
            stop(old, &why);
        }
        Ok(())
    }

    /// Items of stream `id` arrived. Unknown streams are ignored (a race
    /// with a cancel, or a peer's mistake, which costs it nothing held);
    /// past its credit, the stream ends and the error is returned for the
    /// caller to cancel it at the peer.
    pub(crate) fn items(
        &self,
        id: u64,
        frame: &Bytes,
        items: std::ops::Range<usize>,
        count: u32,
    ) -> Result<(), Error> {
        let inbox = self.table().by_id.get(&id).and_then(|e| e.inbox.clone());
        let Some(inbox) = inbox else { return Ok(()) };
        if items.end > frame.len() || items.start > items.end {
            return Ok(());
        }
        let pushed = inbox.push(frame.clone(), items, count);
        if pushed.is_err() {
            self.forget_inbox(id);
        }
        pushed
    }

    /// The peer ended stream `id`; a second end, or one for a stream not
    /// open, is ignored.
    pub(crate) fn end(&self, id: u64, end: End) {
        let inbox = {
            let mut table = self.table();
            let Some(entry) = table.by_id.get_mut(&id) else {
                return;
            };
            let inbox = entry.inbox.take();
            if entry.is_empty() {
                table.by_id.remove(&id);
            }
            inbox
        };
        if let Some(inbox) = inbox {
            inbox.finish(end);
        }
    }

    /// The peer granted credit on stream `id`.
    pub(crate) fn credit(&self, id: u64, items: u64, bytes: u64) {
        let credit = self
            .table()
            .by_id
            .get(&id)
            .and_then(|e| e.sending.as_ref())
            .map(|s| s.credit.clone());
        if let Some(credit) = credit {
            credit.grant(items, bytes);
        }
    }

    /// Stops sending stream `id` (the peer cancelled it, or its call
    /// ended): its producer is dropped, told `why`. Returns whether it was
    /// being sent.
    pub(crate) fn stop_sending(&self, id: u64, why: &Error) -> bool {
        let sending = {
            let mut table = self.table();
            let Some(entry) = table.by_id.get_mut(&id) else {
                return false;
            };
            let sending = entry.sending.take();
            if entry.is_empty() {
                table.by_id.remove(&id);
            }
            sending
        };
        match sending {
            Some(sending) => {
                stop(sending, why);
                true
            }
            None => false,
        }
    }

    /// Forgets the inbox of stream `id` (its consumer let go of it).
    pub(crate) fn forget_inbox(&self, id: u64) {
        let mut table = self.table();
        if let Some(entry) = table.by_id.get_mut(&id) {
            entry.inbox = None;
            if entry.is_empty() {
                table.by_id.remove(&id);
            }
        }
    }

    /// The pump of stream `id` (with `credit`) finished.
    fn sent(&self, id: u64, credit: &Arc<Credit>) {
        let mut table = self.table();
        if let Some(entry) = table.by_id.get_mut(&id) {
            if !entry
                .sending
                .as_ref()
                .is_some_and(|s| Arc::ptr_eq(&s.credit, credit))
            {
                return;
            }
            entry.sending = None;
            if entry.is_empty() {
                table.by_id.remove(&id);
            }
        }
    }

    /// Ends every stream with `why`: inboxes end with it, producers are
    /// dropped, told it. No stream opens after. Returns the ids of the
    /// streams this side was sending and of those it was receiving, for
    /// the caller to tell the peer.
    pub(crate) fn close_all(&self, why: &Error) -> (Vec<u64>, Vec<u64>) {
        let entries: Vec<(u64, Entry)> = {
            let mut table = self.table();
            table
                .closed
                .get_or_insert((why.kind(), why.message().to_owned()));
            table.by_id.drain().collect()
        };
        let (mut sending, mut receiving) = (Vec::new(), Vec::new());
        for (id, entry) in entries {
            if let Some(inbox) = entry.inbox {
                inbox.finish(Err(Error::new(why.kind(), why.message())));
                receiving.push(id);
            }
            if let Some(s) = entry.sending {
                stop(s, why);
                sending.push(id);
            }
        }
        (sending, receiving)
    }

    /// Ends every stream with `why`, but lets new ones open (a shutdown's
    /// grace is over, but the connection stays to answer).
    pub(crate) fn end_all(&self, why: &Error) -> (Vec<u64>, Vec<u64>) {
        let ids = self.close_all(why);
        self.table().closed = None;
        ids
    }
}

fn stop(sending: Sending, why: &Error) {
    sending.credit.stop(why);
    if let Some(task) = sending.task {
        task.abort();
    }
}
