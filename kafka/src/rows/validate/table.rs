//! What client-side validation needs of a table, as the rows side sees it ([`TableColumns`]):
//! its columns as last read, and its evolution for a row that lacks some. The connector
//! supplies both (`connector/table_columns.rs`, which reads them from Snowflake); the rows are
//! checked where they are split (`rows/batch/split.rs`, `check_rows`), never handed to it.

use std::future::Future;
use std::sync::Arc;

use super::{Columns, Structural};

/// The start of v4's dead-letter reason for a row the table has no columns for
/// (`handleStructuralError`).
pub(crate) const DISABLED: &str = "Structural validation error (schema evolution disabled)";

/// The start of v4's dead-letter reason for a row still off after an evolution.
pub(crate) const AFTER_EVOLUTION: &str = "Schema mismatch after evolution attempt";

/// A table's columns and their evolution, for the check of its rows.
pub(crate) trait TableColumns: Sync {
    /// The columns as last read (after the latest evolution).
    fn columns(&self) -> Arc<Columns>;

    /// `snowflake.feature.normalize.time`: how TIME values are checked.
    fn normalize_time(&self) -> bool;

    /// Evolves the table for a row that is off as `s` says (columns added, NOT NULL dropped),
    /// then reads its columns again. Only `s` (column names and types) is handed over, never
    /// the row.
    ///
    /// # Errors
    /// The dead letter's reason: the table does not evolve, a cap refuses it, or Snowflake
    /// refused the change.
    fn evolve(&self, s: &Structural) -> impl Future<Output = Result<(), String>> + Send;
}

/// Rows of at least this many bytes are checked off the async workers.
pub(crate) const LARGE_ROWS: usize = 64 << 10;

/// `f`, CPU work over `bytes` of rows: when they are [`LARGE_ROWS`] or more on a multi-thread
/// runtime, in `block_in_place`, so the worker's other tasks move to another thread meanwhile
/// (a current-thread runtime, as in unit tests, runs it in place).
pub(crate) fn off_workers<T>(bytes: usize, f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    let flavor = Handle::try_current().map(|h| h.runtime_flavor());
    if bytes >= LARGE_ROWS && matches!(flavor, Ok(RuntimeFlavor::MultiThread)) {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A large check leaves the worker it ran on to the other tasks: on a runtime of one
    /// worker, a ticker keeps ticking while the check waits for it (without `block_in_place`
    /// the check would hold the only worker and the ticker would never run).
    #[test]
    fn large_checks_leave_the_async_worker_to_other_tasks() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_time()
            .build()
            .unwrap();
        let ticks = Arc::new(AtomicUsize::new(0));
        let seen = rt.block_on(async {
            let t = Arc::clone(&ticks);
            tokio::spawn(async move {
                loop {
                    t.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            });
            let t = Arc::clone(&ticks);
            let check = tokio::spawn(async move {
                off_workers(LARGE_ROWS, || {
                    // Waits for the ticker (bounded, so a failure ends).
                    let start = t.load(Ordering::SeqCst);
                    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(10);
                    while t.load(Ordering::SeqCst) < start + 5
                        && std::time::Instant::now() < give_up
                    {
                        std::thread::yield_now();
                    }
                    t.load(Ordering::SeqCst) - start
                })
            });
            check.await.unwrap()
        });
        assert!(seen >= 5, "the ticker ran {seen} times during the check");
        rt.shutdown_background();
    }
}
