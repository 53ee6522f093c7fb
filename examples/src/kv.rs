//! The key-value store of the Python XML-RPC recipe, with dynamic values:
//! `set("spam", [1, 2, 3])` works as it does in Python.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

use rpc_core::{Value, rpc_service};
use serde::{Deserialize, Serialize};

/// Why a key-value call failed.
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
}

/// An in-memory [`KeyValue`] store.
#[derive(Debug, Default)]
pub struct MemoryStore {
    data: Mutex<BTreeMap<String, Value>>,
}

impl MemoryStore {
    fn data(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Value>> {
        self.data
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl KeyValue for MemoryStore {
    async fn get(&self, name: String) -> Result<Value, KvError> {
        self.data()
            .get(&name)
            .cloned()
            .ok_or(KvError::NotFound { key: name })
    }

    async fn set(&self, name: String, value: Value) {
        self.data().insert(name, value);
    }

    async fn delete(&self, name: String) -> Result<(), KvError> {
        self.data()
            .remove(&name)
            .map(drop)
            .ok_or(KvError::NotFound { key: name })
    }

    async fn exists(&self, name: String) -> bool {
        self.data().contains_key(&name)
    }

    async fn keys(&self) -> Vec<String> {
        self.data().keys().cloned().collect()
    }
}
