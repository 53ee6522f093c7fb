//! The JSON Schema of a parameter, result or error type, for the OpenRPC
//! document ([`crate::discover`]).
//!
//! A method's [`MethodInfo`](crate::service::MethodInfo) holds one
//! [`SchemaFn`] per type; `#[rpc_service]` picks, for each type, the first of:
//!
//! 1. its `schemars::JsonSchema` impl, with the `schema` feature on (user
//!    structs and enums: `#[derive(JsonSchema)]`);
//! 2. the built-in schema of [`Known`] types: primitives, `String`, `Vec`,
//!    `Option`, maps with string keys, tuples, [`Value`](crate::Value),
//!    [`Bytes`](crate::Bytes), [`Stream`](crate::Stream) (its impl is in
//!    [`crate::stream`]);
//! 3. `{"title": "<the type as written>"}`, which any value matches.
//!
//! Named schemas (a derived struct's, an enum's) are collected once in
//! [`Schemas`] and referred to as `#/components/schemas/Name`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde_json::{Map, Value, json};

/// Writes the JSON Schema of one type into `schemas`, returning it (or a
/// `$ref` to it).
pub type SchemaFn = fn(&mut Schemas) -> Value;

/// Where the named schemas of one document are gathered: its
/// `components.schemas`.
pub struct Schemas {
    #[cfg(feature = "schema")]
    generator: schemars::SchemaGenerator,
    #[cfg(not(feature = "schema"))]
    _none: (),
}

/// The JSON pointer a `$ref` to a named schema starts with.
pub const COMPONENTS: &str = "/components/schemas";

impl Schemas {
    /// An empty collection: draft-07 schemas, named ones under
    /// `#/components/schemas/`.
    pub fn new() -> Schemas {
        #[cfg(feature = "schema")]
        {
            let mut settings = schemars::generate::SchemaSettings::draft07();
            settings.definitions_path = COMPONENTS.into();
            settings.meta_schema = None;
            Schemas {
                generator: settings.into_generator(),
            }
        }
        #[cfg(not(feature = "schema"))]
        Schemas { _none: () }
    }

    /// `T`'s schema from its `JsonSchema` impl (feature `schema`).
    #[cfg(feature = "schema")]
    pub fn schemars<T: schemars::JsonSchema + ?Sized>(&mut self) -> Value {
        let mut schema = self.generator.subschema_for::<T>();
        for transform in self.generator.transforms_mut() {
            transform.transform(&mut schema);
        }
        schema.to_value()
    }

    /// The named schemas gathered so far, by name.
    pub fn into_components(self) -> Map<String, Value> {
        #[cfg(feature = "schema")]
        {
            let mut generator = self.generator;
            generator.take_definitions(true)
        }
        #[cfg(not(feature = "schema"))]
        Map::new()
    }
}

impl Default for Schemas {
    fn default() -> Schemas {
        Schemas::new()
    }
}

impl std::fmt::Debug for Schemas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schemas").finish_non_exhaustive()
    }
}

/// `{"title": ty}`: a type whose schema is not known, by its Rust name.
pub fn titled(ty: &str) -> Value {
    json!({ "title": ty })
}

/// The schema of a [`Known`] type, as a [`SchemaFn`] for hand-written
/// [`MethodInfo`](crate::service::MethodInfo)s: `schema: known::<String>`.
pub fn known<T: Known + ?Sized>(schemas: &mut Schemas) -> Value {
    T::schema(schemas)
}

/// `{}`, which any value matches: a [`SchemaFn`] for a hand-written
/// method that says nothing of a type.
pub fn untyped(_: &mut Schemas) -> Value {
    json!({})
}

/// A type whose schema the framework knows without `schemars`.
pub trait Known {
    /// Its schema; item types' schemas go through `schemas`.
    fn schema(schemas: &mut Schemas) -> Value;
}

macro_rules! known {
    ($($ty:ty => $schema:tt),* $(,)?) => {
        $(impl Known for $ty {
            fn schema(_: &mut Schemas) -> Value {
                json!($schema)
            }
        })*
    };
}

known! {
    bool => {"type": "boolean"},
    i8 => {"type": "integer", "format": "int8"},
    i16 => {"type": "integer", "format": "int16"},
    i32 => {"type": "integer", "format": "int32"},
    i64 => {"type": "integer", "format": "int64"},
    i128 => {"type": "integer", "format": "int128"},
    isize => {"type": "integer", "format": "int64"},
    u8 => {"type": "integer", "format": "uint8", "minimum": 0},
    u16 => {"type": "integer", "format": "uint16", "minimum": 0},
    u32 => {"type": "integer", "format": "uint32", "minimum": 0},
    u64 => {"type": "integer", "format": "uint64", "minimum": 0},
    u128 => {"type": "integer", "format": "uint128", "minimum": 0},
    usize => {"type": "integer", "format": "uint64", "minimum": 0},
    f32 => {"type": "number", "format": "float"},
    f64 => {"type": "number", "format": "double"},
    char => {"type": "string", "minLength": 1, "maxLength": 1},
    String => {"type": "string"},
    str => {"type": "string"},
    () => {"type": "null"},
    serde_json::Value => {},
    crate::value::Value => {},
    crate::blob::Bytes => {"type": "string", "contentEncoding": "base64"},
}

