//! The poll thread's loop: it subscribes, reads the fetch queue in bursts and routes each
//! message into its partition's batch, polls the consumer's own queue for rebalances and errors,
//! commits Kafka offsets for lag tools, asks to rejoin the group when the async side says so,
//! and leaves the group when told to stop. The rebalance callbacks it serves are
//! [`crate::source::consumer`]'s.

use std::collections::HashMap;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

use crate::error::{err, fail, Result};
use crate::lock::lock;
use crate::rows::{KafkaOffset, TopicPartition};
use crate::source::consumer::{ConsumerSetup, SinkContext, ThreadCmd};
use crate::source::fetch_queue::{FetchQueue, FetchedMessages};
use crate::source::message::Message;
use crate::source::router::Router;

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

/// Runs the consumer on the calling thread until [`ThreadCmd::Shutdown`] (or the async side
/// going away), then leaves the group, handing every partition over.
///
/// # Errors
/// When the consumer cannot be created or cannot subscribe.
pub(crate) fn run(setup: ConsumerSetup, commands: &std_mpsc::Receiver<ThreadCmd>) -> Result<()> {
    let cooperative = setup
        .config
        .get("partition.assignment.strategy")
        .is_some_and(|s| s.contains("cooperative"));
    let context = SinkContext {
        control: setup.control,
        router: Mutex::new(
            Router::new(setup.budget, setup.rows, setup.read_headers)
                .with_raw_values(setup.raw_values)
                .with_hold(setup.hold)
                .with_counts(Arc::clone(&setup.counts)),
        ),
        metrics: setup.metrics,
        cooperative,
        hand_over_timeout: setup.hand_over_timeout,
        lags: setup.lags,
        resets: setup.resets,
        counts: setup.counts,
        fetch: OnceLock::new(),
        late: Mutex::default(),
    };
    let consumer: BaseConsumer<SinkContext> =
        setup.config.create_with_context(context).map_err(|e| {
            let why = crate::source::properties::scrub(&e.to_string(), &setup.properties);
            err!(Kafka, "cannot create the Kafka consumer: {why}")
        })?;
    // Declared after the consumer, so dropped before it.
    let fetch = FetchQueue::new(&consumer).map(Arc::new);
    match &fetch {
        Some(q) => {
            let _ = consumer.context().fetch.set(Arc::downgrade(q));
        }
        None => tracing::warn!("librdkafka made no queue for batch reads: reading one by one"),
    }
    lock(&consumer.context().router).set_stop_reading(fetch.is_some());
    let mut reader = Reader {
        fetch: fetch.as_deref(),
        fetched: FetchedMessages::default(),
    };
    let topics: Vec<&str> = setup.topics.iter().map(String::as_str).collect();
    subscribe(&consumer, &topics)?;
    let mut rejoins = Rejoins::default();
    let mut commits = KafkaCommits::default();
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
            let refused = crate::source::subscription::refused_topics(&consumer);
            let why = crate::source::subscription::reason(&error, &refused);
            consumer.unsubscribe();
            settle(&consumer, &mut reader, Duration::from_secs(120));
            fail!(Kafka, "{why}");
        }
    }
}

/// Subscribes `consumer` to `topics` (at start, and again after leaving the group to rejoin).
///
/// # Errors
/// librdkafka refuses the subscription (a `--topic-regex` it cannot read).
fn subscribe(consumer: &BaseConsumer<SinkContext>, topics: &[&str]) -> Result<()> {
    consumer.subscribe(topics).map_err(|e| {
        err!(
            Kafka,
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
    wanted: Vec<(TopicPartition, u64)>,
    last: Option<Instant>,
}

impl Rejoins {
    fn want(&mut self, part: TopicPartition, id: u64) {
        self.wanted.push((part, id));
    }

    /// Whether to rejoin now: a request is waiting whose assignment `holds` still, and the
    /// last rejoin was long enough ago. Drops the requests of assignments that are over.
    fn due(&mut self, now: Instant, holds: impl Fn(&TopicPartition, u64) -> bool) -> bool {
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

/// The sink's one Kafka-commit coalescer: the offsets the workers send as their channels'
/// commits move, the latest next offset per partition, sent in one commit for all partitions
/// at most every [`COMMIT_EVERY`].
#[derive(Default)]
struct KafkaCommits {
    wanted: HashMap<TopicPartition, KafkaOffset>,
    done: HashMap<TopicPartition, KafkaOffset>,
    sent: Option<Instant>,
}

impl KafkaCommits {
    fn want(&mut self, part: TopicPartition, offset: KafkaOffset) {
        if self.done.get(&part) != Some(&offset) {
            self.wanted.insert(part, offset);
        }
    }

    fn send(&mut self, consumer: &BaseConsumer<SinkContext>) {
        let due = {
            let router = lock(&consumer.context().router);
            self.due(Instant::now(), |part| {
                router.has(&part.topic, part.partition)
            })
        };
        let Some(due) = due else {
            return;
        };
        let mut t = TopicPartitionList::new();
        for (part, offset) in &due {
            let _ =
                t.add_partition_offset(&part.topic, part.partition, Offset::Offset(offset.get()));
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
    fn due(
        &mut self,
        now: Instant,
        held: impl Fn(&TopicPartition) -> bool,
    ) -> Option<Vec<(TopicPartition, KafkaOffset)>> {
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
    fetched: FetchedMessages,
}

/// What a burst does with each message or error.
enum Step {
    Go,
    Stop(KafkaError),
}

/// Routes one message (or takes note of the error delivered in its place).
fn take(
    consumer: &BaseConsumer<SinkContext>,
    m: Result<Message<'_>, KafkaError>,
    bytes: &mut usize,
) -> Step {
    match m {
        Ok(m) => {
            let mut router = lock(&consumer.context().router);
            *bytes += m.route(&mut router, consumer);
            Step::Go
        }
        Err(e) if crate::source::subscription::is_fatal(&e) => Step::Stop(e),
        Err(e) => {
            tracing::warn!("kafka: {e}");
            Step::Go
        }
    }
}

/// Polls: waits up to 100 ms for the first message, then takes what librdkafka has ready
/// without waiting, routing each into its partition's batch; hands the batches over when
/// nothing more is ready (or after [`BURST_MESSAGES`] or [`BURST_BYTES`]), and resumes
/// partitions with room again; while the sink is over budget it takes no messages from the
/// [`FetchQueue`] and waits up to [`IDLE_WAIT`] for room (`Router::reading_stopped`).
/// Messages come by the batch from the [`FetchQueue`]; the
/// consumer's own queue (rebalances, errors, a partition not forwarded) is polled without
/// waiting between batches, so while nothing arrives a rebalance waits at most
/// [`IDLE_WAIT`].
/// A consumer error that stops the sink ([`crate::source::subscription::is_fatal`]) ends the burst and
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
                Ok(m) => take(consumer, Ok(Message::of(&m)), &mut bytes),
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
            if lock(&consumer.context().router).reading_stopped() {
                break;
            }
            let wait = if first && !any {
                IDLE_WAIT
            } else {
                Duration::ZERO
            };
            fetch.read(wait, &mut reader.fetched);
            for m in reader.fetched.iter() {
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
    if router.reading_stopped() {
        // Full: wait for the workers' appends to free room (woken by them), not longer than a
        // poll of the consumer's queue may wait (rebalances, commands).
        let (budget, level) = (Arc::clone(router.budget()), router.resume_level());
        drop(router);
        budget.wait_for_room(level, IDLE_WAIT);
    }
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
mod tests;
