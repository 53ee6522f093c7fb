use rpc_core::{Stream, rpc_service};

#[rpc_service]
pub trait Mixer {
    async fn mix(&self, left: Stream<i16>, right: Stream<i16>, gain: f32) -> Stream<i16>;
}

struct Desk;

impl Mixer for Desk {
    async fn mix(&self, left: Stream<i16>, _right: Stream<i16>, _gain: f32) -> Stream<i16> {
        left
    }
}

fn main() {}
