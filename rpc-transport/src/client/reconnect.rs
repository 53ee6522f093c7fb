//! A client transport that reconnects, with backoff and jitter, after its
//! connection drops; used by [`crate::connect`] when the configuration has a
//! `[client.reconnect]` table.
//!
//! Calls are sent **at most once**: a call in flight when the connection
//! drops fails with [`ErrorKind::ConnectionLost`] and is never resent by the
//! framework — only the caller knows whether repeating it is safe. A call
//! made while disconnected fails at once with a message saying the client is
//! reconnecting, or, with `wait = true`, waits for the connection up to its
//! timeout.

use std::sync::Arc;
use std::time::Duration;

use rpc_core::client::{Outgoing, ResponseFuture};
use rpc_core::{Error, ErrorKind, Transport};
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tracing::{info, warn};

use super::connection::Connection;
use crate::config::{ClientConfig, Reconnect};

/// A [`Transport`] over whichever connection is current; see the [module docs](self).
#[derive(Debug)]
pub struct Reconnecting {
    current: watch::Receiver<Link>,
    policy: Reconnect,
    call_timeout: Duration,
    task: AbortHandle,
}

/// The state of the link to the server.
#[derive(Clone, Debug)]
enum Link {
    Up(Arc<Connection>),
    Down { attempt: u32, error: String },
}

impl Reconnecting {
    /// Connects once (failing as [`Connection::connect`] does), then keeps
    /// the link up in the background as `config.reconnect()` says.
    pub async fn connect(config: &ClientConfig) -> Result<Reconnecting, Error> {
        let policy = config.reconnect().cloned().unwrap_or_default();
        let first = Arc::new(Connection::connect(config).await?);
        let (link, current) = watch::channel(Link::Up(first.clone()));
        let task = tokio::spawn(keep_up(config.clone(), first, link)).abort_handle();
        Ok(Reconnecting {
            current,
            policy,
            call_timeout: config.call_timeout(),
            task,
        })
    }

    /// The connection, waiting up to `timeout` for one if `wait` is set.
    async fn connection(&self, method: &str, timeout: Duration) -> Result<Arc<Connection>, Error> {
        let mut current = self.current.clone();
        let down = |link: &Link| match link {
            Link::Up(connection) if !connection.is_closed() => Ok(connection.clone()),
            Link::Up(_) => Err(Error::new(
                ErrorKind::ConnectionLost,
                format!(
                    "`{method}` was not sent: the server is going away and a new connection is being made"
                ),
            )),
            Link::Down { attempt, error } => Err(Error::new(
                ErrorKind::ConnectionLost,
                format!(
                    "`{method}` was not sent: the connection is down and reconnecting \
                     (attempt {attempt}; last error: {error})"
                ),
            )),
        };
        if !self.policy.wait {
            return down(&current.borrow());
        }
        let up = async {
            let usable = |link: &Link| matches!(link, Link::Up(c) if !c.is_closed());
            let link = current.wait_for(usable).await;
            link.map(|link| down(&link))
        };
        match tokio::time::timeout(timeout, up).await {
            Ok(Ok(up)) => up,
            Ok(Err(_)) => Err(Error::new(
                ErrorKind::ConnectionLost,
                "the client was closed",
            )),
            Err(_) => down(&self.current.borrow()).map_err(|e| {
                Error::new(
                    ErrorKind::Timeout,
                    format!("no connection within {timeout:?}: {}", e.message()),
                )
            }),
        }
    }
}

impl Drop for Reconnecting {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Transport for Reconnecting {
    fn call<'a>(&'a self, call: Outgoing<'a>) -> ResponseFuture<'a> {
        let (method, args, metadata) = (call.method, call.args, call.metadata);
        let timeout = call.timeout.unwrap_or(self.call_timeout);
        // Connected: the request is queued right here, as on a plain connection.
        // The link is cloned out of the watch, so no lock is held while the
        // request may be written.
        let link = self.current.borrow().clone();
        if let Link::Up(connection) = link {
            if !connection.is_closed() {
                return connection.send(method, args, Some(timeout), metadata);
            }
        }
        Box::pin(async move {
            let started = tokio::time::Instant::now();
            let connection = self.connection(method, timeout).await?;
            let left = timeout.saturating_sub(started.elapsed());
            connection.send(method, args, Some(left), metadata).await
        })
    }
}

/// Watches the current connection and replaces it when it ends.
async fn keep_up(config: ClientConfig, mut connection: Arc<Connection>, link: watch::Sender<Link>) {
    let policy = config.reconnect().cloned().unwrap_or_default();
    loop {
        // A server going away answers its calls in flight but takes no new
        // ones: reconnect now, and keep the old connection until it ends.
        connection.stopping().await;
        let old = connection.clone();
        tokio::spawn(async move { old.closed().await });
        let mut attempt = 0;
        let mut error = "the connection was lost".to_owned();
        connection = loop {
            link.send_replace(Link::Down {
                attempt,
                error: error.clone(),
            });
            tokio::time::sleep(policy.backoff(attempt)).await;
            attempt += 1;
            match Connection::connect(&config).await {
                Ok(new) => break Arc::new(new),
                Err(e) => {
                    warn!(attempt, error = %e, "reconnect failed");
                    error = e.to_string();
                }
            }
        };
        info!(attempts = attempt, "reconnected");
        link.send_replace(Link::Up(connection.clone()));
    }
}
