use rpc_core::rpc_service;

#[rpc_service(name = "math.calc")]
pub trait Calculator {
    async fn add(&self, x: i64, y: i64) -> i64;
}

fn main() {}
