//! The rules for `rpc_core::Stream`: a method takes at most one `Stream<T>`
//! parameter, by value, and may return `Stream<T>` or `Result<Stream<T>, E>`.
//! A stream's items travel beside the call, so a stream is only ever a whole
//! parameter or the whole (`Ok`) result, never inside another type, and it
//! has exactly one type argument, its item type. Streams of other crates
//! (`impl Stream`, `dyn Stream`, `BoxStream`) are pointed to
//! `rpc_core::Stream`.
//!
//! Each function returns whether it reported on the type, so that
//! `valid.rs` checks that type no further and one mistake gives one error.

use syn::punctuated::Punctuated;
use syn::{GenericArgument, PathArguments, ReturnType, Type, TypeParamBound};

use crate::Errors;
use crate::ast::{Param, fallible, stream_item, type_string};

/// Checks a parameter's type; `seen` counts the stream parameters before it.
pub(super) fn check_param(param: &Param<'_>, seen: &mut usize, errors: &mut Errors) -> bool {
    let ty = &*param.arg.ty;
    if is_named_stream(ty) || borrowed_stream(ty).is_some() {
        *seen += 1;
        if *seen > 1 {
            let name = param
                .ident
                .map_or_else(|| "this".to_owned(), |i| format!("`{i}`"));
            let msg = format!(
                "{name} is a second `Stream` parameter, but a call carries at most one stream each way; send one `Stream<T>` whose items say which is which (an enum), or make two calls"
            );
            errors.spanned(param.arg, msg);
            return true;
        }
    }
    if let Some((ok, _)) = fallible(ty)
        && stream_item(ok).is_some()
    {
        let msg = format!(
            "a parameter cannot be `{}`: a stream is sent whole; take `{}` and let the caller end it with an error (`Stream::try_new`)",
            type_string(ty),
            type_string(ok)
        );
        errors.spanned(ty, msg);
        return true;
    }
    check_streams(ty, Place::Param, errors)
}

/// Checks a method's return type.
pub(super) fn check_output(output: &ReturnType, errors: &mut Errors) -> bool {
    let ReturnType::Type(_, ty) = output else {
        return false;
    };
    let Some((ok, err)) = fallible(ty) else {
        return check_streams(ty, Place::Result, errors);
    };
    let in_ok = check_streams(ok, Place::Result, errors);
    let mut found = Vec::new();
    find(err, false, &mut found);
    for f in &found {
        let msg = format!(
            "a stream cannot be the error of a call (`{}`): the error is one value sent when the call fails; return `Result<Stream<T>, E>` with a plain `E`, or end the stream with an error (`Stream::try_new`)",
            type_string(ty)
        );
        errors.spanned(f.ty, msg);
    }
    in_ok || !found.is_empty()
}

/// Where a type is written, for the suggestions.
#[derive(Clone, Copy)]
enum Place {
    Param,
    Result,
}

impl Place {
    fn verb(self) -> &'static str {
        match self {
            Place::Param => "taken",
            Place::Result => "returned",
        }
    }
}

/// Reports every stream in `ty` but a well-formed `Stream<T>` that is `ty`
/// itself.
fn check_streams(ty: &Type, place: Place, errors: &mut Errors) -> bool {
    if let Some(stream) = borrowed_stream(ty) {
        let (verb, stream) = (place.verb(), type_string(stream));
        let msg = format!(
            "`{}` borrows a stream, but streams are {verb} by value; write `{stream}`",
            type_string(ty)
        );
        errors.spanned(ty, msg);
        return true;
    }
    if let Some(inner) = foreign_behind_pointers(ty) {
        report_foreign(ty, inner, errors);
        return true;
    }
    let mut found = Vec::new();
    find(ty, false, &mut found);
    let mut reported = false;
    for f in &found {
        match f.shape {
            Shape::Ours if std::ptr::eq(f.ty, ty) => continue,
            Shape::Foreign => report_foreign(f.ty, f.ty, errors),
            Shape::BadArgs => report_bad_args(f.ty, errors),
            Shape::Ours if f.in_stream => {
                let msg = "a stream's items cannot be streams: a stream travels only as a whole parameter or result; stream the items themselves (`Stream<T>`), or make a call per inner stream";
                errors.spanned(f.ty, msg);
            }
            Shape::Ours => {
                let instead = match place {
                    Place::Param => "take `Stream<T>` itself as the parameter's type",
                    Place::Result => "return `Stream<T>` or `Result<Stream<T>, E>`",
                };
                let msg = format!(
                    "a `Stream` cannot be inside another type (`{}`): its items travel beside the call, so it is only ever a whole parameter or result; {instead}",
                    type_string(ty)
                );
                errors.spanned(f.ty, msg);
            }
        }
        reported = true;
    }
    reported
}

