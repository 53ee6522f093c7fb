//! Parse: the typed model of a `#[rpc_service]` trait.
//!
//! The model borrows the user's trait, so every later error and every
//! generated assertion can point at the tokens the user wrote. Parsing is
//! lenient: only the attribute options can fail here (their errors go to
//! [`Errors`]); every rule about what a service may contain is in `valid.rs`.

use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};
use syn::ext::IdentExt;
use syn::parse::Parser;
use syn::{
    Attribute, Expr, FnArg, GenericArgument, Ident, ItemTrait, Lit, LitStr, Meta, Pat, PatType,
    PathArguments, ReturnType, TraitItem, TraitItemFn, Type,
};

use crate::Errors;

/// A trait under `#[rpc_service]`.
pub(crate) struct Service<'a> {
    /// The trait as written.
    pub item: &'a ItemTrait,
    /// `name = "..."` from `#[rpc_service(...)]`.
    pub name: Option<LitStr>,
    /// Its `fn` items, in order; other items are left in `item` for `valid.rs`.
    pub methods: Vec<Method<'a>>,
}

/// One `fn` of the trait.
pub(crate) struct Method<'a> {
    /// The method as written.
    pub item: &'a TraitItemFn,
    /// Its attributes except our `#[rpc(...)]`.
    pub attrs: Vec<&'a Attribute>,
    /// Marked `#[rpc(idempotent)]`.
    pub idempotent: bool,
    /// Its parameters after the receiver.
    pub params: Vec<Param<'a>>,
    /// What it returns.
    pub output: Output<'a>,
}

/// One parameter after the receiver.
pub(crate) struct Param<'a> {
    /// The parameter as written.
    pub arg: &'a PatType,
    /// Its name, when the pattern is a plain identifier.
    pub ident: Option<&'a Ident>,
}

/// What a method returns.
pub(crate) enum Output<'a> {
    /// No return type: `()`.
    Unit,
    /// `-> T`.
    Plain(&'a Type),
    /// `-> Result<T, E>` (see [`fallible`]).
    Fallible { ok: &'a Type, err: &'a Type },
}

impl<'a> Service<'a> {
    /// Reads `item`; problems with the attribute options go to `errors`.
    pub(crate) fn from_syn(
        args: TokenStream,
        item: &'a ItemTrait,
        errors: &mut Errors,
    ) -> Service<'a> {
        let methods = item
            .items
            .iter()
            .filter_map(|i| match i {
                TraitItem::Fn(f) => Some(Method::from_syn(f, errors)),
                _ => None,
            })
            .collect();
        Service {
            item,
            name: parse_service_args(args, errors),
            methods,
        }
    }

    /// The name methods are addressed by: the `name` option, else the trait's.
    pub(crate) fn name(&self) -> String {
        match &self.name {
            Some(name) => name.value(),
            None => self.item.ident.unraw().to_string(),
        }
    }
}

