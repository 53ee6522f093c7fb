use rpc_core::rpc_service;

#[rpc_service]
pub trait Store {
    const LIMIT: u64;
    async fn count(&self) -> u64;
}

struct Calc;

impl Store for Calc {
    const LIMIT: u64 = 3;
    async fn count(&self) -> u64 {
        0
    }
}

fn main() {}
