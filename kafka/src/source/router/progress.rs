//! Telling a stuck worker from a slow one, on the poll thread, from the partition's held bytes
//! alone: a worker that completes an append drops its batch, which releases the batch's bytes
//! (`rows::batch`), and the poll thread is the only one that charges them. So held bytes that
//! went down since the poll thread last looked are an append done; a worker that has done none
//! for four times the sink's recent time between appends (at least [`STALL_FLOOR`]) while its
//! partition holds more than its share is stuck, and only then is its partition paused
//! (`Router::written`). A slow worker (every append takes long, but they complete) drains
//! what its partition holds; pausing it would only make librdkafka drop what it had fetched
//! for the partition and fetch it again (`Router`'s module docs).

use std::time::{Duration, Instant};

/// The least time without an append that makes a worker stuck: longer than opening a channel
/// and a first append usually take.
pub(super) const STALL_FLOOR: Duration = Duration::from_secs(2);
/// How many of the sink's recent times between a worker's appends make it stuck.
const STALL_TIMES: u32 = 4;

/// What the poll thread has seen of one partition's worker.
#[derive(Debug)]
pub(super) struct Progress {
    /// The partition's held bytes as last seen after the poll thread's own charges: fewer
    /// later are an append done (a batch released).
    seen: usize,
    /// A release was seen since the last [`look`](Self::look).
    moved: bool,
    /// When its worker was last seen to complete an append, or its partition to hold nothing.
    since: Instant,
}

impl Progress {
    /// A worker that has not been seen yet, as of `now`.
    pub(super) fn new(now: Instant) -> Self {
        Self {
            seen: 0,
            moved: false,
            since: now,
        }
    }

    /// Before the poll thread charges the partition for a message: it holds `held` now.
    pub(super) fn before(&mut self, held: usize) {
        if held < self.seen {
            self.moved = true;
        }
    }

    /// After the poll thread charged the partition for a message: it holds `held` now.
    pub(super) fn after(&mut self, held: usize) {
        self.seen = held;
    }

    /// A look at the partition, which holds `held` at `now`: the time since the worker's last
    /// append (or since its partition last held nothing) when it completed one since the last
    /// look, for the sink's [`Pace`].
    pub(super) fn look(&mut self, held: usize, now: Instant) -> Option<Duration> {
        let moved = std::mem::take(&mut self.moved) || held < self.seen;
        self.seen = held;
        if moved {
            let took = now.saturating_duration_since(self.since);
            self.since = now;
            return Some(took);
        }
        if held == 0 {
            self.since = now;
        }
        None
    }

    /// Whether the worker has completed no append for `stall` at `now` (while its partition
    /// held something).
    pub(super) fn stuck(&self, now: Instant, stall: Duration) -> bool {
        now.saturating_duration_since(self.since) > stall
    }
}

/// The sink's recent time between a worker's appends (while its partition holds something),
/// a moving average over all partitions: each new time weighs an eighth.
#[derive(Debug, Default)]
pub(super) struct Pace {
    mean: Duration,
}

impl Pace {
    /// A worker took `took` between appends.
    pub(super) fn note(&mut self, took: Duration) {
        self.mean = if self.mean.is_zero() {
            took
        } else {
            (self.mean * 7 + took) / 8
        };
    }

    /// How long a worker may go without an append before it counts as stuck: four times the
    /// recent time between appends, at least [`STALL_FLOOR`].
    pub(super) fn stall(&self) -> Duration {
        (self.mean * STALL_TIMES).max(STALL_FLOOR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A worker whose appends complete, however slowly, is seen to move at every look after
    /// one; a worker whose held bytes only grow is not, and becomes stuck past the stall; a
    /// partition holding nothing is never stuck.
    #[test]
    fn a_slow_worker_moves_and_a_stuck_one_does_not() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut slow = Progress::new(t0);
        let mut stuck = Progress::new(t0);
        let mut pace = Pace::default();
        assert_eq!(pace.stall(), STALL_FLOOR);
        for step in 1..=20u64 {
            // The poll thread charges both 64 KB a step; the slow worker frees 64 KB every
            // third step (an append of 300 ms), from the fourth on.
            for (p, held) in [(&mut slow, 4 << 20), (&mut stuck, (step as usize) << 16)] {
                p.before(held);
                p.after(held + (64 << 10));
            }
            let freed = step >= 3 && step % 3 == 0;
            let held = if freed {
                4 << 20
            } else {
                (4 << 20) + (64 << 10)
            };
            if let Some(took) = slow.look(held, at(step * 100)) {
                pace.note(took);
            }
            assert_eq!(stuck.look((step as usize + 1) << 16, at(step * 100)), None);
        }
        assert_eq!(
            pace.stall(),
            STALL_FLOOR,
            "300 ms between appends: the floor"
        );
        assert!(!slow.stuck(at(2_100), pace.stall()), "{slow:?}");
        assert!(stuck.stuck(at(2_100), pace.stall()), "{stuck:?}");
        // A release the poll thread sees before charging counts as well.
        stuck.before(1 << 16);
        assert!(stuck.look(2 << 16, at(2_200)).is_some());
        assert!(!stuck.stuck(at(2_300), pace.stall()));
        // Empty: not stuck, however long since its last append.
        let mut idle = Progress::new(t0);
        assert_eq!(idle.look(0, at(60_000)), None);
        assert!(!idle.stuck(at(61_000), pace.stall()));
    }

    /// A sink whose appends all take long waits longer before calling a worker stuck.
    #[test]
    fn the_stall_follows_the_sinks_pace() {
        let mut pace = Pace::default();
        pace.note(Duration::from_secs(5));
        assert_eq!(pace.stall(), Duration::from_secs(20));
        for _ in 0..100 {
            pace.note(Duration::from_millis(100));
        }
        assert_eq!(pace.stall(), STALL_FLOOR);
    }
}
