//! What `#[rpc_service]` generates, run without a network: the server through
//! a `Registry` with both codecs, and the client over an in-memory transport.

use std::fmt;
use std::fs;
use std::path::Path;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rpc_core::client::Outgoing;
use rpc_core::codec::{Bincode, Id, Inbound, Incoming, Json, OutRequest};
use rpc_core::registry::RESERVED;
use rpc_core::service::Reply;
use rpc_core::{
    CallError, Client, Codec, Context, Error, ErrorKind, Registry, Response, Service, Transport,
    rpc_service,
};
use serde::{Deserialize, Serialize};

/// The error of `Calculator::div`.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum MathError {
    /// `y` was zero.
    DivideByZero,
}

impl fmt::Display for MathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("division by zero")
    }
}

/// An error without `Display`: described by its type name.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Opaque {
    /// Why.
    code: u32,
}

/// Arithmetic over the wire.
#[rpc_service]
trait Calculator {
    /// Adds two numbers.
    #[rpc(idempotent)]
    async fn add(&self, x: i64, y: i64) -> i64;
    /// Divides `x` by `y`.
    async fn div(&self, x: i64, y: i64) -> Result<i64, MathError>;
    async fn check(&self, code: u32) -> std::result::Result<(), Opaque>;
    async fn reset(&self);
    async fn explode(&self, message: String) -> i64;
    async fn peer(&self) -> Option<String>;
}

struct Calc;

impl Calculator for Calc {
    async fn add(&self, x: i64, y: i64) -> i64 {
        x + y
    }

    async fn div(&self, x: i64, y: i64) -> Result<i64, MathError> {
        x.checked_div(y).ok_or(MathError::DivideByZero)
    }

    async fn check(&self, code: u32) -> Result<(), Opaque> {
        if code == 0 {
            Ok(())
        } else {
            Err(Opaque { code })
        }
    }

    async fn reset(&self) {}

    async fn explode(&self, message: String) -> i64 {
        panic!("{message}")
    }

    async fn peer(&self) -> Option<String> {
        Context::current()
            .and_then(|c| c.peer())
            .map(|p| p.to_string())
    }
}

/// A service renamed on the wire.
#[rpc_service(name = "echo")]
trait Echoer {
    async fn echo(&self, text: String) -> String;
}

struct Echo;

impl Echoer for Echo {
    async fn echo(&self, text: String) -> String {
        text
    }
}

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry.register(CalculatorServer::new(Calc)).unwrap();
    registry.register(EchoerServer::new(Echo)).unwrap();
    registry
}

/// Runs `method` with JSON `params` and returns the handler's reply.
async fn call_json(method: &str, params: &[u8]) -> Result<Reply, Error> {
    Ok(registry().dispatch_encoded(method, &Json, params)?.await)
}

/// Sends `reply` through `codec` as a response frame and reads it back.
fn respond(codec: &'static dyn Codec, reply: &Reply) -> Response {
    let mut frame = BytesMut::new();
    codec
        .encode_response(&mut frame, &Id::Num(1), reply)
        .unwrap();
    let frame = frame.freeze();
    match codec.decode_response(&frame).unwrap() {
        Inbound::Response { outcome, .. } => Response::new(codec, frame, outcome),
        other => panic!("not a response: {other:?}"),
    }
}

#[tokio::test]
async fn add_takes_json_params_by_position_or_by_name() {
    for params in [&b"[2,3]"[..], br#"{"x":2,"y":3}"#, br#"{"y":3,"x":2}"#] {
        let reply = call_json("Calculator.add", params).await.unwrap();
        assert_eq!(respond(&Json, &reply).into_result::<i64>().unwrap(), 5);
    }
}

#[tokio::test]
async fn add_takes_bincode_params() {
    let mut frame = BytesMut::new();
    let request = OutRequest {
        id: 7,
        method: "Calculator.add",
        deadline: None,
        args: &(2i64, 3i64),
        metadata: None,
    };
    Bincode.encode_request(&mut frame, &request).unwrap();
    let Incoming::Request(request) = Bincode.decode_request(&frame) else {
        panic!("not a request");
    };
    let call = registry().dispatch_encoded(&request.method, &Bincode, request.params);
    let reply = call.unwrap().await;
    assert_eq!(respond(&Bincode, &reply).into_result::<i64>().unwrap(), 5);
}

#[tokio::test]
async fn a_method_without_parameters_takes_an_empty_array_or_object() {
    for params in [&b"[]"[..], b"{}"] {
        let reply = call_json("Calculator.reset", params).await.unwrap();
        respond(&Json, &reply).into_result::<()>().unwrap();
    }
}

