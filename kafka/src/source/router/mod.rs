//! Messages routed from librdkafka into their partitions' [`Batch`]es, on the poll thread, and
//! partitions paused and resumed against the sink's byte [`Budget`].
//!
//! A batch goes to the worker when it is full, or when librdkafka has nothing more to give
//! right now and the batch has waited its hold: a twentieth of `max_client_lag`, at most
//! 50 ms ([`hold_for`]); a paused partition's at once. A busy partition fills its batches long
//! before, and moves a few hundred messages per hand-off. A partition that brings a few
//! messages per fetch would otherwise hand each few over on its own, and each hand-off is a
//! worker's wake-up and an append to the SDK: at 20,000 messages of 1 KB a second over 96
//! partitions that was about a third of the sink's CPU (`kafka/README.md`, "Cost and
//! throughput", steady state). The channel holds rows for `max_client_lag` anyway, so the hold
//! adds at most a twentieth to a row's time to Snowflake.
//!
//! **Memory.** When the sink as a whole is over budget, the poll thread takes no more messages
//! from librdkafka until it is back below three quarters of it ([`Router::reading_stopped`];
//! it waits on the budget for room, and goes on serving rebalances meanwhile): what librdkafka
//! fetched waits in its queue, which the limit on its own prefetch (set from the same budget,
//! see `cli::args`) bounds. Partitions are not paused for it: a pause bumps the partition's op
//! version in librdkafka (`rd_kafka_toppar_op_pause_resume`), which drops what it had fetched
//! for the partition and not yet handed over, and the resume fetches it again from the
//! application's position; on a broker process in a catch-up, with the budget full throughout,
//! that was the larger part of what the sink spent above the least (the performance log,
//! `docs/log/performance/2026-11-28-kafka-sink-against-the-least.md`).
//! A partition is paused only when its worker is stuck: it holds more than its fair share (the
//! budget over the partitions assigned) and its worker has completed no append for four times
//! the sink's recent time between appends, at least 2 s ([`progress`]); or when it holds more
//! than five eighths of the budget, whatever its worker does ([`Router::most`]). A worker that
//! appends, however slowly, drains what its partition holds: pausing it for holding more than
//! the others (as the sink did, at four times its share) made librdkafka fetch 1.5× the
//! messages at the least budget. A paused partition is resumed once the sink is below three
//! quarters of the budget and the partition below half its share. A stuck channel therefore
//! stops only its own partition, and a partition that is paused still gets the messages
//! librdkafka had already handed over: they are charged like any other. (Without a fetch queue the poll thread reads through the
//! consumer's own queue, which it must poll for rebalances: it cannot stop reading, and a sink
//! over budget pauses the partitions instead, as before.)
//!
//! The router never sees a message's data: the message's reading (`Message::route` in
//! `source::message`, where all of a message's FFI is) asks it for the message's [`Place`] by
//! the routing key alone (topic handle and partition, the topic's name only when the handle
//! does not find the slot), builds the message's `Record` and writes it into the batch the
//! place gives; then [`Router::written`] hands a full batch over and pauses the partition
//! when its worker is stuck or it holds too much.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::TopicPartitionList;
use tokio::sync::mpsc;

use crate::rows::batch::{Batch, Budget, Pool, BATCH_BYTES, MIN_BATCH_BYTES, SIDE_BYTES};
use crate::rows::record::RowOptions;
use crate::rows::TopicPartition;
use crate::source::counts::SourceCounts;

use progress::{Pace, Progress};

mod progress;

/// The longest a part-full batch waits for more (see [`hold_for`]).
const MAX_HOLD: Duration = Duration::from_millis(50);

/// How long a part-full batch waits on the poll thread for more of its partition's messages,
/// for a sink whose channels batch by `max_client_lag`: a twentieth of it, at most
/// 50 ms (see the module docs).
pub(crate) fn hold_for(max_client_lag: Duration) -> Duration {
    (max_client_lag / 20).min(MAX_HOLD)
}

/// How often paused partitions are looked at for a resume.
const RESUME_CHECK: Duration = Duration::from_millis(10);

