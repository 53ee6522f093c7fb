use rpc_core::rpc_service;

#[rpc_service]
pub trait Geometry {
    async fn area(&self, (w, h): (f64, f64)) -> f64;
    async fn ignore(&self, _: u8);
    async fn scale(&self, mut factor: f64) -> f64;
}

struct Calc;

impl Geometry for Calc {
    async fn area(&self, (w, h): (f64, f64)) -> f64 {
        w * h
    }
    async fn ignore(&self, _: u8) {}
    async fn scale(&self, mut factor: f64) -> f64 {
        factor *= 2.0;
        factor
    }
}

fn main() {}