impl<'a> Method<'a> {
    fn from_syn(item: &'a TraitItemFn, errors: &mut Errors) -> Method<'a> {
        let (ours, attrs): (Vec<_>, Vec<_>) =
            item.attrs.iter().partition(|a| a.path().is_ident("rpc"));
        let params = item
            .sig
            .inputs
            .iter()
            .filter_map(|arg| match arg {
                FnArg::Typed(arg) => Some(Param::from_syn(arg)),
                FnArg::Receiver(_) => None,
            })
            .collect();
        let output = match &item.sig.output {
            ReturnType::Default => Output::Unit,
            ReturnType::Type(_, ty) => match fallible(ty) {
                Some((ok, err)) => Output::Fallible { ok, err },
                None => Output::Plain(ty),
            },
        };
        Method {
            item,
            attrs,
            idempotent: parse_method_args(&ours, errors),
            params,
            output,
        }
    }

    /// The name on the wire: the identifier without `r#`.
    pub(crate) fn name(&self) -> String {
        self.item.sig.ident.unraw().to_string()
    }

    /// Its `#[cfg(...)]` attributes, which every generated item repeats.
    pub(crate) fn cfgs(&self) -> impl Iterator<Item = &'a Attribute> + '_ {
        self.attrs
            .iter()
            .copied()
            .filter(|a| a.path().is_ident("cfg"))
    }
}

impl<'a> Param<'a> {
    fn from_syn(arg: &'a PatType) -> Param<'a> {
        Param {
            arg,
            ident: plain_ident(&arg.pat),
        }
    }
}

/// The name a pattern binds, when it is nothing but a name (no `mut`, `ref`
/// or sub-pattern).
pub(crate) fn plain_ident(pat: &Pat) -> Option<&Ident> {
    match pat {
        Pat::Ident(p) if p.by_ref.is_none() && p.mutability.is_none() && p.subpat.is_none() => {
            Some(&p.ident)
        }
        _ => None,
    }
}

/// `#[rpc_service(name = "...")]`.
fn parse_service_args(args: TokenStream, errors: &mut Errors) -> Option<LitStr> {
    let mut name = None;
    let parser = syn::meta::parser(|meta| {
        if !meta.path.is_ident("name") {
            let msg = format!(
                "unknown `#[rpc_service]` option `{}`; the only option is `name = \"...\"`",
                path_string(&meta.path)
            );
            return Err(syn::Error::new_spanned(&meta.path, msg));
        }
        if name.is_some() {
            return Err(meta.error("`name` is given twice; give it once"));
        }
        match meta.value()?.parse::<Expr>()? {
            Expr::Lit(syn::ExprLit {
                lit: Lit::Str(lit), ..
            }) => name = Some(lit),
            other => {
                let msg = "the service name is a string; write `name = \"calc\"`";
                return Err(syn::Error::new_spanned(other, msg));
            }
        }
        Ok(())
    });
    if let Err(e) = parser.parse2(args) {
        errors.push(e);
    }
    name
}

/// `#[rpc(idempotent)]` on a method: whether it is there.
fn parse_method_args(attrs: &[&Attribute], errors: &mut Errors) -> bool {
    let mut idempotent = false;
    for attr in attrs {
        let parsed = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("idempotent") {
                idempotent = true;
                return Ok(());
            }
            let msg = format!(
                "unknown `#[rpc]` option `{}`; the only option is `idempotent`",
                path_string(&meta.path)
            );
            Err(syn::Error::new_spanned(&meta.path, msg))
        });
        if let Err(e) = parsed {
            errors.push(e);
        }
    }
    idempotent
}

fn path_string(path: &syn::Path) -> String {
    let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    segments.join("::")
}

/// Whether `ty` is `Result<T, E>`: a path whose last segment is `Result` with
/// exactly two type arguments (`Result`, `std::result::Result`, …). An alias
/// such as `io::Result<T>` has one argument and is a plain result.
pub(crate) fn fallible(ty: &Type) -> Option<(&Type, &Type)> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    let PathArguments::AngleBracketed(generics) = &last.arguments else {
        return None;
    };
    let mut types = generics.args.iter().map(|a| match a {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    });
    match (
        path.qself.is_none() && last.ident == "Result",
        generics.args.len(),
    ) {
        (true, 2) => Some((types.next()??, types.next()??)),
        _ => None,
    }
}

/// The item type of `ty` when it is `Stream<T>`: a path whose last segment
/// is `Stream` with one type argument (`Stream`, `rpc_core::Stream`, …),
/// seen through parentheses and the invisible groups of `macro_rules!`.
pub(crate) fn stream_item(ty: &Type) -> Option<&Type> {
    let path = match ty {
        Type::Paren(p) => return stream_item(&p.elem),
        Type::Group(g) => return stream_item(&g.elem),
        Type::Path(path) => path,
        _ => return None,
    };
    let last = path.path.segments.last()?;
    if path.qself.is_some() || last.ident != "Stream" {
        return None;
    }
    let PathArguments::AngleBracketed(generics) = &last.arguments else {
        return None;
    };
    match generics.args.iter().collect::<Vec<_>>()[..] {
        [GenericArgument::Type(item)] => Some(item),
        _ => None,
    }
}

