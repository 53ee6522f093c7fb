//! The OpenRPC document of a registry's services.

use serde_json::{Map, Value, json};

use crate::error::ErrorKind;
use crate::schema::Schemas;
use crate::service::{MethodInfo, ServiceInfo};

/// The OpenRPC version documents are written in (the meta-schema accepts
/// exact versions only).
pub const OPENRPC_VERSION: &str = "1.3.2";

/// The document's `info`: what the API is called and its version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Info {
    /// The API's title.
    pub title: String,
    /// The API's version.
    pub version: String,
}

impl Info {
    /// `title`, `version`.
    pub fn new(title: impl Into<String>, version: impl Into<String>) -> Info {
        Info {
            title: title.into(),
            version: version.into(),
        }
    }
}

/// The OpenRPC document of `services`: each method as `Service.method`,
/// its doc as `description`, its parameters (by position or by name:
/// `paramStructure: "either"`), its result, its errors (its own error type
/// at code -32000, then every kind of the error table, by reference), and
/// `x-idempotent`.
pub fn document<'a>(info: &Info, services: impl IntoIterator<Item = &'a ServiceInfo>) -> Value {
    let mut schemas = Schemas::new();
    let mut tags = Vec::new();
    let mut methods = Vec::new();
    for service in services {
        tags.push(tag(service));
        for method in service.methods {
            methods.push(method_object(service, method, &mut schemas));
        }
    }
    let mut info_object = json!({ "title": info.title, "version": info.version });
    if !tags.is_empty() {
        info_object["x-services"] = Value::Array(tags);
    }
    json!({
        "openrpc": OPENRPC_VERSION,
        "info": info_object,
        "methods": methods,
        "components": {
            "schemas": schemas.into_components(),
            "errors": error_table(),
        },
    })
}

fn tag(service: &ServiceInfo) -> Value {
    let mut tag = json!({ "name": service.name });
    if !service.doc.is_empty() {
        tag["description"] = json!(service.doc);
    }
    tag
}

fn method_object(service: &ServiceInfo, method: &MethodInfo, schemas: &mut Schemas) -> Value {
    let params: Vec<Value> = method
        .params
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "required": !p.ty.starts_with("Option<"),
                "schema": (p.schema)(schemas),
                "x-type": p.ty,
            })
        })
        .collect();
    let mut object = json!({
        "name": format!("{}.{}", service.name, method.name),
        "tags": [tag(service)],
        "params": params,
        "result": {
            "name": "result",
            "schema": (method.returns_schema)(schemas),
            "x-type": method.returns,
        },
        "errors": errors(method),
        "paramStructure": "either",
        "x-idempotent": method.idempotent,
        "x-signature": method.signature(),
    });
    if let Some(summary) = method.doc.lines().next().filter(|l| !l.is_empty()) {
        object["summary"] = json!(summary);
        object["description"] = json!(method.doc);
    }
    if let (Some(ty), Some(schema)) = (method.error, method.error_schema) {
        object["x-error"] = json!({ "name": ty, "schema": schema(schemas) });
    }
    if method.streams() {
        object["x-stream"] = json!({
            "takes": method.takes_stream,
            "returns": method.returns_stream,
        });
    }
    object
}

/// The method's own error first (its data is a value of its error type),
/// then the table's kinds that may answer any call.
fn errors(method: &MethodInfo) -> Vec<Value> {
    let own = method.error.map(|ty| {
        json!({
            "code": ErrorKind::Application.code(),
            "message": ty,
        })
    });
    own.into_iter()
        .chain(
            ErrorKind::ALL
                .iter()
                .filter(|k| **k != ErrorKind::Application)
                .map(|k| json!({ "$ref": format!("#/components/errors/{}", error_name(*k)) })),
        )
        .collect()
}

/// Every kind of the error table: its code and description, by name.
fn error_table() -> Map<String, Value> {
    ErrorKind::ALL
        .iter()
        .map(|k| {
            let error = json!({
                "code": k.code(),
                "message": k.describe(),
                "data": { "label": k.label(), "http_status": k.http_status() },
            });
            (error_name(*k), error)
        })
        .collect()
}

/// `MethodNotFound`: the kind's name, from its label.
fn error_name(kind: ErrorKind) -> String {
    kind.label()
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_are_the_kinds() {
        assert_eq!(error_name(ErrorKind::MethodNotFound), "MethodNotFound");
        assert_eq!(error_name(ErrorKind::Io), "Io");
        assert_eq!(error_table().len(), ErrorKind::ALL.len());
    }

    #[test]
    fn an_empty_registry_has_no_methods() {
        let doc = document(&Info::new("t", "1"), []);
        assert_eq!(doc["openrpc"], OPENRPC_VERSION);
        assert_eq!(doc["methods"], json!([]));
    }
}
