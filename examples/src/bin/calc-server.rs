//! Serves the calculator as a config file's `[server]` table says.
//!
//! ```sh
//! cargo run -p examples --bin calc-server -- --config examples/config/calc.toml
//! ```
//!
//! The first line of stdout is `listening HOST:PORT`; with an `[http]`
//! table the second is `http listening HOST:PORT` (the HTTP gateway: JSON-RPC
//! at `/rpc`, XML-RPC at `/RPC2`, REST at `/{Service}/{method}`); any
//! further TCP address (several `listen`, `listen_plain`) follows as
//! `listening HOST:PORT`. With `[server.tls]`, SIGHUP re-reads the
//! certificate and key (`kill -HUP PID`): new connections get them, open
//! ones keep theirs. Logs go to stderr; Ctrl-C (SIGINT) or SIGTERM drains and stops it.
//!
//! Middleware (see `examples::middleware`), on every door: `--limit-rps N`
//! refuses calls past N a second, server-wide, with `RateLimited` (HTTP
//! 429); `--admin-token TOKEN` lets only callers sending the metadata
//! `authorization: Bearer TOKEN` (HTTP: the header `x-rpc-authorization`)
//! call `div`.

use examples::calculator::{Calc, CalculatorServer};

/// jemalloc, configured at build time (`.cargo/config.toml`) to give freed
/// pages back at once: with the system allocator, a burst of large values
/// left most of its memory resident after they were deleted.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The methods `--admin-token` guards: `div` stands for a costly or
/// sensitive method; `add` and `sub` stay open.
const PRIVILEGED: &[&str] = &["div"];

#[tokio::main]
async fn main() {
    examples::cli::serve_main(CalculatorServer::new(Calc), PRIVILEGED).await;
}
