use rpc_core::rpc_service;

macro_rules! nothing {
    () => {};
}

#[rpc_service]
pub trait Store {
    nothing!();
    async fn count(&self) -> u64;
}

struct Calc;

impl Store for Calc {
    async fn count(&self) -> u64 {
        0
    }
}

fn main() {}
