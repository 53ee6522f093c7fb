use rpc_core::{Stream, rpc_service};

#[rpc_service]
pub trait Build {
    async fn run(&self, target: String) -> Result<u64, Stream<String>>;
}

fn main() {}
