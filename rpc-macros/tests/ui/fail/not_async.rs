use rpc_core::rpc_service;

#[rpc_service]
pub trait Calculator {
    fn add(&self, x: i64, y: i64) -> i64;
}

struct Calc;

impl Calculator for Calc {
    fn add(&self, x: i64, y: i64) -> i64 {
        x + y
    }
}

fn main() {}