fn report_foreign(at: &Type, stream: &Type, errors: &mut Errors) {
    let item = foreign_item(stream).map_or_else(|| "T".to_owned(), type_string);
    let msg = format!(
        "`{}` cannot cross the wire: only `rpc_core::Stream` sends items beside a call; write `rpc_core::Stream<{item}>` (build one from any stream with `Stream::new(your_stream)`; received, it is a `futures::Stream`)",
        type_string(at)
    );
    errors.spanned(at, msg);
}

/// `Stream` without exactly one type argument. rustc reports it as well
/// (E0107) on the trait `fallback.rs` emits: no type put in its place there
/// would match what the `impl` wrote.
fn report_bad_args(ty: &Type, errors: &mut Errors) {
    let types: Vec<String> = path_args(ty)
        .into_iter()
        .flatten()
        .filter_map(|a| match a {
            GenericArgument::Type(t) => Some(type_string(t)),
            _ => None,
        })
        .collect();
    let instead = match types.len() {
        0 | 1 => "`Stream<T>`".to_owned(),
        _ => format!(
            "`Stream<({})>` for items of several values",
            types.join(", ")
        ),
    };
    let msg = format!(
        "`{}` needs exactly one type argument, the type of its items; write {instead}",
        type_string(ty)
    );
    errors.spanned(ty, msg);
}

/// What a type is, when it is a stream.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Shape {
    /// `Stream<T>`.
    Ours,
    /// `Stream`, `Stream<A, B>`, `Stream<'a>`: a path ending in `Stream`
    /// without exactly one type argument.
    BadArgs,
    /// `impl Stream<Item = T>`, `dyn Stream<…>`, `BoxStream<'_, T>`: another
    /// crate's stream.
    Foreign,
}

fn shape(ty: &Type) -> Option<Shape> {
    match ty {
        Type::Paren(p) => shape(&p.elem),
        Type::Group(g) => shape(&g.elem),
        Type::ImplTrait(t) => stream_bound(&t.bounds).then_some(Shape::Foreign),
        Type::TraitObject(t) => stream_bound(&t.bounds).then_some(Shape::Foreign),
        Type::Path(p) if p.qself.is_none() => {
            let last = p.path.segments.last()?;
            let assoc = path_args(ty)
                .into_iter()
                .flatten()
                .any(|a| matches!(a, GenericArgument::AssocType(_)));
            if last.ident == "BoxStream" || last.ident == "LocalBoxStream" {
                Some(Shape::Foreign)
            } else if last.ident != "Stream" {
                None
            } else if stream_item(ty).is_some() {
                Some(Shape::Ours)
            } else if assoc {
                Some(Shape::Foreign)
            } else {
                Some(Shape::BadArgs)
            }
        }
        _ => None,
    }
}

/// `Stream…`, well-formed or not.
fn is_named_stream(ty: &Type) -> bool {
    matches!(shape(ty), Some(Shape::Ours | Shape::BadArgs))
}

/// The stream `&Stream<T>` or `&mut Stream<T>` borrows.
fn borrowed_stream(ty: &Type) -> Option<&Type> {
    match ty {
        Type::Reference(r) if is_named_stream(&r.elem) => Some(&r.elem),
        _ => None,
    }
}

