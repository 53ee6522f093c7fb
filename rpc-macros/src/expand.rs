//! Generate: every item `#[rpc_service]` emits, one method of
//! [`ServiceGenerator`] each. Runs only on a trait `valid.rs` accepted.
//!
//! Generated code names only `::rpc_core::…`, `::core::…` and, where core has
//! no equivalent, `::std::…` paths. Hidden items live in an anonymous
//! `const _: () = { … };` block, so they cannot clash with the user's names
//! yet resolve the user's types exactly as the trait does; the few names
//! introduced inside it start with `__rpc`.
//!
//! Whether a type can cross the wire is checked by `rpc_core::__private`'s
//! `assert_wire`, once per type and spanned on it; every other use of the
//! types goes through its `Probe`, which adds no error of its own when that
//! check fails (see `rpc-core/src/__private/probe.rs`).

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Ident, ReturnType, Visibility};

use crate::ast::{self, Method, Output, Service};
use crate::names::{args_ident, method_const, param_ident, probe};

/// Builds the trait, the server, the client and their hidden helpers.
pub(crate) struct ServiceGenerator<'a> {
    service: &'a Service<'a>,
    vis: &'a Visibility,
    trait_ident: &'a Ident,
    /// The server's type parameter: `S`, or `T` for a trait named `S`.
    param: Ident,
    server: Ident,
    client: Ident,
    /// The service name on the wire.
    name: String,
}

