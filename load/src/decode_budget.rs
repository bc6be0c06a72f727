//! One budget for what every lane's Parquet reader holds at once (issue 83): a row group's
//! reader is built only once its decoded pages (`parquet_guard::Plan::held`) and the record
//! batches it may have in flight (`parquet_rows.rs` `IN_FLIGHT`) fit in what the other lanes'
//! readers leave of half the client's memory budget. A share larger than the whole is taken
//! as the whole (so it waits for every other reader, and a budget too small for two lanes
//! loads one at a time); a plan past a quarter is refused before this (a bad record).

use std::sync::{Condvar, Mutex, PoisonError};

/// Bytes of decoded pages the readers may hold together.
#[derive(Debug)]
pub(crate) struct DecodeBudget {
    free: Mutex<u64>,
    freed: Condvar,
    total: u64,
}

/// A share of the budget, given back when dropped.
#[derive(Debug)]
pub(crate) struct Held<'a> {
    budget: &'a DecodeBudget,
    bytes: u64,
}

impl DecodeBudget {
    /// A budget of `total` bytes.
    pub(crate) fn new(total: u64) -> Self {
        Self {
            free: Mutex::new(total),
            freed: Condvar::new(),
            total,
        }
    }

    /// Waits (blocking: readers run on the blocking pool) until `bytes` (at most the whole
    /// budget) are free, and holds them; `stop()` is asked every 100 ms (`None` once it says
    /// stop).
    pub(crate) fn hold(&self, bytes: u64, stop: impl Fn() -> bool) -> Option<Held<'_>> {
        let bytes = bytes.min(self.total);
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        while *free < bytes {
            if stop() {
                return None;
            }
            let timeout = std::time::Duration::from_millis(100);
            free = self
                .freed
                .wait_timeout(free, timeout)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        *free -= bytes;
        Some(Held {
            budget: self,
            bytes,
        })
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut free = self
            .budget
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *free += self.bytes;
        self.budget.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_held_until_dropped_and_a_stop_ends_a_wait() {
        let budget = DecodeBudget::new(100);
        let a = budget.hold(60, || false).unwrap();
        assert!(
            budget.hold(50, || true).is_none(),
            "40 free: waits, then stops"
        );
        let b = budget.hold(40, || false).unwrap();
        drop(a);
        let c = budget.hold(500, || true);
        assert!(
            c.is_none(),
            "more than the whole is the whole: 60 free of 100"
        );
        drop(b);
        assert!(budget.hold(500, || false).is_some());
    }
}
