//! Injected latency (a `latency` fault) as the service's processing time: it elapses once the
//! request is read whole (its body read, `request::read_body`), before the request is
//! applied; a request answered without reading a body waits before its answer. Each request
//! runs on its own task (`server`), so a client that hangs up meanwhile cancels nothing: like
//! the real service, the emulator applies a request it has read whole even when the client is
//! gone (the case that makes a client's timeout-then-retry dangerous).

use std::cell::Cell;
use std::future::Future;
use std::time::Duration;

tokio::task_local! {
    /// The latency of the request the task runs, until it elapses.
    static PENDING: Cell<Duration>;
}

/// Runs `request` with `latency` pending; what has not elapsed by its end elapses then.
pub(super) async fn scope<F: Future>(latency: Duration, request: F) -> F::Output {
    PENDING
        .scope(Cell::new(latency), async move {
            let answer = request.await;
            elapse().await;
            answer
        })
        .await
}

/// Waits out the pending latency, once: when the request has been read whole.
pub(super) async fn elapse() {
    let pending = PENDING
        .try_with(|p| p.replace(Duration::ZERO))
        .unwrap_or_default();
    if !pending.is_zero() {
        tokio::time::sleep(pending).await;
    }
}
