//! The Kafka side: one `BaseConsumer` polled on a dedicated thread.
//!
//! librdkafka runs rebalance callbacks on the thread that polls. The hand-over needs async
//! work (flush, wait for Snowflake's commit, close; open and read the committed token), so the
//! callback sends a [`Control`] to the sink's async side and blocks, bounded by the hand-over
//! timeout, on its answer. It must not run on a tokio worker, hence the thread.
//!
//! * **Assign:** a data channel per new partition goes to the async side with the partition;
//!   the answer is each partition's start offset (Snowflake's committed token + 1, or the
//!   beginning or end for `--start` when the channel has none), set on the assignment before
//!   librdkafka fetches. Kafka's group offsets are never where a partition starts.
//! * **Start offset gone:** when the start offset is out of the partition's range (retention
//!   deleted messages before they landed), `auto.offset.reset=earliest` moves to the log start
//!   and librdkafka logs an `OFFSET` warning; the log callback records the partition in
//!   [`Resets`] so its worker can say which offsets were lost (see `partition.rs`).
//! * **Revoke:** the async side stops each partition's worker (hand-over, or drop when the
//!   assignment was lost) and answers the offsets to commit to Kafka. Kafka's group offsets
//!   are committed only after Snowflake committed the rows, for lag tooling; they are never read
//!   back for correctness.
//! * **Data:** messages are copied into their partition's batch and handed to its worker
//!   without blocking the poll; while the sink is over the byte budget the poll thread takes no
//!   more messages until the workers free room, and a partition over its share whose worker
//!   is stuck (no append for a while) is paused until it catches up (`router`).
//! * **Commands** from the async side: commit offsets (gathered, one commit a second), rejoin
//!   the group (a partition's channel was taken by another writer: leaving and joining again
//!   makes the group assign it anew, and the assign opens the channel afresh), shut down (leave
//!   the group, handing everything over).

use std::collections::{HashMap, HashSet};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::mpsc;

use crate::lock::lock;
use crate::ops::metrics::PartitionLag;
use crate::ops::metrics::SinkMetrics;
use crate::rows::batch::Budget;
use crate::rows::{KafkaOffset, TopicPartition};
use crate::source::counts::SourceCounts;
use crate::source::fetch_queue::FetchQueue;
use crate::source::router::{one, Inbox, Router};

/// From the rebalance callback to the sink's async side.
pub(crate) enum Control {
    /// New partitions, each with its message channel. Answer: start offsets.
    Assign {
        /// The partitions.
        parts: Vec<(TopicPartition, Inbox)>,
        /// Where to start each partition (Snowflake's committed token + 1, or `--start`).
        reply: std_mpsc::SyncSender<HashMap<TopicPartition, Offset>>,
    },
    /// Partitions going away. Answer: the offsets to commit to Kafka.
    Revoke {
        /// The partitions.
        parts: Vec<TopicPartition>,
        /// The assignment was lost (this instance is a zombie): do not flush.
        lost: bool,
        /// Next offsets (Snowflake's committed token + 1) to commit to Kafka.
        reply: std_mpsc::SyncSender<HashMap<TopicPartition, KafkaOffset>>,
    },
}

/// From the async side to the poll thread.
#[derive(Debug)]
pub(crate) enum ThreadCmd {
    /// Commit this next offset of the partition to Kafka (best effort, for lag tools).
    Commit(TopicPartition, KafkaOffset),
    /// Leave the group and join it again: the worker of this assignment of the partition
    /// (`batch::Inbox::id`) lost its channel.
    Rejoin(TopicPartition, u64),
    /// Leave the group (handing everything over) and stop.
    Shutdown,
}

/// Per partition, from librdkafka's statistics: the consumer lag and the high watermark (the
/// offset the next message will get).
pub(crate) type Lags = Arc<Mutex<HashMap<TopicPartition, PartitionLag>>>;

/// Partitions whose start offset librdkafka found out of range and reset to the log start,
/// from its `OFFSET` warnings; each worker takes its own entry.
pub(crate) type Resets = Arc<Mutex<HashSet<TopicPartition>>>;

/// The partition of librdkafka's `[thrd:main]: TOPIC [PARTITION]: offset reset …` warning
/// (topic names have no spaces or brackets).
pub(crate) fn reset_partition(log_message: &str) -> Option<TopicPartition> {
    let (head, _) = log_message.split_once("]: offset reset")?;
    let (before, partition) = head.rsplit_once(" [")?;
    let topic = before.rsplit(' ').next().filter(|t| !t.is_empty())?;
    Some(TopicPartition::new(topic, partition.parse().ok()?))
}

