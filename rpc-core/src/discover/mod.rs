//! Discovery: the OpenRPC document of a registry's services, answered by
//! the framework's own method `rpc.discover` on every door.
//!
//! ```text
//! → {"jsonrpc":"2.0","id":1,"method":"rpc.discover"}
//! ← {"jsonrpc":"2.0","id":1,"result":{"openrpc":"1.3.2","info":{"title":…,"version":…},
//!      "methods":[{"name":"Calculator.add","summary":"Adds two numbers.",
//!        "params":[{"name":"x","required":true,"schema":{"type":"integer",…}},…],
//!        "result":{"name":"result","schema":{…}},
//!        "errors":[{"$ref":"#/components/errors/MethodNotFound"},…],
//!        "paramStructure":"either","x-idempotent":true},…],
//!      "components":{"schemas":{…},"errors":{…}}}}
//! ```
//!
//! The HTTP gateway serves the same document at `GET /openrpc.json`. Over
//! bincode the result is a [`Value`](crate::value::Value), which bincode reads back.
//!
//! Each parameter, result and error type has a schema ([`crate::schema`]):
//! built in for primitives, `String`, `Vec`, `Option`, maps, tuples,
//! [`Value`](crate::value::Value) and [`Bytes`](crate::Bytes); from
//! `schemars::JsonSchema` for user types with the `schema` feature on (the
//! macro finds the impl, nothing else to write); otherwise
//! `{"title": "<the Rust type>"}`. The document's `info` comes from
//! [`Registry::openrpc_info`](crate::Registry::openrpc_info).

pub mod document;

use std::sync::{Arc, OnceLock};

pub use crate::schema::{Known, SchemaFn, Schemas, known, untyped};
pub use document::{Info, OPENRPC_VERSION, document};

use crate::error::Error;
use crate::service::{BoxCall, MethodInfo, ServiceInfo, boxed};

/// The method's name: `rpc.discover`.
pub const METHOD: &str = "rpc.discover";

const DISCOVER: MethodInfo = MethodInfo {
    name: "discover",
    doc: "The OpenRPC document of this server's services.",
    params: &[],
    returns: "Value",
    error: None,
    returns_schema: untyped,
    error_schema: None,
    idempotent: true,
    takes_stream: false,
    returns_stream: false,
};

/// The framework's `rpc` service: `rpc.discover`.
pub(crate) static RPC: ServiceInfo = ServiceInfo {
    name: "rpc",
    doc: "The framework's own methods.",
    methods: &[DISCOVER],
};

/// The `rpc` service of one registry: the document of the services it had
/// when built, written on first call.
pub(crate) struct Discover {
    info: Info,
    services: Vec<&'static ServiceInfo>,
    document: OnceLock<Arc<crate::value::Value>>,
}

impl Discover {
    pub(crate) fn new(info: Info, services: Vec<&'static ServiceInfo>) -> Discover {
        Discover {
            info,
            services,
            document: OnceLock::new(),
        }
    }

    /// The document, written once.
    pub(crate) fn document(&self) -> Arc<crate::value::Value> {
        self.document
            .get_or_init(|| {
                let services = self.services.iter().copied();
                Arc::new(crate::value::Value(document(&self.info, services)))
            })
            .clone()
    }
}

/// `rpc.discover` takes no arguments: none, `[]` or `{}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, expecting = "no arguments")]
struct NoArgs {}

impl crate::Service for Discover {
    fn info(&self) -> &'static ServiceInfo {
        &RPC
    }

    fn call(
        &self,
        method: &str,
        args: &mut dyn erased_serde::Deserializer<'_>,
    ) -> Result<BoxCall, Error> {
        if method != DISCOVER.name {
            let name = format!("{}.{method}", RPC.name);
            return Err(Error::method_not_found(&name, METHOD));
        }
        let NoArgs {} = erased_serde::deserialize(args)
            .map_err(|e| Error::invalid_params(METHOD, crate::explain::readable(&e.to_string())))?;
        let document = self.document();
        Ok(boxed(async move {
            let document: crate::value::Value = (*document).clone();
            Ok(Box::new(document) as crate::service::Payload)
        }))
    }
}
