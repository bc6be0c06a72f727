//! The workers of the partitions this instance holds: each started on its own task with its
//! stop signal, supervised, and stopped on a revoke (every worker at once, then collected).
//!
//! A worker that panics, or ends [`End::Failed`] (a problem only the operator can fix), is
//! reported on the `died` channel at once with its partition, so the sink stops instead of
//! leaving the partition silently unread; every other way a worker ends answers a stop, a
//! revoke or a fence, which the sink asked for or handles.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicU64;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use snowpipe_streaming::Channel;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::connector::table_columns::TableCheck;
use crate::ops::metrics::{PartitionLag, PartitionMetrics, SinkMetrics};
use crate::rows::record::RowOptions;
use crate::rows::value_format::Decoder;
use crate::rows::{KafkaOffset, TopicPartition};
use crate::sink::dead_letter::DeadLetters;
use crate::sink::partition::{End, Worker};
use crate::sink::stall::Held;
use crate::sink::stats::PartitionStats;
use crate::source::consumer::{Resets, ThreadCmd};
use crate::source::router::Inbox;

/// A worker started: its stop signal (`true`: the assignment was lost) and its task.
struct Running {
    stop: oneshot::Sender<bool>,
    task: JoinHandle<End>,
    /// The partition's channel.
    channel: String,
}

/// What every worker is given besides its partition, inbox and channel.
pub(super) struct Kit {
    pub(super) rows: RowOptions,
    pub(super) decoder: Option<Arc<Decoder>>,
    pub(super) dead_letters: Arc<DeadLetters>,
    pub(super) commands: std_mpsc::Sender<ThreadCmd>,
    pub(super) consumed_at: Arc<AtomicU64>,
    pub(super) resets: Resets,
    pub(super) epoch: Instant,
    pub(super) hand_over_timeout: Duration,
}

/// The running workers, by partition, and every partition's counters over the whole run.
pub(super) struct Workers {
    kit: Kit,
    running: HashMap<TopicPartition, Running>,
    stats: BTreeMap<TopicPartition, Arc<PartitionStats>>,
    died: mpsc::UnboundedSender<(TopicPartition, String)>,
}

impl Workers {
    /// No workers yet; each one that dies is reported on `died`.
    pub(super) fn new(kit: Kit, died: mpsc::UnboundedSender<(TopicPartition, String)>) -> Self {
        Self {
            kit,
            running: HashMap::new(),
            stats: BTreeMap::new(),
            died,
        }
    }

    /// Starts `part`'s worker on its own task, in the partition's log span, supervised.
    pub(super) fn start(
        &mut self,
        part: TopicPartition,
        inbox: Inbox,
        channel: Channel,
        check: Option<Arc<TableCheck>>,
        metrics: &SinkMetrics,
    ) {
        let kit = &self.kit;
        let s = Arc::clone(self.stats.entry(part.clone()).or_default());
        let (stop, stop_rx) = oneshot::channel();
        metrics.hold(&part);
        let worker = Worker {
            part: part.clone(),
            assignment: inbox.id,
            channel,
            batches: inbox.batches,
            rows: kit.rows,
            decoder: kit.decoder.clone(),
            check,
            dead_letters: Arc::clone(&kit.dead_letters),
            stats: s,
            metrics: PartitionMetrics::new(&part),
            commands: kit.commands.clone(),
            consumed_at: Arc::clone(&kit.consumed_at),
            resets: Arc::clone(&kit.resets),
            epoch: kit.epoch,
            hand_over_timeout: kit.hand_over_timeout,
        };
        // Its log lines carry the partition (`--log-format json`: `span`).
        let span = tracing::info_span!(
            "partition",
            topic = %part.topic,
            partition = part.partition,
            channel = %worker.channel.name()
        );
        let channel = worker.channel.name().to_owned();
        let run = tracing::Instrument::instrument(worker.run(stop_rx), span);
        let task = tokio::spawn(supervised(part.clone(), run, self.died.clone()));
        self.running.insert(
            part,
            Running {
                stop,
                task,
                channel,
            },
        );
    }

