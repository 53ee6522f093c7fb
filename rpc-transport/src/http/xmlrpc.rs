//! `POST /RPC2`: XML-RPC, as Python's `xmlrpc.client.ServerProxy` speaks it.
//!
//! ```text
//! → <methodCall><methodName>get</methodName><params><param><value><string>spam</string></value></param></params></methodCall>
//! ← <methodResponse><params><param><value><array><data>…</data></array></value></param></params></methodResponse>
//! ← <methodResponse><fault><value><struct>
//!     <member><name>faultCode</name><value><int>1</int></value></member>
//!     <member><name>faultString</name><value><string>KvError: no value is stored under `spam` {"NotFound":{"key":"spam"}}</string></value></member>
//!   </struct></value></fault></methodResponse>
//! ```
//!
//! Method names resolve as in the registry (`KeyValue.get`, or a bare `get`
//! when only one service has it). A unit result is `<nil/>`, which Python
//! reads with `allow_none=True`. `faultCode` comes from
//! [`rpc_core::ErrorKind::xmlrpc_fault`]; `faultString` names the error:
//! the method's error type, its message and its data as JSON, or for a
//! framework failure its kind and message. A response larger than the
//! server's `max_frame_bytes` is an over-budget fault instead; there is no
//! `system.multicall`, so one request gets at most one result. The
//! introspection methods `system.listMethods`, `system.methodSignature` and
//! `system.methodHelp` answer from the services' descriptions.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rpc_core::service::{Fault, MethodInfo, Reply, panic_message};
use rpc_core::{Error, ErrorKind};

use super::Gateway;
use super::reply::{body_or_error, reply_too_large, status_of, to_json};
use super::xml_de::Params;
use super::xml_read::read_call;
use super::xml_ser::to_xml_value;
use super::xml_value::XmlValue;

const TEXT_XML: HeaderValue = HeaderValue::from_static("text/xml; charset=utf-8");

/// The introspection methods, answered by the gateway itself.
const SYSTEM: &[&str] = &[
    "system.listMethods",
    "system.methodSignature",
    "system.methodHelp",
];

/// Answers one `POST /RPC2`.
pub(crate) async fn handle(
    State(gateway): State<Arc<Gateway>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let call = match body_or_error(body).and_then(|body| read_call(&body)) {
        Ok(call) => call,
        Err(e) => return refuse(e),
    };
    let name = call.name;
    let outcome = if name.starts_with("system.") {
        system(&gateway, &name, call.params).map_err(Fault::from)
    } else {
        let params = call.params;
        let reply = gateway
            .call(&name, None, |registry, route| {
                let mut args = <dyn erased_serde::Deserializer<'_>>::erase(Params(params));
                registry.call(route, &mut args)
            })
            .await;
        encode_result(reply)
    };
    let limit = gateway.max_reply_bytes;
    let body = match outcome.and_then(|value| response_within(&value, limit)) {
        Ok(body) => body,
        Err(fault) => {
            let error_type = gateway
                .registry
                .resolve(&name)
                .ok()
                .and_then(|route| gateway.registry.method(route).error);
            fault_xml(&fault, error_type)
        }
    };
    xml(StatusCode::OK, body)
}

/// The `<methodResponse>` of `value`, if it is at most `limit` bytes (the
/// server's `max_frame_bytes`, as for every reply).
fn response_within(value: &XmlValue, limit: usize) -> Result<String, Fault> {
    let mut out = String::from("<?xml version=\"1.0\"?>\n<methodResponse><params><param>");
    value.write(&mut out);
    out.push_str("</param></params></methodResponse>\n");
    if out.len() > limit {
        return Err(reply_too_large(limit).into());
    }
    Ok(out)
}

/// A request refused before its call: a fault, with the status of what was
/// wrong (413 too large, 503 shutting down, else 400).
pub(crate) fn refuse(error: Error) -> Response {
    let status = match error.kind() {
        kind @ (ErrorKind::FrameTooLarge | ErrorKind::ShuttingDown) => status_of(kind),
        _ => StatusCode::BAD_REQUEST,
    };
    xml(status, fault_xml(&error.into(), None))
}

/// The result as an XML-RPC value; one that cannot be (or panics) is an
/// internal error.
fn encode_result(reply: Reply) -> Result<XmlValue, Fault> {
    let value = reply?;
    match std::panic::catch_unwind(AssertUnwindSafe(|| to_xml_value(&value))) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(internal(format!("the result has no XML-RPC form: {e}"))),
        Err(panic) => Err(internal(format!(
            "encoding the result panicked: {}",
            panic_message(&*panic)
        ))),
    }
}

fn internal(message: String) -> Fault {
    Error::new(ErrorKind::Internal, message).into()
}

