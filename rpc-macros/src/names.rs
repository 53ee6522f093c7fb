//! The names and probes generated code refers to, one function each: what
//! the hidden items of a method are called, so that every part of
//! `expand.rs` names them alike.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::Ident;

use crate::ast::{Method, Output, Param};

/// `&Probe::<(Args, R, E)>::NEW`: the probe for one method's types (`()` for
/// a missing result or error).
pub(crate) fn probe(method: &Method<'_>) -> TokenStream {
    let args = args_ident(method);
    let params = method.params.iter().map(|p| &p.arg.ty);
    let args = match method.params.is_empty() {
        true => quote!(#args),
        false => quote!(#args<#(#params),*>),
    };
    let (ok, err) = match &method.output {
        Output::Unit => (quote!(()), quote!(())),
        Output::Plain(ty) => (quote!(#ty), quote!(())),
        Output::Fallible { ok, err } => (quote!(#ok), quote!(#err)),
    };
    quote!((&::rpc_core::__private::Probe::<(#args, #ok, #err)>::NEW))
}

/// `__RPC_METHOD_add`: the `MethodInfo` of `add`, a const so that the
/// service's table and the client's calls both name it.
pub(crate) fn method_const(method: &Method<'_>) -> Ident {
    Ident::new(
        &format!("__RPC_METHOD_{}", method.name()),
        Span::call_site(),
    )
}

/// `__rpc_args_add`: the hidden argument struct of `add`.
pub(crate) fn args_ident(method: &Method<'_>) -> Ident {
    Ident::new(&format!("__rpc_args_{}", method.name()), Span::call_site())
}

pub(crate) fn param_ident<'a>(param: &Param<'a>) -> &'a Ident {
    param
        .ident
        .expect("valid.rs rejects parameters without a plain name")
}
