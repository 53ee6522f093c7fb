//! The official OpenRPC meta-schema, for tests that check a document
//! against it: vendored from the npm packages `@open-rpc/meta-schema` and
//! `@json-schema-tools/meta-schema` under `tests/data/openrpc/`, validated
//! as draft-07 and offline.

use std::sync::LazyLock;

use jsonschema::{Draft, Registry as Schemas, Resource, Validator};
use serde_json::Value;

const OPENRPC: &str = include_str!("../../data/openrpc/openrpc-meta-schema.json");
const JSON_SCHEMA_TOOLS: &str =
    include_str!("../../data/openrpc/json-schema-tools-meta-schema.json");

/// The OpenRPC meta-schema, its `https://meta.json-schema.tools` refs
/// answered from the vendored copy (never fetched).
static META: LazyLock<Validator> = LazyLock::new(|| {
    let tools: Value = serde_json::from_str(JSON_SCHEMA_TOOLS).expect("vendored JSON");
    let openrpc: Value = serde_json::from_str(OPENRPC).expect("vendored JSON");
    let registry = Schemas::new()
        .add(
            "https://meta.json-schema.tools/",
            Draft::Draft7.create_resource(tools.clone()),
        )
        .and_then(|r| {
            r.add(
                "https://meta.json-schema.tools",
                Resource::from_contents(tools),
            )
        })
        .and_then(|r| r.prepare())
        .expect("the vendored meta-schemas register");
    jsonschema::options()
        .with_draft(Draft::Draft7)
        .with_registry(Box::leak(Box::new(registry)))
        .build(&openrpc)
        .expect("the OpenRPC meta-schema compiles")
});

/// Every way `document` breaks the meta-schema, one per line.
pub(crate) fn violations(document: &Value) -> String {
    META.iter_errors(document)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect::<Vec<_>>()
        .join("\n")
}
