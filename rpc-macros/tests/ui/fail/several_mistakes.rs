use rpc_core::rpc_service;

#[rpc_service(name = "a.b")]
pub trait Calculator {
    fn add(&self, x: i64, y: i64) -> i64;
    async fn sub(x: i64, y: i64) -> i64;
    async fn clone(&self) -> u8;
}

struct Calc;

impl Calculator for Calc {
    fn add(&self, x: i64, y: i64) -> i64 {
        x + y
    }
    async fn sub(x: i64, y: i64) -> i64 {
        x - y
    }
    async fn clone(&self) -> u8 {
        0
    }
}

fn main() {}