    /// Stops the workers of `parts` (`lost`: let go without a hand-over), every one at once,
    /// and waits for them: the next offset of each partition handed over with a committed
    /// offset (for the Kafka commit).
    pub(super) async fn revoke(
        &mut self,
        parts: Vec<TopicPartition>,
        lost: bool,
    ) -> HashMap<TopicPartition, KafkaOffset> {
        let stopped: Vec<_> = parts
            .into_iter()
            .filter_map(|p| self.running.remove(&p).map(|r| (p, r)))
            .map(|(p, r)| {
                let _ = r.stop.send(lost);
                (p, r.task)
            })
            .collect();
        let mut next = HashMap::new();
        for (part, task) in stopped {
            if let Ok(End::HandedOver(Some(c))) = task.await {
                next.insert(part, c.next());
            }
        }
        next
    }

    /// Forgets the worker of `part`, which died.
    pub(super) fn forget(&mut self, part: &TopicPartition) {
        self.running.remove(part);
    }

    /// Stops every worker left (a hand-over) and waits for each.
    pub(super) async fn stop_all(&mut self) {
        for (_, r) in self.running.drain() {
            let _ = r.stop.send(false);
            let _ = r.task.await;
        }
    }

    /// How many workers run.
    pub(super) fn len(&self) -> usize {
        self.running.len()
    }

    /// The partitions held now, with their channels and counters.
    pub(super) fn held(&self) -> impl Iterator<Item = Held<'_>> {
        self.running.iter().filter_map(|(part, r)| {
            self.stats.get(part).map(|stats| Held {
                part,
                channel: &r.channel,
                stats,
            })
        })
    }

    /// Every partition's counters.
    pub(super) fn stats(&self) -> &BTreeMap<TopicPartition, Arc<PartitionStats>> {
        &self.stats
    }

    /// Whether every held partition is read to its end (by `lags`, librdkafka's latest
    /// statistics) and committed.
    pub(super) fn drained(&self, lags: &HashMap<TopicPartition, PartitionLag>) -> bool {
        self.running.keys().all(|p| {
            self.stats.get(p).is_none_or(|s| {
                // Lag 0 covers a partition ending in transaction markers,
                // which are never delivered as messages.
                s.settled() && lags.get(p).is_some_and(|l| l.lag == 0 || s.read_to(l.high))
            })
        })
    }
}

/// Runs a partition's worker and reports on `died` when it panics, with the panic's message,
/// or ends [`End::Failed`], with its reason. (Every other way a worker returns answers a stop,
/// a revoke or a fence, which the sink handles; a panic, and a problem only the operator can
/// fix, are the ways it can end that nobody asked for.)
async fn supervised(
    part: TopicPartition,
    worker: impl std::future::Future<Output = End>,
    died: mpsc::UnboundedSender<(TopicPartition, String)>,
) -> End {
    match std::panic::AssertUnwindSafe(worker).catch_unwind().await {
        Ok(End::Failed(why)) => {
            let _ = died.send((part, format!("stopped: {why}")));
            End::Lost
        }
        Ok(end) => end,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".to_owned());
            let _ = died.send((part, format!("panicked: {message}")));
            End::Lost
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_worker_is_reported_at_once_with_its_partition() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let part = TopicPartition::new("orders", 7);
        let end = tokio::spawn(supervised(
            part.clone(),
            async { panic!("header key not UTF-8") },
            tx.clone(),
        ))
        .await
        .expect("the supervisor itself does not panic");
        assert!(matches!(end, End::Lost));
        let (p, why) = rx.try_recv().expect("reported");
        assert_eq!(p, part);
        assert!(why.contains("panicked: header key not UTF-8"), "{why}");
        let three = Some(KafkaOffset::new(3));
        let end = supervised(part.clone(), async { End::HandedOver(three) }, tx.clone()).await;
        assert!(matches!(end, End::HandedOver(c) if c == three));
        assert!(rx.try_recv().is_err(), "an ordinary end is no report");
        // A problem only the operator can fix stops the sink with its reason.
        let end = supervised(
            part.clone(),
            async { End::Failed("the registry refuses the credentials".into()) },
            tx,
        )
        .await;
        assert!(matches!(end, End::Lost));
        let (p, why) = rx.try_recv().expect("reported");
        assert_eq!(p, part);
        assert_eq!(why, "stopped: the registry refuses the credentials");
    }
}