/// What the poll thread needs to start.
pub(crate) struct ConsumerSetup {
    /// librdkafka properties, ours and the user's `-X` ones.
    pub config: ClientConfig,
    /// The user's properties (to keep their values out of errors).
    pub properties: Vec<crate::source::properties::Property>,
    /// The topics to subscribe to.
    pub topics: Vec<String>,
    /// Where rebalance callbacks send their work.
    pub control: mpsc::UnboundedSender<Control>,
    /// How long a rebalance callback waits for the async side.
    pub hand_over_timeout: Duration,
    /// Filled from librdkafka's statistics.
    pub lags: Lags,
    /// Filled from librdkafka's offset-reset warnings.
    pub resets: Resets,
    /// The byte budget of the batches on their way to the workers.
    pub budget: Arc<Budget>,
    /// The sink's metrics.
    pub metrics: SinkMetrics,
    /// How messages become rows (the poll thread writes them).
    pub rows: crate::rows::record::RowOptions,
    /// Whether messages' headers are read (for metadata or dead letters).
    pub read_headers: bool,
    /// Values are copied as they are, for the workers to decode (`--value-format`).
    pub raw_values: bool,
    /// How long a part-full batch waits for more (`batch::hold_for`).
    pub hold: Duration,
    /// Pauses, resumes and what librdkafka fetched, for the closing report.
    pub counts: Arc<SourceCounts>,
}

pub(crate) struct SinkContext {
    pub(crate) control: mpsc::UnboundedSender<Control>,
    pub(crate) router: Mutex<Router>,
    pub(crate) metrics: SinkMetrics,
    pub(crate) cooperative: bool,
    pub(crate) hand_over_timeout: Duration,
    pub(crate) lags: Lags,
    pub(crate) resets: Resets,
    /// What librdkafka fetched (from its statistics), for the closing report.
    pub(crate) counts: Arc<SourceCounts>,
    /// Where assigned partitions' messages are forwarded (`fetch_queue`); owned by `run`,
    /// which drops it before the consumer.
    pub(crate) fetch: OnceLock<Weak<FetchQueue>>,
    /// Assignments whose channels were still opening when the rebalance callback could wait
    /// no longer: their partitions wait, paused, for their start offsets ([`LateStarts`]).
    pub(crate) late: Mutex<Vec<LateStarts>>,
}

/// The start offsets of an assignment, still to come from the async side (its channels took
/// longer to open than `--hand-over-timeout`). Without them a partition would start at the
/// group's Kafka offset, which is not where Snowflake's committed token says: after a
/// `--channel-prefix` change, or with `--start earliest` on a new channel, that skips rows.
/// So its partitions are assigned paused, their messages dropped by the router until the
/// starts come; then each is moved to its start and resumed. The move is a seek the poll
/// thread waits for ([`SEEK_WAIT`]): librdkafka refuses one until the partition's fetcher has
/// started (after it read the group's offsets), and a refusal would otherwise go unseen and
/// the partition start at the group's offset after all; a refused seek is tried again at the
/// next turn of the poll loop. Waiting for it also means the pause was applied first (a
/// partition's operations are served in order), so the resume cannot come before the pause
/// and leave the partition paused for good. A successful seek makes librdkafka drop whatever
/// it fetched before.
pub(crate) struct LateStarts {
    answer: std_mpsc::Receiver<HashMap<TopicPartition, Offset>>,
    /// The start offsets, once they came.
    starts: Option<HashMap<TopicPartition, Offset>>,
    /// The partitions not started yet, and which assignment of each (`batch::Inbox::id`).
    parts: Vec<(TopicPartition, u64)>,
    /// When the assignment was made (a seek refused for long is worth a warning).
    since: Instant,
}

/// How long the poll thread waits for a late start's seek.
const SEEK_WAIT: Duration = Duration::from_secs(2);
/// A late start still refused after this long is warned about (once a turn, at most every
/// this long).
const LATE_WARN_AFTER: Duration = Duration::from_secs(30);

fn parts_of(tpl: &TopicPartitionList) -> Vec<TopicPartition> {
    tpl.elements()
        .iter()
        .map(|e| TopicPartition::new(e.topic(), e.partition()))
        .collect()
}

