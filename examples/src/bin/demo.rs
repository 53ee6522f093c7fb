//! Server and client in one process on `127.0.0.1:0`: `add` and `sub` with
//! bincode, then with JSON, then a typed application error, then a client
//! with the wrong key being refused.
//!
//! ```sh
//! cargo run -p examples --bin demo
//! ```

use examples::calculator::{Calc, CalculatorClient, CalculatorServer, MathError};
use rpc_core::{CallError, Registry};
use rpc_transport::{ClientConfig, Server, ServerConfig};

const AUTHKEY: &str = "peekaboo";

#[tokio::main]
async fn main() {
    examples::cli::exit_on_error(run().await);
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let config = ServerConfig::builder()
        .listen("127.0.0.1:0")
        .authkey(AUTHKEY)
        .no_env()
        .build()?;
    let registry = Registry::new().with(CalculatorServer::new(Calc))?;
    let listening = Server::new(config, registry).bind().await?;
    let address = listening.local_addr().to_owned();
    let server = tokio::spawn(listening.serve());
    println!("server listening on {address}");

    for codec in ["bincode", "json"] {
        let calc = client(&address, AUTHKEY, codec).await?;
        println!("[{codec}] add(2, 3) = {}", calc.add(2, 3).await?);
        println!("[{codec}] sub(2, 3) = {}", calc.sub(2, 3).await?);
    }

    let calc = client(&address, AUTHKEY, "json").await?;
    match calc.div(1, 0).await {
        Err(CallError::Application(MathError::DivideByZero)) => {
            println!("div(1, 0) failed with the typed error MathError::DivideByZero")
        }
        other => {
            return Err(format!("div(1, 0) should fail with DivideByZero, got {other:?}").into());
        }
    }

    match client(&address, "not-the-key", "bincode").await {
        Err(e) => println!("a client with the wrong key was refused: {e}"),
        Ok(_) => return Err("a client with the wrong key was let in".into()),
    }
    server.abort();
    Ok(())
}

async fn client(
    address: &str,
    authkey: &str,
    codec: &str,
) -> Result<CalculatorClient, rpc_core::Error> {
    let config = ClientConfig::builder()
        .connect(address)
        .authkey(authkey)
        .codec(codec)
        .no_env()
        .build()
        .expect("a valid client config");
    Ok(CalculatorClient::new(
        rpc_transport::connect(&config).await?,
    ))
}