#[tokio::test]
async fn an_application_error_carries_its_display_text_and_its_value() {
    let reply = call_json("Calculator.div", b"[1,0]").await.unwrap();
    let fault = reply.as_ref().err().unwrap();
    assert_eq!(fault.kind, ErrorKind::Application);
    assert_eq!(fault.message, "division by zero");
    match respond(&Json, &reply).into_fallible::<i64, MathError>() {
        Err(CallError::Application(e)) => assert_eq!(e, MathError::DivideByZero),
        other => panic!("expected an application error, got {other:?}"),
    }
}

#[tokio::test]
async fn an_error_without_display_is_described_by_its_type_name() {
    let reply = call_json("Calculator.check", b"[4]").await.unwrap();
    let fault = reply.as_ref().err().unwrap();
    assert_eq!(fault.message, std::any::type_name::<Opaque>());
    match respond(&Json, &reply).into_fallible::<(), Opaque>() {
        Err(CallError::Application(e)) => assert_eq!(e, Opaque { code: 4 }),
        other => panic!("expected an application error, got {other:?}"),
    }
}

#[tokio::test]
async fn arguments_that_do_not_decode_are_invalid_params_naming_the_method() {
    for params in [
        &br#"["x"]"#[..],
        b"[1]",
        b"[1,2,3]",
        br#"{"x":1,"y":2,"z":3}"#,
    ] {
        let Err(e) = call_json("Calculator.add", params).await else {
            panic!("{params:?} decoded");
        };
        assert_eq!(e.kind(), ErrorKind::InvalidParams, "{params:?}: {e}");
        assert!(e.message().contains("`Calculator.add`"), "{e}");
    }
}

#[tokio::test]
async fn an_unknown_method_lists_the_known_ones() {
    let server = CalculatorServer::new(Calc);
    let mut result = None;
    // The arguments are left unread, so `decode_value` itself fails after.
    let _ = Json.decode_value(b"[]", &mut |args| {
        result = Some(server.call("mul", args).map(drop));
        Ok(())
    });
    let e = result.unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::MethodNotFound);
    assert!(e.message().contains("Calculator.mul"), "{e}");
    assert!(e.message().contains("add, div, check"), "{e}");
}

#[tokio::test]
async fn a_panicking_handler_becomes_a_handler_panic_fault() {
    let reply = call_json("Calculator.explode", br#"["boom"]"#)
        .await
        .unwrap();
    let fault = reply.err().unwrap();
    assert_eq!(fault.kind, ErrorKind::HandlerPanic);
    assert!(fault.message.contains("boom"), "{}", fault.message);
}

#[tokio::test]
async fn a_handler_sees_the_context_it_runs_in() {
    assert!(Context::current().is_none());
    let reply = call_json("Calculator.peer", b"[]").await.unwrap();
    let peer: Option<String> = respond(&Json, &reply).into_result().unwrap();
    assert_eq!(peer, None);

    let addr = "127.0.0.1:9".parse().unwrap();
    let call = registry().dispatch_encoded("Calculator.peer", &Json, b"[]");
    let reply = Context::new()
        .with_peer(Some(addr))
        .scope(call.unwrap())
        .await;
    let peer: Option<String> = respond(&Json, &reply).into_result().unwrap();
    assert_eq!(peer.as_deref(), Some("127.0.0.1:9"));
}

#[test]
fn the_server_describes_the_service() {
    let info = CalculatorServer::new(Calc).info();
    assert_eq!(info.name, "Calculator");
    assert_eq!(info.doc, "Arithmetic over the wire.");
    let names: Vec<_> = info.methods.iter().map(|m| m.name).collect();
    assert_eq!(names, ["add", "div", "check", "reset", "explode", "peer"]);

    let add = info.method("add").unwrap();
    assert_eq!(
        (add.doc, add.idempotent, add.returns),
        ("Adds two numbers.", true, "i64")
    );
    let params: Vec<_> = add.params.iter().map(|p| (p.name, p.ty)).collect();
    assert_eq!(params, [("x", "i64"), ("y", "i64")]);
    assert_eq!(add.error, None);

    let div = info.method("div").unwrap();
    assert_eq!((div.idempotent, div.error), (false, Some("MathError")));
    assert_eq!(
        div.signature(),
        "div(x: i64, y: i64) -> Result<i64, MathError>"
    );

    let check = info.method("check").unwrap();
    assert_eq!((check.returns, check.error), ("()", Some("Opaque")));
    let reset = info.method("reset").unwrap();
    assert_eq!(
        (reset.doc, reset.returns, reset.params.len()),
        ("", "()", 0)
    );
    assert_eq!(info.method("peer").unwrap().returns, "Option<String>");
}

#[test]
fn the_name_option_renames_the_service() {
    assert_eq!(EchoerServer::new(Echo).info().name, "echo");
    assert!(registry().resolve("echo.echo").is_ok());
    assert!(registry().resolve("Echoer.echo").is_err());
}

/// `rpc-macros` keeps its own copy of `rpc_core::registry::RESERVED`
/// (`rpc-core` depends on it; only its tests use `rpc-core`), and only trybuild can run
/// the macro: so every reserved name must have a UI case,
/// `rpc-macros/tests/ui/fail/reserved_service_name*.rs`, whose `.stderr` shows the macro
/// refusing it, and every such case must name a reserved name. A name added
/// to one list and not the other fails here or in `rpc-macros`' UI test.
#[test]
fn every_reserved_service_name_is_refused_by_the_macro() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rpc-macros/tests/ui/fail");
    let mut refused = Vec::new();
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap();
        if !(file.starts_with("reserved_service_name") && file.ends_with(".rs")) {
            continue;
        }
        let source = fs::read_to_string(&path).unwrap();
        let name = source
            .split("#[rpc_service(name = \"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("{file} has no `#[rpc_service(name = \"...\")]`"));
        let stderr = fs::read_to_string(path.with_extension("stderr")).unwrap();
        let expected = format!("the service name `{name}` is reserved");
        assert!(
            stderr.contains(&expected),
            "{file}: the macro does not refuse `{name}`"
        );
        refused.push(name.to_owned());
    }
    refused.sort();
    let mut reserved = RESERVED.to_vec();
    reserved.sort();
    assert_eq!(
        refused, reserved,
        "one UI case per name in `rpc_core::registry::RESERVED`, and the same list in `rpc-macros/src/valid.rs`"
    );
}

