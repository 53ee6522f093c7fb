//! HAProxy in front of the ledger servers: `haproxy -f
//! examples/config/haproxy.cfg -db` (the README's config) on a free port,
//! the servers' addresses given as the environment variables it reads.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::process::{Child, Command};

use super::LedgerServer;
use super::process::collect;
use crate::common::{WAIT, within, within_for};

/// How many tries at a free port HAProxy may need (another process may
/// take the port between our probe and HAProxy's bind).
const HAPROXY_TRIES: usize = 5;

/// The README's HAProxy config.
fn haproxy_cfg() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/config/haproxy.cfg")
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    listener.local_addr().expect("its address").port()
}

/// `haproxy -f examples/config/haproxy.cfg -db` in the foreground, killed
/// when dropped; its log (stderr: servers going DOWN and UP) is collected.
pub(crate) struct Haproxy {
    child: Child,
    /// `127.0.0.1:PORT` it listens on.
    pub(crate) address: String,
    log: Arc<Mutex<Vec<u8>>>,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

impl Haproxy {
    /// Starts HAProxy in front of `servers` on a free port, trying another
    /// port if it exits (its port taken); ready once it accepts connections.
    pub(crate) async fn start(servers: &[LedgerServer]) -> Haproxy {
        let mut failures = Vec::new();
        for _ in 0..HAPROXY_TRIES {
            let address = format!("127.0.0.1:{}", free_port());
            match Haproxy::try_start(servers, &address).await {
                Ok(haproxy) => return haproxy,
                Err(e) => failures.push(e),
            }
        }
        panic!("haproxy did not start: {failures:#?}");
    }

    async fn try_start(servers: &[LedgerServer], address: &str) -> Result<Haproxy, String> {
        let mut command = Command::new("haproxy");
        command
            .arg("-f")
            .arg(haproxy_cfg())
            .arg("-db")
            .env("RPC_LB_LISTEN", address)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (i, server) in servers.iter().enumerate() {
            let health = server.http.rsplit_once(':').expect("HOST:PORT").1;
            command
                .env(format!("RPC_SERVER_{}", i + 1), &server.tcp)
                .env(format!("RPC_HEALTH_PORT_{}", i + 1), health);
        }
        let mut child = command.spawn().map_err(|e| {
            format!("starting haproxy (is it installed? apt-get install haproxy): {e}")
        })?;
        let log = collect(child.stderr.take().expect("stderr is piped"));
        let _stdout = collect(child.stdout.take().expect("stdout is piped"));
        let mut haproxy = Haproxy {
            child,
            address: address.to_owned(),
            log,
        };
        let ready = within_for(WAIT, "haproxy to accept connections", async {
            loop {
                if let Ok(Some(status)) = haproxy.child.try_wait() {
                    return Err(format!("haproxy exited ({status}): {}", haproxy.log_text()));
                }
                if tokio::net::TcpStream::connect(address).await.is_ok() {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        ready.map(|()| haproxy)
    }

    /// Everything HAProxy has logged so far.
    pub(crate) fn log_text(&self) -> String {
        String::from_utf8_lossy(&self.log.lock().expect("log")).into_owned()
    }

    /// How many times HAProxy has logged server `name` as `state` (`UP`, `DOWN`).
    pub(crate) fn times(&self, name: &str, state: &str) -> usize {
        self.log_text()
            .matches(&format!("rpc_servers/{name} is {state}"))
            .count()
    }

    /// Kills HAProxy and waits for it to exit.
    pub(crate) async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = within("haproxy to exit", self.child.wait()).await;
    }
}
