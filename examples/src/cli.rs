//! What the example binaries share: flags, logging, serving until Ctrl-C.

use std::io::Write;
use std::path::PathBuf;

use rpc_core::Registry;
use rpc_transport::http::{HttpConfig, HttpGateway};
use rpc_transport::{Server, ServerConfig};

/// The flags of the example servers and clients.
#[derive(Debug, clap::Parser)]
pub struct Args {
    /// A TOML file with a `[server]` and/or `[client]` table.
    #[arg(long)]
    pub config: PathBuf,
    /// The servers' middleware: `--limit-rps N`, `--admin-token TOKEN`.
    #[command(flatten)]
    pub middleware: crate::middleware::Flags,
}

/// Sends logs to stderr, filtered by `RUST_LOG` (default `info`), in
/// colour only on a terminal (and without `NO_COLOR`): a log file or a pipe
/// gets plain text.
pub fn init_logging() {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // NO_COLOR set and not empty turns it off (no-color.org).
    let no_colour = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let colour = std::io::stderr().is_terminal() && !no_colour;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .init();
}

/// Binds, prints `listening HOST:PORT` as the first line of stdout, and
/// serves until Ctrl-C.
pub async fn serve(
    config: ServerConfig,
    registry: Registry,
) -> Result<(), Box<dyn std::error::Error>> {
    serve_with_http(Server::new(config, registry), None).await
}

/// Serves `server` (its layers added) as [`serve`] does, plus the HTTP
/// gateway when `http` is given: it binds after the TCP listener and prints
/// `http listening HOST:PORT` as the second line.
/// Every further TCP address (several `listen`, `listen_plain`) follows as
/// `listening HOST:PORT`. SIGHUP re-reads `[server.tls]`'s certificate and
/// key (new connections get them); Ctrl-C stops both; `/healthz` answers
/// 503 while they drain.
pub async fn serve_with_http(
    server: Server,
    http: Option<HttpConfig>,
) -> Result<(), Box<dyn std::error::Error>> {
    let gateway = http
        .map(|http| HttpGateway::new(http, &server))
        .transpose()?;
    let listening = server.bind().await?;
    let http = match gateway {
        Some(gateway) => Some(gateway.bind().await?),
        None => None,
    };
    // Installed before the address is printed: from then on a SIGHUP
    // reloads instead of ending the process.
    let reload = reload_tls_on_sighup(listening.server().clone())?;
    // Ctrl-C is caught from before the address is printed, too: a peer
    // that reads it and interrupts at once stops the server gracefully.
    let interrupted = interrupted()?;
    let mut stdout = std::io::stdout().lock();
    let (first, more) = listening.local_addrs().split_first().expect("bound");
    writeln!(stdout, "listening {first}")?;
    if let Some(http) = &http {
        writeln!(stdout, "http listening {}", http.local_addr())?;
    }
    for address in more {
        writeln!(stdout, "listening {address}")?;
    }
    stdout.flush()?;
    drop(stdout);
    // Ctrl-C stops the TCP listener, which shuts the server down; the
    // gateway sees that and drains too.
    let http = http.map(|http| tokio::spawn(http.serve()));
    listening
        .serve_until(async {
            interrupted.await;
            tracing::info!("Ctrl-C: stopping");
        })
        .await;
    reload.abort();
    if let Some(http) = http {
        let _ = http.await;
    }
    Ok(())
}

/// Completes at the first SIGINT (Ctrl-C) or SIGTERM (what Kubernetes and
/// systemd send to stop a service), whose handlers are installed now, not
/// when the future is first polled.
#[cfg(unix)]
fn interrupted() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupts = signal(SignalKind::interrupt())?;
    let mut terminations = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupts.recv() => {}
            _ = terminations.recv() => {}
        }
    })
}

/// Completes at Ctrl-C.
#[cfg(not(unix))]
fn interrupted() -> std::io::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

/// Re-reads the TLS certificates and keys on every SIGHUP, the TCP
/// listeners' and the gateway's (`[http.tls]`), and logs the outcome (a
/// file that does not load leaves the certificate in force).
#[cfg(unix)]
fn reload_tls_on_sighup(server: Server) -> std::io::Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = signal(SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            // `[server.tls]`'s files, and the gateway's `[http.tls]`.
            match server.reload_tls() {
                Ok(()) => tracing::info!("SIGHUP: TLS certificates and keys reloaded"),
                Err(e) => tracing::warn!("SIGHUP: TLS certificates and keys not reloaded: {e}"),
            }
        }
    }))
}

/// No SIGHUP here: reloading is [`Server::reload_tls`] in code.
#[cfg(not(unix))]
fn reload_tls_on_sighup(_server: Server) -> std::io::Result<tokio::task::JoinHandle<()>> {
    Ok(tokio::spawn(async {}))
}

/// The whole of an example server's `main`: logging, `--config FILE`, and
/// `service` served as the file's `[server]` table says (and over HTTP when
/// it has an `[http]` table) until Ctrl-C, through the layers the
/// [middleware flags](crate::middleware) ask for (`privileged`: the
/// methods `--admin-token` guards); on failure the error goes to stderr and
/// the process exits 1.
pub async fn serve_main(service: impl rpc_core::Service, privileged: &'static [&'static str]) {
    init_logging();
    let run = async {
        let args = <Args as clap::Parser>::parse();
        let config = ServerConfig::from_file(&args.config)?;
        let http = if HttpConfig::file_has_table(&args.config)? {
            Some(HttpConfig::builder().load_file(&args.config)?.build()?)
        } else {
            None
        };
        let server = Server::new(config, Registry::new().with(service)?);
        serve_with_http(args.middleware.apply(server, privileged), http).await
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
