use std::pin::Pin;

use futures::stream::{self, BoxStream};
use rpc_core::rpc_service;

#[rpc_service]
pub trait Ticks {
    async fn sum(&self, items: impl futures::Stream<Item = u64> + Send) -> u64;
    async fn count(&self, n: u64) -> impl futures::Stream<Item = u64>;
    async fn boxed(&self) -> Pin<Box<dyn futures::Stream<Item = String> + Send>>;
    async fn alias(&self) -> BoxStream<'static, u8>;
}

struct Clock;

impl Ticks for Clock {
    async fn sum(&self, _items: impl futures::Stream<Item = u64> + Send) -> u64 {
        0
    }

    async fn count(&self, n: u64) -> impl futures::Stream<Item = u64> {
        stream::iter(0..n)
    }

    async fn boxed(&self) -> Pin<Box<dyn futures::Stream<Item = String> + Send>> {
        Box::pin(stream::empty())
    }

    async fn alias(&self) -> BoxStream<'static, u8> {
        Box::pin(stream::empty())
    }
}

fn main() {}
