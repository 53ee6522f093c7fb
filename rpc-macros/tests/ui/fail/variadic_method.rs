use rpc_core::rpc_service;

#[rpc_service]
pub trait Calculator {
    async fn sum(&self, first: i64, rest: ...) -> i64;
}

fn main() {}
