//! A worker's commits, as the SDK pushes them ([`Channel::watch_committed`]).
//!
//! The SDK's commit poller publishes a channel's committed token when it sees it change (a
//! busy channel is polled every `commit_poll_interval`, 100 ms by default; an idle one every
//! `idle_poll_interval`), never moving it back. Each change moves the partition's counters
//! (`PartitionStats::committed`, the committed gauge), ends the append → commit latency of the
//! appends it covers ([`InFlight`]), and asks the poll thread to commit the next offset to
//! Kafka (for lag tools only: where a partition starts is always the committed token + 1).
//!
//! Those Kafka commits are coalesced here: at most one per partition every
//! [`KAFKA_COMMIT_EVERY`], always the latest (one sent at once when the last is that long ago,
//! else the newest sent when that time comes), so a watch that moves often never floods the
//! poll thread, which gathers them again into one commit a second for all partitions. A
//! commit still waiting when the worker ends is dropped: the hand-over commits the final
//! offset itself (`End::HandedOver`), and a lost channel's next owner commits its own.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use snowpipe_streaming::{Channel, OffsetToken};
use tokio::sync::watch;

use crate::kafka::consumer::ThreadCmd;
use crate::ops::metrics::PartitionMetrics;
use crate::rows::{KafkaOffset, TopicPartition};
use crate::sink::stats::PartitionStats;

/// Kafka commits of one partition are sent to the poll thread at most this often.
const KAFKA_COMMIT_EVERY: Duration = Duration::from_millis(250);

/// Appends not committed yet: each append's last offset and when it was made, oldest first.
#[derive(Debug, Default)]
pub(super) struct InFlight(VecDeque<(KafkaOffset, Instant)>);

impl InFlight {
    /// An append ending at offset `end` was just made.
    pub(super) fn appended(&mut self, end: KafkaOffset) {
        self.0.push_back((end, Instant::now()));
    }

    /// Takes the appends `committed` covers: how long ago each was made.
    fn committed(&mut self, committed: KafkaOffset) -> impl Iterator<Item = Duration> + '_ {
        std::iter::from_fn(move || {
            if self.0.front().is_some_and(|(end, _)| *end <= committed) {
                self.0.pop_front().map(|(_, at)| at.elapsed())
            } else {
                None
            }
        })
    }
}

/// One worker's view of its channel's committed token (see the module docs).
pub(super) struct Commits {
    watch: watch::Receiver<Option<OffsetToken>>,
    /// The watch's sender still exists.
    open: bool,
    kafka: KafkaCommits,
    part: TopicPartition,
    stats: Arc<PartitionStats>,
    metrics: PartitionMetrics,
    commands: std_mpsc::Sender<ThreadCmd>,
}

impl Commits {
    /// Follows `channel`'s commits for partition `part`; the committed offset it has now.
    pub(super) fn new(
        channel: &Channel,
        part: TopicPartition,
        stats: Arc<PartitionStats>,
        metrics: PartitionMetrics,
        commands: std_mpsc::Sender<ThreadCmd>,
    ) -> (Self, Option<KafkaOffset>) {
        let mut watch = channel.watch_committed();
        let now = KafkaOffset::committed(watch.borrow_and_update().as_ref());
        let commits = Self {
            watch,
            open: true,
            kafka: KafkaCommits::default(),
            part,
            stats,
            metrics,
            commands,
        };
        (commits, now)
    }

    /// Resolves when there is something to do ([`update`](Self::update)): the committed token
    /// changed, or a Kafka commit is due. Never resolves when neither can happen.
    ///
    /// # Cancellation
    /// Cancel-safe: dropped, it loses nothing.
    pub(super) async fn changed(&mut self) {
        let kafka_at = self.kafka.waiting();
        tokio::select! {
            changed = self.watch.changed(), if self.open => self.open = changed.is_ok(),
            () = tokio::time::sleep_until(kafka_at.unwrap_or_else(tokio::time::Instant::now)),
                if kafka_at.is_some() => {}
            else => std::future::pending().await,
        }
    }