/// A list of one partition.
pub(crate) fn one(topic: &str, partition: i32) -> TopicPartitionList {
    let mut t = TopicPartitionList::new();
    t.add_partition(topic, partition);
    t
}

/// A partition's place on the poll thread.
struct Slot {
    topic: Arc<str>,
    partition: i32,
    /// Which assignment of the partition this is ([`Inbox::id`]).
    id: u64,
    /// Waiting for its start offset (assigned before its channel was open): its messages are
    /// dropped, librdkafka fetches them again from the start.
    awaiting: bool,
    tx: mpsc::UnboundedSender<Batch>,
    open: Option<Batch>,
    /// Bytes of this partition's batches not yet appended.
    held: Arc<AtomicUsize>,
    paused: bool,
    /// The row bytes of its last batch handed over, which size its next batch's buffer.
    last: usize,
    /// Whether its worker completes appends ([`progress`]).
    progress: Progress,
}

impl Slot {
    /// A new assignment (`id`) of `part`, handing its batches to `tx`: nothing open or held,
    /// not awaiting its start offset, not paused.
    fn new(part: &TopicPartition, id: u64, tx: mpsc::UnboundedSender<Batch>) -> Slot {
        Slot {
            topic: Arc::clone(&part.topic),
            partition: part.partition,
            id,
            awaiting: false,
            tx,
            open: None,
            held: Arc::default(),
            paused: false,
            last: 0,
            progress: Progress::new(Instant::now()),
        }
    }

    /// Hands the open batch, if any, to the worker.
    fn hand_over(&mut self) {
        hand_over(&mut self.open, &mut self.last, &self.tx);
    }
}

/// Hands a slot's `open` batch, if any, to its worker (`tx`), noting its size in `last`.
fn hand_over(open: &mut Option<Batch>, last: &mut usize, tx: &mpsc::UnboundedSender<Batch>) {
    if let Some(b) = open.take() {
        *last = b.rows.len();
        let _ = tx.send(b);
    }
}

/// The row buffer for a partition's next batch, for a first row of `row` bytes: half again
/// what its `last` batch held (so a partition that brings about as much each time fills it,
/// and one that brings more grows it), between 16 and 256 KB; larger for a larger row.
fn next_batch_bytes(last: usize, row: usize) -> usize {
    (last + last / 2)
        .clamp(MIN_BATCH_BYTES, BATCH_BYTES)
        .max(row)
}

/// The assigned partitions' slots, found by topic and partition.
#[derive(Default)]
struct Slots {
    all: Vec<Slot>,
    index: HashMap<Arc<str>, HashMap<i32, usize>>,
}

impl Slots {
    /// Where the slot of `topic`/`partition` is in [`all`](Self::all).
    fn find(&self, topic: &str, partition: i32) -> Option<usize> {
        self.index.get(topic)?.get(&partition).copied()
    }

    /// Adds `slot`, or puts it in the place of the one its partition had (returned).
    fn insert(&mut self, slot: Slot) -> Option<Slot> {
        if let Some(at) = self.find(&slot.topic, slot.partition) {
            return Some(std::mem::replace(&mut self.all[at], slot));
        }
        self.index
            .entry(Arc::clone(&slot.topic))
            .or_default()
            .insert(slot.partition, self.all.len());
        self.all.push(slot);
        None
    }

    /// Takes out the slot of `topic`/`partition`; the last slot takes its place.
    fn remove(&mut self, topic: &str, partition: i32) -> Option<Slot> {
        let parts = self.index.get_mut(topic)?;
        let at = parts.remove(&partition)?;
        if parts.is_empty() {
            self.index.remove(topic);
        }
        let slot = self.all.swap_remove(at);
        if let Some(moved) = self.all.get(at) {
            if let Some(i) = self
                .index
                .get_mut(&moved.topic)
                .and_then(|p| p.get_mut(&moved.partition))
            {
                *i = at;
            }
        }
        Some(slot)
    }
}

