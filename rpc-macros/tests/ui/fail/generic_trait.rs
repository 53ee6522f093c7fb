use rpc_core::rpc_service;

#[rpc_service]
pub trait Store<T> {
    async fn get(&self) -> T;
}

struct Calc;

impl Store<u8> for Calc {
    async fn get(&self) -> u8 {
        0
    }
}

fn main() {}
