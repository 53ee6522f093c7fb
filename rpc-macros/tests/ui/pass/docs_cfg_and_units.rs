//! Doc comments, `#[cfg]`'d methods, a unit method and a zero-argument method.
#![deny(warnings)]

use rpc_core::{Service, rpc_service};

/// Keeps a count.
///
/// Second paragraph.
#[rpc_service]
pub trait Counter {
    /// Adds one.
    #[rpc(idempotent)]
    async fn bump(&self);

    /// The count.
    async fn get(&self) -> u64;

    /// Compiled out: its types are never checked.
    #[cfg(any())]
    async fn gone(&self, x: NotAType) -> NotAType;

    /// Compiled in.
    #[cfg(all())]
    async fn here(&self, by: u64) -> u64;
}

struct Count(std::sync::atomic::AtomicU64);

impl Counter for Count {
    async fn bump(&self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    async fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn here(&self, by: u64) -> u64 {
        by
    }
}

fn main() {
    let server = CounterServer::new(Count(Default::default()));
    let info = server.info();
    assert_eq!(info.doc, "Keeps a count.\n\nSecond paragraph.");
    let names: Vec<_> = info.methods.iter().map(|m| m.name).collect();
    assert_eq!(names, ["bump", "get", "here"]);
    assert_eq!(info.methods[0].returns, "()");
    assert!(info.methods[0].idempotent);
    assert!(info.methods[1].params.is_empty());
}