impl<'a> ServiceGenerator<'a> {
    pub(crate) fn new(service: &'a Service<'a>) -> ServiceGenerator<'a> {
        let ident = &service.item.ident;
        let base = ident.unraw();
        ServiceGenerator {
            service,
            vis: &service.item.vis,
            trait_ident: ident,
            param: format_ident!("{}", if base == "S" { "T" } else { "S" }),
            server: format_ident!("{}Server", base),
            client: format_ident!("{}Client", base),
            name: service.name(),
        }
    }

    pub(crate) fn generate(&self) -> TokenStream {
        let trait_item = self.trait_item();
        let server_struct = self.server_struct();
        let client_struct = self.client_struct();
        let args_structs = self.service.methods.iter().map(|m| self.args_struct(m));
        let info_static = self.info_static();
        let server_impl = self.server_impl();
        let service_impl = self.service_impl();
        let client_impl = self.client_impl();
        let assertions = self.service.methods.iter().map(|m| self.assertions(m));
        let cfgs = self
            .service
            .item
            .attrs
            .iter()
            .filter(|a| a.path().is_ident("cfg"));
        let cfgs = quote!(#(#cfgs)*);
        quote! {
            #trait_item
            #cfgs
            #server_struct
            #cfgs
            #client_struct
            #cfgs
            const _: () = {
                // `ViaNever` is only picked when an `assert_wire` fails, and
                // neither is used by a trait without methods.
                #[allow(unused_imports)]
                use ::rpc_core::__private::{ViaNever as _, ViaWire as _};
                #(#args_structs)*
                #info_static
                #server_impl
                #service_impl
                #client_impl
                #(#assertions)*
            };
        }
    }

    /// The user's trait with each `async fn` as `fn … -> impl Future + Send`.
    fn trait_item(&self) -> TokenStream {
        let item = self.service.item;
        let (attrs, vis, trait_token, ident) =
            (&item.attrs, &item.vis, &item.trait_token, &item.ident);
        let supertraits = item.supertraits.iter();
        let methods = self.service.methods.iter().map(|m| {
            let attrs = &m.attrs;
            let sig = &m.item.sig;
            let (fn_token, name, inputs) = (&sig.fn_token, &sig.ident, &sig.inputs);
            let (output, span) = match &sig.output {
                ReturnType::Default => (quote!(()), name.span()),
                ReturnType::Type(_, ty) => (quote!(#ty), ty.span()),
            };
            let future = quote_spanned! {span=>
                impl ::core::future::Future<Output = #output> + ::core::marker::Send
            };
            let semi = m.item.semi_token.unwrap_or_default();
            quote! { #(#attrs)* #fn_token #name(#inputs) -> #future #semi }
        });
        quote! {
            #(#attrs)*
            #vis #trait_token #ident: #(#supertraits +)* ::core::marker::Send + ::core::marker::Sync + 'static {
                #(#methods)*
            }
        }
    }

    fn server_struct(&self) -> TokenStream {
        let (vis, server, param) = (self.vis, &self.server, &self.param);
        let doc = format!(
            " Serves a [`{}`] implementation: register it with `rpc_core::Registry::register`.",
            self.trait_ident.unraw()
        );
        quote! {
            #[doc = #doc]
            #[allow(dead_code)]
            #vis struct #server<#param> {
                service: ::std::sync::Arc<#param>,
            }
        }
    }

    fn client_struct(&self) -> TokenStream {
        let (vis, client) = (self.vis, &self.client);
        let doc = format!(
            " Calls the methods of a remote [`{}`] over an `rpc_core::Client`.",
            self.trait_ident.unraw()
        );
        quote! {
            #[doc = #doc]
            #[derive(::core::clone::Clone, ::core::fmt::Debug)]
            #[allow(dead_code)]
            #vis struct #client {
                client: ::rpc_core::Client,
            }
        }
    }

    /// The arguments of one method, as they cross the wire: a struct whose
    /// fields are the parameters. Callers send them by position (a tuple:
    /// a JSON array, the same bytes as the struct in bincode), the shortest
    /// form and the quickest to read; a server takes them by position or by
    /// name. It is generic over the field types, so its impls never fail;
    /// the assertions do.
    fn args_struct(&self, method: &Method<'_>) -> TokenStream {
        let cfgs: Vec<_> = method.cfgs().collect();
        let ident = args_ident(method);
        let generics: Vec<Ident> = (0..method.params.len())
            .map(|i| format_ident!("__T{}", i))
            .collect();
        let names: Vec<&Ident> = method.params.iter().map(param_ident).collect();
        let len = names.len();
        let generics_decl = (!generics.is_empty()).then(|| quote!(<#(#generics),*>));
        let serialize_bounds = (!generics.is_empty())
            .then(|| quote!(<#(#generics: ::rpc_core::__private::serde::Serialize),*>));
        // What serde's messages say was expected, instead of the hidden
        // struct's name: "expected 2 arguments (x, y)".
        let wire_names: Vec<String> = names.iter().map(|n| n.unraw().to_string()).collect();
        let expecting = match len {
            0 => "no arguments".to_owned(),
            1 => format!("1 argument ({})", wire_names.join(", ")),
            _ => format!("{len} arguments ({})", wire_names.join(", ")),
        };
        quote! {
            #(#cfgs)*
            #[derive(::rpc_core::__private::serde::Deserialize)]
            #[serde(crate = "::rpc_core::__private::serde", deny_unknown_fields, expecting = #expecting)]
            #[allow(non_camel_case_types)]
            struct #ident #generics_decl { #(#names: #generics),* }

            #(#cfgs)*
            impl #serialize_bounds ::rpc_core::__private::serde::Serialize for #ident #generics_decl {
                fn serialize<__S: ::rpc_core::__private::serde::Serializer>(
                    &self,
                    __serializer: __S,
                ) -> ::core::result::Result<__S::Ok, __S::Error> {
                    use ::rpc_core::__private::serde::ser::SerializeTuple as _;
                    #[allow(unused_mut)]
                    let mut __tuple = __serializer.serialize_tuple(#len)?;
                    #(__tuple.serialize_element(&self.#names)?;)*
                    __tuple.end()
                }
            }
        }
    }

    fn info_static(&self) -> TokenStream {
        let name = &self.name;
        let doc = ast::doc(&self.service.item.attrs.iter().collect::<Vec<_>>());
        let consts = self.service.methods.iter().map(|m| {
            let (cfgs, ident, info) = (m.cfgs(), method_const(m), self.method_info(m));
            quote! {
                #(#cfgs)*
                #[allow(non_upper_case_globals)]
                const #ident: ::rpc_core::__private::MethodInfo = #info;
            }
        });
        let methods = self.service.methods.iter().map(|m| {
            let (cfgs, ident) = (m.cfgs(), method_const(m));
            quote!(#(#cfgs)* #ident)
        });
        quote! {
            #(#consts)*
            static __RPC_INFO: ::rpc_core::__private::ServiceInfo = ::rpc_core::__private::ServiceInfo {
                name: #name,
                doc: #doc,
                methods: &[#(#methods),*],
            };
        }
    }

    fn method_info(&self, method: &Method<'_>) -> TokenStream {
        let (name, doc, idempotent) = (method.name(), ast::doc(&method.attrs), method.idempotent);
        let params = method.params.iter().map(|p| {
            let name = param_ident(p).unraw().to_string();
            let ty = ast::type_string(&p.arg.ty);
            let schema = schema_fn(&p.arg.ty);
            quote!(::rpc_core::__private::ParamInfo { name: #name, ty: #ty, schema: #schema })
        });
        let none = quote!(::core::option::Option::None);
        let (returns, returns_schema, error, error_schema) = match &method.output {
            Output::Unit => (
                "()".to_owned(),
                schema_fn(&syn::parse_quote!(())),
                none.clone(),
                none,
            ),
            Output::Plain(ty) => (ast::type_string(ty), schema_fn(ty), none.clone(), none),
            Output::Fallible { ok, err } => {
                let (err_ty, err_schema) = (ast::type_string(err), schema_fn(err));
                (
                    ast::type_string(ok),
                    schema_fn(ok),
                    quote!(::core::option::Option::Some(#err_ty)),
                    quote!(::core::option::Option::Some(#err_schema)),
                )
            }
        };
        let takes_stream = method
            .params
            .iter()
            .any(|p| ast::stream_item(&p.arg.ty).is_some());
        let returns_stream = match &method.output {
            Output::Unit => false,
            Output::Plain(ty) | Output::Fallible { ok: ty, .. } => ast::stream_item(ty).is_some(),
        };
        quote! {
            ::rpc_core::__private::MethodInfo {
                name: #name,
                doc: #doc,
                params: &[#(#params),*],
                returns: #returns,
                error: #error,
                returns_schema: #returns_schema,
                error_schema: #error_schema,
                idempotent: #idempotent,
                takes_stream: #takes_stream,
                returns_stream: #returns_stream,
            }
        }
    }

    fn server_impl(&self) -> TokenStream {
        let (vis, server, param, trait_ident) =
            (self.vis, &self.server, &self.param, self.trait_ident);
        let name = server.to_string();
        quote! {
            #[allow(dead_code)]
            impl<#param: #trait_ident> #server<#param> {
                /// Serves `service`.
                #vis fn new(service: #param) -> Self {
                    Self { service: ::std::sync::Arc::new(service) }
                }

                /// Serves a shared `service`.
                #vis fn from_arc(service: ::std::sync::Arc<#param>) -> Self {
                    Self { service }
                }
            }

            impl<#param> ::core::clone::Clone for #server<#param> {
                fn clone(&self) -> Self {
                    Self { service: ::core::clone::Clone::clone(&self.service) }
                }
            }

            impl<#param> ::core::fmt::Debug for #server<#param> {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    f.debug_struct(#name).finish_non_exhaustive()
                }
            }
        }
    }

    fn service_impl(&self) -> TokenStream {
        let (server, param, trait_ident) = (&self.server, &self.param, self.trait_ident);
        let arms = self.service.methods.iter().map(|m| self.dispatch_arm(m));
        quote! {
            impl<#param: #trait_ident> ::rpc_core::Service for #server<#param> {
                fn info(&self) -> &'static ::rpc_core::__private::ServiceInfo {
                    &__RPC_INFO
                }

                fn call(
                    &self,
                    method: &str,
                    args: &mut dyn ::rpc_core::__private::erased_serde::Deserializer<'_>,
                ) -> ::core::result::Result<
                    ::rpc_core::__private::BoxCall,
                    ::rpc_core::Error,
                > {
                    ::rpc_core::Service::start(self, method, args, true)
                }

                fn start(
                    &self,
                    method: &str,
                    args: &mut dyn ::rpc_core::__private::erased_serde::Deserializer<'_>,
                    keep_args: bool,
                ) -> ::core::result::Result<
                    ::rpc_core::__private::BoxCall,
                    ::rpc_core::Error,
                > {
                    match method {
                        #(#arms)*
                        _ => ::core::result::Result::Err(
                            ::rpc_core::__private::unknown_method(&__RPC_INFO, method),
                        ),
                    }
                }
            }
        }
    }

    /// `"add" => …`: decode the arguments, start the call, box its future.
    fn dispatch_arm(&self, method: &Method<'_>) -> TokenStream {
        let cfgs = method.cfgs();
        let (param, trait_ident) = (&self.param, self.trait_ident);
        let (name, wire, probe) = (method.name(), self.wire_name(method), probe(method));
        let ident = &method.item.sig.ident;
        let fields = method.params.iter().map(param_ident);
        let reply = match method.output {
            Output::Fallible { .. } => quote! {
                match __rpc_result {
                    ::core::result::Result::Ok(__rpc_value) => __rpc_probe.__rpc_ok(__rpc_value),
                    ::core::result::Result::Err(__rpc_error) => {
                        let __rpc_message = {
                            use ::rpc_core::__private::{ViaDisplay as _, ViaTypeName as _};
                            (&::rpc_core::__private::Describe(&__rpc_error)).rpc_describe()
                        };
                        __rpc_probe.__rpc_error(__rpc_message, __rpc_error)
                    }
                }
            },
            _ => quote!(__rpc_probe.__rpc_ok(__rpc_result)),
        };
        quote! {
            #(#cfgs)*
            #name => {
                let __rpc_probe = #probe;
                let __rpc_args = __rpc_probe.__rpc_decode(#wire, args)?;
                let __rpc_service = ::core::clone::Clone::clone(&self.service);
                let __rpc_call = __rpc_probe.__rpc_start(keep_args, __rpc_args, move |__rpc_args| async move {
                    let __rpc_result =
                        <#param as #trait_ident>::#ident(&*__rpc_service, #(__rpc_args.#fields),*).await;
                    #reply
                });
                ::core::result::Result::Ok(__rpc_call)
            }
        }
    }

    fn client_impl(&self) -> TokenStream {
        let (vis, client) = (self.vis, &self.client);
        let methods = self.service.methods.iter().map(|m| self.client_method(m));
        quote! {
            #[allow(dead_code)]
            impl #client {
                /// Calls the service through `client`.
                #vis fn new(client: ::rpc_core::Client) -> Self {
                    Self { client }
                }

                /// A client whose calls time out after `timeout`; the connection is shared.
                #vis fn with_timeout(&self, timeout: ::core::time::Duration) -> Self {
                    Self { client: self.client.with_timeout(timeout) }
                }

                #(#methods)*
            }
        }
    }

    /// `pub async fn add(&self, x: i64, y: i64) -> Result<i64, Error>`.
    fn client_method(&self, method: &Method<'_>) -> TokenStream {
        let vis = self.vis;
        let (ident, wire, args) = (
            &method.item.sig.ident,
            self.wire_name(method),
            args_ident(method),
        );
        let keep = |a: &&&syn::Attribute| a.path().is_ident("doc") || a.path().is_ident("cfg");
        let attrs = method.attrs.iter().filter(keep);
        let default_doc = ast::doc(&method.attrs).is_empty().then(|| {
            let doc = format!(" Calls `{wire}`.");
            quote!(#[doc = #doc])
        });
        let params = method.params.iter().map(|p| {
            let (name, ty) = (param_ident(p), &p.arg.ty);
            quote!(#name: #ty)
        });
        let fields = method.params.iter().map(param_ident);
        let (output, call) = match &method.output {
            Output::Unit => (
                quote!(::core::result::Result<(), ::rpc_core::Error>),
                quote!(__rpc_call),
            ),
            Output::Plain(ty) => (
                quote!(::core::result::Result<#ty, ::rpc_core::Error>),
                quote!(__rpc_call),
            ),
            Output::Fallible { ok, err } => (
                quote!(::core::result::Result<#ok, ::rpc_core::CallError<#err>>),
                quote!(__rpc_call_fallible),
            ),
        };
        let probe = probe(method);
        let info = method_const(method);
        quote! {
            #(#attrs)*
            #default_doc
            #vis async fn #ident(&self, #(#params),*) -> #output {
                let __rpc_args = #args { #(#fields),* };
                #probe.#call(&self.client, &#info, #wire, &__rpc_args).await
            }
        }
    }

    /// `assert_wire` of each type, spanned on the user's type so a failure is
    /// reported there, and only there.
    fn assertions(&self, method: &Method<'_>) -> TokenStream {
        let types = method
            .params
            .iter()
            .map(|p| &*p.arg.ty)
            .chain(match &method.output {
                Output::Unit => vec![],
                Output::Plain(ty) => vec![*ty],
                Output::Fallible { ok, err } => vec![*ok, *err],
            });
        let checks = types.map(|ty| {
            let cfgs = method.cfgs();
            quote_spanned! {ty.span()=>
                #(#cfgs)*
                const _: () = ::rpc_core::__private::assert_wire::<#ty>();
            }
        });
        quote!(#(#checks)*)
    }

    /// `Service.method`, as the client sends it.
    fn wire_name(&self, method: &Method<'_>) -> String {
        format!("{}.{}", self.name, method.name())
    }
}

/// The schema hook of `ty`, a closure without captures (a `SchemaFn`): its
/// `JsonSchema` impl, else a built-in schema, else its name as a title,
/// picked by autoref specialisation (`rpc-core/src/__private/schema.rs`).
fn schema_fn(ty: &syn::Type) -> TokenStream {
    let name = ast::type_string(ty);
    quote! {
        |__rpc_schemas: &mut ::rpc_core::__private::Schemas| {
            #[allow(unused_imports)]
            use ::rpc_core::__private::{ViaKnown as _, ViaSchemars as _, ViaTitle as _};
            (&&&::rpc_core::__private::SchemaOf::<#ty>::NEW).rpc_schema(__rpc_schemas, #name)
        }
    }
}
