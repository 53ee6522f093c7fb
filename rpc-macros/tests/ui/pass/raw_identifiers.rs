//! Raw identifiers as method and parameter names travel without `r#`.
#![deny(warnings)]

use rpc_core::{Service, rpc_service};

#[rpc_service]
pub trait Lexer {
    /// The kind of `r#fn`.
    async fn r#type(&self, r#fn: String, r#match: Vec<u8>) -> String;
}

struct Lex;

impl Lexer for Lex {
    async fn r#type(&self, r#fn: String, _match: Vec<u8>) -> String {
        r#fn
    }
}

fn main() {
    let info = LexerServer::new(Lex).info();
    let method = info.method("type").unwrap();
    assert_eq!(method.params[0].name, "fn");
    assert_eq!(method.params[1].name, "match");
    assert_eq!(method.params[1].ty, "Vec<u8>");
}
