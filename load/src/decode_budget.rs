//! One budget for what every lane's Parquet reader holds at once (issue 83): a row group's
//! reader is built only once its decoded pages (`parquet_guard::Plan::held`) and the record
//! batches it may have in flight (`parquet_rows.rs` `IN_FLIGHT`) fit in what the other lanes'
//! readers leave of the readers' share: half of what the client's memory budget holds for
//! rows, **taken from that budget** at the start ([`reserve`], the SDK's
//! `StreamingIngestClient::reserve_memory`), so the channels buffer within the other half and
//! `memory_budget_bytes` bounds the readers and the SDK together. A share larger than the whole is taken
//! as the whole (so it waits for every other reader, and a budget too small for two lanes
//! loads one at a time); a plan past a quarter is refused before this (a bad record).
//!
//! The text lanes' queued chunks count against the same budget: a reader holds a chunk's
//! bytes ([`DecodeBudget::hold_shared`]) before it queues the chunk, and the loader gives them
//! back once the chunk is appended (the SDK's own budget holds it from there), so what every
//! lane queues together stays within the budget whatever `--channels` is.

use std::sync::{Arc, Condvar, Mutex, PoisonError};

use anyhow::{Context, Result};
use snowpipe_streaming::{MemoryReservation, StreamingIngestClient};

/// The readers' share of `client`'s memory budget, taken from it (held until the reservation
/// is dropped): half of what the budget holds for rows, the most the SDK sets aside.
///
/// # Errors
/// When the client's budget cannot spare it now (rows already buffered).
pub(crate) fn reserve(client: &StreamingIngestClient) -> Result<(DecodeBudget, MemoryReservation)> {
    let held = client
        .reserve_memory(client.max_memory_reservation())
        .context("cannot take the readers' share of memory_budget_bytes from the client")?;
    Ok((DecodeBudget::new(held.len() as u64), held))
}

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

/// A share of the budget that travels with what it stands for (a queued text chunk), given
/// back when dropped.
#[derive(Debug)]
pub(crate) struct Share {
    budget: Arc<DecodeBudget>,
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
        let bytes = self.take(bytes, stop)?;
        Some(Held {
            budget: self,
            bytes,
        })
    }

    /// As [`hold`](Self::hold), the share owning its handle on the budget.
    pub(crate) fn hold_shared(
        self: &Arc<Self>,
        bytes: u64,
        stop: impl Fn() -> bool,
    ) -> Option<Share> {
        let bytes = self.take(bytes, stop)?;
        Some(Share {
            budget: Arc::clone(self),
            bytes,
        })
    }

    /// Waits until `bytes` (at most the whole) are free and takes them: the bytes taken.
    fn take(&self, bytes: u64, stop: impl Fn() -> bool) -> Option<u64> {
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
        Some(bytes)
    }

    /// Gives `bytes` back.
    fn give(&self, bytes: u64) {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        *free += bytes;
        self.freed.notify_all();
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.budget.give(self.bytes);
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        self.budget.give(self.bytes);
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

    #[test]
    fn a_shared_share_counts_against_the_same_budget_until_dropped() {
        let budget = Arc::new(DecodeBudget::new(100));
        let queued = budget.hold_shared(70, || false).unwrap();
        assert!(budget.hold(40, || true).is_none(), "30 free while queued");
        drop(queued);
        assert!(
            budget.hold(100, || true).is_some(),
            "all free once appended"
        );
    }
}
