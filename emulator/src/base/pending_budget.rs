//! The memory budget for appended rows (`--max-pending-bytes`): rows being decoded and rows
//! not yet committed.
//!
//! An append is charged for the memory it makes the emulator hold, as that memory
//! materializes, not for its size on the wire: the decompressed body as it is inflated, each
//! row as it is parsed (an estimate of the parsed JSON, before parsing) and converted. Each
//! append holds one [`Reservation`] that grows as it decodes; once its rows are converted it
//! shrinks to what the rows hold and stays with the pending batch until the batch leaves
//! memory, however it leaves (committed, or dropped with its channel).
//!
//! Growing past the budget is refused two ways ([`Refusal`]): when the append alone needs
//! more than the whole budget it could never be admitted (the caller answers 413, not
//! retryable); otherwise the budget is taken by other appends, which commit and return it,
//! so waiting helps (429, which clients retry).

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

/// Why a reservation could not grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The append alone needs more than the whole budget: it can never be admitted.
    TooLarge,
    /// Other appends hold the budget now: retrying after they commit can succeed.
    Full,
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

    /// An empty reservation, to grow as an append decodes.
    pub(crate) fn reservation(self: &Arc<Self>) -> Reservation {
        Reservation {
            budget: Arc::clone(self),
            bytes: 0,
        }
    }
}

impl Reservation {
    /// The budget this reservation is a share of.
    pub(crate) fn budget(&self) -> &PendingBudget {
        &self.budget
    }

    /// Bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Grows the reservation to `total` bytes (nothing when it holds that much already).
    ///
    /// # Errors
    ///
    /// [`Refusal::TooLarge`] when `total` is more than the whole budget, [`Refusal::Full`]
    /// when the other reservations leave no room for it; the reservation is unchanged.
    pub(crate) fn grow_to(&mut self, total: usize) -> Result<(), Refusal> {
        if total <= self.bytes {
            return Ok(());
        }
        let max = self.budget.max;
        if total > max {
            return Err(Refusal::TooLarge);
        }
        let more = total - self.bytes;
        self.budget
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                let after = used.saturating_add(more);
                (after <= max).then_some(after)
            })
            .map_err(|_| Refusal::Full)?;
        self.bytes = total;
        Ok(())
    }

    /// Shrinks the reservation to `total` bytes (nothing when it holds less), returning the
    /// rest to the budget.
    pub(crate) fn shrink_to(&mut self, total: usize) {
        if total < self.bytes {
            self.budget
                .used
                .fetch_sub(self.bytes - total, Ordering::AcqRel);
            self.bytes = total;
        }
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
    fn reservations_grow_within_the_budget_and_come_back() {
        let b = PendingBudget::new(100);
        let mut first = b.reservation();
        assert_eq!(first.grow_to(101), Err(Refusal::TooLarge), "never fits");
        assert_eq!(b.used(), 0, "a refusal takes nothing");
        first.grow_to(60).unwrap();
        first.grow_to(30).unwrap();
        assert_eq!((first.bytes(), b.used()), (60, 60), "growing never shrinks");
        let mut second = b.reservation();
        second.grow_to(40).unwrap();
        assert!(b.is_full());
        assert_eq!(second.grow_to(41), Err(Refusal::Full), "waiting helps");
        assert_eq!(second.bytes(), 40);
        first.shrink_to(10);
        assert_eq!(b.used(), 50);
        second.grow_to(90).unwrap();
        drop(first);
        assert_eq!(b.used(), 90);
        drop(second);
        assert_eq!(b.used(), 0);
    }
}
