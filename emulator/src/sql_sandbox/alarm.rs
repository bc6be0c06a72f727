//! The statement deadline from outside the statement: at the deadline a watcher thread calls
//! `sqlite3_interrupt` on the statement's connection.
//!
//! The progress handler (`sql_sandbox.rs`) stops a statement between SQLite's instructions;
//! SQLite also looks at the interrupt flag where no instruction boundary is near: while it
//! prepares a long statement, while it waits on a busy database (up to the reader's 5 s busy
//! timeout), and in its B-tree and WAL loops. One instruction that looks at neither still
//! runs to its end: the sort of a sorter's in-memory run, bounded by the reader's page cache
//! (2 MB) and the statement's memory (`heap.rs`): tens of milliseconds (docs/SECURITY.md).

use std::sync::{mpsc, Arc, Mutex};
use std::time::Instant;

use rusqlite::InterruptHandle;

/// Interrupts the connection at the deadline unless dropped first.
pub(super) struct Alarm {
    /// Whether the statement still runs: the watcher interrupts only while it holds this and
    /// it is true, and dropping the alarm makes it false under the same lock, so an interrupt
    /// never reaches the connection's next statement.
    armed: Arc<Mutex<bool>>,
    /// Dropping it wakes the watcher, which then ends without interrupting.
    _cancel: mpsc::Sender<()>,
}

impl Alarm {
    pub(super) fn set(handle: InterruptHandle, deadline: Instant) -> Self {
        let (cancel, cancelled) = mpsc::channel::<()>();
        let armed = Arc::new(Mutex::new(true));
        let watched = Arc::clone(&armed);
        let spawned = std::thread::Builder::new()
            .name("sql-deadline".into())
            .spawn(move || {
                let wait = deadline.saturating_duration_since(Instant::now());
                if let Err(mpsc::RecvTimeoutError::Timeout) = cancelled.recv_timeout(wait) {
                    let armed = watched.lock().unwrap_or_else(|e| e.into_inner());
                    if *armed {
                        handle.interrupt();
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "no deadline watcher for an SQL API statement; the progress handler still stops it");
        }
        Self {
            armed,
            _cancel: cancel,
        }
    }
}

impl Drop for Alarm {
    fn drop(&mut self) {
        *self.armed.lock().unwrap_or_else(|e| e.into_inner()) = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The alarm interrupts a statement at the deadline without a progress handler, and one
    /// dropped before its deadline interrupts nothing.
    #[test]
    fn the_alarm_interrupts_at_the_deadline_and_not_after_it_is_dropped() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) \
                       SELECT COUNT(*) FROM n";
        let started = Instant::now();
        let alarm = Alarm::set(
            conn.get_interrupt_handle(),
            started + Duration::from_millis(100),
        );
        let e = conn
            .query_row(endless, [], |r| r.get::<_, i64>(0))
            .unwrap_err();
        drop(alarm);
        assert!(e.to_string().contains("interrupt"), "{e}");
        // The statement is endless: its return is the interrupt. The bound only catches one
        // that came far past its deadline (generous, so a loaded machine cannot fail it).
        assert!(started.elapsed() < Duration::from_secs(60));
        let alarm = Alarm::set(
            conn.get_interrupt_handle(),
            Instant::now() + Duration::from_millis(50),
        );
        drop(alarm);
        std::thread::sleep(Duration::from_millis(150));
        let n: i64 = conn
            .query_row(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) \
                 SELECT COUNT(*) FROM n",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 100_000);
    }
}
