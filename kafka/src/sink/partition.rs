//! One partition's worker: its messages → rows → its channel, the Kafka offset as each row's
//! offset token.
//!
//! It takes whole [`Batch`]es from the poll thread, whose row buffer already holds each
//! message as its row, and splits each in one call ([`Batch::split`]: each row checked in
//! place, the rows normalized as the layout says, the messages that are no row as dead letters
//! with their reasons); it sends the dead letters and appends the buffer itself
//! ([`RawRows::from_ndjson_bytes`]), one append per batch. Offsets have gaps (transaction markers, compaction, dead-lettered messages), so every
//! row carries its own token, kept as runs of consecutive offsets ([`RawRows`] into [`Channel::append`]);
//! the committed token is always the offset of a row in the table. The batches stay charged to
//! the sink's budget until their rows are admitted by the SDK, whose own budget holds them from
//! then on. A message at or before the last offset this worker saw (or the channel's committed
//! token at open) is skipped: whatever Kafka delivers again, the table gets each offset once. A
//! message that cannot be a row goes to the dead-letter topic (or is skipped and counted) and
//! never stops the partition.
//!
//! Its commits come from the SDK's push ([`Channel::watch_committed`], followed in
//! `commits.rs`): the counters, the commit latency and Kafka's group offset move when the
//! committed token does, the Kafka commits coalesced.
//!
//! When the offset after the committed token is gone from the partition (retention deleted it
//! before it landed: librdkafka resets to the log start and reports the partition, see
//! `consumer.rs`), the first message read says which offsets were lost; the worker logs them
//! once, counts them (`lost_to_retention` in the report) and goes on.
//!
//! With `--value-format` a batch may wait on the Schema Registry (`registry.rs`: a registry that
//! cannot answer for now is retried until it does; its messages are neither skipped nor
//! dead-lettered). The stop is watched during that wait: when it comes, the waiting batch is
//! dropped unappended, and nothing after it is appended either (the offset token never passes an
//! unloaded message); the hand-over follows at once and the next owner reads the batch again
//! from the committed token. During the hand-over's own drain the stop has come already, so a
//! batch that would have to wait for the registry (a schema not cached yet) is left to the next
//! owner the same way: a hand-over never waits on the registry.
//!
//! It ends in one of four ways: told to stop (a revoke: drain what was fetched, then
//! [`Channel::hand_over`], or just let go when the assignment was lost), fenced (another writer
//! opened the channel: it stops at once and asks the consumer to rejoin the group, whose next
//! assignment opens the channel afresh), failed (the channel failed for good: likewise), or
//! refused by the Schema Registry (it refuses the sink's credentials: [`End::Failed`], and the
//! sink stops naming the fix).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use snowpipe_streaming::{Channel, RawRows, RowErrorSummary};
use tokio::sync::{mpsc, oneshot};

use crate::connector::table_columns::TableCheck;
use crate::lock::lock;
use crate::ops::metrics::PartitionMetrics;
use crate::rows::batch::{check_rows, Batch, Letter, Split};
use crate::rows::record::RowOptions;
use crate::rows::value_format::Decoder;
use crate::rows::{KafkaOffset, TopicPartition};
use crate::sink::commits::{CommittedWatch, InFlight};
use crate::sink::dead_letter::DeadLetters;
use crate::sink::stats::PartitionStats;
use crate::source::consumer::{Resets, ThreadCmd};

/// Most batches appended at once.
const BATCHES: usize = 64;

/// How a worker ended.
#[derive(Debug)]
pub(crate) enum End {
    /// Handed over; the committed offset, if any.
    HandedOver(Option<KafkaOffset>),
    /// Another writer has the channel, or it failed for good: the consumer rejoins the group.
    Lost,
    /// A problem only the operator can fix (the Schema Registry refuses the sink's
    /// credentials): the sink stops with this reason. Nothing of the batch was appended.
    Failed(String),
}

/// Why appending stopped short.
pub(super) enum Halt {
    /// The worker ends so.
    End(End),
    /// The stop came (`true`: the assignment was lost) while a batch waited on the Schema
    /// Registry: that batch, and everything after it, is left unappended.
    Stopped(bool),
}

/// The worker's stop signal, remembered once it came (so that it can be waited on again).
struct Stop {
    rx: oneshot::Receiver<bool>,
    lost: Option<bool>,
}

impl Stop {
    fn new(rx: oneshot::Receiver<bool>) -> Self {
        Self { rx, lost: None }
    }

