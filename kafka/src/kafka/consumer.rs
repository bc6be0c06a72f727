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
//!   without blocking the poll; a partition (or the sink) over the byte budget is paused until
//!   its worker catches up (`batch`).
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

use crate::kafka::fetch_queue::{FetchQueue, Native};
use crate::kafka::router::{one, Inbox, Router};
use crate::ops::metrics::PartitionLag;
use crate::ops::metrics::SinkMetrics;
use crate::rows::batch::Budget;
use crate::{lock, Part};

/// Kafka offset commits (for lag tools) are sent at most this often, all partitions in one.
const COMMIT_EVERY: Duration = Duration::from_secs(1);
/// A rejoin asked for within this long of the last one waits until then (see [`Rejoins`]).
const REJOIN_EVERY: Duration = Duration::from_secs(5);
/// A poll burst ends when librdkafka has nothing more ready, or after this many messages...
const BURST_MESSAGES: usize = 32_768;
/// ... or this many bytes of values: then the batches go to the workers, commits are sent and
/// paused partitions looked at. With many partitions, a burst of 2,000 1 KB messages gave each
/// partition about 20 of them per hand-off; bursts of 16 MiB make batches of tens of KB, and
/// took about a tenth off the sink's CPU per GB (`kafka/README.md`, "Cost and throughput").
/// Reading 16 MiB takes the poll thread some 50 ms.
const BURST_BYTES: usize = 16 << 20;
/// While nothing arrives, how long a poll waits on the fetch queue for a message before it
/// looks at the consumer's queue (rebalances, errors) again.
const IDLE_WAIT: Duration = Duration::from_millis(20);

/// From the rebalance callback to the sink's async side.
pub enum Control {
    /// New partitions, each with its message channel. Answer: start offsets.
    Assign {
        /// The partitions.
        parts: Vec<(Part, Inbox)>,
        /// Where to start each partition (Snowflake's committed token + 1, or `--start`).
        reply: std_mpsc::SyncSender<HashMap<Part, Offset>>,
    },
    /// Partitions going away. Answer: the offsets to commit to Kafka.
    Revoke {
        /// The partitions.
        parts: Vec<Part>,
        /// The assignment was lost (this instance is a zombie): do not flush.
        lost: bool,
        /// Next offsets (Snowflake's committed token + 1) to commit to Kafka.
        reply: std_mpsc::SyncSender<HashMap<Part, i64>>,
    },
}

/// From the async side to the poll thread.
#[derive(Debug)]
pub enum ThreadCmd {
    /// Commit this next offset of the partition to Kafka (best effort, for lag tools).
    Commit(Part, i64),
    /// Leave the group and join it again: the worker of this assignment of the partition
    /// (`batch::Inbox::id`) lost its channel.
    Rejoin(Part, u64),
    /// Leave the group (handing everything over) and stop.
    Shutdown,
}

/// Per partition, from librdkafka's statistics: the consumer lag and the high watermark (the
/// offset the next message will get).
pub type Lags = Arc<Mutex<HashMap<Part, PartitionLag>>>;

/// Partitions whose start offset librdkafka found out of range and reset to the log start,
/// from its `OFFSET` warnings; each worker takes its own entry.
pub type Resets = Arc<Mutex<HashSet<Part>>>;

/// The partition of librdkafka's `[thrd:main]: TOPIC [PARTITION]: offset reset …` warning
/// (topic names have no spaces or brackets).
pub fn reset_partition(log_message: &str) -> Option<Part> {
    let (head, _) = log_message.split_once("]: offset reset")?;
    let (before, partition) = head.rsplit_once(" [")?;
    let topic = before.rsplit(' ').next().filter(|t| !t.is_empty())?;
    Some((topic.to_owned(), partition.parse().ok()?))
}

/// What the poll thread needs to start.
pub struct ConsumerSetup {
    /// librdkafka properties, ours and the user's `-X` ones.
    pub config: ClientConfig,
    /// The user's properties (to keep their values out of errors).
    pub properties: Vec<crate::kafka::properties::Property>,
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
}

