use rpc_core::{Stream, rpc_service};

#[rpc_service]
pub trait Sink {
    async fn store(&self, items: Result<Stream<u64>, String>) -> u64;
}

fn main() {}
