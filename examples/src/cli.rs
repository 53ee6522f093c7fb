//! What the example binaries share: flags, logging, serving until Ctrl-C.

use std::io::Write;
use std::path::PathBuf;

use rpc_core::Registry;
use rpc_transport::{Server, ServerConfig};

/// The flags of the example servers and clients.
#[derive(Debug, clap::Parser)]
pub struct Args {
    /// A TOML file with a `[server]` and/or `[client]` table.
    #[arg(long)]
    pub config: PathBuf,
}

/// Sends logs to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Binds, prints `listening HOST:PORT` as the first line of stdout, and
/// serves until Ctrl-C.
pub async fn serve(
    config: ServerConfig,
    registry: Registry,
) -> Result<(), Box<dyn std::error::Error>> {
    let listening = Server::new(config, registry).bind().await?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening {}", listening.local_addr())?;
    stdout.flush()?;
    drop(stdout);
    listening
        .serve_until(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("Ctrl-C: stopping");
        })
        .await;
    Ok(())
}

/// The whole of an example server's `main`: logging, `--config FILE`, and
/// `service` served as the file's `[server]` table says until Ctrl-C;
/// on failure the error goes to stderr and the process exits 1.
pub async fn serve_main(service: impl rpc_core::Service) {
    init_logging();
    let run = async {
        let args = <Args as clap::Parser>::parse();
        let config = ServerConfig::from_file(&args.config)?;
        serve(config, Registry::new().with(service)?).await
    };
    exit_on_error(run.await);
}

/// Runs `main`; on failure prints the error to stderr and exits non-zero.
pub fn exit_on_error(result: Result<(), Box<dyn std::error::Error>>) {
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
