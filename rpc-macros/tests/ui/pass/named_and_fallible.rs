//! `name = "..."`, fallible methods, and a one-argument `Result` alias that
//! is not fallible. Implementations may return `impl Future` instead of
//! writing `async fn`.
#![deny(warnings)]

use std::future::Future;

use rpc_core::{CallError, Service, rpc_service};
use serde::{Deserialize, Serialize};

/// Why a lookup failed.
#[derive(Debug, Serialize, Deserialize)]
pub enum LookupError {
    /// There is no such key.
    Missing,
}

mod alias {
    pub type Result<T> = std::result::Result<T, String>;
}

/// Looks things up.
#[rpc_service(name = "kv")]
pub(crate) trait Store {
    /// Fallible, written out.
    async fn get(&self, key: String) -> Result<String, LookupError>;
    /// Fallible, fully qualified.
    async fn len(&self) -> std::result::Result<u64, String>;
    /// Not fallible: the alias has one argument, so the `Result` is the value.
    async fn raw(&self) -> alias::Result<u8>;
    /// A `'static` lifetime is owned enough.
    async fn label(&self) -> std::borrow::Cow<'static, str>;
}

struct Map;

impl Store for Map {
    async fn get(&self, _key: String) -> Result<String, LookupError> {
        Err(LookupError::Missing)
    }

    fn len(&self) -> impl Future<Output = Result<u64, String>> + Send {
        std::future::ready(Ok(0))
    }

    async fn raw(&self) -> alias::Result<u8> {
        Ok(1)
    }

    async fn label(&self) -> std::borrow::Cow<'static, str> {
        "map".into()
    }
}

#[allow(dead_code)]
async fn client_types(client: StoreClient) {
    let _: Result<String, CallError<LookupError>> = client.get("k".to_owned()).await;
    let _: Result<u64, CallError<String>> = client.len().await;
    let _: Result<alias::Result<u8>, rpc_core::Error> = client.raw().await;
}

fn main() {
    let info = StoreServer::new(Map).info();
    assert_eq!(info.name, "kv");
    assert_eq!(info.methods[0].error, Some("LookupError"));
    assert_eq!(info.methods[1].error, Some("String"));
    assert_eq!(info.methods[2].error, None);
    assert_eq!(info.methods[2].returns, "alias::Result<u8>");
    assert_eq!(info.methods[3].returns, "std::borrow::Cow<'static, str>");
}
