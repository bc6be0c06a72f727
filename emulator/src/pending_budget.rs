//! The memory budget for appended rows not yet committed (`--max-pending-bytes`).
//!
//! Every accepted append holds its rows in memory until its batch commits (after the commit
//! delay). Each pending batch holds a [`Reservation`] of its decompressed body's size; the
//! reservation is returned when the batch leaves memory, however it leaves (committed, or
//! dropped with its channel). An append that would take the total past the budget is
//! answered 429, which clients retry: the emulator slows writers down instead of growing.
//! One append is always admitted when nothing is pending, so a budget smaller than one
//! request cannot wedge a client.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Bytes of pending rows, against a maximum.
#[derive(Debug)]
pub(crate) struct PendingBudget {
    used: AtomicUsize,
    max: usize,
}

/// A share of the budget, returned on drop.
#[derive(Debug)]
pub(crate) struct Reservation {
    budget: Arc<PendingBudget>,
    bytes: usize,
}

impl PendingBudget {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            used: AtomicUsize::new(0),
            max,
        })
    }

    /// Bytes reserved now.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// The configured maximum.
    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// Whether no more bytes fit (checked before a body is decoded).
    pub(crate) fn is_full(&self) -> bool {
        self.used() >= self.max
    }

    /// Reserves `bytes`, or `None` when they do not fit (and something is pending).
    pub(crate) fn try_reserve(self: &Arc<Self>, bytes: usize) -> Option<Reservation> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                let after = used.saturating_add(bytes);
                (used == 0 || after <= self.max).then_some(after)
            })
            .ok()?;
        Some(Reservation {
            budget: Arc::clone(self),
            bytes,
        })
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_fit_the_budget_and_come_back_on_drop() {
        let b = PendingBudget::new(100);
        let first = b.try_reserve(150).expect("one append fits an empty budget");
        assert!(b.is_full());
        assert!(b.try_reserve(1).is_none());
        drop(first);
        assert_eq!(b.used(), 0);
        let a = b.try_reserve(60).unwrap();
        let c = b.try_reserve(40).unwrap();
        assert!(b.try_reserve(1).is_none());
        drop(a);
        assert!(b.try_reserve(60).is_some());
        drop(c);
        assert_eq!(b.used(), 0);
    }
}
