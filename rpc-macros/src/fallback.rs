//! Fallback: on a macro error, the user's trait as written, so their `impl`
//! blocks still compile and the error shown is only ours.
//!
//! The trait keeps its `async fn` methods; our `#[rpc(...)]` attributes are
//! removed, and what Rust itself rejects in a trait (`const fn`, C variadics,
//! patterns in parameters of a method without a body) is neutralised, since
//! `valid.rs` already reported it.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{FnArg, ItemTrait, Pat, PatWild, TraitItem};

use crate::ast::plain_ident;

/// The trait to emit next to the errors.
pub(crate) fn trait_item(item: &ItemTrait) -> TokenStream {
    let mut item = item.clone();
    for method in item.items.iter_mut().filter_map(|i| match i {
        TraitItem::Fn(f) => Some(f),
        _ => None,
    }) {
        method.attrs.retain(|a| !a.path().is_ident("rpc"));
        method.sig.constness = None;
        method.sig.variadic = None;
        let bodiless = method.default.is_none();
        for arg in method.sig.inputs.iter_mut() {
            if let FnArg::Typed(arg) = arg
                && bodiless
                && plain_ident(&arg.pat).is_none()
            {
                *arg.pat = Pat::Wild(PatWild {
                    attrs: Vec::new(),
                    underscore_token: Default::default(),
                });
            }
        }
    }
    quote! {
        #[allow(async_fn_in_trait)]
        #item
    }
}
