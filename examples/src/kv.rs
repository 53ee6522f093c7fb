//! The key-value store of the Python XML-RPC recipe, with dynamic values:
//! `set("spam", [1, 2, 3])` works as it does in Python. It also streams:
//! [`KeyValue::watch`] sends every change under a prefix as it happens, and
//! [`KeyValue::set_many`] stores every pair a client streams to it.
//!
//! ```ignore
//! let mut changes = kv.watch("user/".into()).await?; // the server has registered the watch
//! while let Some(change) = changes.next().await {
//!     println!("{change:?}");                           // Change::Set { .. } or Change::Delete { .. }
//! }
//! println!("ended: {:?}", changes.end());              // why: see "Watchers that fall behind"
//! let stored = kv.set_many(Stream::iter(pairs)).await?;
//! ```
//!
//! # Watchers that fall behind
//!
//! A `set` never waits for a watcher. Each watch has a buffer of
//! [`DEFAULT_WATCH_BUFFER`] changes ([`MemoryStore::with_watch_buffer`]),
//! on top of the stream's window on the connection (4096 items by
//! default). When a watcher reads so slowly that its buffer is full, the
//! store ends its watch: the watcher receives every change sent before
//! then, in order, and then the end `Err` of kind
//! [`ErrorKind::OverBudget`](rpc_core::ErrorKind::OverBudget) whose message
//! says the watch lagged. Changes are never skipped silently and a slow
//! watcher never holds up writers; a watcher that sees this end reads the
//! keys again and watches anew. A watch whose receiver has gone (dropped
//! stream, lost connection) is removed at the next change.

mod watchers;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use rpc_core::{Stream, Value, rpc_service};
use serde::{Deserialize, Serialize};

use self::watchers::Watchers;

/// How many changes a watcher may leave unread, beyond what its stream's
/// window on the connection holds, before its watch is ended as lagging.
pub const DEFAULT_WATCH_BUFFER: usize = 1024;

/// One change to the store, as [`KeyValue::watch`] sends it. In JSON:
/// `{"Set":{"key":"a/1","value":"x"}}` or `{"Delete":{"key":"a/1"}}`.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Change {
    /// `value` was stored under `key`.
    Set {
        /// The key.
        key: String,
        /// The value now stored.
        value: Value,
    },
    /// The value under `key` was removed.
    Delete {
        /// The key.
        key: String,
    },
}

/// Why a key-value call failed.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvError {
    /// No value is stored under `key`.
    NotFound {
        /// The key asked for.
        key: String,
    },
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvError::NotFound { key } => write!(f, "no value is stored under `{key}`"),
        }
    }
}

impl std::error::Error for KvError {}

/// A store of dynamic values by name.
#[rpc_service]
pub trait KeyValue {
    /// The value stored under `name`.
    #[rpc(idempotent)]
    async fn get(&self, name: String) -> Result<Value, KvError>;

    /// Stores `value` under `name`, replacing what was there.
    async fn set(&self, name: String, value: Value);

    /// Removes the value stored under `name`.
    async fn delete(&self, name: String) -> Result<(), KvError>;

    /// Whether a value is stored under `name`.
    #[rpc(idempotent)]
    async fn exists(&self, name: String) -> bool;

    /// Every name with a value, in order.
    #[rpc(idempotent)]
    async fn keys(&self) -> Vec<String>;

    /// Every change under `prefix`, as it happens, from the moment the call
    /// returns. Ends with an `OverBudget` error if the watcher falls
    /// [`DEFAULT_WATCH_BUFFER`] changes behind (see the module docs).
    #[rpc(idempotent)]
    async fn watch(&self, prefix: String) -> rpc_core::Stream<Change>;

    /// Stores every pair it is sent; returns how many.
    async fn set_many(&self, pairs: rpc_core::Stream<(String, Value)>) -> u64;
}

/// An in-memory [`KeyValue`] store. Clones share the same store.
#[derive(Clone, Debug)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

/// The values and who watches them, under one lock so that watchers see
/// the changes in the order they were made.
#[derive(Debug)]
struct State {
    data: BTreeMap<String, Value>,
    watchers: Watchers,
}

impl Default for MemoryStore {
    fn default() -> MemoryStore {
        MemoryStore::with_watch_buffer(DEFAULT_WATCH_BUFFER)
    }
}

impl MemoryStore {
    /// An empty store whose watchers may each leave `buffer` changes
    /// unread before their watch is ended as lagging.
    pub fn with_watch_buffer(buffer: usize) -> MemoryStore {
        let state = State {
            data: BTreeMap::new(),
            watchers: Watchers::new(buffer),
        };
        MemoryStore {
            state: Arc::new(Mutex::new(state)),
        }
    }

    /// How many watches are registered (a watch whose receiver has gone is
    /// counted until the next change removes it).
    pub fn watchers(&self) -> usize {
        self.state().watchers.len()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn store(&self, key: String, value: Value) {
        let mut state = self.state();
        state.watchers.notify(&key, || Change::Set {
            key: key.clone(),
            value: value.clone(),
        });
        state.data.insert(key, value);
    }
}

impl KeyValue for MemoryStore {
    async fn get(&self, name: String) -> Result<Value, KvError> {
        self.state()
            .data
            .get(&name)
            .cloned()
            .ok_or(KvError::NotFound { key: name })
    }

    async fn set(&self, name: String, value: Value) {
        self.store(name, value);
    }

    async fn delete(&self, name: String) -> Result<(), KvError> {
        let mut state = self.state();
        if state.data.remove(&name).is_none() {
            return Err(KvError::NotFound { key: name });
        }
        state
            .watchers
            .notify(&name, || Change::Delete { key: name.clone() });
        Ok(())
    }

    async fn exists(&self, name: String) -> bool {
        self.state().data.contains_key(&name)
    }

    async fn keys(&self) -> Vec<String> {
        self.state().data.keys().cloned().collect()
    }

    async fn watch(&self, prefix: String) -> Stream<Change> {
        self.state().watchers.add(prefix)
    }

    async fn set_many(&self, mut pairs: Stream<(String, Value)>) -> u64 {
        let mut stored = 0;
        while let Some((key, value)) = pairs.next().await {
            self.store(key, value);
            stored += 1;
        }
        stored
    }
}
