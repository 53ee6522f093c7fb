//! Watches the key-value store: prints every change under a prefix as
//! another client makes it, until Ctrl-C.
//!
//! ```sh
//! cargo run -p examples --bin kv-server -- --config examples/config/calc.toml &
//! cargo run -p examples --bin kv-watch -- --config examples/config/calc.toml --prefix user/
//! ```
//!
//! Its first stdout line, `watching PREFIX`, comes once the server has
//! registered the watch, so every change made after it is printed. Then
//! stdout has one line per change and nothing else:
//!
//! ```text
//! watching user/
//! set user/1 = {"name":"ann"}
//! set user/2 = [1,2]
//! delete user/1
//! ```
//!
//! Values are compact JSON. If the server ends the watch (shutting down,
//! the connection lost, the watcher lagging behind), the reason goes to
//! stderr and the exit status is 1. The codec comes from the file's
//! `[client]` table (`codec = "json"`) or `RPC_CODEC`.

use std::io::Write;
use std::path::PathBuf;

use clap::Parser;
use examples::cli;
use examples::kv::{Change, KeyValueClient};
use futures::{FutureExt, StreamExt};
use rpc_transport::ClientConfig;

/// The flags of `kv-watch`.
#[derive(Debug, Parser)]
struct Args {
    /// A TOML file with a `[client]` table.
    #[arg(long)]
    config: PathBuf,
    /// Print the changes to keys that start with this.
    #[arg(long)]
    prefix: String,
}

#[tokio::main]
async fn main() {
    cli::exit_on_error(run(Args::parse()).await);
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    // Polled once so that Ctrl-C is handled from here on, before
    // `watching` tells anyone they may press it.
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    if (&mut ctrl_c).now_or_never().is_some() {
        return Ok(());
    }
    let config = ClientConfig::from_file(&args.config)?;
    let kv = KeyValueClient::new(rpc_transport::connect(&config).await?);
    let mut changes = kv.watch(args.prefix.clone()).await?;
    print_line(&format!("watching {}", args.prefix))?;
    loop {
        tokio::select! {
            change = changes.next() => match change {
                Some(change) => print_line(&line(&change))?,
                None => break,
            },
            _ = &mut ctrl_c => return Ok(()),
        }
    }
    match changes.end() {
        Some(Err(e)) => Err(format!("the watch ended: {e}").into()),
        _ => {
            eprintln!("the watch finished");
            Ok(())
        }
    }
}

/// A change as `kv-watch` prints it.
fn line(change: &Change) -> String {
    match change {
        Change::Set { key, value } => format!("set {key} = {value}"),
        Change::Delete { key } => format!("delete {key}"),
    }
}

/// Prints `text` and flushes, so a reader of the pipe sees it at once.
fn print_line(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()
}
