//! Serves the [ledger](tests::ledger) as a config file's `[server]` table
//! says, for the many-servers tests: calc-server's shape (`--config FILE`,
//! `listening HOST:PORT` then `http listening HOST:PORT` with an `[http]`
//! table, whose `/healthz` answers 503 while Ctrl-C drains the server),
//! with the journal named by `LEDGER_JOURNAL`.
//!
//! ```sh
//! LEDGER_JOURNAL=/tmp/ledger.log cargo run -p tests --bin ledger-server -- --config FILE
//! ```
//!
//! `LEDGER_DELAY_MS` slows `add` (and `record` after its journal line).

use tests::ledger::{Journal, LedgerServer};

#[tokio::main]
async fn main() {
    let journal = Journal::from_env().unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1);
    });
    examples::cli::serve_main(LedgerServer::new(journal), &[]).await;
}
