//! The end of a long-running command: Ctrl-C, or SIGTERM (what `docker stop` and Kubernetes
//! send) on Unix.
//!
//! The handlers are installed when [`terminated`] is called, not when its future is first
//! polled: a process that says it is ready (`listening on …`) and only then awaits the signal
//! would otherwise die of a SIGTERM sent in between, by the signal's default action, instead of
//! shutting down cleanly.

use std::future::Future;

/// Resolves on Ctrl-C or SIGTERM (Ctrl-C alone where SIGTERM cannot be listened for). Must be
/// called inside a Tokio runtime; the signals are listened for from the call on.
///
/// # Cancellation
/// Dropping the future stops listening for the signals.
pub fn terminated() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate()).ok();
        let interrupt = signal(SignalKind::interrupt()).ok();
        async move {
            let interrupted = async {
                match interrupt {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            };
            match term {
                Some(mut term) => {
                    tokio::select! {
                        () = interrupted => {}
                        _ = term.recv() => {}
                    }
                }
                None => interrupted.await,
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::terminated;

    /// A SIGTERM sent after the call but before the future is first polled ends it, and does
    /// not end the process.
    #[tokio::test]
    async fn a_sigterm_before_the_first_poll_is_not_lost() {
        let stop = terminated();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        tokio::time::timeout(std::time::Duration::from_secs(60), stop)
            .await
            .expect("the SIGTERM sent before the first poll ended the wait");
    }
}
