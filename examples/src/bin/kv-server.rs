//! Serves the key-value store as a config file's `[server]` table says.
//!
//! ```sh
//! cargo run -p examples --bin kv-server -- --config examples/config/calc.toml
//! ```
//!
//! The first line of stdout is `listening HOST:PORT`; logs go to stderr;
//! Ctrl-C stops it.

use examples::kv::{KeyValueServer, MemoryStore};

#[tokio::main]
async fn main() {
    examples::cli::serve_main(KeyValueServer::new(MemoryStore::default())).await;
}