impl ClientContext for SinkContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        // Kafka offset commits are for lag tools only, and fail routinely during a rebalance.
        if fac == "COMMITFAIL" {
            tracing::debug!(target: "librdkafka", "{fac}: {log_message}");
            return;
        }
        if fac == "OFFSET" && log_message.contains("offset reset") {
            if let Some(part) = reset_partition(log_message) {
                lock(&self.resets).insert(part);
            }
        }
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", "{fac}: {log_message}")
            }
            RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "librdkafka", "{fac}: {log_message}")
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", "{fac}: {log_message}");
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", "{fac}: {log_message}"),
        }
    }

    fn stats(&self, statistics: Statistics) {
        self.counts.statistics(&statistics);
        let router = lock(&self.router);
        let mut lags = lock(&self.lags);
        for (topic, t) in statistics.topics {
            for (partition, p) in t.partitions {
                // Only the partitions assigned here (librdkafka also reports those it knows of
                // otherwise, from the metadata or a past assignment).
                if partition >= 0 && router.has(&topic, partition) {
                    let lag = PartitionLag {
                        lag: lag_of(p.consumer_lag, p.next_offset, p.hi_offset),
                        high: p.hi_offset,
                    };
                    lags.insert(TopicPartition::new(topic.as_str(), partition), lag);
                }
            }
        }
        self.metrics.lags(&lags);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(target: "librdkafka", "{error}: {reason}");
    }
}

/// A partition's lag from librdkafka's statistics: its `consumer_lag`, or, while that is
/// unknown (-1: nothing consumed here and no committed offset, as for a new group started at
/// `latest` on a partition that receives nothing), what separates the fetch position from
/// the high watermark. Without it such a partition's lag stays unknown for ever and
/// `--until-idle` never ends.
fn lag_of(consumer_lag: i64, next_offset: i64, high: i64) -> i64 {
    if consumer_lag >= 0 || next_offset < 0 || high < 0 {
        consumer_lag
    } else {
        high.saturating_sub(next_offset).max(0)
    }
}

impl ConsumerContext for SinkContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => self.assign(consumer, tpl),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => self.revoke(consumer, tpl),
            other => {
                tracing::warn!(error = ?other, "rebalance failed; dropping the assignment");
                let parts = parts_of(tpl);
                self.hand_over(consumer, &parts, true);
                let _ = consumer.unassign();
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(e) = result {
            tracing::debug!("kafka offset commit failed (lag tools only): {e}");
        }
    }
}

impl SinkContext {
    fn assign(&self, consumer: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        self.metrics.rebalance("assign");
        let mut parts = Vec::new();
        {
            let mut router = lock(&self.router);
            for part in parts_of(tpl) {
                let inbox = router.add(&part);
                parts.push((part, inbox));
            }
        }
        let ids: Vec<(TopicPartition, u64)> =
            parts.iter().map(|(p, i)| (p.clone(), i.id)).collect();
        let (reply, answer) = std_mpsc::sync_channel(1);
        let mut late = None;
        let starts = if self.control.send(Control::Assign { parts, reply }).is_ok() {
            match answer.recv_timeout(self.hand_over_timeout) {
                Ok(starts) => starts,
                Err(_) => {
                    tracing::warn!(
                        "opening the channels took longer than the hand-over timeout; the \
                         partitions wait, paused, until they are open and start where Snowflake \
                         says"
                    );
                    late = Some(LateStarts {
                        answer,
                        starts: None,
                        parts: ids,
                        since: Instant::now(),
                    });
                    HashMap::new()
                }
            }
        } else {
            HashMap::new()
        };
        for (part, offset) in &starts {
            if let Err(e) = tpl.set_partition_offset(&part.topic, part.partition, *offset) {
                let (topic, partition) = (&part.topic, part.partition);
                tracing::warn!(%topic, partition, "cannot set the start offset: {e}");
            }
        }
        // Before the assignment takes effect: librdkafka keeps the forwarding when it starts
        // fetching (`fetch_queue`).
        if let Some(fetch) = self.fetch.get().and_then(Weak::upgrade) {
            for TopicPartition { topic, partition } in parts_of(tpl) {
                if !fetch.forward(&topic, partition) {
                    tracing::debug!(%topic, partition, "not forwarded: read one by one");
                }
            }
        }
        tracing::info!(partitions = ?parts_of(tpl), ?starts, "partitions assigned");
        let r = if self.cooperative {
            consumer.incremental_assign(tpl)
        } else {
            consumer.assign(tpl)
        };
        if let Err(e) = r {
            tracing::error!("assigning partitions failed: {e}");
        }
        if let Some(late) = late {
            let mut router = lock(&self.router);
            for (part, id) in &late.parts {
                router.await_start(part, *id);
            }
            if let Err(e) = consumer.pause(tpl) {
                tracing::error!("pausing partitions until their channels open failed: {e}");
            }
            drop(router);
            lock(&self.late).push(late);
        }
    }

