//! The emulator's wall clock: every time it reads (token issue and expiry, channel creation
//! times, request timestamps, SQL API `createdOn`) comes from one [`Clock`], so a test can move
//! time forward instead of sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Wall-clock time: the system clock plus an offset that [`advance`](Clock::advance) moves
/// forward. Clones share the offset, so the clone given to
/// [`EmulatorConfig::with_clock`](crate::config::EmulatorConfig::with_clock) moves the running
/// emulator's time. The default is the system clock.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// Microseconds added to the system clock.
    offset_us: Arc<AtomicI64>,
}

impl Clock {
    /// The system clock, not advanced yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves this clock (and every clone of it) forward by `by`.
    pub fn advance(&self, by: Duration) {
        let us = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        self.offset_us.fetch_add(us, Ordering::SeqCst);
    }

    /// Microseconds since the Unix epoch.
    pub fn now_us(&self) -> i64 {
        chrono::Utc::now()
            .timestamp_micros()
            .saturating_add(self.offset_us.load(Ordering::SeqCst))
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        self.now_us().div_euclid(1000)
    }

    /// Seconds since the Unix epoch.
    pub fn now_s(&self) -> i64 {
        self.now_us().div_euclid(1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_moves_every_clone() {
        let clock = Clock::new();
        let other = clock.clone();
        let before = other.now_ms();
        clock.advance(Duration::from_secs(3600));
        let moved = other.now_ms() - before;
        assert!((3_600_000..3_660_000).contains(&moved), "{moved}");
        assert_eq!(other.now_s(), other.now_ms() / 1000);
    }
}
