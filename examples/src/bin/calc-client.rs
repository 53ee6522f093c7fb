//! Calls the calculator as a config file's `[client]` table says, and prints
//! exactly two lines: `add(2, 3) = 5` and `sub(2, 3) = -1`.
//!
//! ```sh
//! cargo run -p examples --bin calc-client -- --config examples/config/calc.toml
//! ```
//!
//! On any failure it prints the error to stderr and exits non-zero. The
//! codec comes from the file (`codec = "json"`) or `RPC_CODEC`.

use clap::Parser;
use examples::calculator::CalculatorClient;
use examples::cli::{self, Args};
use rpc_transport::ClientConfig;

#[tokio::main]
async fn main() {
    cli::exit_on_error(run(Args::parse()).await);
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let config = ClientConfig::from_file(&args.config)?;
    let calc = CalculatorClient::new(rpc_transport::connect(&config).await?);
    println!("add(2, 3) = {}", calc.add(2, 3).await?);
    println!("sub(2, 3) = {}", calc.sub(2, 3).await?);
    Ok(())
}
