// rustc reports each of these as well (E0107), on the trait the macro still
// emits: no type in their place would match what an `impl` wrote.
use rpc_core::{Stream, rpc_service};

#[rpc_service]
pub trait Ticks {
    async fn bare(&self, items: Stream) -> u64;
    async fn pairs(&self) -> Stream<u64, String>;
}

fn main() {}
