//! JSON has no NaN or ±infinity: a json client refuses to send one, naming
//! where it is, and a json server answers an error rather than `null`.
//! bincode carries them unchanged.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rpc_core::{ErrorKind, Registry};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Line {
    ratio: f64,
}

#[rpc_core::rpc_service]
trait Floats {
    /// Returns `x / 2`.
    async fn half(&self, x: f64) -> f64;

    /// Whether `x` arrived as a number: JSON's `null` reads as `None`.
    async fn given(&self, x: Option<f64>) -> bool;

    /// Returns how many lines there are.
    async fn count(&self, label: String, lines: Vec<Line>) -> u64;

    /// Returns NaN.
    async fn nan(&self) -> f64;

    /// Returns `Some(NaN)`, which JSON would carry as `None`.
    async fn maybe_nan(&self) -> Option<f64>;

    /// Returns two lines, the second with a ratio of -infinity.
    async fn lines(&self) -> Vec<Line>;
}

#[derive(Clone, Default)]
struct Counted(Arc<AtomicUsize>);

impl Counted {
    fn seen(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
}

impl Floats for Counted {
    async fn half(&self, x: f64) -> f64 {
        self.seen();
        x / 2.0
    }
    async fn given(&self, x: Option<f64>) -> bool {
        self.seen();
        x.is_some()
    }
    async fn count(&self, _label: String, lines: Vec<Line>) -> u64 {
        self.seen();
        lines.len() as u64
    }
    async fn nan(&self) -> f64 {
        f64::NAN
    }
    async fn maybe_nan(&self) -> Option<f64> {
        Some(f64::NAN)
    }
    async fn lines(&self) -> Vec<Line> {
        vec![
            Line { ratio: 0.5 },
            Line {
                ratio: f64::NEG_INFINITY,
            },
        ]
    }
}

async fn serve() -> (common::ServerGuard, Counted) {
    let counted = Counted::default();
    let registry = Registry::new()
        .with(FloatsServer::new(counted.clone()))
        .unwrap();
    (common::serve(registry).await, counted)
}

const CANNOT: &str = "and the json codec cannot carry NaN or ±infinity; send it as a string, \
                      or use the bincode codec";

#[tokio::test]
async fn a_json_client_refuses_a_non_finite_argument_at_once_naming_its_place() {
    let (server, counted) = serve().await;
    let floats = FloatsClient::new(common::connect(&server.address, "json").await);
    for (x, shown) in [
        (f64::NAN, "NaN"),
        (f64::INFINITY, "+infinity"),
        (f64::NEG_INFINITY, "-infinity"),
    ] {
        let e = common::within("a refused call", floats.half(x))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidParams);
        assert_eq!(
            e.message(),
            format!(
                "the arguments of `Floats.half` could not be encoded: \
                 the 1st argument is {shown}, {CANNOT}"
            )
        );
        let e = floats.given(Some(x)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidParams);
        let lines = vec![Line { ratio: 1.0 }, Line { ratio: x }];
        let e = floats.count("order".into(), lines).await.unwrap_err();
        assert_eq!(
            e.message(),
            format!(
                "the arguments of `Floats.count` could not be encoded: \
                 `[1].ratio` in the 2nd argument is {shown}, {CANNOT}"
            )
        );
    }
    assert_eq!(counted.0.load(Ordering::SeqCst), 0, "nothing was sent");
    // The connection is still good, and `null` for `None` still travels.
    assert_eq!(floats.half(3.0).await.unwrap(), 1.5);
    assert!(!floats.given(None).await.unwrap());
    assert_eq!(floats.count("null".into(), vec![]).await.unwrap(), 0);
    assert_eq!(counted.0.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_json_server_answers_an_error_for_a_non_finite_result_not_null() {
    let (server, _) = serve().await;
    let floats = FloatsClient::new(common::connect(&server.address, "json").await);
    let e = floats.maybe_nan().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Internal);
    assert_eq!(
        e.message(),
        "the result could not be encoded: it is NaN, and the json codec cannot carry NaN or \
         ±infinity; return it as a string, or use the bincode codec"
    );
    let e = floats.nan().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Internal);
    let e = floats.lines().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Internal);
    assert!(
        e.message()
            .starts_with("the result could not be encoded: `[1].ratio` in it is -infinity, "),
        "{e}"
    );
}

#[tokio::test]
async fn bincode_carries_nan_and_infinities() {
    let (server, _) = serve().await;
    let floats = FloatsClient::new(common::connect(&server.address, "bincode").await);
    assert!(floats.half(f64::NAN).await.unwrap().is_nan());
    assert_eq!(floats.half(f64::INFINITY).await.unwrap(), f64::INFINITY);
    assert!(floats.given(Some(f64::NAN)).await.unwrap());
    assert!(floats.nan().await.unwrap().is_nan());
    assert!(floats.maybe_nan().await.unwrap().unwrap().is_nan());
    assert_eq!(floats.lines().await.unwrap()[1].ratio, f64::NEG_INFINITY);
}

/// The HTTP gateway writes results with the same check: an error, not `null`.
#[tokio::test]
async fn the_http_gateway_answers_an_error_for_a_non_finite_result_not_null() {
    use common::http::{Connection, post_json};
    use rpc_transport::http::{HttpConfig, HttpGateway};

    const PASSWORD: &str = "json-floats-password";
    let registry = Registry::new()
        .with(FloatsServer::new(Counted::default()))
        .unwrap();
    let config = common::server_builder().build().expect("a server config");
    let server = rpc_transport::Server::new(config, registry);
    let http = HttpConfig::builder()
        .listen("127.0.0.1:0")
        .password(PASSWORD)
        .build()
        .expect("an [http] config");
    let gateway = HttpGateway::new(http, &server).expect("the gateway builds");
    let listening = common::within("the gateway to bind", gateway.bind())
        .await
        .expect("binds");
    let address = listening.local_addr().to_owned();
    let task = tokio::spawn(listening.serve());

    let mut connection = Connection::open(&address).await;
    for (path, body) in [
        (
            "/rpc",
            br#"{"jsonrpc":"2.0","id":1,"method":"Floats.maybe_nan","params":[]}"#.as_slice(),
        ),
        ("/Floats/lines", b"[]"),
    ] {
        let answer = connection
            .exchange(&post_json(path, PASSWORD, body), Duration::from_secs(10))
            .await
            .expect("an answer");
        let text = answer.text();
        assert!(!text.contains("null"), "{path}: {text}");
        assert!(
            text.contains("could not be encoded") && text.contains("cannot carry NaN"),
            "{path}: {text}"
        );
    }
    task.abort();
}