struct SinkContext {
    control: mpsc::UnboundedSender<Control>,
    router: Mutex<Router>,
    metrics: SinkMetrics,
    cooperative: bool,
    hand_over_timeout: Duration,
    lags: Lags,
    resets: Resets,
    /// Where assigned partitions' messages are forwarded (`fetch_queue`); owned by `run`,
    /// which drops it before the consumer.
    fetch: OnceLock<Weak<FetchQueue>>,
    /// Assignments whose channels were still opening when the rebalance callback could wait
    /// no longer: their partitions wait, paused, for their start offsets ([`LateStarts`]).
    late: Mutex<Vec<LateStarts>>,
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
struct LateStarts {
    answer: std_mpsc::Receiver<HashMap<Part, Offset>>,
    /// The start offsets, once they came.
    starts: Option<HashMap<Part, Offset>>,
    /// The partitions not started yet, and which assignment of each (`batch::Inbox::id`).
    parts: Vec<(Part, u64)>,
    /// When the assignment was made (a seek refused for long is worth a warning).
    since: Instant,
}

/// How long the poll thread waits for a late start's seek.
const SEEK_WAIT: Duration = Duration::from_secs(2);
/// A late start still refused after this long is warned about (once a turn, at most every
/// this long).
const LATE_WARN_AFTER: Duration = Duration::from_secs(30);

fn parts_of(tpl: &TopicPartitionList) -> Vec<Part> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_owned(), e.partition()))
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
        let router = lock(&self.router);
        let mut lags = lock(&self.lags);
        for (topic, t) in statistics.topics {
            for (partition, p) in t.partitions {
                // Only the partitions assigned here (librdkafka also reports those it knows of
                // otherwise, from the metadata or a past assignment).
                if partition >= 0 && router.has(&topic, partition) {
                    let lag = PartitionLag {
                        lag: p.consumer_lag,
                        high: p.hi_offset,
                    };
                    lags.insert((topic.clone(), partition), lag);
                }
            }
        }
        self.metrics.lags(&lags);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(target: "librdkafka", "{error}: {reason}");
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
        let ids: Vec<(Part, u64)> = parts.iter().map(|(p, i)| (p.clone(), i.id)).collect();
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
        for ((topic, partition), offset) in &starts {
            if let Err(e) = tpl.set_partition_offset(topic, *partition, *offset) {
                tracing::warn!(%topic, partition, "cannot set the start offset: {e}");
            }
        }
        // Before the assignment takes effect: librdkafka keeps the forwarding when it starts
        // fetching (`fetch_queue`).
        if let Some(fetch) = self.fetch.get().and_then(Weak::upgrade) {
            for (topic, partition) in parts_of(tpl) {
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
    fn late_starts(&self, consumer: &BaseConsumer<Self>) {
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
                    let _ = tpl.add_partition_offset(&part.0, part.1, *start);
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
                        let part = (e.topic().to_owned(), e.partition());
                        let Some(at) = l.parts.iter().position(|(p, _)| *p == part) else {
                            continue;
                        };
                        if let Err(why) = e.error() {
                            refused.push(format!("{}/{}: {why}", part.0, part.1));
                            continue;
                        }
                        let (part, id) = l.parts.swap_remove(at);
                        router.started(&part, id);
                        let (topic, partition) = &part;
                        if let Err(why) = consumer.resume(&one(topic, *partition)) {
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
            for ((topic, partition), offset) in &next {
                let _ = offsets.add_partition_offset(topic, *partition, Offset::Offset(*offset));
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
        parts: &[Part],
        lost: bool,
    ) -> HashMap<Part, i64> {
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

/// Runs the consumer on the calling thread until [`ThreadCmd::Shutdown`] (or the async side
/// going away), then leaves the group, handing every partition over.
///
/// # Errors
/// When the consumer cannot be created or cannot subscribe.
pub fn run(setup: ConsumerSetup, commands: &std_mpsc::Receiver<ThreadCmd>) -> anyhow::Result<()> {
    let cooperative = setup
        .config
        .get("partition.assignment.strategy")
        .is_some_and(|s| s.contains("cooperative"));
    let context = SinkContext {
        control: setup.control,
        router: Mutex::new(
            Router::new(setup.budget, setup.rows, setup.read_headers)
                .with_raw_values(setup.raw_values)
                .with_hold(setup.hold),
        ),
        metrics: setup.metrics,
        cooperative,
        hand_over_timeout: setup.hand_over_timeout,
        lags: setup.lags,
        resets: setup.resets,
        fetch: OnceLock::new(),
        late: Mutex::default(),
    };
    let consumer: BaseConsumer<SinkContext> =
        setup.config.create_with_context(context).map_err(|e| {
            let why = crate::kafka::properties::scrub(&e.to_string(), &setup.properties);
            anyhow::anyhow!("cannot create the Kafka consumer: {why}")
        })?;
    // Declared after the consumer, so dropped before it.
    let fetch = FetchQueue::new(&consumer).map(Arc::new);
    match &fetch {
        Some(q) => {
            let _ = consumer.context().fetch.set(Arc::downgrade(q));
        }
        None => tracing::warn!("librdkafka made no queue for batch reads: reading one by one"),
    }
    let mut reader = Reader {
        fetch: fetch.as_deref(),
        batch: crate::kafka::fetch_queue::Batch::default(),
    };
    let topics: Vec<&str> = setup.topics.iter().map(String::as_str).collect();
    subscribe(&consumer, &topics)?;
    let mut rejoins = Rejoins::default();
    let mut commits = Commits::default();
    loop {
        loop {
            match commands.try_recv() {
                Ok(ThreadCmd::Commit(part, offset)) => commits.want(part, offset),
                Ok(ThreadCmd::Rejoin(part, id)) => rejoins.want(part, id),
                Ok(ThreadCmd::Shutdown) | Err(std_mpsc::TryRecvError::Disconnected) => {
                    consumer.unsubscribe();
                    settle(&consumer, &mut reader, Duration::from_secs(120));
                    return Ok(());
                }
                Err(std_mpsc::TryRecvError::Empty) => break,
            }
        }
        let due = {
            let router = lock(&consumer.context().router);
            rejoins.due(Instant::now(), |part, id| router.holds(part, id))
        };
        if due {
            tracing::warn!(
                "a channel was lost (another writer has it, or it failed): rejoining the group"
            );
            consumer.unsubscribe();
            settle(&consumer, &mut reader, Duration::from_secs(60));
            subscribe(&consumer, &topics)?;
            rejoins.done(Instant::now());
        }
        commits.send(&consumer);
        consumer.context().late_starts(&consumer);
        if let Some(error) = poll_burst(&consumer, &mut reader) {
            // A refused subscription (`subscription`): hand everything over, then stop.
            let refused = crate::kafka::subscription::refused_topics(&consumer);
            let why = crate::kafka::subscription::reason(&error, &refused);
            consumer.unsubscribe();
            settle(&consumer, &mut reader, Duration::from_secs(120));
            anyhow::bail!(why);
        }
    }
}

/// Subscribes `consumer` to `topics` (at start, and again after leaving the group to rejoin).
///
/// # Errors
/// librdkafka refuses the subscription (a `--topic-regex` it cannot read).
fn subscribe(consumer: &BaseConsumer<SinkContext>, topics: &[&str]) -> anyhow::Result<()> {
    consumer.subscribe(topics).map_err(|e| {
        anyhow::anyhow!(
            "cannot subscribe to {topics:?}: {e} (a --topic-regex must be POSIX extended \
             syntax, as librdkafka reads it)"
        )
    })
}

/// Rejoins the workers asked for (their channel was lost: `partition::Worker::lost`). One
/// rejoin serves every request made before it: it hands every partition over and takes a fresh
/// assignment, with new workers. A request made within [`REJOIN_EVERY`] of the last rejoin
/// waits until then (a channel that fails again and again does not rebalance the group every
/// few seconds), and is kept, not dropped: the partition would otherwise stay assigned here
/// with no worker, unread, until some other rebalance. A request from a worker of an
/// assignment that is over (the partition was handed over meanwhile, or assigned anew) is
/// dropped when it is due.
#[derive(Default)]
struct Rejoins {
    wanted: Vec<(Part, u64)>,
    last: Option<Instant>,
}

impl Rejoins {
    fn want(&mut self, part: Part, id: u64) {
        self.wanted.push((part, id));
    }

    /// Whether to rejoin now: a request is waiting whose assignment `holds` still, and the
    /// last rejoin was long enough ago. Drops the requests of assignments that are over.
    fn due(&mut self, now: Instant, holds: impl Fn(&Part, u64) -> bool) -> bool {
        if self.wanted.is_empty()
            || self
                .last
                .is_some_and(|t| now.saturating_duration_since(t) < REJOIN_EVERY)
        {
            return false;
        }
        self.wanted.retain(|(part, id)| holds(part, *id));
        !self.wanted.is_empty()
    }

    /// A rejoin was made at `now`: every request so far is served.
    fn done(&mut self, now: Instant) {
        self.wanted.clear();
        self.last = Some(now);
    }
}

/// Kafka offsets to commit, gathered: the latest next offset per partition, sent in one
/// commit at most every [`COMMIT_EVERY`].
#[derive(Default)]
struct Commits {
    wanted: HashMap<Part, i64>,
    done: HashMap<Part, i64>,
    sent: Option<Instant>,
}

impl Commits {
    fn want(&mut self, part: Part, offset: i64) {
        if self.done.get(&part) != Some(&offset) {
            self.wanted.insert(part, offset);
        }
    }

    fn send(&mut self, consumer: &BaseConsumer<SinkContext>) {
        let due = {
            let router = lock(&consumer.context().router);
            self.due(Instant::now(), |(topic, partition)| {
                router.has(topic, *partition)
            })
        };
        let Some(due) = due else {
            return;
        };
        let mut t = TopicPartitionList::new();
        for ((topic, partition), offset) in &due {
            let _ = t.add_partition_offset(topic, *partition, Offset::Offset(*offset));
        }
        if consumer.commit(&t, CommitMode::Async).is_ok() {
            self.done.extend(due);
        } else {
            self.wanted.extend(due);
        }
    }

    /// The offsets to commit now, if it is time and any are wanted: only those of partitions
    /// `held` here (a worker's last word about a partition handed over since would move the
    /// group's offset back behind what its next owner committed).
    fn due(&mut self, now: Instant, held: impl Fn(&Part) -> bool) -> Option<Vec<(Part, i64)>> {
        if self.wanted.is_empty()
            || self
                .sent
                .is_some_and(|t| now.saturating_duration_since(t) < COMMIT_EVERY)
        {
            return None;
        }
        self.wanted.retain(|part, _| held(part));
        if self.wanted.is_empty() {
            return None;
        }
        self.sent = Some(now);
        Some(self.wanted.drain().collect())
    }
}

/// How the poll thread reads messages: by the batch from the [`FetchQueue`] when there is one.
struct Reader<'q> {
    fetch: Option<&'q FetchQueue>,
    batch: crate::kafka::fetch_queue::Batch,
}

/// What a burst does with each message or error.
enum Step {
    Go,
    Stop(KafkaError),
}

/// Routes one message (or takes note of the error delivered in its place).
fn take(
    consumer: &BaseConsumer<SinkContext>,
    m: Result<Native<'_>, KafkaError>,
    bytes: &mut usize,
) -> Step {
    match m {
        Ok(m) => {
            *bytes += m.payload().map_or(0, <[u8]>::len);
            lock(&consumer.context().router).route(consumer, &m);
            Step::Go
        }
        Err(e) if crate::kafka::subscription::is_fatal(&e) => Step::Stop(e),
        Err(e) => {
            tracing::warn!("kafka: {e}");
            Step::Go
        }
    }
}

/// Polls: waits up to 100 ms for the first message, then takes what librdkafka has ready
/// without waiting, routing each into its partition's batch; hands the batches over when
/// nothing more is ready (or after [`BURST_MESSAGES`] or [`BURST_BYTES`]), and resumes
/// partitions with room again. Messages come by the batch from the [`FetchQueue`]; the
/// consumer's own queue (rebalances, errors, a partition not forwarded) is polled without
/// waiting between batches, so while nothing arrives a rebalance waits at most
/// [`IDLE_WAIT`].
/// A consumer error that stops the sink ([`crate::kafka::subscription::is_fatal`]) ends the burst and
/// is returned.
fn poll_burst(consumer: &BaseConsumer<SinkContext>, reader: &mut Reader<'_>) -> Option<KafkaError> {
    let mut fatal = None;
    let mut bytes = 0;
    let mut messages = 0;
    let mut first = true;
    'burst: while messages < BURST_MESSAGES && bytes < BURST_BYTES {
        let mut any = false;
        // The consumer's own queue: without a fetch queue, the first wait is here.
        let wait = if first && reader.fetch.is_none() {
            Duration::from_millis(100)
        } else {
            Duration::ZERO
        };
        while let Some(m) = consumer.poll(wait) {
            any = true;
            messages += 1;
            let step = match m {
                Ok(m) => take(consumer, Ok(Native::of(&m)), &mut bytes),
                Err(e) => take(consumer, Err(e), &mut bytes),
            };
            if let Step::Stop(e) = step {
                fatal = Some(e);
                break 'burst;
            }
            if reader.fetch.is_none() {
                break;
            }
        }
        if let Some(fetch) = reader.fetch {
            let wait = if first && !any {
                IDLE_WAIT
            } else {
                Duration::ZERO
            };
            fetch.read(wait, &mut reader.batch);
            for m in reader.batch.iter() {
                any = true;
                messages += 1;
                let m = match m.error() {
                    None => Ok(m),
                    Some(e) => Err(e),
                };
                if let Step::Stop(e) = take(consumer, m, &mut bytes) {
                    fatal = Some(e);
                    break 'burst;
                }
            }
        }
        first = false;
        if !any {
            break;
        }
    }
    let mut router = lock(&consumer.context().router);
    router.flush();
    router.resume(consumer);
    consumer.context().metrics.paused(router.paused());
    fatal
}

/// Polls until the assignment is empty (the revoke callbacks have run), at most `limit`.
fn settle(consumer: &BaseConsumer<SinkContext>, reader: &mut Reader<'_>, limit: Duration) {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        // Leaving anyway: an error now changes nothing.
        let _ = poll_burst(consumer, reader);
        if consumer.assignment().map_or(true, |a| a.count() == 0) {
            return;
        }
    }
    tracing::warn!("leaving the group took longer than {limit:?}");
}

#[cfg(test)]
mod tests {
    use super::reset_partition;

    /// Kafka offsets are committed at most once a second, and only for partitions held here.
    #[test]
    fn kafka_commits_are_gathered_and_skip_partitions_handed_over() {
        use super::{Commits, Part, COMMIT_EVERY};
        use std::time::Instant;
        let t0 = Instant::now();
        let (a, b): (Part, Part) = (("t".into(), 0), ("t".into(), 1));
        let held = |p: &Part| p.1 == 0;
        let mut c = Commits::default();
        assert_eq!(c.due(t0, held), None, "nothing wanted");
        c.want(a.clone(), 5);
        c.want(a.clone(), 9);
        c.want(b.clone(), 3);
        assert_eq!(
            c.due(t0, held),
            Some(vec![(a.clone(), 9)]),
            "the latest; not b's"
        );
        c.done.insert(a.clone(), 9);
        c.want(a.clone(), 12);
        assert_eq!(c.due(t0 + COMMIT_EVERY / 2, held), None, "once a second");
        assert_eq!(c.due(t0 + COMMIT_EVERY, held), Some(vec![(a, 12)]));
    }

    /// A channel lost soon after a rejoin is not forgotten: its rejoin waits out the interval,
    /// then happens; a request of a worker whose assignment is over causes none.
    #[test]
    fn a_rejoin_asked_for_too_soon_waits_and_a_stale_one_is_dropped() {
        use super::{Part, Rejoins, REJOIN_EVERY};
        use std::time::{Duration, Instant};
        let t0 = Instant::now();
        let part: Part = ("t".into(), 3);
        let current = |p: &Part, id: u64| p.1 == 3 && id == 2;
        let mut r = Rejoins::default();
        assert!(!r.due(t0, current), "nothing asked");
        r.want(part.clone(), 2);
        assert!(r.due(t0, current));
        r.done(t0);
        // The new assignment's worker loses its channel a second later.
        r.want(part.clone(), 2);
        let soon = t0 + Duration::from_secs(1);
        assert!(!r.due(soon, current), "waits for the interval");
        assert!(!r.due(soon + Duration::from_secs(1), current));
        assert!(r.due(t0 + REJOIN_EVERY, current), "then rejoins");
        r.done(t0 + REJOIN_EVERY);
        // A worker of an earlier assignment (id 1) asks late: no rejoin, and it is dropped.
        r.want(part, 1);
        let later = t0 + 3 * REJOIN_EVERY;
        assert!(!r.due(later, current));
        assert!(!r.due(later, |_, _| true), "dropped, not kept");
    }

    #[test]
    fn the_partition_of_an_offset_reset_warning() {
        let line = "[thrd:main]: events.v2 [13]: offset reset (at offset 20 (leader epoch -1), \
                    broker 1) to cached BEGINNING offset offset 2834 (leader epoch -1): fetch \
                    failed due to requested offset not available on the broker: Broker: Offset \
                    out of range";
        assert_eq!(reset_partition(line), Some(("events.v2".to_owned(), 13)));
        assert_eq!(
            reset_partition("events [0]: offset reset (at offset 3)"),
            Some(("events".to_owned(), 0))
        );
        assert_eq!(
            reset_partition("[thrd:main]: events [x]: offset reset"),
            None
        );
        assert_eq!(reset_partition("something else entirely"), None);
    }
}
