use rpc_core::rpc_service;

pub struct Secret;

#[rpc_service]
pub trait Vault {
    async fn load(&self, key: String) -> Secret;
}

struct Calc;

impl Vault for Calc {
    async fn load(&self, _key: String) -> Secret {
        Secret
    }
}

fn main() {}