/// `<methodResponse><fault>…</fault></methodResponse>`.
fn fault_xml(fault: &Fault, error_type: Option<&str>) -> String {
    let text = match (fault.kind, error_type) {
        (ErrorKind::Application, Some(error_type)) => {
            let data = fault.data.as_ref().and_then(|d| to_json(d).ok());
            let data = data.map(|d| String::from_utf8_lossy(&d).into_owned());
            match data {
                Some(data) => format!("{error_type}: {} {data}", fault.message),
                None => format!("{error_type}: {}", fault.message),
            }
        }
        (kind, _) => format!("{kind}: {}", fault.message),
    };
    let value = XmlValue::Struct(vec![
        (
            "faultCode".into(),
            XmlValue::Int(fault.kind.xmlrpc_fault().into()),
        ),
        ("faultString".into(), XmlValue::Str(text)),
    ]);
    let mut out = String::from("<?xml version=\"1.0\"?>\n<methodResponse><fault>");
    value.write(&mut out);
    out.push_str("</fault></methodResponse>\n");
    out
}

/// `system.listMethods`, `system.methodSignature`, `system.methodHelp`.
fn system(gateway: &Gateway, name: &str, params: Vec<XmlValue>) -> Result<XmlValue, Error> {
    let registry = &gateway.registry;
    if !SYSTEM.contains(&name) {
        return Err(Error::method_not_found(name, &SYSTEM.join(", ")));
    }
    if name == "system.listMethods" {
        let mut names: Vec<String> = registry
            .services()
            .flat_map(|s| {
                s.methods
                    .iter()
                    .map(move |m| format!("{}.{}", s.name, m.name))
            })
            .chain(SYSTEM.iter().map(|s| s.to_string()))
            .collect();
        names.sort();
        return Ok(XmlValue::Array(
            names.into_iter().map(XmlValue::Str).collect(),
        ));
    }
    let [XmlValue::Str(method)] = &params[..] else {
        return Err(Error::invalid_params(
            name,
            "expected one argument, the name of a method",
        ));
    };
    if SYSTEM.contains(&method.as_str()) {
        return Ok(about_system(name, method));
    }
    let info = registry.method(registry.resolve(method)?);
    match name {
        "system.methodSignature" => Ok(signature(info)),
        _ => Ok(XmlValue::Str(info.doc.to_owned())),
    }
}

/// `system.methodSignature` and `system.methodHelp` of the `system.` methods.
fn about_system(name: &str, method: &str) -> XmlValue {
    if name == "system.methodSignature" {
        // The XML-RPC introspection convention for "not described".
        return XmlValue::Str("undef".into());
    }
    XmlValue::Str(
        match method {
            "system.listMethods" => "The names of every method this server offers.",
            "system.methodSignature" => {
                "The signatures of a method: [[return type, parameter types...]]."
            }
            _ => "The documentation of a method.",
        }
        .into(),
    )
}

/// `[[return type, parameter types…]]`, in XML-RPC type names.
fn signature(info: &MethodInfo) -> XmlValue {
    let types = std::iter::once(info.returns)
        .chain(info.params.iter().map(|p| p.ty))
        .map(|ty| XmlValue::Str(xml_type(ty).into()))
        .collect();
    XmlValue::Array(vec![XmlValue::Array(types)])
}

/// The XML-RPC type a Rust type (as written in the trait) travels as.
fn xml_type(rust: &str) -> &'static str {
    let rust = rust.trim();
    let inner = |prefix: &str| {
        rust.strip_prefix(prefix)
            .and_then(|r| r.strip_suffix('>'))
            .map(str::trim)
    };
    if let Some(inner) = inner("Option<") {
        return xml_type(inner);
    }
    match rust {
        "i8" | "i16" | "i32" | "i64" | "isize" | "u8" | "u16" | "u32" | "u64" | "usize" => "int",
        "bool" => "boolean",
        "f32" | "f64" => "double",
        "String" | "&str" | "char" => "string",
        "()" => "nil",
        "Bytes" | "Vec<u8>" | "rpc_core::Bytes" => "base64",
        "Value" | "rpc_core::Value" | "serde_json::Value" => "any",
        _ if rust.starts_with("Vec<") || rust.starts_with('[') || rust.starts_with('(') => "array",
        _ => "struct",
    }
}

fn xml(status: StatusCode, body: String) -> Response {
    (status, [(CONTENT_TYPE, TEXT_XML)], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_types_map_to_xml_rpc_types() {
        assert_eq!(xml_type("i64"), "int");
        assert_eq!(xml_type("Option<String>"), "string");
        assert_eq!(xml_type("Vec<String>"), "array");
        assert_eq!(xml_type("Vec<u8>"), "base64");
        assert_eq!(xml_type("()"), "nil");
        assert_eq!(xml_type("Value"), "any");
        assert_eq!(xml_type("MyStruct"), "struct");
    }

    #[test]
    fn a_fault_names_the_error_type_message_and_data() {
        let fault = Fault::application(
            "no value".into(),
            Box::new(serde_json::json!({"NotFound": {"key": "k"}})),
        );
        let xml = fault_xml(&fault, Some("KvError"));
        assert!(
            xml.contains("<name>faultCode</name><value><int>1</int></value>"),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<string>KvError: no value {"NotFound":{"key":"k"}}</string>"#),
            "{xml}"
        );
        let e = Error::new(ErrorKind::MethodNotFound, "unknown method `x`");
        let xml = fault_xml(&e.into(), None);
        assert!(xml.contains("<int>-32601</int>"), "{xml}");
        assert!(
            xml.contains("method not found: unknown method `x`"),
            "{xml}"
        );
    }
}
