use rpc_core::rpc_service;

pub struct Denied;

#[rpc_service]
pub trait Vault {
    async fn load(&self, key: String) -> Result<String, Denied>;
}

struct Calc;

impl Vault for Calc {
    async fn load(&self, key: String) -> Result<String, Denied> {
        Ok(key)
    }
}

fn main() {}
