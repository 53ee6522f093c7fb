use rpc_core::rpc_service;

#[rpc_service]
pub trait Node {
    async fn copy(&self) -> Box<Self>;
}

fn main() {}
