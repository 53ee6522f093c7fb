use rpc_core::rpc_service;

#[rpc_service]
pub trait Calculator {
    #[rpc(idempotnet)]
    async fn add(&self, x: i64, y: i64) -> i64;
}

fn main() {}
