use rpc_core::rpc_service;

#[rpc_service]
pub trait Counter {
    async fn bump(&mut self) -> u64;
}

struct Calc;

impl Counter for Calc {
    async fn bump(&mut self) -> u64 {
        1
    }
}

fn main() {}
