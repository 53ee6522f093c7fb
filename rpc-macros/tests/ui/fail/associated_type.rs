use rpc_core::rpc_service;

#[rpc_service]
pub trait Store {
    type Item;
    async fn count(&self) -> u64;
}

struct Calc;

impl Store for Calc {
    type Item = u8;
    async fn count(&self) -> u64 {
        0
    }
}

fn main() {}