/// The slot of the last message routed. librdkafka hands over a partition's fetched messages
/// together, so most messages are of the same partition as the one before: they are routed
/// without hashing their topic's name or checking that it is UTF-8 (at 100 B messages that
/// was a sixth of the poll thread's time).
#[derive(Clone, Copy)]
struct Recent {
    /// The message's topic handle (`Message::topic_handle`).
    topic: usize,
    partition: i32,
    slot: usize,
}

/// Where one message goes ([`Router::place`]): what its writing needs of the router, which
/// keeps the batches, the budget and the pauses.
pub(crate) struct Place<'r> {
    /// The partition's topic, for the message's `Record`.
    pub(crate) topic: &'r str,
    /// How rows are written.
    pub(crate) options: &'r RowOptions,
    /// Values are copied as they are, for the worker to decode (no row, no metadata here).
    pub(crate) raw_values: bool,
    /// Where a row's metadata is written before its size is known.
    pub(crate) scratch: &'r mut Vec<u8>,
    /// The partition's batch.
    pub(crate) target: Target<'r>,
}

/// A partition's open batch, as a message's writing reaches it ([`Target::batch`]).
pub(crate) struct Target<'r> {
    /// The slot's place, for [`Router::written`].
    pub(crate) at: usize,
    open: &'r mut Option<Batch>,
    last: &'r mut usize,
    tx: &'r mpsc::UnboundedSender<Batch>,
    held: &'r Arc<AtomicUsize>,
    pool: &'r Arc<Pool>,
    budget: &'r Arc<Budget>,
}

impl Target<'_> {
    /// The partition's open batch, with room for a row of `row` bytes and `side` bytes
    /// beside it: a batch without that room is handed over first, and a new one's buffers
    /// are sized for what goes in, so what was charged is what is held (`Batch::push`
    /// charges any growth all the same).
    pub(crate) fn batch(&mut self, row: usize, side: usize) -> &mut Batch {
        let full = |b: &Batch| b.room() < row || b.side_room() < side || b.is_out_of_messages();
        if self.open.as_ref().is_some_and(full) {
            hand_over(self.open, self.last, self.tx);
        }
        let bytes = next_batch_bytes(*self.last, row);
        let (pool, budget, held) = (self.pool, self.budget, self.held);
        self.open
            .get_or_insert_with(|| Batch::new(bytes, side.max(SIDE_BYTES), pool, budget, held))
    }
}

/// What the worker of a newly assigned partition receives.
pub(crate) struct Inbox {
    /// Its batches.
    pub batches: mpsc::UnboundedReceiver<Batch>,
    /// Which assignment of the partition this is: unique within the router, so that a worker's
    /// request about its partition is told from an earlier worker's ([`Router::holds`]).
    pub id: u64,
}

/// Routes messages into their partitions' batches and pauses and resumes partitions against
/// the budget (see the module docs). Lives on the poll thread.
pub(crate) struct Router {
    budget: Arc<Budget>,
    pool: Arc<Pool>,
    read_headers: bool,
    options: RowOptions,
    /// Values are copied as they are, for the worker to decode (`value_format`).
    raw_values: bool,
    scratch: Vec<u8>,
    /// How long a part-full batch waits for more before [`flush`](Self::flush) hands it over.
    hold: Duration,
    slots: Slots,
    /// Forgotten whenever a slot is added or removed (a slot's place may change, and a topic
    /// handle is only known to be its topic's while one of its partitions is assigned).
    recent: Option<Recent>,
    /// The next [`Inbox::id`].
    next_id: u64,
    assigned: usize,
    paused: usize,
    checked: Instant,
    /// The sink's recent time between a worker's appends, which says when one is stuck.
    pace: Pace,
    /// Pauses and resumes, for the closing report.
    counts: Arc<SourceCounts>,
    /// The poll thread stops reading while the sink is over budget ([`Self::set_stop_reading`]).
    stop_reading: bool,
    /// It has stopped ([`Self::reading_stopped`]).
    stopped: bool,
}

