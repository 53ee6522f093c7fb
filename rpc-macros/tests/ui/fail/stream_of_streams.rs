use rpc_core::{Stream, rpc_service};

#[rpc_service]
pub trait Shards {
    async fn scan(&self, shards: u32) -> Stream<Stream<u64>>;
}

fn main() {}
