use rpc_core::rpc_service;

#[rpc_service]
pub trait Greeter {
    async fn greet(&self, name: &str) -> String;
    async fn name(&self) -> &'static str;
    async fn label(&self, text: std::borrow::Cow<'_, str>);
}

fn main() {}
