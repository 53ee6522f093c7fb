//! Serves the key-value store as a config file's `[server]` table says.
//!
//! ```sh
//! cargo run -p examples --bin kv-server -- --config examples/config/calc.toml
//! ```
//!
//! The first line of stdout is `listening HOST:PORT`; with an `[http]`
//! table the second is `http listening HOST:PORT` (the HTTP gateway: JSON-RPC
//! at `/rpc`, XML-RPC at `/RPC2`, REST at `/{Service}/{method}`). Logs go to
//! stderr; Ctrl-C stops it.

use examples::kv::{KeyValueServer, MemoryStore};

#[tokio::main]
async fn main() {
    examples::cli::serve_main(KeyValueServer::new(MemoryStore::default())).await;
}
