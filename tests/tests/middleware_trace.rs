//! W3C trace context travels by itself: a client call made inside an active
//! `tracing` span carries a `traceparent`, the server's call span records
//! its trace id, and a call the handler makes continues the same trace
//! (over TCP and from the HTTP gateway's `traceparent` header).

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::http::{Connection, post_json};
use common::{connect, server_builder, within};
use rpc_core::trace::{TRACEPARENT, TraceParent};
use rpc_core::{Context, Registry};
use rpc_transport::Server;
use rpc_transport::http::{HttpConfig, HttpGateway};
use tracing::Instrument;

/// Shows the trace context each call sees.
#[rpc_core::rpc_service]
pub trait Traced {
    /// The `traceparent` the handler sees, if any.
    async fn seen(&self) -> Option<String>;

    /// Calls `seen` on `address` from inside this call: what the nested
    /// handler saw, and what this one saw.
    async fn relay(&self, address: String) -> (Option<String>, Option<String>);
}

struct Impl;

fn seen_here() -> Option<String> {
    tracing::info!("handling");
    Context::current().and_then(|c| c.metadata().text(TRACEPARENT).map(str::to_owned))
}

impl Traced for Impl {
    async fn seen(&self) -> Option<String> {
        seen_here()
    }

    async fn relay(&self, address: String) -> (Option<String>, Option<String>) {
        let here = seen_here();
        let client = TracedClient::new(connect(&address, "bincode").await);
        (client.seen().await.expect("the nested call"), here)
    }
}

/// Log lines, kept for the test to read.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// A subscriber writing here, with spans' fields, at debug level.
    fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync {
        let lines = self.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || lines.clone())
            .finish()
    }
}

fn parse(value: Option<String>) -> TraceParent {
    let value = value.expect("a traceparent");
    TraceParent::parse(&value).unwrap_or_else(|| panic!("a valid traceparent: {value}"))
}

async fn serve() -> common::ServerGuard {
    common::serve(Registry::new().with(TracedServer::new(Impl)).unwrap()).await
}

#[tokio::test]
async fn a_call_inside_a_span_starts_a_trace_the_server_continues() {
    let lines = Lines::default();
    // The global default, not a thread's: a thread-local one races with the
    // other tests of this file over which callsites are enabled. The other
    // tests only log into it too.
    tracing::subscriber::set_global_default(lines.subscriber())
        .expect("the only global subscriber");
    let server = serve().await;
    let client = TracedClient::new(connect(&server.address, "json").await);

    // No span, no trace: nothing is sent.
    assert_eq!(
        within("an untraced call", client.seen()).await.unwrap(),
        None
    );

    let span = tracing::info_span!("job");
    let (nested, outer) = within(
        "a traced call",
        client.relay(server.address.clone()).instrument(span),
    )
    .await
    .unwrap();
    let (outer, nested) = (parse(outer), parse(nested));
    assert_eq!(
        nested.trace_id, outer.trace_id,
        "one trace across both hops"
    );
    assert_ne!(
        nested.parent_id, outer.parent_id,
        "each hop has its own span"
    );
    // The server's call span recorded the trace id.
    let trace = outer.trace_id_hex();
    let logged = lines.text();
    let spans = logged
        .lines()
        .filter(|l| l.contains(&format!("trace_id={trace}")) && l.contains("handling"))
        .count();
    assert!(spans >= 2, "both calls' spans record the trace:\n{logged}");
}

#[tokio::test]
async fn a_traceparent_set_by_the_caller_is_sent_as_it_is() {
    let server = serve().await;
    let sent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let conn = connect(&server.address, "bincode").await;
    let client = TracedClient::new(conn.with_metadata(TRACEPARENT, sent));
    let seen = parse(within("a call", client.seen()).await.unwrap());
    let sent = TraceParent::parse(sent).unwrap();
    assert_eq!(seen.trace_id, sent.trace_id);
    // The handler sees the server's own span as the parent of its calls.
    assert_ne!(seen.parent_id, sent.parent_id);
}

#[tokio::test]
async fn the_gateway_continues_a_traceparent_header() {
    const PASSWORD: &str = "trace-test-password";
    let registry = Registry::new().with(TracedServer::new(Impl)).unwrap();
    let server = Server::new(server_builder().build().unwrap(), registry);
    let config = HttpConfig::builder()
        .listen("127.0.0.1:0")
        .password(PASSWORD)
        .build()
        .unwrap();
    let gateway = HttpGateway::new(config, &server).unwrap();
    let listening = within("the gateway to bind", gateway.bind()).await.unwrap();
    let address = listening.local_addr().to_owned();
    let task = tokio::spawn(listening.serve());

    let sent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"Traced.seen","params":[]}"#;
    let request = String::from_utf8(post_json("/rpc", PASSWORD, body)).unwrap();
    let (line, rest) = request.split_once("\r\n").unwrap();
    let request = format!("{line}\r\ntraceparent: {sent}\r\n{rest}");
    let mut conn = Connection::open(&address).await;
    let answer = conn
        .exchange(request.as_bytes(), Duration::from_secs(10))
        .await
        .expect("an answer");
    let json: serde_json::Value = serde_json::from_str(&answer.text()).unwrap();
    let seen = parse(json["result"].as_str().map(str::to_owned));
    assert_eq!(seen.trace_id_hex(), "0af7651916cd43dd8448eb211c80319c");
    task.abort();
}
