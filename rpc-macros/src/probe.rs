//! The hidden helpers through which generated code serialises, so that a type
//! that cannot cross the wire is reported once, on the user's type.
//!
//! Every use of a method's types that needs `Serialize`, `DeserializeOwned`,
//! `Send` or `'static` goes through a probe, `&__RpcProbe::<(A, R, E)>::NEW`
//! (arguments, result, error), and a method call on it. When the types have
//! those traits, `__RpcWire` applies and does the work; when they do not, the
//! call resolves (by autoref) to `__RpcWireNever` instead, which needs nothing
//! and so adds no error of its own. The spanned assertions generated for each
//! type then fail the build, on the type the user wrote, and nothing else does.
//!
//! The server's future is boxed the same way (`__rpc_box`), since it holds
//! the arguments and is only `Send` when they are: only `__RpcWire`'s version
//! asks for `Send`.
//!
//! `__RpcWireNever` never runs: its methods are only chosen when an assertion
//! fails. As a safety net, instantiating one evaluates `NEVER`, which fails the
//! build rather than panicking at run time.
//!
//! These are the same for every service; they are emitted inside each
//! service's anonymous `const` block only because `rpc-core`'s `__private`
//! module does not (yet) provide them.

use proc_macro2::TokenStream;
use quote::quote;

/// The probe, the two traits, their impls, and `__rpc_assert_send`.
pub(crate) fn helpers() -> TokenStream {
    let signatures = quote! {
        fn __rpc_decode(
            &self,
            method: &str,
            args: &mut dyn ::rpc_core::__private::erased_serde::Deserializer<'_>,
        ) -> ::core::result::Result<A, ::rpc_core::Error>;
        fn __rpc_ok(&self, value: R) -> ::rpc_core::__private::Reply;
        fn __rpc_error(&self, message: ::std::string::String, error: E) -> ::rpc_core::__private::Reply;
        fn __rpc_call<'a>(&self, client: &'a ::rpc_core::Client, method: &'a str, args: &'a A)
            -> impl ::core::future::Future<Output = ::core::result::Result<R, ::rpc_core::Error>>;
        fn __rpc_call_fallible<'a>(&self, client: &'a ::rpc_core::Client, method: &'a str, args: &'a A)
            -> impl ::core::future::Future<Output = ::core::result::Result<R, ::rpc_core::CallError<E>>>;
    };
    let bounds = quote! {
        ::rpc_core::__private::serde::Serialize
            + ::rpc_core::__private::serde::de::DeserializeOwned
            + ::core::marker::Send
            + 'static
    };
    quote! {
        struct __RpcProbe<T>(::core::marker::PhantomData<fn() -> T>);

        impl<T> __RpcProbe<T> {
            const NEW: Self = Self(::core::marker::PhantomData);
            const NEVER: () = ::core::panic!("a `#[rpc_service]` type cannot cross the wire");
        }

        #[allow(dead_code)]
        trait __RpcWire<A, R, E> {
            #signatures
            fn __rpc_box<F>(&self, future: F) -> ::rpc_core::__private::BoxFuture<::rpc_core::__private::Reply>
            where
                F: ::core::future::Future<Output = ::rpc_core::__private::Reply> + ::core::marker::Send + 'static;
        }

        #[allow(dead_code)]
        trait __RpcWireNever<A, R, E> {
            #signatures
            fn __rpc_box<F>(&self, future: F) -> ::rpc_core::__private::BoxFuture<::rpc_core::__private::Reply>;
        }

        impl<A: #bounds, R: #bounds, E: #bounds> __RpcWire<A, R, E> for __RpcProbe<(A, R, E)> {
            fn __rpc_decode(
                &self,
                method: &str,
                args: &mut dyn ::rpc_core::__private::erased_serde::Deserializer<'_>,
            ) -> ::core::result::Result<A, ::rpc_core::Error> {
                ::rpc_core::__private::decode_args(method, args)
            }

            fn __rpc_ok(&self, value: R) -> ::rpc_core::__private::Reply {
                ::rpc_core::__private::ok(value)
            }

            fn __rpc_error(&self, message: ::std::string::String, error: E) -> ::rpc_core::__private::Reply {
                ::rpc_core::__private::app_error(message, error)
            }

            fn __rpc_call<'a>(&self, client: &'a ::rpc_core::Client, method: &'a str, args: &'a A)
                -> impl ::core::future::Future<Output = ::core::result::Result<R, ::rpc_core::Error>>
            {
                client.call(method, args)
            }

            fn __rpc_call_fallible<'a>(&self, client: &'a ::rpc_core::Client, method: &'a str, args: &'a A)
                -> impl ::core::future::Future<Output = ::core::result::Result<R, ::rpc_core::CallError<E>>>
            {
                client.call_fallible(method, args)
            }

            fn __rpc_box<F>(&self, future: F) -> ::rpc_core::__private::BoxFuture<::rpc_core::__private::Reply>
            where
                F: ::core::future::Future<Output = ::rpc_core::__private::Reply> + ::core::marker::Send + 'static,
            {
                ::std::boxed::Box::pin(future)
            }
        }

        impl<A, R, E> __RpcWireNever<A, R, E> for &__RpcProbe<(A, R, E)> {
            fn __rpc_decode(
                &self,
                _: &str,
                _: &mut dyn ::rpc_core::__private::erased_serde::Deserializer<'_>,
            ) -> ::core::result::Result<A, ::rpc_core::Error> {
                let () = __RpcProbe::<(A, R, E)>::NEVER;
                ::core::unreachable!()
            }

            fn __rpc_ok(&self, _: R) -> ::rpc_core::__private::Reply {
                let () = __RpcProbe::<(A, R, E)>::NEVER;
                ::core::unreachable!()
            }

            fn __rpc_error(&self, _: ::std::string::String, _: E) -> ::rpc_core::__private::Reply {
                let () = __RpcProbe::<(A, R, E)>::NEVER;
                ::core::unreachable!()
            }

            fn __rpc_call<'a>(&self, _: &'a ::rpc_core::Client, _: &'a str, _: &'a A)
                -> impl ::core::future::Future<Output = ::core::result::Result<R, ::rpc_core::Error>>
            {
                let () = __RpcProbe::<(A, R, E)>::NEVER;
                ::core::future::pending()
            }

            fn __rpc_call_fallible<'a>(&self, _: &'a ::rpc_core::Client, _: &'a str, _: &'a A)
                -> impl ::core::future::Future<Output = ::core::result::Result<R, ::rpc_core::CallError<E>>>
            {
                let () = __RpcProbe::<(A, R, E)>::NEVER;
                ::core::future::pending()
            }

            fn __rpc_box<F>(&self, _: F) -> ::rpc_core::__private::BoxFuture<::rpc_core::__private::Reply> {
                let () = __RpcProbe::<(A, R, E)>::NEVER;
                ::core::unreachable!()
            }
        }

        const fn __rpc_assert_send<T: ::core::marker::Send + 'static>() {}
    }
}
