use rpc_core::rpc_service;
use serde::Serialize;

pub struct Secret;

#[derive(Serialize)]
pub struct Report;

#[rpc_service]
pub trait Vault {
    async fn swap(&self, secret: Secret, key: String) -> Result<Report, Secret>;
    async fn fine(&self, key: String) -> Option<String>;
}

struct Safe;

impl Vault for Safe {
    async fn swap(&self, secret: Secret, _: String) -> Result<Report, Secret> {
        Err(secret)
    }

    async fn fine(&self, key: String) -> Option<String> {
        Some(key)
    }
}

fn main() {
    let _ = VaultServer::new(Safe);
}
