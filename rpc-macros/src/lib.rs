//! `#[rpc_service]`: turns a trait into an rpc service — a server adapter, a
//! typed client and a static description of its methods. Use it as
//! `rpc_core::rpc_service` (re-exported by `rpc-core`'s default `macros`
//! feature).
//!
//! ```ignore
//! use rpc_core::rpc_service;
//!
//! #[derive(Debug, serde::Serialize, serde::Deserialize)]
//! pub enum MathError { DivideByZero }
//!
//! /// Arithmetic over the wire.
//! #[rpc_service]                      // or #[rpc_service(name = "calc")]
//! pub trait Calculator {
//!     /// Adds two numbers.
//!     #[rpc(idempotent)]
//!     async fn add(&self, x: i64, y: i64) -> i64;
//!     async fn div(&self, x: i64, y: i64) -> Result<i64, MathError>;
//!     async fn reset(&self);
//! }
//!
//! struct Calc;
//!
//! impl Calculator for Calc {
//!     async fn add(&self, x: i64, y: i64) -> i64 { x + y }
//!     async fn div(&self, x: i64, y: i64) -> Result<i64, MathError> {
//!         x.checked_div(y).ok_or(MathError::DivideByZero)
//!     }
//!     async fn reset(&self) {}
//! }
//!
//! // Server side: serve an implementation.
//! let registry = rpc_core::Registry::new().with(CalculatorServer::new(Calc))?;
//! // Client side: call one over any `rpc_core::Transport`.
//! let calc = CalculatorClient::new(rpc_core::Client::new(transport));
//! assert_eq!(calc.add(2, 3).await?, 5);
//! ```
//!
//! (`tests/tests/macro_expand.rs` runs this service end to end.)
//!
//! # What is generated
//!
//! | item | what it is |
//! |---|---|
//! | the trait | each `async fn m(&self, …) -> R` becomes `fn m(&self, …) -> impl Future<Output = R> + Send`, and the trait gains `Send + Sync + 'static`; implementations still write `async fn`. Doc comments, `#[cfg]` and other attributes stay. |
//! | `CalculatorServer<S>` | holds an `Arc<S>`; `new(service)`, `from_arc(arc)`, `Clone`, `Debug`, and `rpc_core::Service` for every `S: Calculator`: `info()` describes the service, `call()` decodes a method's arguments and starts it. |
//! | `CalculatorClient` | wraps an `rpc_core::Client`; `new(client)`, `with_timeout(duration)`, `Clone`, `Debug`, and one `async fn` per method with the same name, parameters, docs and `#[cfg]`. A method `-> R` returns `Result<R, rpc_core::Error>`; a method `-> Result<T, E>` returns `Result<T, rpc_core::CallError<E>>`. |
//! | hidden | per method, an argument struct whose fields are the parameters; the `ServiceInfo` static; compile-time checks that every type can cross the wire. They sit in an anonymous `const _: () = { … };` block and cannot clash with your names. |
//!
//! Generated code uses absolute paths only (`::rpc_core`, `::core`, and
//! `::std` for `Arc`), so it compiles under `#![no_implicit_prelude]` and
//! next to any names of yours. The generated items take the trait's
//! visibility.
//!
//! # Options
//!
//! - `#[rpc_service(name = "calc")]`: the service name methods are addressed
//!   by on the wire (`calc.add`); the trait's name by default. It must be
//!   non-empty, contain no `.`, and not be one the framework keeps (`rpc`,
//!   `system`).
//! - `#[rpc(idempotent)]` on a method: marks it safe to repeat
//!   (`MethodInfo::idempotent`).
//!
//! # Methods
//!
//! Every item of the trait is a method `async fn name(&self, a: A, b: B) -> R;`
//! - the receiver is `&self`: the server shares one service between
//!   concurrent calls (keep mutable state behind a lock);
//! - each parameter is a plain name and an owned type: the name is the
//!   argument's name on the wire, so JSON-RPC params work by position
//!   (`[2, 3]`, what the generated client sends) or by name
//!   (`{"x": 2, "y": 3}`; unknown names are refused). A raw identifier
//!   travels without `r#` (`r#type` is `"type"`);
//! - no return type means `()`.
//!
//! Every parameter type, result type and error type must be
//! `Serialize + DeserializeOwned + Send + Sync + 'static` (the client
//! encodes arguments from a reference that may cross threads); a type that
//! is not is reported on that type in your trait. bincode is not
//! self-describing, so over bincode a type must not need `deserialize_any`
//! (`serde_json::Value`, untagged enums, `#[serde(flatten)]`); use
//! `rpc_core::Value` for dynamic values.
//!
//! Refused, each with an error on the offending token: a method that is not
//! `async`; `const`, `unsafe`, `extern` or variadic methods; a missing receiver
//! or any receiver but `&self`; generics or `where` clauses on a method or on
//! the trait; an `unsafe` trait; patterns (`(a, b): (i64, i64)`, `_`, `mut x`)
//! as parameters; borrowed types (`&str`, anything with a lifetime but
//! `'static`), `impl
//! Trait` and `Self` as parameter or result types; default method bodies;
//! associated types, constants and macros; and methods named `new`,
//! `with_timeout` or `clone` (the generated client has those) or starting with
//! `__rpc` (reserved for generated items); and the stream misuses listed
//! under [Streams](#streams). On an error the trait is still emitted as
//! written, so your `impl` keeps compiling and only the real mistake is
//! reported.
//!
//! # Fallible methods
//!
//! A method is fallible when its return type is a path whose last segment is
//! `Result` with exactly two type arguments: `Result<T, E>`,
//! `std::result::Result<T, E>`, `core::result::Result<T, E>`. Its `Err(e)` is
//! sent as an application error: the message is `e`'s `Display` text when it
//! has one, else its type name, and `e` itself travels as the error's data, so
//! the client gets `CallError::Application(e)` back.
//!
//! An alias with one argument, such as `io::Result<T>` or `anyhow::Result<T>`,
//! is not recognised: the method is plain and the whole `Result` is its
//! success value. Write `Result<T, E>` in full to make it fallible.
//!
//! # Streams
//!
//! A method may take one `rpc_core::Stream<T>` parameter (a client stream),
//! return `Stream<T>` or `Result<Stream<T>, E>` (a server stream), or both
//! (bidirectional). The items travel beside the call, as they are produced;
//! the other arguments and the `Err` of a fallible result travel as usual.
//!
//! ```ignore
//! use rpc_core::{rpc_service, Stream};
//!
//! #[rpc_service]
//! pub trait Feed {
//!     async fn watch(&self, key: String) -> Stream<Change>;
//!     async fn upload(&self, name: String, chunks: Stream<Vec<u8>>) -> u64;
//!     async fn chat(&self, lines: Stream<String>) -> Stream<String>;
//!     async fn follow(&self, key: String) -> Result<Stream<u64>, FollowError>;
//! }
//! // The client methods:
//! //   async fn watch(&self, key: String) -> Result<Stream<Change>, rpc_core::Error>
//! //   async fn upload(&self, name: String, chunks: Stream<Vec<u8>>) -> Result<u64, rpc_core::Error>
//! //   async fn chat(&self, lines: Stream<String>) -> Result<Stream<String>, rpc_core::Error>
//! //   async fn follow(&self, key: String) -> Result<Stream<u64>, rpc_core::CallError<FollowError>>
//! ```
//!
//! Build a stream to send with `Stream::new(any_stream)`, `Stream::iter`,
//! `Stream::try_new` (ends with an error) or `Stream::channel`; a received
//! one is a `futures::Stream<Item = T>`. A stream is recognised by its
//! spelling: any path whose last segment is `Stream` (`Stream`,
//! `rpc_core::Stream`), so do not name a type of your own `Stream`. Its
//! method is described with `MethodInfo::takes_stream` / `returns_stream`,
//! and its type reads as written (`"Stream<u64>"`).
//!
//! Refused, each with an error on the offending type:
//! - a second `Stream` parameter (a call carries one stream each way; send
//!   one stream of an enum, or make two calls);
//! - a stream inside another type, as a parameter or a result:
//!   `Vec<Stream<T>>`, `Option<Stream<T>>`, `(Stream<T>, u8)`,
//!   `Box<Stream<T>>`, `Stream<Stream<T>>`;
//! - a stream as the error, `Result<T, Stream<E>>`, and `Result<Stream<T>, E>`
//!   as a parameter (end the stream with an error instead: `Stream::try_new`);
//! - `&Stream<T>` and `&mut Stream<T>`: streams are taken and returned by
//!   value;
//! - `Stream` without exactly one type argument (`Stream`, `Stream<A, B>`;
//!   rustc reports these as well);
//! - other crates' streams: `impl Stream<Item = T>`, `dyn Stream<…>` (also
//!   behind `Pin<Box<…>>`) and `BoxStream<'_, T>`; write
//!   `rpc_core::Stream<T>` and build it with `Stream::new(your_stream)`.

