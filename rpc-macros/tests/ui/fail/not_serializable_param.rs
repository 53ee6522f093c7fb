use rpc_core::rpc_service;

pub struct Secret;

#[rpc_service]
pub trait Vault {
    async fn store(&self, key: String, secret: Secret);
}

struct Calc;

impl Vault for Calc {
    async fn store(&self, _key: String, _secret: Secret) {}
}

fn main() {}
