//! [`Shared`]: one tower service driven by many tasks. Each call takes the
//! service in turn (an async mutex), waits for `poll_ready`, starts its
//! call and lets go before awaiting it, so a stateful layer that is not
//! `Clone` (tower's `RateLimit`) still limits every caller together.

use std::future::poll_fn;

use tower::Service;

use super::BoxError;

/// A service shared by every caller: each call takes it in turn for
/// `poll_ready` and `call`, and lets go before awaiting its answer.
#[derive(Debug)]
pub struct Shared<S> {
    service: futures::lock::Mutex<S>,
}

impl<S> Shared<S> {
    /// Shares `service`.
    pub fn new(service: S) -> Shared<S> {
        Shared {
            service: futures::lock::Mutex::new(service),
        }
    }

    /// Waits for the service to be ready, calls it with `request`, and
    /// awaits the answer (after letting the service go).
    pub async fn call<R>(&self, request: R) -> Result<S::Response, BoxError>
    where
        S: Service<R>,
        S::Error: Into<BoxError>,
    {
        let answer = {
            let mut service = self.service.lock().await;
            poll_fn(|cx| service.poll_ready(cx))
                .await
                .map_err(Into::into)?;
            service.call(request)
        };
        answer.await.map_err(Into::into)
    }
}
