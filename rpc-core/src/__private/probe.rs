//! Whether a service's types can cross the wire, reported once per type, on
//! the type the user wrote.
//!
//! Every parameter, result and error type of a `#[rpc_service]` method must be
//! [`Wire`]: `Serialize + DeserializeOwned + Send + Sync + 'static`. Generated code
//! needs those traits in several places (decoding the arguments, the reply,
//! the client's call, boxing the server's future as `Send`). Asking for them
//! there would report one bad type many times, at the macro's call site. So:
//!
//! - for each type the user wrote, generated code asserts
//!   `const _: () = assert_wire::<T>();`, spanned on that type. That is the
//!   one error, and it says what is wrong (see [`Wire`]).
//! - every other use goes through a probe and a method call:
//!   `(&Probe::<(Args, R, E)>::NEW).__rpc_ok(value)` (the method's argument
//!   struct, result and error; `()` for a missing one). Method resolution
//!   first tries the receiver as it is, `&Probe`, where [`ViaWire`] applies
//!   when all three types are [`Wire`] and does the work. When one is not,
//!   it autorefs to `&&Probe`, where [`ViaNever`] applies: it asks nothing of
//!   the types, so adds no error of its own (autoref specialisation).
//!
//! `ViaNever` never runs: its methods are only chosen when an assertion has
//! already failed the build. As a safety net, each evaluates
//! `Probe::<T>::NEVER`, which fails the build rather than panicking.
//!
//! The methods are named `__rpc_…` because a method call also sees the
//! user's traits in scope; `#[rpc_service]` reserves that prefix.

use core::future::Future;
use core::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{BoxCall, MethodInfo, Reply, app_error, decode_args, ok};
use crate::client::Client;
use crate::error::{CallError, Error};

/// A type that can cross the wire: every parameter, result and error type of
/// a `#[rpc_service]` method.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot cross the wire: #[rpc_service] argument, result and error types must implement Serialize + DeserializeOwned + Send + Sync + 'static",
    label = "cannot cross the wire",
    note = "derive both `serde::Serialize` and `serde::Deserialize` for it, or use a type that has them"
)]
pub trait Wire: Serde + Send + Sync + 'static {}

impl<T: Serde + Send + Sync + 'static> Wire for T {}

/// `Serialize + DeserializeOwned` as one bound: `do_not_recommend` makes the
/// compiler report `T: Serde` (with [`Wire`]'s message) instead of each
/// missing serde trait, so a type without serde gets one error. `Send` stays
/// outside it, so a type that is not `Send` gets the compiler's own error,
/// which names the field that is not.
pub trait Serde: Serialize + DeserializeOwned {}

#[diagnostic::do_not_recommend]
impl<T: Serialize + DeserializeOwned> Serde for T {}

/// Fails to compile, on `T`, unless `T` can cross the wire.
pub const fn assert_wire<T: Wire>() {}

/// Stands for one method's types: `T` is `(Args, R, E)`.
pub struct Probe<T>(PhantomData<fn() -> T>);

impl<T> Probe<T> {
    /// The probe; generated code calls methods on `&Probe::<T>::NEW`.
    pub const NEW: Self = Self(PhantomData);

    /// Evaluated only by [`ViaNever`]'s methods, which only a failed
    /// assertion lets the compiler pick: a build error, never a panic.
    const NEVER: () = panic!("a `#[rpc_service]` type cannot cross the wire");
}

/// What generated code does with a method's types, when they can cross the
/// wire: the real work.
pub trait ViaWire<A, R, E> {
    /// Decodes the argument struct of `method`.
    fn __rpc_decode(
        &self,
        method: &str,
        args: &mut dyn erased_serde::Deserializer<'_>,
    ) -> Result<A, Error>;

    /// A successful reply.
    fn __rpc_ok(&self, value: R) -> Reply;

    /// An application error reply.
    fn __rpc_error(&self, message: String, error: E) -> Reply;

    /// Calls a method declared `-> R`.
    fn __rpc_call<'a>(
        &self,
        client: &'a Client,
        info: &'static MethodInfo,
        method: &'a str,
        args: &'a A,
    ) -> impl Future<Output = Result<R, Error>>;

    /// Calls a method declared `-> Result<R, E>`.
    fn __rpc_call_fallible<'a>(
        &self,
        client: &'a Client,
        info: &'static MethodInfo,
        method: &'a str,
        args: &'a A,
    ) -> impl Future<Output = Result<R, CallError<E>>>;

    /// Starts the server's call: `run` takes the decoded arguments when it
    /// is first polled; until then middleware can read them.
    fn __rpc_start<F, Fut>(&self, keep_args: bool, args: A, run: F) -> BoxCall
    where
        F: FnOnce(A) -> Fut + Send + 'static,
        Fut: Future<Output = Reply> + Send + 'static;
}

