use rpc_core::rpc_service;

#[rpc_service]
pub trait Greeter {
    async fn greet(&self, name: impl Into<String>) -> String;
}

fn main() {}