    /// Resolves when the stop has come: whether the assignment was lost (a sender dropped
    /// without a word counts as lost).
    ///
    /// # Cancellation
    /// Cancel-safe: dropped before the stop comes, it loses nothing.
    async fn wait(&mut self) -> bool {
        if let Some(lost) = self.lost {
            return lost;
        }
        let lost = (&mut self.rx).await.unwrap_or(true);
        self.lost = Some(lost);
        lost
    }
}

/// What a worker needs.
pub(crate) struct Worker {
    /// Its partition.
    pub part: TopicPartition,
    /// Which assignment of the partition it serves (`batch::Inbox::id`).
    pub assignment: u64,
    /// Its channel, open.
    pub channel: Channel,
    /// Its messages, in batches from the poll thread.
    pub batches: mpsc::UnboundedReceiver<Batch>,
    /// How rows are made.
    pub rows: RowOptions,
    /// Decodes Schema Registry values into rows (`--value-format`; `None`: JSON values, which
    /// the poll thread already wrote as rows).
    pub decoder: Option<Arc<Decoder>>,
    /// Client-side validation of its table's rows: the columns and their evolution (the rows
    /// are checked where the batch is split, `rows/batch/split.rs`).
    pub check: Option<Arc<TableCheck>>,
    /// Where messages that are not rows go.
    pub dead_letters: Arc<DeadLetters>,
    /// Its counters.
    pub stats: Arc<PartitionStats>,
    /// Its metrics.
    pub metrics: PartitionMetrics,
    /// To the poll thread: Kafka commits and rejoins.
    pub commands: std_mpsc::Sender<ThreadCmd>,
    /// Partitions librdkafka reset to the log start (their start offset was gone).
    pub resets: Resets,
    /// When anything was last consumed (ms since `epoch`).
    pub consumed_at: Arc<AtomicU64>,
    /// The run's start.
    pub epoch: Instant,
    /// How long a hand-over may wait for the commit.
    pub hand_over_timeout: Duration,
}

impl Worker {
    /// Runs until revoked (`stop`: `true` when the assignment was lost), fenced or failed.
    pub(crate) async fn run(mut self, stop: oneshot::Receiver<bool>) -> End {
        let mut stop = Stop::new(stop);
        let (mut commits, committed) = CommittedWatch::new(
            &self.channel,
            self.part.clone(),
            Arc::clone(&self.stats),
            self.metrics.clone(),
            self.commands.clone(),
        );
        let mut last = committed.unwrap_or(KafkaOffset::BEFORE_FIRST);
        // Any reset reported before this assignment belongs to an earlier one.
        lock(&self.resets).remove(&self.part);
        let mut opened = Some(last);
        // In the partition's span (topic, partition, channel: `Workers::start`).
        tracing::info!(
            committed_offset = last.get(),
            "partition assigned: writing from offset {}",
            last.next()
        );
        self.stats.committed.store(last.get(), Ordering::Relaxed);
        self.stats.appended.fetch_max(last.get(), Ordering::Relaxed);
        self.stats.seen.fetch_max(last.get(), Ordering::Relaxed);
        let mut sent = InFlight::default();
        // The status before subscribing is the baseline: rows rejected before this assignment
        // (counted by an earlier one, or by another writer) are never counted by a catch-up.
        let status = self.channel.status();
        lock(&self.stats.row_errors).set_baseline(&status);
        let mut errors = self.channel.row_errors();
        let mut buf = Vec::with_capacity(BATCHES);
        loop {
            tokio::select! {
                biased;
                lost = stop.wait() => {
                    return self.finish(lost, true, last, &mut buf, errors, &mut stop).await;
                }
                n = self.batches.recv_many(&mut buf, BATCHES) => {
                    if n == 0 {
                        // The consumer is gone without a revoke: hand over.
                        return self.finish(false, true, last, &mut buf, errors, &mut stop).await;
                    }
                    let first = buf.iter().find(|b| !b.is_empty()).map(|b| b.offset(0));
                    if let (Some(committed), Some(first)) = (opened, first) {
                        opened = None;
                        self.check_start(committed, first);
                    }
                    match self.append(&mut buf, &mut last, &mut sent, &mut stop).await {
                        Ok(()) => {}
                        Err(Halt::End(end)) => return end,
                        Err(Halt::Stopped(lost)) => {
                            return self.finish(lost, false, last, &mut buf, errors, &mut stop).await;
                        }
                    }
                }
                () = commits.changed() => commits.update(&mut sent),
                event = errors.recv(), if !errors.is_ended() => {
                    if let Some(e) = event {
                        self.row_errors(&e).await;
                    }
                }
            }
        }
    }

