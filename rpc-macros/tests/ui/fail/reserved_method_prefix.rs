use rpc_core::rpc_service;

#[rpc_service]
pub trait Factory {
    async fn __rpc_make(&self) -> u64;
}

struct Calc;

impl Factory for Calc {
    async fn __rpc_make(&self) -> u64 {
        1
    }
}

fn main() {}
