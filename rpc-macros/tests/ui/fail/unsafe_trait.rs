use rpc_core::rpc_service;

#[rpc_service]
pub unsafe trait Calculator {
    async fn add(&self, x: i64, y: i64) -> i64;
}

struct Calc;

unsafe impl Calculator for Calc {
    async fn add(&self, x: i64, y: i64) -> i64 {
        x + y
    }
}

fn main() {}
