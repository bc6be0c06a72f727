//! A worker's commits, as the SDK pushes them ([`Channel::watch_committed`]).
//!
//! The SDK's commit poller publishes a channel's committed token when it sees it change (a
//! busy channel is polled every `commit_poll_interval`, 100 ms by default; an idle one every
//! `idle_poll_interval`), never moving it back. Each change moves the partition's counters
//! (`PartitionStats::committed`, the committed gauge), ends the append → commit latency of the
//! appends it covers ([`InFlight`]), and asks the poll thread to commit the next offset to
//! Kafka (for lag tools only: where a partition starts is always the committed token + 1).
//!
//! Those Kafka commits are coalesced in one place, the poll thread (`source::poll`'s
//! `KafkaCommits`): the latest offset per partition, one commit a second for all partitions.
//! The worker sends each change as it sees it (the SDK publishes one at most every poll of the
//! channel, so at most about ten a second a partition). A commit still waiting when the worker
//! ends may go out after the hand-over's: the poll thread commits only partitions it still
//! holds, so it never moves a group offset behind its next owner's.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use snowpipe_streaming::{Channel, OffsetToken};
use tokio::sync::watch;

use crate::ops::metrics::PartitionMetrics;
use crate::rows::{KafkaOffset, TopicPartition};
use crate::sink::stats::PartitionStats;
use crate::source::consumer::ThreadCmd;

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
pub(super) struct CommittedWatch {
    watch: watch::Receiver<Option<OffsetToken>>,
    /// The watch's sender still exists.
    open: bool,
    part: TopicPartition,
    stats: Arc<PartitionStats>,
    metrics: PartitionMetrics,
    commands: std_mpsc::Sender<ThreadCmd>,
}

impl CommittedWatch {
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
            part,
            stats,
            metrics,
            commands,
        };
        (commits, now)
    }

    /// Resolves when the committed token changed ([`update`](Self::update)). Never resolves
    /// once the watch's sender is gone.
    ///
    /// # Cancellation
    /// Cancel-safe: dropped, it loses nothing.
    pub(super) async fn changed(&mut self) {
        if self.open {
            self.open = self.watch.changed().await.is_ok();
        } else {
            std::future::pending::<()>().await;
        }
    }

    /// Takes the committed token in: counters, commit latency of `in_flight`'s appends, and
    /// Kafka's group offset (coalesced by the poll thread).
    pub(super) fn update(&mut self, in_flight: &mut InFlight) {
        let token = self.watch.borrow_and_update().clone();
        if let Some(committed) = KafkaOffset::committed(token.as_ref()) {
            let offset = committed.get();
            if self.stats.committed.swap(offset, Ordering::Relaxed) != offset {
                self.took(committed, in_flight);
            }
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
        let _ = self
            .commands
            .send(ThreadCmd::Commit(self.part.clone(), committed.next()));
    }
}
