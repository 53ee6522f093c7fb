use rpc_core::rpc_service;

#[rpc_service]
pub trait Factory {
    async fn new(&self) -> u64;
}

struct Calc;

impl Factory for Calc {
    async fn new(&self) -> u64 {
        1
    }
}

fn main() {}