    /// Appends the rows of `buf` (emptying it): skips what is already in, dead-letters what
    /// is not a row. Marked busy meanwhile, so `--until-idle` never stops mid-batch. A batch
    /// that waits on the Schema Registry watches `stop` ([`Halt::Stopped`]; `buf` is emptied
    /// then too).
    async fn append(
        &self,
        buf: &mut Vec<Batch>,
        last: &mut KafkaOffset,
        sent: &mut InFlight,
        stop: &mut Stop,
    ) -> Result<(), Halt> {
        self.stats.busy.store(true, Ordering::Relaxed);
        self.touch();
        let mut r = Ok(());
        for batch in buf.drain(..) {
            r = self.append_one(batch, last, sent, stop).await;
            if r.is_err() {
                break;
            }
        }
        self.touch();
        self.stats.busy.store(false, Ordering::Relaxed);
        r
    }

    /// The first message of the assignment: when librdkafka reset the partition (its start
    /// offset was out of range), say what that cost.
    fn check_start(&self, committed: KafkaOffset, first: KafkaOffset) {
        if !lock(&self.resets).remove(&self.part) {
            return;
        }
        let (committed, first) = (committed.get(), first.get());
        let (topic, partition) = (&self.part.topic, self.part.partition);
        if first > committed + 1 {
            let lost = first - committed - 1;
            self.stats
                .lost_to_retention
                .fetch_add(lost.unsigned_abs(), Ordering::Relaxed);
            self.metrics
                .lost_to_retention
                .increment(lost.unsigned_abs());
            tracing::error!(
                %topic,
                partition,
                "offsets {}..={} were deleted by the broker (retention) before they landed in \
                 Snowflake: up to {lost} messages are lost; resuming at the log start, offset \
                 {first}. Keep the topic's retention longer than the sink can fall behind.",
                committed + 1,
                first - 1,
            );
        } else {
            tracing::warn!(
                %topic,
                partition,
                "the partition's start offset {} was out of range and reset to the log start \
                 ({first}): the topic was recreated or truncated. Offsets up to the committed \
                 token {committed} are taken as landed and skipped; use a new --channel-prefix \
                 to load the new topic from its start.",
                committed + 1,
            );
        }
    }

