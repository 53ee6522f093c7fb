//! How generated code finds a type's schema without asking the user for
//! anything: autoref specialisation over [`SchemaOf`], as
//! `(&&&SchemaOf::<T>::NEW).rpc_schema(schemas, "T")`, picks
//! [`ViaSchemars`] when `T: JsonSchema` (feature `schema`), else
//! [`ViaKnown`] when `T: Known`, else [`ViaTitle`]: `{"title": "T"}`.

use core::marker::PhantomData;

use serde_json::Value;

use crate::schema::{Known, Schemas, titled};

/// Stands for the type `T` in method lookup.
pub struct SchemaOf<T: ?Sized>(PhantomData<fn() -> Box<T>>);

impl<T: ?Sized> SchemaOf<T> {
    /// The one value.
    pub const NEW: SchemaOf<T> = SchemaOf(PhantomData);
}

/// Picked first: the type's `schemars::JsonSchema` impl (feature `schema`).
pub trait ViaSchemars {
    /// `T`'s schema.
    fn rpc_schema(&self, schemas: &mut Schemas, ty: &str) -> Value;
}

#[cfg(feature = "schema")]
impl<T: ?Sized + schemars::JsonSchema> ViaSchemars for &&SchemaOf<T> {
    fn rpc_schema(&self, schemas: &mut Schemas, _: &str) -> Value {
        schemas.schemars::<T>()
    }
}

/// Picked next: a type the framework knows.
pub trait ViaKnown {
    /// `T`'s schema.
    fn rpc_schema(&self, schemas: &mut Schemas, ty: &str) -> Value;
}

impl<T: ?Sized + Known> ViaKnown for &SchemaOf<T> {
    fn rpc_schema(&self, schemas: &mut Schemas, _: &str) -> Value {
        T::schema(schemas)
    }
}

/// The fallback: the type's name as written, as the schema's title.
pub trait ViaTitle {
    /// `{"title": ty}`.
    fn rpc_schema(&self, schemas: &mut Schemas, ty: &str) -> Value;
}

impl<T: ?Sized> ViaTitle for SchemaOf<T> {
    fn rpc_schema(&self, _: &mut Schemas, ty: &str) -> Value {
        titled(ty)
    }
}