    /// Starts the partitions whose start offsets came late ([`LateStarts`]), once they have:
    /// each still assigned here as then is moved to its start and resumed; one librdkafka is
    /// not ready to move yet is tried again at the next call.
    pub(crate) fn late_starts(&self, consumer: &BaseConsumer<Self>) {
        let mut late = lock(&self.late);
        for l in late.iter_mut() {
            if l.starts.is_none() {
                match l.answer.try_recv() {
                    Ok(starts) => l.starts = Some(starts),
                    Err(std_mpsc::TryRecvError::Empty) => continue,
                    // The sink is gone: it stops, and the revoke resumes them.
                    Err(std_mpsc::TryRecvError::Disconnected) => {
                        l.parts.clear();
                        continue;
                    }
                }
            }
            let Some(starts) = &l.starts else {
                continue;
            };
            let mut tpl = TopicPartitionList::new();
            {
                let router = lock(&self.router);
                // Handed over meanwhile, or its channel did not open (the sink stops): not ours.
                l.parts.retain(|(part, id)| {
                    let Some(start) = starts.get(part).filter(|_| router.awaits(part, *id)) else {
                        return false;
                    };
                    let _ = tpl.add_partition_offset(&part.topic, part.partition, *start);
                    true
                });
            }
            if l.parts.is_empty() {
                continue;
            }
            let refused = match consumer.seek_partitions(tpl, SEEK_WAIT) {
                Ok(done) => {
                    let mut refused = Vec::new();
                    let mut router = lock(&self.router);
                    for e in done.elements() {
                        let Some(at) = l.parts.iter().position(|(p, _)| {
                            &*p.topic == e.topic() && p.partition == e.partition()
                        }) else {
                            continue;
                        };
                        if let Err(why) = e.error() {
                            refused.push(format!("{}: {why}", l.parts[at].0));
                            continue;
                        }
                        let (part, id) = l.parts.swap_remove(at);
                        router.started(&part, id);
                        let (topic, partition) = (&part.topic, part.partition);
                        if let Err(why) = consumer.resume(&one(topic, partition)) {
                            tracing::error!(%topic, partition, "cannot resume: {why}");
                        }
                        tracing::info!(%topic, partition, start = ?e.offset(), "channel open: started late");
                    }
                    refused
                }
                Err(why) => vec![why.to_string()],
            };
            if !refused.is_empty() {
                if l.since.elapsed() > LATE_WARN_AFTER {
                    l.since = Instant::now();
                    tracing::warn!(
                        ?refused,
                        "partitions whose channels opened late cannot be moved to their start \
                         yet; they stay paused and are tried again"
                    );
                } else {
                    tracing::debug!(?refused, "late start refused for now; tried again");
                }
            }
        }
        late.retain(|l| !l.parts.is_empty());
    }

    fn revoke(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        let lost = consumer.assignment_lost();
        let parts = parts_of(tpl);
        tracing::info!(partitions = ?parts, lost, "partitions revoked");
        let next = self.hand_over(consumer, &parts, lost);
        if !lost && !next.is_empty() {
            let mut offsets = TopicPartitionList::new();
            for (part, offset) in &next {
                let _ = offsets.add_partition_offset(
                    &part.topic,
                    part.partition,
                    Offset::Offset(offset.get()),
                );
            }
            if let Err(e) = consumer.commit(&offsets, CommitMode::Sync) {
                tracing::debug!("kafka offset commit at hand-over failed (lag tools only): {e}");
            }
        }
        let r = if self.cooperative {
            consumer.incremental_unassign(tpl)
        } else {
            consumer.unassign()
        };
        if let Err(e) = r {
            tracing::error!("unassigning partitions failed: {e}");
        }
    }

    /// Stops the partitions' workers and returns the next offsets to commit to Kafka.
    fn hand_over(
        &self,
        consumer: &BaseConsumer<Self>,
        parts: &[TopicPartition],
        lost: bool,
    ) -> HashMap<TopicPartition, KafkaOffset> {
        self.metrics.rebalance("revoke");
        {
            let mut router = lock(&self.router);
            let mut lags = lock(&self.lags);
            for part in parts {
                router.remove(consumer, part);
                // Its lag is its next owner's to report now.
                lags.remove(part);
                self.metrics.forget(part);
            }
        }
        let (reply, answer) = std_mpsc::sync_channel(1);
        let revoke = Control::Revoke {
            parts: parts.to_vec(),
            lost,
            reply,
        };
        if self.control.send(revoke).is_err() {
            return HashMap::new();
        }
        answer
            .recv_timeout(self.hand_over_timeout + Duration::from_secs(5))
            .unwrap_or_else(|_| {
                tracing::warn!(
                    "the hand-over took longer than its timeout; the next owner replays what was \
                     not committed"
                );
                HashMap::new()
            })
    }
}

#[cfg(test)]
mod tests;
