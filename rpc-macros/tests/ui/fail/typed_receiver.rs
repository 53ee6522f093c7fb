use rpc_core::rpc_service;

#[rpc_service]
pub trait Counter {
    async fn get(self: std::sync::Arc<Self>) -> u64;
}

struct Calc;

impl Counter for Calc {
    async fn get(self: std::sync::Arc<Self>) -> u64 {
        1
    }
}

fn main() {}