impl Router {
    /// A router charging `budget`, writing rows as `options` say; it reads messages' headers
    /// only when `read_headers` (metadata or dead letters need them: librdkafka parses them
    /// anew for every message it is asked for).
    pub(crate) fn new(budget: Arc<Budget>, options: RowOptions, read_headers: bool) -> Self {
        Self {
            budget,
            pool: Arc::default(),
            read_headers,
            options,
            raw_values: false,
            scratch: Vec::new(),
            hold: Duration::ZERO,
            slots: Slots::default(),
            recent: None,
            next_id: 0,
            assigned: 0,
            paused: 0,
            checked: Instant::now(),
            pace: Pace::default(),
            counts: Arc::default(),
            stop_reading: false,
            stopped: false,
        }
    }

    /// Copies values as they are (no candidate row): a Schema Registry `--value-format`,
    /// decoded by the partition's worker (`value_format::Decoder::rows`).
    #[must_use]
    pub(crate) fn with_raw_values(mut self, raw: bool) -> Self {
        self.raw_values = raw;
        self
    }

    /// Lets a part-full batch wait up to `hold` for more of its partition's messages before
    /// [`flush`](Self::flush) hands it over (zero: at the end of every poll burst). See
    /// [`hold_for`].
    #[must_use]
    pub(crate) fn with_hold(mut self, hold: Duration) -> Self {
        self.hold = hold;
        self
    }

    /// Counts its pauses and resumes in `counts`.
    #[must_use]
    pub(crate) fn with_counts(mut self, counts: Arc<SourceCounts>) -> Self {
        self.counts = counts;
        self
    }

    /// Whether it reads messages' headers (`Message::route`).
    pub(crate) fn reads_headers(&self) -> bool {
        self.read_headers
    }

    /// Partitions paused now.
    pub(crate) fn paused(&self) -> usize {
        self.paused
    }

    /// The poll thread stops taking messages from librdkafka while the sink is over budget
    /// ([`reading_stopped`](Self::reading_stopped)): the router then pauses no partition for
    /// it. Without (the poll thread reads through the consumer's own queue, which it must
    /// poll for rebalances), a sink over budget pauses each partition it routes a message of.
    pub(crate) fn set_stop_reading(&mut self, stop: bool) {
        self.stop_reading = stop;
    }

    /// Whether the poll thread is to take no more messages from librdkafka now: the sink went
    /// over its budget, and has not come back below three quarters of it since (always false
    /// without [`set_stop_reading`](Self::set_stop_reading)). What librdkafka fetched waits
    /// in its queue, within its prefetch limit, and is not fetched again.
    pub(crate) fn reading_stopped(&mut self) -> bool {
        if !self.stop_reading {
            return false;
        }
        let used = self.budget.used();
        self.stopped = if self.stopped {
            used > self.resume_level()
        } else {
            used > self.budget.limit
        };
        self.stopped
    }

    /// Where a full sink reads again: three quarters of the budget.
    pub(crate) fn resume_level(&self) -> usize {
        self.budget.limit / 4 * 3
    }

    /// The budget it charges.
    pub(crate) fn budget(&self) -> &Arc<Budget> {
        &self.budget
    }

    /// A partition was assigned: its inbox, for its worker.
    pub(crate) fn add(&mut self, part: &TopicPartition) -> Inbox {
        let (tx, batches) = mpsc::unbounded_channel();
        let id = self.next_id;
        self.next_id += 1;
        let slot = Slot::new(part, id, tx);
        self.recent = None;
        if let Some(old) = self.slots.insert(slot) {
            self.paused -= usize::from(old.paused);
        } else {
            self.assigned += 1;
        }
        Inbox { batches, id }
    }

    /// Where the slot of `part` is while it is assigned here as assignment `id`
    /// ([`Inbox::id`]).
    fn assignment(&self, part: &TopicPartition, id: u64) -> Option<usize> {
        self.slots
            .find(&part.topic, part.partition)
            .filter(|&at| self.slots.all[at].id == id)
    }

    /// `part`, assigned here as `id`, waits for its start offset: its messages are dropped
    /// until [`started`](Self::started).
    pub(crate) fn await_start(&mut self, part: &TopicPartition, id: u64) {
        if let Some(at) = self.assignment(part, id) {
            self.slots.all[at].awaiting = true;
        }
    }

