//! [`Streams`]: a connection's open streams by call id, each with the
//! inbox it receives into, the pump it sends with, or both.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use rpc_core::stream::{Control, End, Inbox, Source, Window};
use rpc_core::{Error, ErrorKind};
use tokio::task::AbortHandle;

use super::{Credit, Out, pump};
use crate::metrics::{Direction, Gauge, Metrics};

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
    /// A server's counters; none on a client.
    metrics: Option<Arc<Metrics>>,
    /// How many streams this side sends: read without the lock, so that
    /// an answered call need not take it to learn it had none.
    sending: AtomicUsize,
    /// How many entries the table has, as of the last time it was let go
    /// of: read without the lock by the connection's loop each turn and by
    /// every request, most of which meet no stream.
    open: AtomicUsize,
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
    /// Counts the stream open while the entry lives.
    _open: Option<Gauge>,
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
    pub(crate) fn new(
        max: usize,
        window: Window,
        peer_window: Window,
        metrics: Option<Arc<Metrics>>,
    ) -> Streams {
        Streams {
            table: Mutex::default(),
            max,
            window,
            peer_window,
            metrics,
            sending: AtomicUsize::new(0),
            open: AtomicUsize::new(0),
        }
    }

    /// The entry of stream `id`, made (and counted open) if new.
    fn entry<'t>(&self, table: &'t mut Table, id: u64) -> &'t mut Entry {
        table.by_id.entry(id).or_insert_with(|| Entry {
            _open: self.metrics.as_ref().map(|m| m.stream_opened()),
            ..Entry::default()
        })
    }

    /// Whether `id` names an open stream: a new call may not take its id.
    pub(crate) fn contains(&self, id: u64) -> bool {
        self.open() > 0 && self.table().by_id.contains_key(&id)
    }

    /// The table, locked; letting go of it records its size in `open`.
    fn table(&self) -> Locked<'_> {
        Locked {
            table: self.table.lock().unwrap_or_else(|p| p.into_inner()),
            open: &self.open,
        }
    }

    /// How many streams are open (each way counts once per call).
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
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
        if table.by_id.get(&id).is_some_and(|e| e.inbox.is_some()) {
            return Err(in_use(id));
        }
        let inbox = Inbox::new(id, codec, self.window, control);
        self.entry(&mut table, id).inbox = Some(inbox.clone());
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
        let credit = Arc::new(Credit::new(self.peer_window, self.metrics.clone()));
        let mut table = self.table();
        let refused = self.refuse(&table, id).or_else(|| {
            let busy = table.by_id.get(&id).is_some_and(|e| e.sending.is_some());
            busy.then(|| in_use(id))
        });
        if let Some(e) = refused {
            drop(table);
            source.close(Error::new(e.kind(), e.message()));
            return Err(e);
        }
        // Spawned under the lock, so that a cancel racing the open finds
        // the task to abort.
        let streams = Arc::downgrade(self);
        let pumping = credit.clone();
        let task = tokio::spawn(async move {
            pump(id, source, pumping.clone(), out).await;
            if let Some(streams) = streams.upgrade() {
                streams.sent(id, &pumping);
            }
        });
        self.sending.fetch_add(1, Ordering::AcqRel);
        self.entry(&mut table, id).sending = Some(Sending {
            credit,
            task: Some(task.abort_handle()),
        });
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
        let Some(held) = frame.get(items) else {
            return Ok(());
        };
        // Copied: a slice would keep the whole read buffer it was cut from
        // alive while the items wait, far more than the credit charged.
        let held = Bytes::copy_from_slice(held);
        let len = held.len();
        let pushed = inbox.push(held, 0..len, count);
        match &pushed {
            Ok(()) => {
                if let Some(metrics) = &self.metrics {
                    metrics.add_stream_items(Direction::Received, u64::from(count));
                }
            }
            Err(_) => self.forget_inbox(id, Some(&inbox)),
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
        if self.sending.load(Ordering::Acquire) == 0 {
            return false;
        }
        let sending = {
            let mut table = self.table();
            let Some(entry) = table.by_id.get_mut(&id) else {
                return false;
            };
            let sending = entry.sending.take();
            if sending.is_some() {
                self.sending.fetch_sub(1, Ordering::AcqRel);
            }
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
    /// Forgets the inbox of stream `id`: `which`, if named (not a newer
    /// one that took its id since), else whichever it is.
    pub(crate) fn forget_inbox(&self, id: u64, which: Option<&Inbox>) {
        let mut table = self.table();
        if let Some(entry) = table.by_id.get_mut(&id) {
            let same = |held: &Arc<Inbox>| which.is_none_or(|w| std::ptr::eq(Arc::as_ptr(held), w));
            if !entry.inbox.as_ref().is_some_and(same) {
                return;
            }
            entry.inbox = None;
            if entry.is_empty() {
                table.by_id.remove(&id);
            }
        }
    }

    /// The pump of stream `id`, sending with `credit`, finished (a newer
    /// stream under the same id is left alone).
    fn sent(&self, id: u64, credit: &Arc<Credit>) {
        let mut table = self.table();
        if let Some(entry) = table.by_id.get_mut(&id) {
            let same = entry
                .sending
                .as_ref()
                .is_some_and(|s| Arc::ptr_eq(&s.credit, credit));
            if !same {
                return;
            }
            if entry.sending.take().is_some() {
                self.sending.fetch_sub(1, Ordering::AcqRel);
            }
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
                self.sending.fetch_sub(1, Ordering::AcqRel);
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

/// The locked table, which records its size when let go of.
struct Locked<'a> {
    table: MutexGuard<'a, Table>,
    open: &'a AtomicUsize,
}

impl std::ops::Deref for Locked<'_> {
    type Target = Table;

    fn deref(&self) -> &Table {
        &self.table
    }
}

impl std::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Table {
        &mut self.table
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        self.open.store(self.table.by_id.len(), Ordering::Release);
    }
}

fn in_use(id: u64) -> Error {
    Error::new(
        ErrorKind::InvalidRequest,
        format!("id {id} names a stream still open; a call needs an id of its own"),
    )
}

fn stop(sending: Sending, why: &Error) {
    sending.credit.stop(why);
    if let Some(task) = sending.task {
        task.abort();
    }
}