impl<T: Known + ?Sized> Known for &T {
    fn schema(schemas: &mut Schemas) -> Value {
        T::schema(schemas)
    }
}

impl<T: Known + ?Sized> Known for Box<T> {
    fn schema(schemas: &mut Schemas) -> Value {
        T::schema(schemas)
    }
}

impl<T: Known> Known for Option<T> {
    fn schema(schemas: &mut Schemas) -> Value {
        json!({ "anyOf": [T::schema(schemas), {"type": "null"}] })
    }
}

fn array_of<T: Known>(schemas: &mut Schemas, unique: bool) -> Value {
    let mut schema = json!({ "type": "array", "items": T::schema(schemas) });
    if unique {
        schema["uniqueItems"] = json!(true);
    }
    schema
}

impl<T: Known> Known for Vec<T> {
    fn schema(schemas: &mut Schemas) -> Value {
        array_of::<T>(schemas, false)
    }
}

impl<T: Known> Known for [T] {
    fn schema(schemas: &mut Schemas) -> Value {
        array_of::<T>(schemas, false)
    }
}

impl<T: Known, S> Known for HashSet<T, S> {
    fn schema(schemas: &mut Schemas) -> Value {
        array_of::<T>(schemas, true)
    }
}

impl<T: Known> Known for BTreeSet<T> {
    fn schema(schemas: &mut Schemas) -> Value {
        array_of::<T>(schemas, true)
    }
}

/// A map's keys are JSON object keys: strings, whatever their Rust type.
fn object_of<V: Known>(schemas: &mut Schemas) -> Value {
    json!({ "type": "object", "additionalProperties": V::schema(schemas) })
}

impl<K, V: Known, S> Known for HashMap<K, V, S> {
    fn schema(schemas: &mut Schemas) -> Value {
        object_of::<V>(schemas)
    }
}

impl<K, V: Known> Known for BTreeMap<K, V> {
    fn schema(schemas: &mut Schemas) -> Value {
        object_of::<V>(schemas)
    }
}

macro_rules! tuples {
    ($($len:literal: ($($t:ident),+)),* $(,)?) => {
        $(impl<$($t: Known),+> Known for ($($t,)+) {
            fn schema(schemas: &mut Schemas) -> Value {
                json!({
                    "type": "array",
                    "items": [$($t::schema(schemas)),+],
                    "minItems": $len,
                    "maxItems": $len,
                })
            }
        })*
    };
}

tuples! {
    1: (A),
    2: (A, B),
    3: (A, B, C),
    4: (A, B, C, D),
    5: (A, B, C, D, E),
    6: (A, B, C, D, E, F),
}

#[cfg(feature = "schema")]
mod schemars_impls {
    //! `JsonSchema` for the framework's own types, so that a user type
    //! holding one can derive it.

    use std::borrow::Cow;

    use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

    impl JsonSchema for crate::value::Value {
        fn schema_name() -> Cow<'static, str> {
            "Value".into()
        }

        fn inline_schema() -> bool {
            true
        }

        fn json_schema(_: &mut SchemaGenerator) -> Schema {
            json_schema!({})
        }
    }

    impl JsonSchema for crate::blob::Bytes {
        fn schema_name() -> Cow<'static, str> {
            "Bytes".into()
        }

        fn inline_schema() -> bool {
            true
        }

        fn json_schema(_: &mut SchemaGenerator) -> Schema {
            json_schema!({ "type": "string", "contentEncoding": "base64" })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_types_nest() {
        let mut schemas = Schemas::new();
        let schema = known::<Vec<Option<(String, i64)>>>(&mut schemas);
        assert_eq!(schema["type"], "array");
        assert_eq!(schema["items"]["anyOf"][0]["items"][1]["format"], "int64");
        assert_eq!(schema["items"]["anyOf"][1]["type"], "null");
    }

    #[test]
    fn maps_are_objects_of_their_values() {
        let mut schemas = Schemas::new();
        let schema = known::<BTreeMap<String, crate::blob::Bytes>>(&mut schemas);
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["additionalProperties"]["contentEncoding"], "base64");
    }
}
