//! The benchmark service of `rpc-bench`: the workload of `peerbench`
//! (`add`, `sub`, and `echo` of a byte payload).

use rpc_core::{Bytes, rpc_service};

/// The peerbench workload.
#[rpc_service]
pub trait Bench {
    /// `x + y`.
    #[rpc(idempotent)]
    async fn add(&self, x: i64, y: i64) -> i64;

    /// `x - y`.
    #[rpc(idempotent)]
    async fn sub(&self, x: i64, y: i64) -> i64;

    /// Returns `data` unchanged.
    #[rpc(idempotent)]
    async fn echo(&self, data: Bytes) -> Bytes;
}

/// The benchmark service's implementation.
#[derive(Clone, Copy, Debug, Default)]
pub struct BenchImpl;

impl Bench for BenchImpl {
    async fn add(&self, x: i64, y: i64) -> i64 {
        x.wrapping_add(y)
    }

    async fn sub(&self, x: i64, y: i64) -> i64 {
        x.wrapping_sub(y)
    }

    async fn echo(&self, data: Bytes) -> Bytes {
        data
    }
}
