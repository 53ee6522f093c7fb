//! Validate: every rule a `#[rpc_service]` trait must follow, each a message
//! on the offending token saying what is wrong and what to write instead.
//! All rules run, so one compile shows every mistake. The rules about
//! `rpc_core::Stream` parameters and results are in `valid/streams.rs`.
//!
//! Whether a type can cross the wire (`Serialize + DeserializeOwned + Send +
//! 'static`) is not checked here but by `rpc_core::__private::assert_wire` in
//! the generated code, spanned on the type.

use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::{FnArg, ReceiverKind, Safety, TraitItem, Type};

use crate::Errors;
use crate::ast::{Method, Output, Service, type_string};

mod streams;

/// Service names the framework keeps for its own services; the same list as
/// `rpc_core::registry::RESERVED`, which refuses them at registration
/// (`rpc-core` depends on this crate; only its tests use `rpc-core`).
/// `tests/tests/macro_expand.rs` checks that each of those has a UI case
/// (`rpc-macros/tests/ui/fail/`) this list refuses.
const RESERVED_SERVICES: &[&str] = &["rpc", "system"];

/// Method names the generated client already uses, and what for.
const RESERVED_METHODS: &[(&str, &str)] = &[
    ("new", "its constructor"),
    ("with_timeout", "its timeout setter"),
    ("clone", "`Clone::clone`"),
];

/// Checks `service`, adding every problem to `errors`.
pub(crate) fn check(service: &Service<'_>, errors: &mut Errors) {
    check_trait(service, errors);
    check_service_name(service, errors);
    for item in &service.item.items {
        check_item(item, errors);
    }
    for method in &service.methods {
        check_method(service, method, errors);
    }
}

fn check_trait(service: &Service<'_>, errors: &mut Errors) {
    let item = service.item;
    if let Some(unsafety) = &item.unsafety {
        let msg = "a `#[rpc_service]` trait cannot be `unsafe`: a remote caller cannot uphold a safety contract; remove `unsafe`";
        errors.spanned(unsafety, msg);
    }
    if !item.generics.params.is_empty() {
        let msg = "a `#[rpc_service]` trait cannot be generic: every method needs concrete types to decode into; remove the parameters and use concrete types";
        errors.spanned(&item.generics, msg);
    }
    if let Some(clause) = &item.generics.where_clause {
        let msg = "a `#[rpc_service]` trait cannot have a `where` clause; remove it (`Send + Sync + 'static` are added for you)";
        errors.spanned(clause, msg);
    }
}

fn check_service_name(service: &Service<'_>, errors: &mut Errors) {
    let name = service.name();
    let at: &dyn ToTokens = match &service.name {
        Some(lit) => lit,
        None => &service.item.ident,
    };
    if name.is_empty() {
        errors.spanned(
            at,
            "the service name is empty; write a name such as `name = \"calc\"`",
        );
    } else if name.contains('.') {
        let msg = format!(
            "the service name `{name}` contains `.`, which separates service and method on the wire (`{name}.method`); write a name without `.`"
        );
        errors.spanned(at, msg);
    } else if RESERVED_SERVICES.contains(&name.as_str()) {
        let msg = format!(
            "the service name `{name}` is reserved for the framework's own services; choose another with `#[rpc_service(name = \"...\")]`"
        );
        errors.spanned(at, msg);
    }
}

fn check_item(item: &TraitItem, errors: &mut Errors) {
    let msg = match item {
        TraitItem::Fn(_) => return,
        TraitItem::Const(_) => {
            "associated constants are not supported in a `#[rpc_service]` trait: only `async fn` methods cross the wire; move the constant out of the trait"
        }
        TraitItem::Type(_) => {
            "associated types are not supported in a `#[rpc_service]` trait: a remote caller cannot know the implementer's type; use a concrete type in the methods"
        }
        TraitItem::Macro(_) => {
            "macros are not expanded inside a `#[rpc_service]` trait; write the `async fn` methods out"
        }
        _ => "only `async fn` methods are supported in a `#[rpc_service]` trait; remove this item",
    };
    errors.spanned(item, msg);
}

fn check_method(service: &Service<'_>, method: &Method<'_>, errors: &mut Errors) {
    check_qualifiers(method, errors);
    check_receiver(method, errors);
    check_generics(method, errors);
    check_params(method, errors);
    check_output(method, errors);
    check_method_name(service, method, errors);
    if let Some(body) = &method.item.default {
        let msg = "default method bodies are not supported in a `#[rpc_service]` trait: the client calls the server, which calls your `impl`; move the body into the `impl`";
        errors.spanned(body, msg);
    }
}

fn check_qualifiers(method: &Method<'_>, errors: &mut Errors) {
    let sig = &method.item.sig;
    let name = &sig.ident;
    if let Some(constness) = &sig.constness {
        let msg =
            format!("`#[rpc_service]` methods cannot be `const fn`; write `async fn {name}(...)`");
        errors.spanned(constness, msg);
    } else if sig.asyncness.is_none() {
        let msg =
            format!("`#[rpc_service]` methods must be `async fn`; write `async fn {name}(...)`");
        errors.spanned(sig.fn_token, msg);
    }
    if let Safety::Unsafe(unsafety) = &sig.safety {
        let msg = "`#[rpc_service]` methods cannot be `unsafe`: a remote caller cannot uphold a safety contract; remove `unsafe`";
        errors.spanned(unsafety, msg);
    }
    if let Some(abi) = &sig.abi {
        let msg = "`#[rpc_service]` methods cannot have an ABI: they are called through the generated server; remove the `extern`";
        errors.spanned(abi, msg);
    }
    if let Some(variadic) = &sig.variadic {
        let msg =
            "`#[rpc_service]` methods cannot be variadic; take the values as a `Vec<T>` parameter";
        errors.spanned(variadic, msg);
    }
}

