//! What a long-running loop's probes share: when the loop last turned ([`LoopClock`]: the
//! `/healthz` of the sink and of `table_replay follow`) and what is stalled now
//! ([`Stalled`]: their `/readyz`'s last word).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// When a loop last turned, and how long it may go without turning.
#[derive(Debug)]
pub struct LoopClock {
    epoch: Instant,
    /// When the loop last ticked (ms since `epoch`).
    ticked: AtomicU64,
    /// The loop counts as stuck past this long without a tick (ms).
    stale_after: AtomicU64,
}

impl LoopClock {
    /// A clock that has just ticked, stuck past `stale_after` without another tick.
    pub fn new(stale_after: Duration) -> Self {
        let clock = Self {
            epoch: Instant::now(),
            ticked: AtomicU64::new(0),
            stale_after: AtomicU64::new(0),
        };
        clock.stale_after(stale_after);
        clock
    }

    /// The loop turned.
    pub fn tick(&self) {
        self.ticked
            .store(ms(self.epoch.elapsed()), Ordering::Relaxed);
    }

    /// The loop counts as stuck past `d` without a tick from now on.
    pub fn stale_after(&self, d: Duration) {
        self.stale_after.store(ms(d), Ordering::Relaxed);
    }

    /// How long since the last tick, when that is past the allowance (`None`: not stuck).
    pub fn stuck_for(&self) -> Option<Duration> {
        let ticked = Duration::from_millis(self.ticked.load(Ordering::Relaxed));
        let since = self.epoch.elapsed().saturating_sub(ticked);
        (since > Duration::from_millis(self.stale_after.load(Ordering::Relaxed))).then_some(since)
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// What is stalled now (partitions, tables), each as `/readyz` names it.
#[derive(Debug, Default)]
pub struct Stalled(Mutex<Vec<String>>);

impl Stalled {
    /// The stalled now (none: an empty list).
    pub fn set(&self, stalled: Vec<String>) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = stalled;
    }

    /// `/readyz`'s last word: `Ok("ready")`, or `Err("stalled: a; b")`.
    ///
    /// # Errors
    /// While anything is stalled, naming each.
    pub fn ready(&self) -> Result<&'static str, String> {
        let stalled = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if stalled.is_empty() {
            Ok("ready")
        } else {
            Err(format!("stalled: {}", stalled.join("; ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_is_stuck_only_past_its_allowance() {
        let clock = LoopClock::new(Duration::from_secs(60));
        assert_eq!(clock.stuck_for(), None);
        clock.stale_after(Duration::ZERO);
        std::thread::sleep(Duration::from_millis(5));
        assert!(clock
            .stuck_for()
            .is_some_and(|d| d >= Duration::from_millis(5)));
        clock.stale_after(Duration::from_secs(60));
        clock.tick();
        assert_eq!(clock.stuck_for(), None);
    }

    #[test]
    fn stalled_names_each() {
        let s = Stalled::default();
        assert_eq!(s.ready(), Ok("ready"));
        s.set(vec!["a (301s)".into(), "b".into()]);
        assert_eq!(s.ready(), Err("stalled: a (301s); b".into()));
        s.set(Vec::new());
        assert_eq!(s.ready(), Ok("ready"));
    }
}
