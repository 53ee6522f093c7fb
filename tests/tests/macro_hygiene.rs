//! `#[rpc_service]` output names only absolute paths: it compiles with no
//! prelude, next to raw identifiers, doc comments, `#[cfg]`'d methods and a
//! fallible method with the user's own error type.

#![no_implicit_prelude]
// `#[cfg(all())]` is the point: an always-true cfg that generated items repeat.
#![allow(clippy::non_minimal_cfg)]

/// The error of `Things::risky`.
#[derive(::core::fmt::Debug, ::serde::Serialize, ::serde::Deserialize)]
pub enum Oops {
    /// It went wrong.
    Wrong,
}

/// Items named like what generated code uses, which it must not pick up.
#[allow(dead_code)]
mod shadows {
    pub(crate) struct Result;
    pub(crate) struct Ok;
    pub(crate) struct Err;
    pub(crate) struct Option;
    pub(crate) struct Some;
    pub(crate) struct Box;
    pub(crate) struct Arc;
    pub(crate) struct String;
    pub(crate) struct Send;
    pub(crate) struct Sync;
    pub(crate) struct Clone;
    pub(crate) struct Debug;
    pub(crate) struct Future;
    pub(crate) struct Serialize;
    pub(crate) struct Deserialize;
}

#[allow(unused_imports)]
use shadows::*;

/// Not the crates of the same names: generated paths start with `::`.
#[allow(dead_code)]
mod core {}
#[allow(dead_code)]
mod std {}
#[allow(dead_code)]
mod rpc_core {}
#[allow(dead_code)]
mod serde {}

/// A trait-level `#[cfg]` also removes the server and the client.
#[cfg(any())]
#[::rpc_core::rpc_service]
pub trait Absent {
    async fn nothing(&self);
}

/// Things with awkward names.
#[::rpc_core::rpc_service]
pub trait Things {
    /// Returns the type of `r#match`.
    #[rpc(idempotent)]
    async fn r#type(&self, r#match: ::std::string::String) -> ::std::string::String;

    /// Never compiled.
    #[cfg(any())]
    async fn gone(&self, x: NotSerializable) -> i64;

    /// Always compiled.
    #[cfg(all())]
    async fn here(&self) -> u8;

    /// May fail.
    async fn risky(&self, r#in: i64) -> ::core::result::Result<i64, Oops>;
}

struct Impl;

impl Things for Impl {
    async fn r#type(&self, r#match: ::std::string::String) -> ::std::string::String {
        r#match
    }

    async fn here(&self) -> u8 {
        1
    }

    async fn risky(&self, r#in: i64) -> ::core::result::Result<i64, Oops> {
        if r#in > 0 {
            ::core::result::Result::Ok(r#in)
        } else {
            ::core::result::Result::Err(Oops::Wrong)
        }
    }
}

#[::core::prelude::v1::test]
fn the_service_describes_raw_names_without_r_hash() {
    let server = ThingsServer::new(Impl);
    let info = ::rpc_core::Service::info(&server);
    let names: ::std::vec::Vec<&str> =
        ::core::iter::Iterator::collect(::core::iter::Iterator::map(info.methods.iter(), |m| {
            m.name
        }));
    ::core::assert_eq!(names, ["type", "here", "risky"]);

    let r#type = &info.methods[0];
    ::core::assert_eq!(r#type.doc, "Returns the type of `r#match`.");
    ::core::assert!(r#type.idempotent);
    ::core::assert_eq!(r#type.params.len(), 1);
    ::core::assert_eq!(r#type.params[0].name, "match");
    ::core::assert_eq!(r#type.params[0].ty, "::std::string::String");

    let risky = &info.methods[2];
    ::core::assert_eq!(risky.params[0].name, "in");
    ::core::assert_eq!(risky.error, ::core::option::Option::Some("Oops"));
    ::core::assert_eq!(risky.returns, "i64");
}