/// [`ViaWire`]'s methods for types that cannot cross the wire: never run,
/// and ask nothing of the types (not even `Send` of the boxed future).
pub trait ViaNever<A, R, E> {
    /// Never runs.
    fn __rpc_decode(
        &self,
        method: &str,
        args: &mut dyn erased_serde::Deserializer<'_>,
    ) -> Result<A, Error>;

    /// Never runs.
    fn __rpc_ok(&self, value: R) -> Reply;

    /// Never runs.
    fn __rpc_error(&self, message: String, error: E) -> Reply;

    /// Never runs.
    fn __rpc_call<'a>(
        &self,
        client: &'a Client,
        info: &'static MethodInfo,
        method: &'a str,
        args: &'a A,
    ) -> impl Future<Output = Result<R, Error>>;

    /// Never runs.
    fn __rpc_call_fallible<'a>(
        &self,
        client: &'a Client,
        info: &'static MethodInfo,
        method: &'a str,
        args: &'a A,
    ) -> impl Future<Output = Result<R, CallError<E>>>;

    /// Never runs.
    fn __rpc_start<F, Fut>(&self, keep_args: bool, args: A, run: F) -> BoxCall
    where
        F: FnOnce(A) -> Fut,
        Fut: Future<Output = Reply>;
}

impl<A: Wire, R: Wire, E: Wire> ViaWire<A, R, E> for Probe<(A, R, E)> {
    fn __rpc_decode(
        &self,
        method: &str,
        args: &mut dyn erased_serde::Deserializer<'_>,
    ) -> Result<A, Error> {
        decode_args(method, args)
    }

    fn __rpc_ok(&self, value: R) -> Reply {
        ok(value)
    }

    fn __rpc_error(&self, message: String, error: E) -> Reply {
        app_error(message, error)
    }

    fn __rpc_call<'a>(
        &self,
        client: &'a Client,
        info: &'static MethodInfo,
        method: &'a str,
        args: &'a A,
    ) -> impl Future<Output = Result<R, Error>> {
        client.call_described(info, method, args)
    }

    fn __rpc_call_fallible<'a>(
        &self,
        client: &'a Client,
        info: &'static MethodInfo,
        method: &'a str,
        args: &'a A,
    ) -> impl Future<Output = Result<R, CallError<E>>> {
        client.call_fallible_described(info, method, args)
    }

    fn __rpc_start<F, Fut>(&self, keep_args: bool, args: A, run: F) -> BoxCall
    where
        F: FnOnce(A) -> Fut + Send + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        crate::service::started(keep_args, args, run)
    }
}

impl<A, R, E> ViaNever<A, R, E> for &Probe<(A, R, E)> {
    fn __rpc_decode(
        &self,
        _: &str,
        _: &mut dyn erased_serde::Deserializer<'_>,
    ) -> Result<A, Error> {
        let () = Probe::<(A, R, E)>::NEVER;
        unreachable!()
    }

    fn __rpc_ok(&self, _: R) -> Reply {
        let () = Probe::<(A, R, E)>::NEVER;
        unreachable!()
    }

    fn __rpc_error(&self, _: String, _: E) -> Reply {
        let () = Probe::<(A, R, E)>::NEVER;
        unreachable!()
    }

    fn __rpc_call<'a>(
        &self,
        _: &'a Client,
        _: &'static MethodInfo,
        _: &'a str,
        _: &'a A,
    ) -> impl Future<Output = Result<R, Error>> {
        let () = Probe::<(A, R, E)>::NEVER;
        core::future::pending()
    }

    fn __rpc_call_fallible<'a>(
        &self,
        _: &'a Client,
        _: &'static MethodInfo,
        _: &'a str,
        _: &'a A,
    ) -> impl Future<Output = Result<R, CallError<E>>> {
        let () = Probe::<(A, R, E)>::NEVER;
        core::future::pending()
    }

    fn __rpc_start<F, Fut>(&self, _: bool, _: A, _: F) -> BoxCall
    where
        F: FnOnce(A) -> Fut,
        Fut: Future<Output = Reply>,
    {
        let () = Probe::<(A, R, E)>::NEVER;
        unreachable!()
    }
}