fn check_receiver(method: &Method<'_>, errors: &mut Errors) {
    let sig = &method.item.sig;
    let name = &sig.ident;
    let Some(FnArg::Receiver(receiver)) = sig.inputs.first() else {
        let msg = format!(
            "`{name}` has no `&self` receiver: the server calls it on the shared service; write `async fn {name}(&self, ...)`"
        );
        errors.push(syn::Error::new(sig.paren_token.span.join(), msg));
        return;
    };
    let msg = match &receiver.kind {
        ReceiverKind::Reference(_, None, None) => return,
        ReceiverKind::Reference(_, _, Some(_)) => {
            "`&mut self` is not supported: the server shares one service between concurrent calls; write `&self` and keep mutable state behind a lock"
        }
        ReceiverKind::Reference(_, Some(_), None) => {
            "a receiver with a named lifetime is not supported; write `&self`"
        }
        ReceiverKind::Value => {
            "`self` by value is not supported: the server shares one service between calls; write `&self`"
        }
        _ => "typed receivers such as `self: Arc<Self>` are not supported; write `&self`",
    };
    errors.spanned(receiver, msg);
}

fn check_generics(method: &Method<'_>, errors: &mut Errors) {
    let generics = &method.item.sig.generics;
    if !generics.params.is_empty() {
        let msg = "`#[rpc_service]` methods cannot be generic: a remote caller cannot choose a type; use concrete types";
        errors.spanned(generics, msg);
    }
    if let Some(clause) = &generics.where_clause {
        let msg = "`#[rpc_service]` methods cannot have a `where` clause; use concrete types";
        errors.spanned(clause, msg);
    }
}

fn check_params(method: &Method<'_>, errors: &mut Errors) {
    let mut streams = 0;
    for param in &method.params {
        if param.ident.is_none() {
            let msg = "a parameter of a `#[rpc_service]` method needs a plain name, which names the argument on the wire; write `name: Type` (patterns and `mut` belong in the `impl`)";
            errors.spanned(&param.arg.pat, msg);
        }
        if !streams::check_param(param, &mut streams, errors) {
            check_type(&param.arg.ty, errors);
        }
    }
}

fn check_output(method: &Method<'_>, errors: &mut Errors) {
    if streams::check_output(&method.item.sig.output, errors) {
        return;
    }
    match &method.output {
        Output::Unit => {}
        Output::Plain(ty) => check_type(ty, errors),
        Output::Fallible { ok, err } => {
            check_type(ok, errors);
            check_type(err, errors);
        }
    }
}

/// Arguments and results are decoded into owned values of one concrete type.
fn check_type(ty: &Type, errors: &mut Errors) {
    let msg = match first_unsupported(ty.to_token_stream()) {
        None => return,
        Some(Unsupported::Borrow) => format!(
            "`{}` borrows, but arguments and results cross the wire as owned values; write an owned type such as `String`, `Vec<T>` or `Box<T>`",
            type_string(ty)
        ),
        Some(Unsupported::ImplTrait) => "`impl Trait` is not supported: arguments and results need one concrete type to decode into; write a concrete type".to_owned(),
        Some(Unsupported::SelfType) => "`Self` is the implementing type, which a remote caller does not know; write the concrete type".to_owned(),
    };
    errors.spanned(ty, msg);
}

enum Unsupported {
    Borrow,
    ImplTrait,
    SelfType,
}

fn first_unsupported(tokens: TokenStream) -> Option<Unsupported> {
    let mut tokens = tokens.into_iter();
    while let Some(tt) = tokens.next() {
        let found = match tt {
            TokenTree::Group(g) => first_unsupported(g.stream()),
            TokenTree::Punct(p) if p.as_char() == '&' => Some(Unsupported::Borrow),
            TokenTree::Punct(p) if p.as_char() == '\'' => match tokens.next() {
                Some(TokenTree::Ident(i)) if i == "static" => None,
                _ => Some(Unsupported::Borrow),
            },
            TokenTree::Ident(i) if i == "impl" => Some(Unsupported::ImplTrait),
            TokenTree::Ident(i) if i == "Self" => Some(Unsupported::SelfType),
            _ => None,
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

fn check_method_name(service: &Service<'_>, method: &Method<'_>, errors: &mut Errors) {
    let name = method.name();
    let ident = &method.item.sig.ident;
    if name.starts_with("__rpc") {
        let msg = "names starting with `__rpc` are reserved for generated items; rename the method";
        errors.spanned(ident, msg);
    } else if let Some((_, what)) = RESERVED_METHODS.iter().find(|(n, _)| *n == name) {
        let msg = format!(
            "a method cannot be called `{name}`: the generated `{}Client` has its own `{name}` ({what}); rename the method",
            service.item.ident.unraw()
        );
        errors.spanned(ident, msg);
    }
}
