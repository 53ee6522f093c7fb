use rpc_core::{Stream, rpc_service};

#[rpc_service]
pub trait Downloads {
    async fn many(&self) -> Vec<Stream<u8>>;
    async fn maybe(&self) -> Option<Stream<u8>>;
    async fn pair(&self) -> Result<(Stream<u8>, u8), String>;
    async fn boxed(&self) -> Box<Stream<u8>>;
}

fn main() {}
