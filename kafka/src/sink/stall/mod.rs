//! Stall detection (`--stall-after`): a partition is *stalled* when its channel's committed
//! offset has not moved for the stall time while work waits on it: messages past it in Kafka
//! (lag > 0) or rows appended and not yet committed. Idle partitions never stall: the clock
//! starts when work begins to wait and starts again at every commit.
//!
//! Checked on the sink's tick (every 200 ms) from what the workers and librdkafka's
//! statistics already publish; no request is made. Each held partition's
//! `snowpipe_kafka_partition_stalled` (0 or 1) and `snowpipe_kafka_seconds_since_commit`
//! gauges are set; a partition entering the stall logs one warning naming it, its channel,
//! the committed offset, the lag and the likely cause, and one `info` line when it commits
//! again; `/readyz` answers 503 listing the stalled partitions while any is.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::ops::metrics::{Labels, PartitionLag};
use crate::rows::TopicPartition;
use crate::sink::stats::PartitionStats;

/// One held partition, as [`Stalls::check`] reads it.
pub(super) struct Held<'a> {
    pub(super) part: &'a TopicPartition,
    pub(super) channel: &'a str,
    pub(super) stats: &'a PartitionStats,
}

/// What the sink knows of the likely cause of a stall (the same for every partition).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Pressure {
    /// The memory budget between the poll thread and the workers is (nearly) full.
    pub(super) budget_full: bool,
}

/// One partition's clock.
#[derive(Debug)]
struct Clock {
    /// The committed offset last seen.
    committed: i64,
    /// When it last moved (or the partition was first seen here).
    moved_at: Instant,
    /// Since when work has waited without a commit (`None`: nothing waits).
    waiting_since: Option<Instant>,
    /// Whether the partition is stalled now (its warning was logged).
    stalled: bool,
}

/// A stalled partition, as `/readyz` and the warning name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Stalled {
    pub(super) part: TopicPartition,
    pub(super) waited: Duration,
    pub(super) lag: i64,
}

impl std::fmt::Display for Stalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (nothing committed for {}s, lag {})",
            self.part,
            self.waited.as_secs(),
            lag_text(self.lag)
        )
    }
}

fn lag_text(lag: i64) -> String {
    if lag < 0 {
        "unknown".to_owned()
    } else {
        lag.to_string()
    }
}

/// The clocks of the partitions held here.
#[derive(Debug)]
pub(super) struct Stalls {
    after: Duration,
    clocks: HashMap<TopicPartition, Clock>,
}

impl Stalls {
    /// Partitions stall after `after` without a commit while work waits.
    pub(super) fn new(after: Duration) -> Self {
        Self {
            after,
            clocks: HashMap::new(),
        }
    }

    /// Reads every held partition at `now`: updates the clocks and gauges, logs entries into
    /// and out of a stall, and returns the partitions stalled now (in partition order).
    /// Partitions no longer held are forgotten.
    pub(super) fn check<'a>(
        &mut self,
        now: Instant,
        held: impl Iterator<Item = Held<'a>>,
        lags: &HashMap<TopicPartition, PartitionLag>,
        pressure: Pressure,
    ) -> Vec<Stalled> {
        let mut stalled = BTreeMap::new();
        let mut seen = HashSet::new();
        for h in held {
            seen.insert(h.part.clone());
            let lag = lags.get(h.part).map_or(-1, |l| l.lag);
            if let Some(s) = self.check_one(now, &h, lag, pressure) {
                stalled.insert(h.part.clone(), s);
            }
        }
        self.clocks.retain(|p, _| seen.contains(p));
        stalled.into_values().collect()
    }

    fn check_one(
        &mut self,
        now: Instant,
        h: &Held<'_>,
        lag: i64,
        pressure: Pressure,
    ) -> Option<Stalled> {
        let committed = h.stats.committed.load(Ordering::Relaxed);
        let clock = self.clocks.entry(h.part.clone()).or_insert(Clock {
            committed,
            moved_at: now,
            waiting_since: None,
            stalled: false,
        });
        let waiting = lag > 0 || !h.stats.settled();
        if committed != clock.committed {
            clock.committed = committed;
            clock.moved_at = now;
            clock.waiting_since = waiting.then_some(now);
        } else if !waiting {
            clock.waiting_since = None;
        } else if clock.waiting_since.is_none() {
            clock.waiting_since = Some(now);
        }
        let waited = clock
            .waiting_since
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        let is_stalled = waited >= self.after;
        if is_stalled && !clock.stalled {
            tracing::warn!(
                topic = %h.part.topic,
                partition = h.part.partition,
                channel = h.channel,
                committed_offset = committed,
                lag,
                waited_s = waited.as_secs(),
                cause = cause(h.stats, lag, pressure),
                "partition stalled: nothing committed for {}s while work waits \
                 (--stall-after {}s); /readyz answers 503 until it commits",
                waited.as_secs(),
                self.after.as_secs()
            );
        } else if !is_stalled && clock.stalled {
            tracing::info!(
                topic = %h.part.topic,
                partition = h.part.partition,
                channel = h.channel,
                committed_offset = committed,
                "partition no longer stalled: its commits move again"
            );
        }
        clock.stalled = is_stalled;
        gauges(
            h.part,
            is_stalled,
            now.saturating_duration_since(clock.moved_at),
        );
        is_stalled.then(|| Stalled {
            part: h.part.clone(),
            waited,
            lag,
        })
    }
}

/// The likely cause of a stall, from what the sink can see.
fn cause(stats: &PartitionStats, lag: i64, pressure: Pressure) -> &'static str {
    let appended = stats.appended.load(Ordering::Relaxed);
    let committed = stats.committed.load(Ordering::Relaxed);
    if appended > committed {
        "rows were appended and Snowflake has not committed them: server errors, a \
         slow or unreachable service, or a fenced channel (see the SDK's warnings)"
    } else if pressure.budget_full {
        "the memory budget is full: partitions are paused until rows are committed \
         (raise --memory-budget, or see why commits are slow)"
    } else if lag > 0 {
        "messages wait in Kafka but none were appended: the partition is paused or its \
         worker is blocked (memory budget, a table check, a schema evolution)"
    } else {
        "a batch is on its way to Snowflake"
    }
}

/// Sets `part`'s stall gauges (none past the label bounds).
fn gauges(part: &TopicPartition, stalled: bool, since_commit: Duration) {
    if let Some((topic, partition)) = Labels::global().partition(part) {
        let labels = [("topic", topic), ("partition", partition)];
        metrics::gauge!("snowpipe_kafka_partition_stalled", &labels).set(if stalled {
            1.0
        } else {
            0.0
        });
        metrics::gauge!("snowpipe_kafka_seconds_since_commit", &labels)
            .set(since_commit.as_secs_f64());
    }
}

#[cfg(test)]
mod tests;
