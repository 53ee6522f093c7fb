//! Serves the calculator as a config file's `[server]` table says.
//!
//! ```sh
//! cargo run -p examples --bin calc-server -- --config examples/config/calc.toml
//! ```
//!
//! The first line of stdout is `listening HOST:PORT`; with an `[http]`
//! table the second is `http listening HOST:PORT` (the HTTP gateway: JSON-RPC
//! at `/rpc`, XML-RPC at `/RPC2`, REST at `/{Service}/{method}`). Logs go to
//! stderr; Ctrl-C stops it.

use examples::calculator::{Calc, CalculatorServer};

#[tokio::main]
async fn main() {
    examples::cli::serve_main(CalculatorServer::new(Calc)).await;
}
