//! The shutdown signal every listener shares: a `watch` that turns `true`
//! when the server starts draining, and the two ways to wait for it. Used
//! by the accept loops, the connection loop, the Python loop and the HTTP
//! gateway; it uses nothing of the crate.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Poll, Waker};

use tokio::sync::watch;

/// Completes when `draining` turns `true` (never, if its server is gone).
pub(crate) async fn draining_started(draining: &mut watch::Receiver<bool>) {
    if draining.wait_for(|&d| d).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// [`draining_started`] for a loop that polls it every turn: once the
/// watch holds the task's waker it reads `started` (set before the watch
/// changes) and leaves the watch alone, whose wait takes a lock that every
/// connection shares. It polls the watch again only if the task's waker
/// changed. The wait ignores the task's budget: a wait that gave up for want
/// of budget would leave no waker with the watch.
pub(crate) async fn drain_signal(started: &AtomicBool, draining: &mut watch::Receiver<bool>) {
    let wait = tokio::task::unconstrained(draining_started(draining));
    tokio::pin!(wait);
    let mut registered: Option<Waker> = None;
    std::future::poll_fn(|cx| {
        if started.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        if registered.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            return Poll::Pending;
        }
        registered = Some(cx.waker().clone());
        wait.as_mut().poll(cx)
    })
    .await
}