/// `impl Stream<…>`, `dyn futures::TryStream<…>`, …
fn stream_bound<P>(bounds: &Punctuated<TypeParamBound, P>) -> bool {
    bounds.iter().any(|b| match b {
        TypeParamBound::Trait(t) => t
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident.to_string().ends_with("Stream")),
        _ => false,
    })
}

/// The foreign stream `ty` is, seen through `Pin<…>`, `Box<…>` and
/// parentheses: `Pin<Box<dyn Stream<Item = T> + Send>>` is one mistake.
fn foreign_behind_pointers(ty: &Type) -> Option<&Type> {
    if shape(ty) == Some(Shape::Foreign) {
        return Some(ty);
    }
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != "Pin" && last.ident != "Box" {
        return None;
    }
    match path_args(ty)?.collect::<Vec<_>>()[..] {
        [GenericArgument::Type(inner)] => foreign_behind_pointers(inner),
        _ => None,
    }
}

/// `T` of a foreign stream: `Item = T`, or `BoxStream<'_, T>`'s argument.
fn foreign_item(ty: &Type) -> Option<&Type> {
    let bounds = match ty {
        Type::Paren(p) => return foreign_item(&p.elem),
        Type::Group(g) => return foreign_item(&g.elem),
        Type::ImplTrait(t) => &t.bounds,
        Type::TraitObject(t) => &t.bounds,
        Type::Path(_) => {
            return path_args(ty)?.find_map(|a| match a {
                GenericArgument::Type(t) => Some(t),
                GenericArgument::AssocType(a) if a.ident == "Item" => Some(&a.ty),
                _ => None,
            });
        }
        _ => return None,
    };
    bounds.iter().find_map(|b| match b {
        TypeParamBound::Trait(t) => t.path.segments.last().and_then(|s| match &s.arguments {
            PathArguments::AngleBracketed(args) => args.args.iter().find_map(|a| match a {
                GenericArgument::AssocType(a) if a.ident == "Item" => Some(&a.ty),
                _ => None,
            }),
            _ => None,
        }),
        _ => None,
    })
}

/// The angle-bracketed arguments of a path type's last segment.
fn path_args(ty: &Type) -> Option<impl Iterator<Item = &GenericArgument>> {
    let Type::Path(p) = ty else { return None };
    match &p.path.segments.last()?.arguments {
        PathArguments::AngleBracketed(args) => Some(args.args.iter()),
        _ => None,
    }
}

/// A stream in a type.
struct Found<'a> {
    ty: &'a Type,
    shape: Shape,
    /// It is the item type of another stream.
    in_stream: bool,
}

/// Every stream in `ty`, outermost first.
fn find<'a>(ty: &'a Type, in_stream: bool, out: &mut Vec<Found<'a>>) {
    let found = shape(ty);
    if let Some(shape) = found {
        out.push(Found {
            ty,
            shape,
            in_stream,
        });
        if shape == Shape::Foreign {
            return;
        }
    }
    let in_stream = found.is_some();
    match ty {
        Type::Path(p) => {
            for segment in &p.path.segments {
                find_in_args(&segment.arguments, in_stream, out);
            }
        }
        Type::Reference(r) => find(&r.elem, in_stream, out),
        Type::Ptr(p) => find(&p.elem, in_stream, out),
        Type::Slice(s) => find(&s.elem, in_stream, out),
        Type::Array(a) => find(&a.elem, in_stream, out),
        Type::Paren(p) if found.is_none() => find(&p.elem, in_stream, out),
        Type::Group(g) if found.is_none() => find(&g.elem, in_stream, out),
        Type::Tuple(t) => t.elems.iter().for_each(|t| find(t, in_stream, out)),
        Type::ImplTrait(t) => find_in_bounds(&t.bounds, in_stream, out),
        Type::TraitObject(t) => find_in_bounds(&t.bounds, in_stream, out),
        Type::FnPtr(f) => {
            f.inputs.iter().for_each(|a| find(&a.ty, in_stream, out));
            if let ReturnType::Type(_, t) = &f.output {
                find(t, in_stream, out);
            }
        }
        _ => {}
    }
}

