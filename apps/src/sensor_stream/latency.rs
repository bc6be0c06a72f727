//! Publish → committed latency: a histogram with 1 ms buckets up to 2 minutes (flat memory
//! on long runs), its percentiles, and [`Pending`], the appends whose rows are timed when
//! their commit is seen (both consumers, NATS and Kinesis, keep one per shard).

use std::collections::VecDeque;

/// Buckets of 1 ms; the last one holds everything longer.
const BUCKETS: usize = 120_001;

/// A latency histogram in milliseconds.
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("total", &self.total)
            .field("p50", &self.percentile(50.0))
            .field("p99", &self.percentile(99.0))
            .field("max", &self.max)
            .finish()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

impl Histogram {
    /// Records one latency (negative ones, from clock steps, count as 0).
    pub fn record(&mut self, ms: i64) {
        let ms = ms.max(0) as u64;
        self.counts[(ms as usize).min(BUCKETS - 1)] += 1;
        self.total += 1;
        self.max = self.max.max(ms);
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// How many latencies were recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest latency, in ms.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The `p`-th percentile (nearest rank), in ms; `None` when empty.
    pub fn percentile(&self, p: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((p / 100.0) * self.total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (ms, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(if ms == BUCKETS - 1 {
                    self.max
                } else {
                    ms as u64
                });
            }
        }
        Some(self.max)
    }

    /// `p50 1,120 ms p99 1,190 ms`, or `-` when empty.
    pub fn summary(&self) -> String {
        match (self.percentile(50.0), self.percentile(99.0)) {
            (Some(p50), Some(p99)) => format!("p50 {p50} ms p99 {p99} ms"),
            _ => "p50 - p99 -".to_string(),
        }
    }
}

/// Appends not yet seen committed, oldest first: each append's last offset token (a stream
/// sequence, a Kinesis sequence number) and the event times (ms) of its rows.
#[derive(Debug)]
pub(super) struct Pending<T> {
    sent: VecDeque<(T, Vec<i64>)>,
}

impl<T> Default for Pending<T> {
    fn default() -> Self {
        Pending {
            sent: VecDeque::new(),
        }
    }
}

impl<T: Ord> Pending<T> {
    /// Notes an append whose last token is `last`.
    pub(super) fn push(&mut self, last: T, event_ms: Vec<i64>) {
        self.sent.push_back((last, event_ms));
    }

    /// Whether every append was seen committed.
    pub(super) fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }

    /// Appends not seen committed.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.sent.len()
    }

    /// Takes off the appends whose last token is at or below `committed` (whole appends:
    /// their rows commit together) and returns the event times of their rows.
    pub(super) fn take_committed(&mut self, committed: &T) -> Vec<i64> {
        let mut event_ms = Vec::new();
        while self.sent.front().is_some_and(|(last, _)| last <= committed) {
            if let Some((_, ms)) = self.sent.pop_front() {
                event_ms.extend(ms);
            }
        }
        event_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_appends_leave_whole_and_in_order() {
        let mut p: Pending<u64> = Pending::default();
        p.push(5, vec![1, 2]);
        p.push(9, vec![3]);
        assert!(p.take_committed(&4).is_empty());
        assert_eq!(p.take_committed(&8), [1, 2]);
        assert_eq!(p.len(), 1);
        assert_eq!(p.take_committed(&9), [3]);
        assert!(p.is_empty());
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut h = Histogram::default();
        assert_eq!(h.percentile(50.0), None);
        for ms in 1..=100 {
            h.record(ms);
        }
        assert_eq!(h.percentile(50.0), Some(50));
        assert_eq!(h.percentile(99.0), Some(99));
        assert_eq!(h.percentile(100.0), Some(100));
        assert_eq!(h.count(), 100);
        h.record(-5);
        assert_eq!(h.percentile(0.5), Some(0));
    }

    #[test]
    fn long_latencies_keep_their_maximum_and_merge_adds() {
        let mut a = Histogram::default();
        a.record(500_000);
        let mut b = Histogram::default();
        b.record(10);
        b.merge(&a);
        assert_eq!(b.count(), 2);
        assert_eq!(b.max(), 500_000);
        assert_eq!(b.percentile(99.0), Some(500_000));
        assert_eq!(b.percentile(50.0), Some(10));
        assert_eq!(b.summary(), "p50 10 ms p99 500000 ms");
    }
}