    /// Microseconds since the run's `epoch`, plus one (so that 0 can mean "never"), for
    /// [`PartitionStats::appended_between`].
    fn now_us(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).map_or(u64::MAX, |us| us.saturating_add(1))
    }

    /// Records that this worker just consumed.
    fn touch(&self) {
        self.consumed_at.store(
            u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// One batch: split into its rows (each checked in place, normalized as the layout says,
    /// checked against the table under client-side validation) and its dead letters
    /// ([`Batch::split_checked`]), the dead letters sent, the rows appended as they are
    /// (`RawRows::from_ndjson_bytes`).
    async fn append_one(
        &self,
        batch: Batch,
        last: &mut KafkaOffset,
        sent: &mut InFlight,
        stop: &mut Stop,
    ) -> Result<(), Halt> {
        if let Some(decoder) = &self.decoder {
            return self.append_decoded(decoder, batch, last, sent, stop).await;
        }
        let check = self.check.as_deref();
        let split = batch.split_checked(&self.part, last, &self.rows, check);
        let Split { rows, dead } = split.await;
        self.stats.seen.fetch_max(last.get(), Ordering::Relaxed);
        self.dead_letter(dead).await;
        let (ndjson, tokens, charge) = rows.into_parts();
        let appended = self.send_rows(ndjson, tokens, last, sent).await;
        // The rows are the SDK's now (within its budget): release the batch's charge.
        drop(charge);
        appended.map_err(Halt::End)
    }

    /// One batch of Schema Registry values: decoded into rows by `decoder` (which may wait on
    /// the registry), what is not a row dead-lettered with its reason, the rows appended. The
    /// batch (and its charge) is held until the SDK has the rows. The stop ends a wait on the
    /// registry ([`Halt::Stopped`]: nothing of the batch is appended or dead-lettered); a
    /// batch whose schemas are cached never waits, so it is appended even once the stop came.
    async fn append_decoded(
        &self,
        decoder: &Decoder,
        batch: Batch,
        last: &mut KafkaOffset,
        sent: &mut InFlight,
        stop: &mut Stop,
    ) -> Result<(), Halt> {
        let decoded = tokio::select! {
            // The batch first: what needs no wait is decoded whatever the stop.
            biased;
            decoded = decoder.rows(&batch, &self.part, self.rows, last) => decoded,
            lost = stop.wait() => {
                let (topic, partition) = (&self.part.topic, self.part.partition);
                tracing::info!(
                    %topic, partition,
                    "stopped while waiting on the Schema Registry: the rest of the partition is \
                     left unappended to its next owner"
                );
                return Err(Halt::Stopped(lost));
            }
        };
        let decoded = match decoded {
            Ok(decoded) => decoded,
            Err(why) => return Err(Halt::End(End::Failed(why))),
        };
        self.stats.seen.fetch_max(last.get(), Ordering::Relaxed);
        let dead = decoded.dead.into_iter();
        let dead = dead.map(|(i, why)| batch.letter(&self.part, i, Some(why), &self.rows));
        self.dead_letter(dead.collect()).await;
        let layout = self.rows.layout;
        let mut ndjson: bytes::Bytes = layout
            .normalized(&decoded.ndjson)
            .unwrap_or(decoded.ndjson)
            .into();
        let mut tokens = decoded.tokens;
        if let Some(check) = &self.check {
            let rows = (&mut ndjson, &mut tokens);
            let refused = check_rows(check.as_ref(), layout, rows, &decoded.types).await;
            self.dead_letter(batch.letters(refused)).await;
        }
        let appended = self.send_rows(ndjson, tokens, last, sent).await;
        drop(batch);
        appended.map_err(Halt::End)
    }

    /// Appends `ndjson` (one row per line, with offset `tokens`) to the channel and counts it.
    pub(super) async fn send_rows(
        &self,
        ndjson: bytes::Bytes,
        tokens: Vec<u64>,
        last: &mut KafkaOffset,
        sent: &mut InFlight,
    ) -> Result<(), End> {
        let Some(&end) = tokens.last() else {
            return Ok(());
        };
        let (n, size) = (tokens.len() as u64, ndjson.len() as u64);
        lock(&self.stats.appended_runs).appended(&tokens);
        let raw = match RawRows::from_ndjson_bytes(ndjson, tokens) {
            Ok(raw) => raw,
            Err(e) => return Err(self.lost(&e)),
        };
        let started = self.now_us();
        let (rows, positions) = raw.into_append();
        let appended = self.channel.append(rows, positions).await;
        match appended {
            Ok(()) => {
                let end = KafkaOffset::from_token(end).unwrap_or(*last);
                self.stats.rows.fetch_add(n, Ordering::Relaxed);
                self.metrics.rows.increment(n);
                self.metrics.bytes.increment(size);
                self.stats.appended.store(end.get(), Ordering::Relaxed);
                self.stats.appended_between(started, self.now_us());
                sent.appended(end);
                Ok(())
            }
            Err(e) => Err(self.lost(&e)),
        }
    }

    /// Sends `letters` to the dead letters, each with its reason (delivered together: a
    /// poison burst is one producer round trip, not one each).
    pub(super) async fn dead_letter(&self, letters: Vec<Letter>) {
        if letters.is_empty() {
            return;
        }
        let n = letters.len() as u64;
        self.stats.dead.fetch_add(n, Ordering::Relaxed);
        self.metrics.dead_letters.increment(n);
        let letters = letters.iter().map(|letter| async move {
            let headers = letter.headers();
            let record = letter.record(&self.part, &headers);
            self.dead_letters.send(&record, &letter.reason).await;
        });
        futures_util::future::join_all(letters).await;
    }

    /// Counts rows the server rejected (the SDK logs each report too; `RowErrors` folds a
    /// lag into one report, so none is missed), and dead-letters the one it names.
    async fn row_errors(&self, e: &snowpipe_streaming::RowErrorEvent) {
        let (part, stats) = (&self.part, &self.stats);
        row_errors(part, stats, &self.metrics, &self.dead_letters, e).await;
    }

    /// The channel failed: another writer has it (or it failed for good). Stop, and let the
    /// group assign the partition anew.
    fn lost(&self, e: &snowpipe_streaming::Error) -> End {
        let (topic, partition) = (&self.part.topic, self.part.partition);
        if e.is_ownership_lost() {
            self.metrics.fenced.increment(1);
            tracing::warn!(%topic, partition, "{e}; this instance stops writing the partition");
        } else {
            tracing::error!(%topic, partition, "{e}; this instance stops writing the partition");
        }
        let _ = self
            .commands
            .send(ThreadCmd::Rejoin(self.part.clone(), self.assignment));
        End::Lost
    }

    /// Hands the channel over (`lost`: just lets it go); with `drain`, what was fetched is
    /// appended first (a batch that would wait on the registry, and what follows it, is left).
    async fn finish(
        mut self,
        lost: bool,
        drain: bool,
        mut last: KafkaOffset,
        buf: &mut Vec<Batch>,
        mut errors: snowpipe_streaming::RowErrors,
        stop: &mut Stop,
    ) -> End {
        let mut sent = InFlight::default();
        if !lost && drain {
            // What was fetched before the revoke is delivered before the hand-over.
            while let Ok(b) = self.batches.try_recv() {
                buf.push(b);
            }
            match self.append(buf, &mut last, &mut sent, stop).await {
                Ok(()) | Err(Halt::Stopped(_)) => {}
                Err(Halt::End(end)) => return end,
            }
        }
        let timeout = if lost {
            Duration::from_millis(500)
        } else {
            self.hand_over_timeout
        };
        let (stats, metrics) = (Arc::clone(&self.stats), self.metrics.clone());
        let handed = self.channel.hand_over(timeout).await;
        // Closing polls the status once more: row errors of the last batches arrive now.
        while let Some(e) = errors.try_recv() {
            row_errors(&self.part, &stats, &metrics, &self.dead_letters, &e).await;
        }
        match handed {
            Ok(committed) => {
                let committed = KafkaOffset::committed(committed.as_ref());
                if let Some(c) = committed {
                    stats.committed.store(c.get(), Ordering::Relaxed);
                }
                tracing::info!(
                    committed_offset = committed.map_or(-1, KafkaOffset::get),
                    appended_offset = last.get(),
                    "partition handed over"
                );
                End::HandedOver(committed)
            }
            Err(e) if lost || e.is_ownership_lost() => End::HandedOver(None),
            Err(e) => {
                tracing::warn!("hand-over: {e}; the next owner replays what was not committed");
                End::HandedOver(None)
            }
        }
    }
}

/// Rows the server rejected, reported by `e`: located (`rejected.rs`), logged with their
/// partition and offset, listed and counted; the one located is dead-lettered when there is
/// a dead-letter topic (read again from Kafka, `refetch.rs`) and counted.
async fn row_errors(
    part: &TopicPartition,
    stats: &PartitionStats,
    metrics: &PartitionMetrics,
    dead_letters: &DeadLetters,
    e: &snowpipe_streaming::RowErrorEvent,
) {
    let at = crate::sink::rejected::locate(e, &lock(&stats.appended_runs));
    let (topic, partition) = (&part.topic, part.partition);
    let message = e.last_error_message.as_deref().unwrap_or("(no message)");
    let (first, last) = at.request.map_or((-1, -1), |(a, b)| (a, b));
    match at.offset {
        Some(offset) => {
            let mut listed = lock(&stats.rejected_offsets);
            if listed.len() < crate::sink::rejected::MOST_LISTED {
                listed.push(offset);
            }
            tracing::warn!(
                %topic, partition, offset, rejected = e.new_errors,
                request_first_offset = first, request_last_offset = last,
                "Snowflake rejected the row of the message at offset {offset}: {message}; the \
                 partition goes on (fix the table's columns or the producer)"
            );
        }
        None => tracing::warn!(
            %topic, partition, rejected = e.new_errors,
            request_first_offset = first, request_last_offset = last,
            "Snowflake rejected {} row(s) among offsets {first}..={last}: {message}; the \
             partition goes on (fix the table's columns or the producer)",
            e.new_errors
        ),
    }
    count_row_errors(stats, metrics, |r| r.record(e));
    if let Some(offset) = at.offset {
        if dead_letters
            .send_rejected(topic, partition, offset, message)
            .await
        {
            stats.rejected_dead.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Updates the partition's row-error summary with `update` and counts what it added in the
/// metrics.
fn count_row_errors(
    stats: &PartitionStats,
    metrics: &PartitionMetrics,
    update: impl FnOnce(&mut RowErrorSummary),
) {
    let mut errors = lock(&stats.row_errors);
    let before = errors.count();
    update(&mut errors);
    metrics.row_errors.increment(errors.count() - before);
}