    /// Whether `part` is assigned here as `id` and waits for its start offset.
    pub(crate) fn awaits(&self, part: &TopicPartition, id: u64) -> bool {
        self.assignment(part, id)
            .is_some_and(|at| self.slots.all[at].awaiting)
    }

    /// `part` has its start offset: whether it is still assigned here as `id` and was waiting.
    pub(crate) fn started(&mut self, part: &TopicPartition, id: u64) -> bool {
        self.assignment(part, id)
            .is_some_and(|at| std::mem::take(&mut self.slots.all[at].awaiting))
    }

    /// Whether `topic`/`partition` is assigned here.
    pub(crate) fn has(&self, topic: &str, partition: i32) -> bool {
        self.slots.find(topic, partition).is_some()
    }

    /// Whether `part` is assigned here as assignment `id` ([`Inbox::id`]) still.
    pub(crate) fn holds(&self, part: &TopicPartition, id: u64) -> bool {
        self.assignment(part, id).is_some()
    }

    /// A partition was revoked: its open batch is dropped (the next owner reads it again).
    /// A partition paused for memory is resumed first: the pause is this router's, and a
    /// later assignment of the partition to this instance starts with a fresh slot that knows
    /// nothing of it.
    pub(crate) fn remove<C: Consumer<X>, X: rdkafka::consumer::ConsumerContext>(
        &mut self,
        consumer: &C,
        part: &TopicPartition,
    ) {
        self.recent = None;
        if let Some(slot) = self.slots.remove(&part.topic, part.partition) {
            self.assigned -= 1;
            if slot.paused {
                self.paused -= 1;
            }
            if slot.paused || slot.awaiting {
                let _ = consumer.resume(&one(&part.topic, part.partition));
            }
        }
    }

