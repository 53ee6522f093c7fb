//! Whether a call's outcome allows sending it again: the at-most-once
//! rules.
//!
//! - A refusal marked *did not run* (made before the handler started, or a
//!   call never sent) is safe to repeat whatever the method; it is repeated
//!   when the refusal is about the server's state (going away, overloaded,
//!   connection lost), not about the call (a bad argument or an unknown
//!   method would be refused again everywhere).
//! - A call to an `#[rpc(idempotent)]` method whose connection was lost
//!   mid-flight (or cut off at a server's shutdown) may have run: it is
//!   repeated only because repeating it is harmless.
//! - Anything else is final: a non-idempotent call that may have run is
//!   never sent twice.

use rpc_core::client::Response;
use rpc_core::{Error, ErrorKind};

/// Whether `outcome` allows sending the call again.
pub(super) fn may_retry(outcome: &Result<Response, Error>, idempotent: bool) -> bool {
    match outcome {
        Ok(response) => response.not_run() && response.error_kind().is_some_and(server_state),
        Err(e) if e.not_run() => server_state(e.kind()),
        Err(e) => {
            idempotent
                && matches!(
                    e.kind(),
                    ErrorKind::ConnectionLost | ErrorKind::ShuttingDown
                )
        }
    }
}

/// Kinds that say where the call went, not what it was.
fn server_state(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::ShuttingDown
            | ErrorKind::Overloaded
            | ErrorKind::ConnectionLost
            | ErrorKind::OverBudget
            | ErrorKind::Io
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(kind: ErrorKind) -> Result<Response, Error> {
        Err(Error::new(kind, "x"))
    }

    #[test]
    fn a_call_that_may_have_run_is_repeated_only_when_idempotent() {
        assert!(may_retry(&err(ErrorKind::ConnectionLost), true));
        assert!(!may_retry(&err(ErrorKind::ConnectionLost), false));
        assert!(!may_retry(&err(ErrorKind::Timeout), true));
        assert!(!may_retry(&err(ErrorKind::Application), true));
    }

    #[test]
    fn a_refusal_that_did_not_run_is_repeated_when_it_is_about_the_server() {
        let marked = |kind| Err(Error::new(kind, "x").did_not_run());
        assert!(may_retry(&marked(ErrorKind::ShuttingDown), false));
        assert!(may_retry(&marked(ErrorKind::ConnectionLost), false));
        assert!(!may_retry(&marked(ErrorKind::InvalidParams), true));
        assert!(!may_retry(&marked(ErrorKind::RateLimited), true));
    }
}
