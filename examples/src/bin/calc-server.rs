//! Serves the calculator as a config file's `[server]` table says.
//!
//! ```sh
//! cargo run -p examples --bin calc-server -- --config examples/config/calc.toml
//! ```
//!
//! The first line of stdout is `listening HOST:PORT`; logs go to stderr;
//! Ctrl-C stops it.

use clap::Parser;
use examples::calculator::{Calc, CalculatorServer};
use examples::cli::{self, Args};
use rpc_core::Registry;
use rpc_transport::ServerConfig;

#[tokio::main]
async fn main() {
    cli::init_logging();
    cli::exit_on_error(run(Args::parse()).await);
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let config = ServerConfig::from_file(&args.config)?;
    let registry = Registry::new().with(CalculatorServer::new(Calc))?;
    cli::serve(config, registry).await
}
