//! A stream's schema in the OpenRPC document: described by its items, as
//! over JSON each arrives as one value (an SSE event, a WebSocket
//! notification).

use serde_json::{Value, json};

use super::Stream;
use crate::schema::{Known, Schemas};

impl<T: Known> Known for Stream<T> {
    fn schema(schemas: &mut Schemas) -> Value {
        json!({ "type": "array", "items": T::schema(schemas), "x-stream": true })
    }
}

#[cfg(feature = "schema")]
impl<T: schemars::JsonSchema> schemars::JsonSchema for Stream<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("Stream_of_{}", T::schema_name()).into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "array",
            "items": generator.subschema_for::<T>(),
            "x-stream": true,
        })
    }
}
