//! The OpenRPC document `rpc.discover` answers, checked without a socket:
//! the calculator's and the store's validate against the official OpenRPC
//! meta-schema (vendored from the npm packages `@open-rpc/meta-schema` and
//! `@json-schema-tools/meta-schema` under `tests/data/openrpc/`, validated
//! as draft-07 and offline), and every method, parameter, result, error
//! and mark is where a client generator looks for it.

#[path = "common/openrpc.rs"]
mod openrpc;

use examples::calculator::{Calc, CalculatorServer};
use examples::kv::{KeyValueServer, MemoryStore};
use rpc_core::Registry;
use serde_json::{Value, json};

use openrpc::violations;

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .register(CalculatorServer::new(Calc))
        .and_then(|r| r.register(KeyValueServer::new(MemoryStore::default())))
        .expect("registers");
    registry
}

fn method<'a>(document: &'a Value, name: &str) -> &'a Value {
    document["methods"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["name"] == name))
        .unwrap_or_else(|| panic!("{name} is in the document"))
}

#[test]
fn calculator_and_kv_documents_validate_against_the_openrpc_meta_schema() {
    let document = registry().openrpc();
    assert_eq!(violations(&document), "", "{document:#}");
    assert_eq!(document["openrpc"], "1.3.2");
    assert_eq!(document["info"]["title"], "Calculator, KeyValue");
}

#[test]
fn the_meta_schema_refuses_a_broken_document() {
    let mut document = registry().openrpc();
    document["openrpc"] = json!("9.9.9");
    document["methods"][0]["params"][0]
        .as_object_mut()
        .expect("a content descriptor")
        .remove("schema");
    let found = violations(&document);
    assert!(found.contains("9.9.9"), "{found}");
    assert!(found.contains("/methods/0"), "{found}");
}

#[test]
fn each_method_is_named_documented_and_typed() {
    let document = registry().openrpc();
    let add = method(&document, "Calculator.add");
    assert_eq!(add["summary"], "Adds two numbers.");
    assert_eq!(add["paramStructure"], "either");
    assert_eq!(add["x-idempotent"], true);
    assert_eq!(add["params"][0]["name"], "x");
    assert_eq!(add["params"][0]["required"], true);
    assert_eq!(add["params"][1]["schema"]["type"], "integer");
    assert_eq!(add["result"]["schema"]["type"], "integer");
    assert_eq!(add["x-signature"], "add(x: i64, y: i64) -> i64");
    let div = method(&document, "Calculator.div");
    assert_eq!(div["x-idempotent"], false);
    let set = method(&document, "KeyValue.set");
    assert_eq!(
        set["params"][1]["schema"],
        json!({}),
        "a Value is any value"
    );
    assert_eq!(set["result"]["schema"]["type"], "null");
    let keys = method(&document, "KeyValue.keys");
    assert_eq!(keys["result"]["schema"]["items"]["type"], "string");
}

#[test]
fn errors_are_the_method_s_own_then_the_table() {
    let document = registry().openrpc();
    let div = method(&document, "Calculator.div");
    assert_eq!(
        div["errors"][0],
        json!({"code": -32000, "message": "MathError"})
    );
    assert_eq!(div["x-error"]["name"], "MathError");
    assert_eq!(
        div["x-error"]["schema"]["$ref"],
        "#/components/schemas/MathError"
    );
    let math = &document["components"]["schemas"]["MathError"];
    let variants = math.to_string();
    assert!(
        variants.contains("DivideByZero") && variants.contains("Overflow"),
        "{math}"
    );
    let refs: Vec<&str> = div["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["$ref"].as_str())
        .collect();
    assert_eq!(refs.len(), rpc_core::ErrorKind::ALL.len() - 1);
    assert!(
        refs.contains(&"#/components/errors/MethodNotFound"),
        "{refs:?}"
    );
    let not_found = &document["components"]["errors"]["MethodNotFound"];
    assert_eq!(not_found["code"], -32601);
    let add = method(&document, "Calculator.add");
    assert!(
        add["errors"][0]["$ref"].is_string(),
        "add has no error of its own"
    );
}

#[test]
fn the_info_comes_from_the_registry() {
    let mut registry = registry();
    registry.openrpc_info("Shop floor", "2.1.0");
    let document = registry.openrpc();
    assert_eq!(document["info"]["title"], "Shop floor");
    assert_eq!(document["info"]["version"], "2.1.0");
    assert_eq!(violations(&document), "");
}

/// A point, described by schemars.
#[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Point {
    /// Across.
    pub x: f64,
    /// Down.
    pub y: f64,
}

/// A shape nobody described.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Blob {
    /// What is in it.
    pub inside: String,
}

/// Types of every kind, to see each one's schema.
#[rpc_core::rpc_service]
pub trait Shapes {
    /// A derived type, a type without a schema, built-in ones.
    async fn mix(
        &self,
        point: Point,
        blob: Blob,
        maybe: Option<u32>,
        pair: (String, bool),
        table: std::collections::HashMap<String, Vec<i8>>,
        data: rpc_core::Bytes,
    ) -> Vec<Point>;
}

struct Nothing;

impl Shapes for Nothing {
    async fn mix(
        &self,
        _: Point,
        _: Blob,
        _: Option<u32>,
        _: (String, bool),
        _: std::collections::HashMap<String, Vec<i8>>,
        _: rpc_core::Bytes,
    ) -> Vec<Point> {
        Vec::new()
    }
}

#[test]
fn schemas_come_from_schemars_the_built_ins_or_the_type_s_name() {
    let registry = Registry::new()
        .with(ShapesServer::new(Nothing))
        .expect("registers");
    let document = registry.openrpc();
    assert_eq!(violations(&document), "", "{document:#}");
    let mix = method(&document, "Shapes.mix");
    let schema = |i: usize| &mix["params"][i]["schema"];
    assert_eq!(schema(0)["$ref"], "#/components/schemas/Point");
    assert_eq!(
        document["components"]["schemas"]["Point"]["properties"]["x"]["type"],
        "number"
    );
    assert_eq!(*schema(1), json!({"title": "Blob"}));
    assert_eq!(mix["params"][2]["required"], false);
    assert!(schema(2).to_string().contains(r#""null""#), "{}", schema(2));
    assert_eq!(schema(3)["items"][1]["type"], "boolean");
    assert_eq!(
        schema(4)["additionalProperties"]["items"]["type"],
        "integer"
    );
    assert_eq!(schema(5)["contentEncoding"], "base64");
    assert_eq!(
        mix["result"]["schema"]["items"]["$ref"],
        "#/components/schemas/Point"
    );
}
