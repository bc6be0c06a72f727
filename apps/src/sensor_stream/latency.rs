//! Publish → committed latency: a histogram with 1 ms buckets up to 2 minutes (flat memory
//! on long runs), and its percentiles.

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

#[cfg(test)]
mod tests {
    use super::*;

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
