//! A request in flight, on its own task: whether it has been read whole, and where a
//! `latency` fault's delay goes.
//!
//! [`run`] spawns the request. When the client hangs up (hyper drops the connection and the
//! future awaiting the task), a request read whole runs to its end all the same, like the real
//! service, which may apply a request it has read even when the client is gone (the case that
//! makes a client's timeout-then-retry dangerous); one not yet read whole (waiting for room
//! before its body, say) is stopped, as before, so a client that hangs up leaves nothing
//! running that it had not finished sending.
//!
//! The latency is the service's processing time: it elapses once the request is read whole
//! (its body read, `request::read_body`), before the request is applied; a request answered
//! without reading a body waits at its end, before its answer.

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::AbortHandle;

struct InFlight {
    /// Set once the request is read whole: the task then outlives a hung-up client.
    read_whole: Arc<AtomicBool>,
    /// The latency still to elapse.
    pending: Cell<Duration>,
}

tokio::task_local! {
    static IN_FLIGHT: InFlight;
}

/// Runs `request` on its own task and returns its answer; `None` when the task was cancelled
/// (the runtime is shutting down). Dropping the returned future stops the task unless the
/// request was read whole.
///
/// # Panics
/// Resumes the request's panic.
pub(super) async fn run<F>(request: F) -> Option<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let read_whole = Arc::new(AtomicBool::new(false));
    let state = InFlight {
        read_whole: Arc::clone(&read_whole),
        pending: Cell::new(Duration::ZERO),
    };
    let task = tokio::spawn(IN_FLIGHT.scope(state, request));
    let _unless_read = StopUnlessRead {
        read_whole,
        task: task.abort_handle(),
    };
    match task.await {
        Ok(answer) => Some(answer),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => None,
    }
}

/// Stops the task, when dropped, unless its request was read whole.
struct StopUnlessRead {
    read_whole: Arc<AtomicBool>,
    task: AbortHandle,
}

impl Drop for StopUnlessRead {
    fn drop(&mut self) {
        if !self.read_whole.load(Ordering::Acquire) {
            self.task.abort();
        }
    }
}

/// Sets the request's latency (a `latency` fault's), to elapse once it is read whole.
pub(super) fn delay(latency: Duration) {
    let _ = IN_FLIGHT.try_with(|f| f.pending.set(latency));
}

/// The request has been read whole: from now on it outlives its client; its latency elapses.
pub(super) async fn read_whole() {
    let _ = IN_FLIGHT.try_with(|f| f.read_whole.store(true, Ordering::Release));
    elapse().await;
}

/// Waits out the latency still pending, once.
pub(super) async fn elapse() {
    let pending = IN_FLIGHT
        .try_with(|f| f.pending.replace(Duration::ZERO))
        .unwrap_or_default();
    if !pending.is_zero() {
        tokio::time::sleep(pending).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a request that marks itself read whole (or not), then waits for ever, and drops
    /// the future awaiting it (the client hangs up): whether the request's task goes on.
    async fn goes_on_after_hang_up(mark_read_whole: bool) -> bool {
        let (reached, mut went_on) = tokio::sync::mpsc::channel::<()>(1);
        let (started_tx, started) = tokio::sync::oneshot::channel::<()>();
        let request = async move {
            if mark_read_whole {
                read_whole().await;
            }
            let _ = started_tx.send(());
            // Past the hang-up: only a task that was not stopped gets here.
            tokio::task::yield_now().await;
            tokio::task::yield_now().await;
            let _ = reached.send(()).await;
        };
        let mut waiting = Box::pin(run(request));
        tokio::select! {
            _ = &mut waiting => unreachable!("the request waits after starting"),
            _ = started => {}
        }
        drop(waiting);
        went_on.recv().await.is_some()
    }

    #[tokio::test]
    async fn a_request_read_whole_outlives_its_client_and_one_not_read_is_stopped() {
        assert!(goes_on_after_hang_up(true).await);
        assert!(!goes_on_after_hang_up(false).await);
    }
}
