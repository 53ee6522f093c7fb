//! `#[rpc_service]` (placeholder until the generator lands).

use proc_macro::TokenStream;

/// Turns a trait into an rpc service (placeholder: emits the trait unchanged).
#[proc_macro_attribute]
pub fn rpc_service(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}