    /// Takes the committed token in: counters, commit latency of `in_flight`'s appends, and
    /// Kafka's group offset (coalesced).
    pub(super) fn update(&mut self, in_flight: &mut InFlight) {
        let token = self.watch.borrow_and_update().clone();
        if let Some(committed) = KafkaOffset::committed(token.as_ref()) {
            let offset = committed.get();
            if self.stats.committed.swap(offset, Ordering::Relaxed) != offset {
                self.took(committed, in_flight);
            }
        }
        if let Some(next) = self.kafka.due(tokio::time::Instant::now()) {
            let _ = self
                .commands
                .send(ThreadCmd::Commit(self.part.clone(), next));
        }
    }

    /// `committed` is new: the gauge, the latency of the appends it covers, the Kafka commit.
    fn took(&mut self, committed: KafkaOffset, in_flight: &mut InFlight) {
        self.metrics.committed.set(committed.get() as f64);
        for waited in in_flight.committed(committed) {
            let ms = u64::try_from(waited.as_millis()).unwrap_or(u64::MAX);
            self.metrics.commit_latency.record(waited.as_secs_f64());
            self.stats.commit_ms_sum.fetch_add(ms, Ordering::Relaxed);
            self.stats.commit_count.fetch_add(1, Ordering::Relaxed);
        }
        self.kafka.want(committed.next());
    }
}

/// One partition's Kafka commits, coalesced: at most one every [`KAFKA_COMMIT_EVERY`], the
/// latest offset wanted.
#[derive(Debug, Default)]
struct KafkaCommits {
    /// The next offset to commit, not sent yet.
    wanted: Option<KafkaOffset>,
    /// When the last one was sent.
    sent: Option<tokio::time::Instant>,
}

impl KafkaCommits {
    /// `next` is the offset to commit (replacing one not sent yet).
    fn want(&mut self, next: KafkaOffset) {
        self.wanted = Some(next);
    }

    /// When the wanted commit may be sent (`None`: none is wanted).
    fn waiting(&self) -> Option<tokio::time::Instant> {
        self.wanted?;
        Some(
            self.sent
                .map_or_else(tokio::time::Instant::now, |t| t + KAFKA_COMMIT_EVERY),
        )
    }

    /// The offset to send at `now`, if one is wanted and it is time.
    fn due(&mut self, now: tokio::time::Instant) -> Option<KafkaOffset> {
        if self.sent.is_some_and(|t| now < t + KAFKA_COMMIT_EVERY) {
            return None;
        }
        let next = self.wanted.take()?;
        self.sent = Some(now);
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::{KafkaCommits, KAFKA_COMMIT_EVERY};
    use crate::rows::KafkaOffset;
    use tokio::time::{Duration, Instant};

    #[test]
    fn kafka_commits_go_at_once_then_at_most_one_per_period_the_latest() {
        let t0 = Instant::now();
        let o = KafkaOffset::new;
        let mut k = KafkaCommits::default();
        assert_eq!((k.waiting(), k.due(t0)), (None, None));
        k.want(o(10));
        assert_eq!(k.due(t0), Some(o(10)), "the first goes at once");
        // A burst of changes within the period: only the newest, once the period is over.
        for next in 11..=50 {
            k.want(o(next));
            assert_eq!(k.due(t0 + Duration::from_millis(5)), None);
        }
        assert_eq!(k.waiting(), Some(t0 + KAFKA_COMMIT_EVERY));
        assert_eq!(k.due(t0 + KAFKA_COMMIT_EVERY), Some(o(50)));
        assert_eq!(k.due(t0 + KAFKA_COMMIT_EVERY * 3), None, "nothing new");
        // After a quiet spell the next goes at once again.
        k.want(o(51));
        assert_eq!(k.due(t0 + KAFKA_COMMIT_EVERY * 3), Some(o(51)));
    }
}
