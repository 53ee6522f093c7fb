use rpc_core::rpc_service;

#[rpc_service]
pub trait Store {
    async fn put(&self, value: u8)
    where
        Self: Sized;
}

struct Calc;

impl Store for Calc {
    async fn put(&self, _value: u8) {}
}

fn main() {}
