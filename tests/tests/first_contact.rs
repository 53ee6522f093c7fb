//! What a new user trips over first, said plainly: messages that name what
//! failed once, and a hint where the fix is not obvious.

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