mod ast;
mod expand;
mod fallback;
mod names;
mod valid;

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::ToTokens;
use syn::{Item, ItemTrait};

/// Turns a trait into an rpc service: see the [crate documentation](crate).
#[proc_macro_attribute]
pub fn rpc_service(args: TokenStream, item: TokenStream) -> TokenStream {
    rpc_service_impl(args.into(), item.into()).into()
}

/// parse → validate → generate; on an error, the trait as written and every
/// error found, converted to tokens here only.
fn rpc_service_impl(args: TokenStream2, input: TokenStream2) -> TokenStream2 {
    let item: ItemTrait = match syn::parse2::<Item>(input.clone()) {
        Ok(Item::Trait(item)) => item,
        Ok(_) => {
            let msg = "`#[rpc_service]` goes on a trait: `#[rpc_service] pub trait Calculator { async fn add(&self, x: i64, y: i64) -> i64; }`";
            let mut out = syn::Error::new(Span::call_site(), msg).into_compile_error();
            out.extend(input);
            return out;
        }
        Err(e) => {
            let mut out = e.into_compile_error();
            out.extend(input);
            return out;
        }
    };
    let mut errors = Errors::default();
    let service = ast::Service::from_syn(args, &item, &mut errors);
    valid::check(&service, &mut errors);
    match errors.0 {
        None => expand::ServiceGenerator::new(&service).generate(),
        Some(e) => {
            let mut out = fallback::trait_item(&item);
            out.extend(e.into_compile_error());
            out
        }
    }
}

/// Errors collected through the pipeline, reported together.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// An error on `tokens`.
    fn spanned(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }
}