fn find_in_args<'a>(args: &'a PathArguments, in_stream: bool, out: &mut Vec<Found<'a>>) {
    match args {
        PathArguments::AngleBracketed(args) => {
            for arg in &args.args {
                match arg {
                    GenericArgument::Type(t) => find(t, in_stream, out),
                    GenericArgument::AssocType(a) => find(&a.ty, in_stream, out),
                    _ => {}
                }
            }
        }
        PathArguments::Parenthesized(args) => {
            args.inputs.iter().for_each(|a| find(&a.ty, in_stream, out));
            if let ReturnType::Type(_, t) = &args.output {
                find(t, in_stream, out);
            }
        }
        PathArguments::None => {}
    }
}

fn find_in_bounds<'a, P>(
    bounds: &'a Punctuated<TypeParamBound, P>,
    in_stream: bool,
    out: &mut Vec<Found<'a>>,
) {
    for bound in bounds {
        if let TypeParamBound::Trait(t) = bound {
            for segment in &t.path.segments {
                find_in_args(&segment.arguments, in_stream, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use syn::parse_quote;

    use super::*;

    fn shapes(ty: Type) -> Vec<(String, Shape, bool)> {
        let mut found = Vec::new();
        find(&ty, false, &mut found);
        found
            .iter()
            .map(|f| (type_string(f.ty), f.shape, f.in_stream))
            .collect()
    }

    #[test]
    fn streams_are_found_wherever_they_are_nested() {
        use Shape::*;
        let one = |s: &str, shape| vec![(s.to_owned(), shape, false)];
        assert_eq!(shapes(parse_quote!(u64)), vec![]);
        assert_eq!(shapes(parse_quote!(TcpStream)), vec![]);
        assert_eq!(
            shapes(parse_quote!(rpc_core::Stream<u64>)),
            one("rpc_core::Stream<u64>", Ours)
        );
        assert_eq!(
            shapes(parse_quote!(Vec<Stream<u64>>)),
            one("Stream<u64>", Ours)
        );
        assert_eq!(
            shapes(parse_quote!((u8, Option<Stream<u64>>))),
            one("Stream<u64>", Ours)
        );
        assert_eq!(
            shapes(parse_quote!(Stream<Stream<u64>>)),
            vec![
                ("Stream<Stream<u64>>".to_owned(), Ours, false),
                ("Stream<u64>".to_owned(), Ours, true)
            ]
        );
        assert_eq!(
            shapes(parse_quote!(Stream<A, B>)),
            one("Stream<A, B>", BadArgs)
        );
        assert_eq!(
            shapes(parse_quote!(futures::Stream)),
            one("futures::Stream", BadArgs)
        );
        assert_eq!(
            shapes(parse_quote!(impl Stream<Item = u8>)),
            one("impl Stream<Item = u8>", Foreign)
        );
        assert_eq!(
            shapes(parse_quote!(
                Pin<Box<dyn futures::Stream<Item = u8> + Send>>
            )),
            one("dyn futures::Stream<Item = u8> + Send", Foreign)
        );
        assert_eq!(
            shapes(parse_quote!(BoxStream<'static, u8>)),
            one("BoxStream<'static, u8>", Foreign)
        );
    }

    #[test]
    fn a_foreign_stream_is_seen_through_pin_and_box() {
        let item = |ty: Type| {
            foreign_behind_pointers(&ty)
                .and_then(foreign_item)
                .map(type_string)
        };
        let u8 = Some("u8".to_owned());
        assert_eq!(item(parse_quote!(impl Stream<Item = u8> + Send)), u8);
        assert_eq!(item(parse_quote!(Pin<Box<dyn Stream<Item = u8>>>)), u8);
        assert_eq!(item(parse_quote!(Box<dyn TryStream<Ok = u8>>)), None);
        assert_eq!(item(parse_quote!(BoxStream<'static, u8>)), u8);
        assert!(foreign_behind_pointers(&parse_quote!(Vec<BoxStream<'static, u8>>)).is_none());
    }
}