    /// Where the slot of the partition `partition` of the topic whose handle is `handle` is,
    /// if it is assigned (`topic` gives the topic's name, asked only when the handle does not
    /// find the slot).
    fn slot_of<'t>(
        &mut self,
        handle: usize,
        partition: i32,
        topic: impl FnOnce() -> &'t str,
    ) -> Option<usize> {
        if let Some(r) = self.recent {
            if r.topic == handle && r.partition == partition {
                return Some(r.slot);
            }
        }
        let slot = self.slots.find(topic(), partition)?;
        self.recent = Some(Recent {
            topic: handle,
            partition,
            slot,
        });
        Some(slot)
    }

    /// A partition's fair share of the budget (the budget over the partitions assigned), but
    /// at least two batches: a partition holding more is paused if its worker is stuck, and
    /// resumed below half of it.
    fn share(&self) -> usize {
        (self.budget.limit / self.assigned.max(1)).max(2 * BATCH_BYTES)
    }

    /// The most one partition may hold whatever its worker does: five eighths of the budget,
    /// and no less than twice its share (one or two partitions may hold it all: the budget
    /// stops reading for them). A stuck worker's partition cannot take the whole budget before
    /// it is found stuck: the others keep reading between it and three quarters, where a full
    /// sink reads again. Less would pause slow partitions at the least budget, where one
    /// partition's fetched backlog is half of it (`kafka/tests/it/refetch.rs`).
    fn most(&self) -> usize {
        (self.budget.limit / 8 * 5).max(self.share().saturating_mul(2))
    }

    /// Where a message of the partition `partition` of the topic whose handle is `handle`
    /// goes, found by that key alone (`topic` gives the topic's name, asked only when the
    /// handle does not find the slot); `None` when the partition is not assigned (revoked
    /// meanwhile: the next owner reads it) or waits for its start offset (fetched again from
    /// there).
    pub(crate) fn place<'t>(
        &mut self,
        handle: usize,
        partition: i32,
        topic: impl FnOnce() -> &'t str,
    ) -> Option<Place<'_>> {
        let at = self.slot_of(handle, partition, topic)?;
        let Slot {
            topic,
            awaiting,
            tx,
            open,
            held,
            last,
            progress,
            ..
        } = &mut self.slots.all[at];
        if *awaiting {
            return None;
        }
        progress.before(held.load(Ordering::Relaxed));
        Some(Place {
            topic,
            options: &self.options,
            raw_values: self.raw_values,
            scratch: &mut self.scratch,
            target: Target {
                at,
                open,
                last,
                tx,
                held,
                pool: &self.pool,
                budget: &self.budget,
            },
        })
    }

    /// After a message was written at `at` ([`Place::at`]): hands its batch over when full,
    /// and pauses the partition when it holds more than its share and its worker is stuck (has
    /// completed no append for the sink's stall, [`progress`]), when it holds more than the
    /// [`most`](Self::most) one partition may, or when the sink is over budget and the poll thread cannot stop reading instead
    /// ([`set_stop_reading`](Self::set_stop_reading)). A partition whose worker appends,
    /// however slowly, is not paused for what it holds: it drains, and the budget bounds it.
    pub(crate) fn written<C: Consumer<X>, X: rdkafka::consumer::ConsumerContext>(
        &mut self,
        consumer: &C,
        at: usize,
    ) {
        let (share, most) = (self.share(), self.most());
        let stall = self.pace.stall();
        let sink_full = !self.stop_reading && self.budget.used() > self.budget.limit;
        let slot = &mut self.slots.all[at];
        if slot
            .open
            .as_ref()
            .is_some_and(|b| b.room() == 0 || b.is_out_of_messages())
        {
            slot.hand_over();
        }
        let held = slot.held.load(Ordering::Relaxed);
        slot.progress.after(held);
        if slot.paused {
            return;
        }
        let stuck = held > share && slot.progress.stuck(Instant::now(), stall);
        if sink_full || stuck || held > most {
            tracing::debug!(
                topic = %slot.topic,
                partition = slot.partition,
                held,
                share,
                stuck,
                "paused: its worker completed no append for {stall:?}, or the sink is full"
            );
            slot.paused = true;
            self.paused += 1;
            self.counts.paused();
            let _ = consumer.pause(&one(&slot.topic, slot.partition));
        }
    }

    /// Hands open batches to their workers (librdkafka has nothing more right now): those
    /// older than the hold (all of them without one), and those of paused partitions.
    pub(crate) fn flush(&mut self) {
        let now = (!self.hold.is_zero()).then(Instant::now);
        for slot in &mut self.slots.all {
            let due = |b: &Batch| now.is_none_or(|now| now.duration_since(b.opened) >= self.hold);
            if slot.paused || slot.open.as_ref().is_some_and(due) {
                slot.hand_over();
            }
        }
    }

    /// Looks at every partition's worker at `now`: those that completed an append since the
    /// last look tell the sink's pace ([`progress`]).
    fn look(&mut self, now: Instant) {
        for slot in &mut self.slots.all {
            if let Some(took) = slot.progress.look(slot.held.load(Ordering::Relaxed), now) {
                self.pace.note(took);
            }
        }
    }

    /// Resumes the paused partitions that are below half their share while the sink is below
    /// three quarters of its budget (looked at every 10 ms at most).
    ///
    /// A paused partition loses what librdkafka had fetched for it and not yet handed over
    /// (the pause bumps its op version): that is fetched again on resume. So pauses are kept
    /// for what they are needed for, a partition whose worker does not keep up; a sink full
    /// as a whole stops reading instead ([`reading_stopped`](Self::reading_stopped)).
    pub(crate) fn resume<C: Consumer<X>, X: rdkafka::consumer::ConsumerContext>(
        &mut self,
        consumer: &C,
    ) {
        if self.checked.elapsed() < RESUME_CHECK {
            return;
        }
        self.checked = Instant::now();
        self.look(self.checked);
        if self.paused == 0 || self.budget.used() > self.resume_level() {
            return;
        }
        let half = self.share() / 2;
        let mut resumed = 0;
        for slot in &mut self.slots.all {
            if slot.paused && slot.held.load(Ordering::Relaxed) <= half {
                slot.paused = false;
                resumed += 1;
                let _ = consumer.resume(&one(&slot.topic, slot.partition));
            }
        }
        self.paused -= resumed;
        self.counts.resumed(resumed as u64);
    }
}

#[cfg(test)]
mod tests;
