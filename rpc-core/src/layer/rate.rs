//! [`RefuseOverRate`]: a rate limit that refuses at once, with
//! [`ErrorKind::RateLimited`], what tower's `RateLimit` would make wait.
//!
//! A token bucket: it holds up to `calls` tokens and gains `calls` per
//! `per`, evenly; each call takes one, and a call that finds none is
//! refused without reaching the service it wraps (so its handler does not
//! run). Clones of the layer and of its services share one bucket, so one
//! layer limits every door and connection of a server together.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use tower::{Layer, Service};

use super::BoxError;
use crate::error::{Error, ErrorKind};

/// A layer refusing calls over `calls` per `per`: a token bucket of
/// `calls` tokens, gaining `calls` per `per` evenly, shared by its clones
/// and services; a call that finds none is refused without running.
///
/// ```
/// # use std::time::Duration;
/// # use rpc_core::layer::RefuseOverRateLayer;
/// let mut registry = rpc_core::Registry::new();
/// registry.layer(RefuseOverRateLayer::new(100, Duration::from_secs(1)));
/// ```
#[derive(Clone, Debug)]
pub struct RefuseOverRateLayer {
    bucket: Arc<Bucket>,
}

impl RefuseOverRateLayer {
    /// At most `calls` calls per `per` (and at most `calls` at once after
    /// a quiet spell). `calls` of 0 refuses every call.
    pub fn new(calls: u32, per: Duration) -> RefuseOverRateLayer {
        RefuseOverRateLayer {
            bucket: Arc::new(Bucket {
                calls,
                per,
                state: Mutex::new(State {
                    tokens: f64::from(calls),
                    at: Instant::now(),
                }),
            }),
        }
    }
}

impl<S> Layer<S> for RefuseOverRateLayer {
    type Service = RefuseOverRate<S>;

    fn layer(&self, inner: S) -> RefuseOverRate<S> {
        RefuseOverRate {
            inner,
            bucket: self.bucket.clone(),
        }
    }
}

/// The service a [`RefuseOverRateLayer`] makes; it works on the server's
/// calls and on a client's alike.
#[derive(Clone, Debug)]
pub struct RefuseOverRate<S> {
    inner: S,
    bucket: Arc<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    calls: u32,
    per: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// Takes a token; if there is none, how long until there is.
    fn take(&self, now: Instant) -> Result<(), Duration> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let calls = f64::from(self.calls);
        let rate = calls / self.per.as_secs_f64().max(f64::MIN_POSITIVE);
        let gained = now.saturating_duration_since(state.at).as_secs_f64() * rate;
        state.tokens = (state.tokens + gained).min(calls);
        state.at = now;
        if state.tokens >= 1.0 {
            state.tokens -= 1.0;
            return Ok(());
        }
        if rate == 0.0 {
            return Err(Duration::MAX);
        }
        Err(Duration::from_secs_f64((1.0 - state.tokens) / rate))
    }

    fn refusal(&self, wait: Duration) -> Error {
        let again = match wait {
            Duration::MAX => String::new(),
            wait => format!("; try again in {} ms", wait.as_millis().max(1)),
        };
        Error::new(
            ErrorKind::RateLimited,
            format!(
                "rate limited: the server takes at most {} calls per {:?}, and this one did \
                 not run{again}",
                self.calls, self.per
            ),
        )
    }
}

impl<S, R> Service<R> for RefuseOverRate<S>
where
    S: Service<R>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = RateFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: R) -> RateFuture<S::Future> {
        match self.bucket.take(Instant::now()) {
            Ok(()) => RateFuture::Passed {
                inner: self.inner.call(request),
            },
            Err(wait) => RateFuture::Refused {
                error: Some(self.bucket.refusal(wait)),
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer of a [`RefuseOverRate`]: the inner service's, or a refusal.
    #[project = Projected]
    pub enum RateFuture<F> {
        /// Passed on.
        Passed { #[pin] inner: F },
        /// Refused.
        Refused { error: Option<Error> },
    }
}

impl<F, T, E> Future for RateFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            Projected::Passed { inner } => inner.poll(cx).map_err(Into::into),
            Projected::Refused { error } => Poll::Ready(Err(error
                .take()
                .unwrap_or_else(|| Error::new(ErrorKind::Internal, "polled after it ended"))
                .into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_up_to_the_rate_then_tokens_come_back_evenly() {
        let layer = RefuseOverRateLayer::new(10, Duration::from_secs(1));
        let start = Instant::now();
        let passed = (0..30).filter(|_| layer.bucket.take(start).is_ok()).count();
        assert_eq!(passed, 10);
        let wait = layer.bucket.take(start).unwrap_err();
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        let later = start + Duration::from_millis(250);
        let passed = (0..30).filter(|_| layer.bucket.take(later).is_ok()).count();
        assert_eq!(passed, 2);
        let e = layer.bucket.refusal(wait);
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert!(e.message().contains("10 calls per 1s"), "{e}");
    }

    #[test]
    fn zero_refuses_everything() {
        let layer = RefuseOverRateLayer::new(0, Duration::from_secs(1));
        assert_eq!(layer.bucket.take(Instant::now()), Err(Duration::MAX));
    }
}