/// The `///` lines of `attrs`, joined and trimmed.
pub(crate) fn doc(attrs: &[&Attribute]) -> String {
    let lines: Vec<String> = attrs
        .iter()
        .filter_map(|a| match &a.meta {
            Meta::NameValue(nv) if nv.path.is_ident("doc") => match &nv.value {
                Expr::Lit(e) => match &e.lit {
                    Lit::Str(s) => Some(s.value()),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        })
        .map(|line| {
            line.strip_prefix(' ')
                .unwrap_or(&line)
                .trim_end()
                .to_owned()
        })
        .collect();
    lines.join("\n").trim().to_owned()
}

/// `ty` as a person would write it: `Vec<(i64, String)>`, not `Vec < (i64 , String) >`.
pub(crate) fn type_string(ty: &Type) -> String {
    let mut out = String::new();
    write_tokens(&mut out, quote::quote!(#ty));
    out
}

fn write_tokens(out: &mut String, tokens: TokenStream) {
    for tt in tokens {
        let last = out.chars().last();
        match tt {
            TokenTree::Group(g) => {
                let (open, close) = match g.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::Brace => ("{", "}"),
                    Delimiter::None => ("", ""),
                };
                out.push_str(open);
                write_tokens(out, g.stream());
                out.truncate(out.trim_end().len());
                out.push_str(close);
            }
            TokenTree::Punct(p) => match p.as_char() {
                c @ ('+' | '=') => {
                    space(out);
                    out.push(c);
                    out.push(' ');
                }
                '-' if p.spacing() == Spacing::Joint => {
                    space(out);
                    out.push('-');
                }
                '>' if last == Some('-') => out.push_str("> "),
                c @ (',' | ';') => {
                    out.push(c);
                    out.push(' ');
                }
                c => out.push(c),
            },
            word => {
                if last.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    out.push(' ');
                }
                out.push_str(&word.to_string());
            }
        }
    }
}

fn space(out: &mut String) {
    if !out.is_empty() && !out.ends_with(' ') {
        out.push(' ');
    }
}

#[cfg(test)]
mod tests {
    use syn::parse_quote;

    use super::*;

    #[test]
    fn types_print_as_written() {
        let cases: [(Type, &str); 6] = [
            (parse_quote!(Vec<(i64, String)>), "Vec<(i64, String)>"),
            (
                parse_quote!(std::result::Result<u8, E>),
                "std::result::Result<u8, E>",
            ),
            (parse_quote!([u8; 4]), "[u8; 4]"),
            (
                parse_quote!(Box<dyn Fn(i64) -> i64 + Send>),
                "Box<dyn Fn(i64) -> i64 + Send>",
            ),
            (parse_quote!(Iter<Item = r#type>), "Iter<Item = r#type>"),
            (parse_quote!(()), "()"),
        ];
        for (ty, expected) in cases {
            assert_eq!(type_string(&ty), expected);
        }
    }

    #[test]
    fn only_a_two_argument_result_is_fallible() {
        let fallible =
            |ty: Type| fallible(&ty).map(|(ok, err)| (type_string(ok), type_string(err)));
        let pair = |ok: &str, err: &str| Some((ok.to_owned(), err.to_owned()));
        assert_eq!(
            fallible(parse_quote!(Result<i64, MathError>)),
            pair("i64", "MathError")
        );
        assert_eq!(
            fallible(parse_quote!(core::result::Result<(), E>)),
            pair("()", "E")
        );
        assert_eq!(fallible(parse_quote!(io::Result<i64>)), None);
        assert_eq!(fallible(parse_quote!(Option<i64>)), None);
        assert_eq!(fallible(parse_quote!(<T as X>::Result<A, B>)), None);
    }

    #[test]
    fn docs_are_joined_and_trimmed() {
        let attrs: Vec<Attribute> = vec![
            parse_quote!(#[doc = " Adds two numbers."]),
            parse_quote!(#[doc = ""]),
            parse_quote!(#[doc = "     indented"]),
            parse_quote!(#[cfg(test)]),
        ];
        let attrs: Vec<&Attribute> = attrs.iter().collect();
        assert_eq!(doc(&attrs), "Adds two numbers.\n\n    indented");
    }
}
