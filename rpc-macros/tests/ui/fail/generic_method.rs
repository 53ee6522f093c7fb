use rpc_core::rpc_service;

#[rpc_service]
pub trait Store {
    async fn put<T: serde::Serialize>(&self, value: T);
}

struct Calc;

impl Store for Calc {
    async fn put<T: serde::Serialize>(&self, _value: T) {}
}

fn main() {}
