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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    /// Shuts down 20 ms from now, as `Server::shut_down` does, and fails
    /// unless `signal` (already polled, so that the watch holds its waker)
    /// then completes. The timer is polled first, so that its own wake is
    /// not what polls the signal.
    async fn shut_down_and_expect_a_wake(
        started: &Arc<AtomicBool>,
        tx: watch::Sender<bool>,
        signal: impl Future<Output = ()>,
    ) {
        let shut_down = tokio::spawn({
            let started = started.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                started.store(true, Ordering::Release);
                tx.send_replace(true);
            }
        });
        tokio::select! {
            biased;
            () = tokio::time::sleep(Duration::from_secs(5)) => panic!("the watch did not wake it"),
            () = signal => {}
        }
        shut_down.await.unwrap();
    }

    #[tokio::test]
    async fn the_drain_signal_wakes_a_loop_that_polled_it_before() {
        let started = Arc::new(AtomicBool::new(false));
        let (tx, mut rx) = watch::channel(false);
        let signal = drain_signal(&started, &mut rx);
        tokio::pin!(signal);
        // Polled more than once before the shutdown, as a loop does; from
        // then on only the watch's wake can make it look again.
        for _ in 0..3 {
            let polled = std::future::poll_fn(|cx| Poll::Ready(signal.as_mut().poll(cx))).await;
            assert!(polled.is_pending());
        }
        shut_down_and_expect_a_wake(&started, tx, signal).await;
    }

    /// A loop whose task has used up its budget (tokio's cooperative
    /// scheduling) before it first polls the signal must still be woken.
    #[tokio::test]
    async fn the_drain_signal_wakes_a_loop_that_first_polled_it_out_of_budget() {
        let started = Arc::new(AtomicBool::new(false));
        let (tx, mut rx) = watch::channel(false);
        let (items, mut queue) = tokio::sync::mpsc::unbounded_channel();
        for i in 0..1000 {
            items.send(i).unwrap();
        }
        let signal = drain_signal(&started, &mut rx);
        tokio::pin!(signal);
        std::future::poll_fn(|cx| {
            // Taking items spends the budget until the queue says Pending.
            while queue.poll_recv(cx).is_ready() {}
            assert!(signal.as_mut().poll(cx).is_pending());
            Poll::Ready(())
        })
        .await;
        shut_down_and_expect_a_wake(&started, tx, signal).await;
    }

    #[tokio::test]
    async fn the_drain_signal_completes_at_once_when_already_draining() {
        let (started, (_tx, mut rx)) = (AtomicBool::new(false), watch::channel(true));
        // The flag may lag the watch on the first poll: the watch decides.
        tokio::time::timeout(Duration::from_secs(5), drain_signal(&started, &mut rx))
            .await
            .expect("completes");
    }
}
