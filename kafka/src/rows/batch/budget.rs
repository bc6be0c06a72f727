//! The sink-wide byte [`Budget`] of the batches between the poll thread and the workers, and
//! the wait for room in it.
//!
//! The poll thread stops taking messages from librdkafka while the budget is full and waits
//! here ([`Budget::wait_for_room`]) until the workers' appends free enough of it, woken by the
//! release itself, not by polling the count: pausing partitions instead would make librdkafka
//! drop what it had fetched for them and fetch it again (`source::router`'s module docs).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::lock::lock;

/// The sink-wide byte budget of the batches between the poll thread and the workers.
#[derive(Debug)]
pub(crate) struct Budget {
    used: AtomicUsize,
    pub(crate) limit: usize,
    /// Someone waits in [`wait_for_room`](Self::wait_for_room): a release wakes it.
    waiting: AtomicBool,
    room: Mutex<()>,
    freed: Condvar,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            used: AtomicUsize::new(0),
            limit: limit.max(1),
            waiting: AtomicBool::new(false),
            room: Mutex::new(()),
            freed: Condvar::new(),
        }
    }

    /// Bytes held now.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::SeqCst)
    }

    /// The limit.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Charges `bytes`.
    pub(crate) fn charge(&self, bytes: usize) {
        self.used.fetch_add(bytes, Ordering::SeqCst);
    }

    /// Releases `bytes` charged before, waking a [`wait_for_room`](Self::wait_for_room).
    pub(crate) fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) {
            let _room = lock(&self.room);
            self.freed.notify_all();
        }
    }

    /// Waits until at most `level` bytes are held, or `timeout` passed; whether they are.
    pub(crate) fn wait_for_room(&self, level: usize, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        let mut room = lock(&self.room);
        self.waiting.store(true, Ordering::SeqCst);
        let below = loop {
            if self.used() <= level {
                break true;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break false;
            }
            room = self
                .freed
                .wait_timeout(room, left)
                .map_or_else(|e| e.into_inner().0, |(g, _)| g);
        };
        self.waiting.store(false, Ordering::SeqCst);
        below
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// A waiter is woken by the release that brings the budget to its level, and one that
    /// times out says the budget is still above it.
    #[test]
    fn a_release_wakes_the_wait_for_room() {
        let budget = Arc::new(Budget::new(100));
        budget.charge(150);
        assert!(!budget.wait_for_room(75, Duration::from_millis(1)));
        let freer = {
            let budget = Arc::clone(&budget);
            std::thread::spawn(move || {
                while !budget.waiting.load(Ordering::SeqCst) {
                    std::thread::yield_now();
                }
                budget.release(40);
                budget.release(40);
            })
        };
        // Far longer than the release takes: it returns when woken, with room.
        assert!(budget.wait_for_room(75, Duration::from_secs(600)));
        freer.join().unwrap();
        assert_eq!(budget.used(), 70);
    }
}
