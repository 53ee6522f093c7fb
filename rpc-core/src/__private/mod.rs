//! What generated code needs beyond the public API. Not a stable interface.
//!
//! The same for every service: generated code only names these items
//! (`::rpc_core::__private::…`) and defines nothing of its own but the
//! service's argument structs, its `ServiceInfo` and its impls.
//!
//! [`Wire`], [`assert_wire`] and [`Probe`] (in `probe.rs`) check that a
//! service's types can cross the wire, so that a type that cannot is
//! reported once, on the type the user wrote.

pub use erased_serde;
pub use serde;

mod probe;
mod schema;

pub use probe::{Probe, Serde, ViaNever, ViaWire, Wire, assert_wire};
pub use schema::{SchemaOf, ViaKnown, ViaSchemars, ViaTitle};

pub use crate::schema::{SchemaFn, Schemas};

pub use crate::service::{BoxCall, BoxFuture, MethodInfo, ParamInfo, Payload, Reply, ServiceInfo};

use crate::error::Error;
use crate::service::Fault;

/// Decodes a method's argument struct from the caller's deserializer.
pub fn decode_args<T: serde::de::DeserializeOwned>(
    method: &str,
    args: &mut dyn erased_serde::Deserializer<'_>,
) -> Result<T, Error> {
    erased_serde::deserialize(args)
        .map_err(|e| Error::invalid_params(method, crate::explain::readable(&e.to_string())))
}

/// A successful reply.
pub fn ok<T: serde::Serialize + Send + 'static>(value: T) -> Reply {
    Ok(Box::new(value))
}

/// An application error reply: `message` describes it, `error` is its data.
pub fn app_error<E: serde::Serialize + Send + 'static>(message: String, error: E) -> Reply {
    Err(Fault::application(message, Box::new(error)))
}

/// The error for a method name the service does not have.
pub fn unknown_method(service: &'static ServiceInfo, method: &str) -> Error {
    let known: Vec<&str> = service.methods.iter().map(|m| m.name).collect();
    Error::method_not_found(&format!("{}.{method}", service.name), &known.join(", "))
}

/// Describes an application error: by `Display` when it has one, else by its
/// type name. Used as `(&Describe(&e)).rpc_describe()`, which picks
/// [`ViaDisplay`] when `E: Display` (autoref specialisation).
pub struct Describe<'a, E>(pub &'a E);

/// Picked when the error implements `Display`.
pub trait ViaDisplay {
    /// The error's `Display` text.
    fn rpc_describe(&self) -> String;
}

impl<E: core::fmt::Display> ViaDisplay for Describe<'_, E> {
    fn rpc_describe(&self) -> String {
        self.0.to_string()
    }
}

/// The fallback: the error's type name.
pub trait ViaTypeName {
    /// The error's type name.
    fn rpc_describe(&self) -> String;
}

impl<E> ViaTypeName for &Describe<'_, E> {
    fn rpc_describe(&self) -> String {
        core::any::type_name::<E>().to_owned()
    }
}
