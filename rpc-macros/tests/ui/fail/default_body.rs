use rpc_core::rpc_service;

#[rpc_service]
pub trait Calculator {
    async fn add(&self, x: i64, y: i64) -> i64 {
        x + y
    }
}

struct Calc;

impl Calculator for Calc {}

fn main() {}
