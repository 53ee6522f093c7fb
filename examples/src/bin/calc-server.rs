//! Serves the calculator as a config file's `[server]` table says.
//!
//! ```sh
//! cargo run -p examples --bin calc-server -- --config examples/config/calc.toml
//! ```
//!
//! The first line of stdout is `listening HOST:PORT`; logs go to stderr;
//! Ctrl-C stops it.

use examples::calculator::{Calc, CalculatorServer};

#[tokio::main]
async fn main() {
    examples::cli::serve_main(CalculatorServer::new(Calc)).await;
}