/// A transport that serves calls from a registry in memory, through a codec.
struct Loopback {
    registry: Registry,
    codec: &'static dyn Codec,
}

impl Transport for Loopback {
    fn call<'a>(&'a self, call: Outgoing<'a>) -> rpc_core::client::ResponseFuture<'a> {
        let (registry, codec) = (self.registry.clone(), self.codec);
        let mut frame = BytesMut::new();
        let request = OutRequest {
            id: 1,
            method: call.method,
            deadline: call.timeout,
            args: call.args,
            metadata: call.metadata,
        };
        let encoded = codec.encode_request(&mut frame, &request);
        Box::pin(async move {
            encoded?;
            let frame: Bytes = frame.freeze();
            let Incoming::Request(request) = codec.decode_request(&frame) else {
                panic!("not a request");
            };
            let reply = match registry.dispatch_encoded(&request.method, codec, request.params) {
                Ok(call) => call.await,
                Err(e) => Err(e.into()),
            };
            Ok(respond(codec, &reply))
        })
    }
}

fn client(codec: &'static dyn Codec) -> CalculatorClient {
    let registry = registry();
    CalculatorClient::new(Client::new(Loopback { registry, codec }))
}

#[tokio::test]
async fn the_client_calls_through_either_codec() {
    for codec in [&Json as &'static dyn Codec, &Bincode] {
        let calc = client(codec);
        assert_eq!(calc.add(2, 3).await.unwrap(), 5);
        assert_eq!(calc.div(7, 2).await.unwrap(), 3);
        calc.reset().await.unwrap();
        calc.check(0).await.unwrap();
        let timed = calc.with_timeout(Duration::from_secs(5));
        assert_eq!(timed.add(-1, 1).await.unwrap(), 0);
    }
}

#[tokio::test]
async fn the_client_returns_application_errors_typed() {
    for codec in [&Json as &'static dyn Codec, &Bincode] {
        let calc = client(codec);
        match calc.div(1, 0).await {
            Err(CallError::Application(e)) => assert_eq!(e, MathError::DivideByZero),
            other => panic!("{}: expected DivideByZero, got {other:?}", codec.name()),
        }
        match calc.check(9).await {
            Err(CallError::Application(e)) => assert_eq!(e, Opaque { code: 9 }),
            other => panic!("{}: expected Opaque, got {other:?}", codec.name()),
        }
    }
}

#[tokio::test]
async fn the_client_reports_framework_errors_as_rpc_errors() {
    let e = client(&Json).explode("boom".to_owned()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::HandlerPanic);
    let echo = EchoerClient::new(Client::new(Loopback {
        registry: registry(),
        codec: &Bincode,
    }));
    assert_eq!(echo.echo("hi".to_owned()).await.unwrap(), "hi");
}

#[tokio::test]
async fn client_calls_can_be_spawned() {
    let calc = client(&Bincode);
    let sum = tokio::spawn(async move { calc.add(40, 2).await.unwrap() });
    assert_eq!(sum.await.unwrap(), 42);
    let calc = client(&Json);
    let div = tokio::spawn(async move { calc.div(1, 0).await.is_err() });
    assert!(div.await.unwrap());
}
