//! What a new user trips over first, said plainly: messages that name what
//! failed once, and a hint where the fix is not obvious.

mod common;

use examples::calculator::{Calc, CalculatorServer};
use rpc_core::{ErrorKind, Registry};

#[test]
fn a_second_service_of_the_same_name_is_refused_with_how_to_rename_it() {
    let mut registry = Registry::new();
    registry.register(CalculatorServer::new(Calc)).unwrap();
    let error = registry
        .register(CalculatorServer::new(Calc))
        .map(drop)
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Config);
    assert_eq!(
        error.message(),
        "a service named `Calculator` is already registered; two services of one server need two \
         names: give one another with `#[rpc_service(name = \"…\")]`"
    );
}

#[test]
fn missing_arguments_are_counted_and_named_not_shown_as_the_macros_hidden_struct() {
    let registry = Registry::new().with(CalculatorServer::new(Calc)).unwrap();
    for (codec, params) in [
        (
            &rpc_core::codec::Json as &dyn rpc_core::codec::Codec,
            &b"[2]"[..],
        ),
        (&rpc_core::codec::Json, &b"[]"[..]),
    ] {
        let error = registry
            .dispatch_encoded("Calculator.add", codec, params)
            .map(drop)
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidParams);
        let message = error.message();
        assert!(!message.contains("__rpc_args"), "{message}");
        assert!(
            message.starts_with("invalid arguments for `Calculator.add`: "),
            "{message}"
        );
        assert!(message.contains("expected 2 arguments (x, y)"), "{message}");
    }
}

/// A value with a field left out when empty: fine in JSON, not in bincode.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
pub struct Patch {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    count: u32,
}

#[rpc_core::rpc_service]
trait Traps {
    async fn patch(&self, patch: Patch) -> u32;
    async fn latest(&self) -> Patch;
    async fn both(&self, first: u32, value: serde_json::Value) -> u32;
}

struct TrapsImpl;

impl Traps for TrapsImpl {
    async fn patch(&self, patch: Patch) -> u32 {
        patch.count
    }
    async fn latest(&self) -> Patch {
        Patch {
            name: None,
            count: 1,
        }
    }
    async fn both(&self, first: u32, _value: serde_json::Value) -> u32 {
        first
    }
}

#[tokio::test]
async fn a_type_bincode_cannot_carry_is_named_with_what_to_do_instead() {
    let registry = Registry::new().with(TrapsServer::new(TrapsImpl)).unwrap();
    let server = common::serve(registry).await;
    let traps = TrapsClient::new(common::connect(&server.address, "bincode").await);
    let sent = Patch {
        name: None,
        count: 3,
    };
    let argument = traps.patch(sent.clone()).await.unwrap_err();
    assert_eq!(argument.kind(), ErrorKind::InvalidParams);
    let message = argument.message();
    assert!(
        message.starts_with(
            "invalid arguments for `Traps.patch`: argument `patch` (type `Patch`) cannot be \
             carried by bincode: it needs a self-describing format (serde's `skip_serializing_if`"
        ),
        "{message}"
    );
    assert!(message.contains("use the json codec"), "{message}");
    assert!(!message.contains("OtherString"), "{message}");
    let several = traps
        .both(1, serde_json::json!({"a": 1}))
        .await
        .unwrap_err();
    let message = several.message();
    assert!(
        message.contains("one of the arguments (`first: u32`, `value: serde_json::Value`)"),
        "{message}"
    );
    assert!(
        message.contains("cannot be carried by bincode"),
        "{message}"
    );
    // The reply side says which type did not decode.
    let result = traps.latest().await.unwrap_err();
    let message = result.message();
    assert!(message.contains("the reply (type `"), "{message}");
    assert!(
        message.contains("Patch`) cannot be carried by bincode"),
        "{message}"
    );
    // The same calls work with JSON, and check_codecs finds it in a unit test.
    let traps = TrapsClient::new(common::connect(&server.address, "json").await);
    assert_eq!(traps.patch(sent.clone()).await.unwrap(), 3);
    let refused = rpc_core::check_codecs(&sent).unwrap_err();
    assert!(
        refused.message().contains("cannot be carried by bincode"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_client_whose_server_went_away_says_connection_lost_and_is_closed() {
    let registry = Registry::new().with(CalculatorServer::new(Calc)).unwrap();
    let config = common::server_builder().build().unwrap();
    let server = rpc_transport::Server::new(config, registry);
    let listening = server.clone().bind().await.unwrap();
    let address = listening.local_addr().to_owned();
    let serving = tokio::spawn(listening.serve());
    let client = common::connect(&address, "bincode").await;
    let calc = examples::calculator::CalculatorClient::new(client.clone());
    assert_eq!(calc.add(2, 3).await.unwrap(), 5);
    assert!(!client.is_closed());
    server.shut_down();
    common::within("the client to see the end", client.closed()).await;
    assert!(client.is_closed());
    common::within("the server to drain", serving)
        .await
        .unwrap();
    // Not "shutting down" for ever: the connection is gone, and says so.
    let error = calc.add(2, 3).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ConnectionLost, "{error}");
    assert!(
        error.message().starts_with("the connection is closed: "),
        "{error}"
    );
}
