//! The end of a long-running command: Ctrl-C, or SIGTERM (what `docker stop` and Kubernetes
//! send) on Unix.

/// Resolves on Ctrl-C or SIGTERM (Ctrl-C alone where SIGTERM cannot be listened for).
///
/// # Cancellation
/// Dropping the future stops listening for the signals.
pub async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
