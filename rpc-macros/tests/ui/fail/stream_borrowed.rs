use futures::StreamExt;
use rpc_core::{Stream, rpc_service};

#[rpc_service]
pub trait Counter {
    async fn count(&self, items: &Stream<u64>) -> u64;
    async fn drain(&self, items: &mut Stream<u64>) -> u64;
    async fn shared(&self) -> &'static Stream<u64>;
}

struct Tally;

impl Counter for Tally {
    async fn count(&self, _items: &Stream<u64>) -> u64 {
        0
    }

    async fn drain(&self, items: &mut Stream<u64>) -> u64 {
        items.count().await as u64
    }

    async fn shared(&self) -> &'static Stream<u64> {
        Box::leak(Box::new(Stream::empty()))
    }
}

fn main() {}
