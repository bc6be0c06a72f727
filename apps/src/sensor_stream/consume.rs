//! The consumer: one channel per shard, the JetStream stream sequence as the offset token.
//!
//! A session of one shard:
//!
//! 1. open the channel `<STREAM>_<shard>` and read its committed token `c` (a stream sequence);
//! 2. read the shard's subject with an ordered (ephemeral, ack-less) consumer from sequence
//!    `c + 1`: the broker keeps no consumer state we depend on;
//! 3. decode what is ready (one broker batch, at most `batch_max` messages, and as many as
//!    `--batch-max-bytes` holds at the size a message is planned at, capped under what the server
//!    buffers for a client: [`broker::planned_message_size`], [`broker::pull_size`]); a message that
//!    cannot become a row (`reading.rs`, or values past the table's columns: `columns.rs`) is
//!    dead-lettered (`dead_letter.rs`: published and acknowledged
//!    before anything after it is appended) and skipped;
//! 4. append the batch's rows (one append), each with its stream sequence as its offset token,
//!    except that a row followed by dead letters in the batch takes the last of their sequences:
//!    committing it moves the channel past them too;
//! 5. when the committed token advances, the rows up to it are in the table (or rejected by the
//!    server: row errors, counted from the SDK's `Channel::row_errors`): record their publish →
//!    committed latency.
//!
//! Killed anywhere (SIGKILL included), the next session resumes at step 1: rows appended but
//! not committed are discarded by the reopen and read again from the broker, so none is lost
//! or stored twice; bad messages read again are found already dead-lettered and skipped (no
//! second copy). A shard never stops on a bad message. When the broker restarts, the ordered
//! consumer (or, failing that, a new one after the last sequence handled) carries on; the
//! channel is untouched.
//!
//! A pull that brings nothing for 30 s while the broker holds more (a server that cut the
//! client as a slow consumer lost what it had sent) is read again with a warning, in pulls of
//! half the size.
//!
//! A shard's failed session is retried with a new one, except after `OwnershipLost` (another
//! process opened the shard's channel): that is final, so the shard stops without reopening
//! and [`consume_all`] returns it, dropping the other shards' channels.

use snowpipe_streaming::{Positions, Rows};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use async_nats::jetstream::stream::Stream;
use futures_util::StreamExt;
use snowpipe_streaming::{
    Channel, OffsetToken, RowErrorEvent, RowErrorSummary, RowErrors, StreamingIngestClient,
};
use tokio::sync::watch;

use crate::sensor_stream::broker;
use crate::sensor_stream::columns;
use crate::sensor_stream::dead_letter::{DeadLetters, Letter, Outcome};
use crate::sensor_stream::idle_board::IdleBoard;
use crate::sensor_stream::latency::{Histogram, Pending};
use crate::sensor_stream::reading::{BadRecord, Reading};

/// Where rows go and how they are read.
#[derive(Debug, Clone)]
pub(super) struct ConsumeOptions {
    /// Stream name; channels are `<stream>_<shard>`.
    pub stream: String,
    /// Number of shards.
    pub shards: u32,
    /// Destination database.
    pub database: String,
    /// Destination schema.
    pub schema: String,
    /// Destination pipe.
    pub pipe: String,
    /// Most rows per append (one broker batch).
    pub batch_max: usize,
    /// Most bytes of broker messages held at once ([`broker::pull_size`]).
    pub batch_max_bytes: usize,
    /// When to stop.
    pub until: Until,
    /// Consecutive failed sessions (without progress) before giving up.
    pub max_failures: u32,
}

/// When a consumer stops.
#[derive(Debug, Clone)]
pub(super) enum Until {
    /// Never (until Ctrl-C).
    Forever,
    /// After this long with nothing new and everything committed, and the broker holding
    /// nothing past what was read (`Session::done`).
    Idle(Duration),
    /// Once each shard is handled (committed or dead-lettered) up to its entry (set when the
    /// publisher is done).
    Reached(watch::Receiver<Option<Vec<u64>>>),
}

/// Live counters of one shard.
#[derive(Debug, Default)]
pub(super) struct ShardStats {
    /// Rows appended by this process (rows appended again after a crash count again).
    pub appended: AtomicU64,
    /// Rows this process saw committed.
    pub committed_rows: AtomicU64,
    /// The channel's committed stream sequence.
    pub committed_seq: AtomicU64,
    /// The shard's last stream sequence, as last read by the progress display.
    pub last_seq: AtomicU64,
    /// Sessions (channel opens).
    pub sessions: AtomicU64,
    /// Every stream sequence up to this one is committed or dead-lettered (what the lag counts
    /// from: the committed token stays behind bad messages that no row follows yet).
    pub through_seq: AtomicU64,
    /// Bad messages this process stored in the dead-letter stream.
    pub dead_lettered: AtomicU64,
    /// Bad messages read again (after a restart) that were already dead-lettered.
    pub already_dead_lettered: AtomicU64,
    /// Rows the server rejected, as reported to this process.
    pub row_errors: Mutex<RowErrorSummary>,
    /// Publish → committed latency of every row seen committed.
    pub latency: Mutex<Histogram>,
    /// The same since the progress display last took it.
    pub window: Mutex<Histogram>,
}

/// Counters of every shard.
#[derive(Debug)]
pub(super) struct ConsumeStats {
    /// One per shard.
    pub shards: Vec<ShardStats>,
}

impl ConsumeStats {
    /// Counters for `shards` shards.
    pub(super) fn new(shards: u32) -> Self {
        ConsumeStats {
            shards: (0..shards).map(|_| ShardStats::default()).collect(),
        }
    }
}

/// The channel of `shard`.
pub(super) fn channel_name(stream: &str, shard: u32) -> String {
    format!("{stream}_{shard}")
}

/// The one place rows go into a channel: one append of one broker batch, every row with its
/// own offset token ([`Reading::token`]).
async fn append_batch(channel: &Channel, rows: &[Reading]) -> Result<()> {
    // Each row carries its own token: the sequences of one shard increase but are not dense,
    // and per-row tokens keep every request exact whatever its size.
    channel
        .append(
            Rows::serde(rows),
            Positions::per_row(rows.iter().map(|r| OffsetToken::from(r.token))),
        )
        .await
        .with_context(|| format!("append to channel {} failed", channel.name()))
}

/// Consumes every shard until `opts.until` (or `stop`), one task per shard; messages that
/// cannot become rows go to `dead_letters`.
///
/// # Errors
/// The first shard that keeps failing or whose channel another writer took over
/// (`OwnershipLost`); the other shards' tasks (and channels) are then dropped, not reopened.
///
/// # Cancellation
/// Dropping the future stops consuming; the next run resumes after the committed tokens.
pub(super) async fn consume_all(
    client: &StreamingIngestClient,
    stream: &Stream,
    dead_letters: &DeadLetters,
    opts: &ConsumeOptions,
    stats: Arc<ConsumeStats>,
    stop: watch::Receiver<bool>,
) -> Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    let board = Arc::new(IdleBoard::default());
    for shard in 0..opts.shards {
        let source = Source {
            client: client.clone(),
            stream: stream.clone(),
            dead_letters: dead_letters.clone(),
            board: board.clone(),
        };
        let (opts, stats, stop) = (opts.clone(), stats.clone(), stop.clone());
        tasks.spawn(async move { consume_shard(&source, shard, &opts, &stats, stop).await });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.context("a shard's consumer panicked")??;
    }
    Ok(())
}

/// What a shard's consumer reads from and writes to.
struct Source {
    client: StreamingIngestClient,
    stream: Stream,
    dead_letters: DeadLetters,
    /// Which shards' readers are idle (`--until-idle`): one stops only when all are.
    board: Arc<IdleBoard>,
}

/// Consumes one shard, opening a new session after a failure (never after `OwnershipLost`).
async fn consume_shard(
    source: &Source,
    shard: u32,
    opts: &ConsumeOptions,
    stats: &ConsumeStats,
    stop: watch::Receiver<bool>,
) -> Result<()> {
    let s = &stats.shards[shard as usize];
    let mut failures = 0;
    loop {
        let before = s.through_seq.load(Ordering::Relaxed);
        let ended = session(source, shard, opts, s, stop.clone()).await;
        source.board.leave(&shard.to_string()); // ended: another may be idle alone
        match ended {
            Ok(()) => return Ok(()),
            // Another writer owns the shard's channel now: final, never reopened.
            Err(e) if crate::common::is_ownership_lost(&e) => {
                return Err(e).with_context(|| format!("shard {shard} stopped"))
            }
            Err(e) if failures < opts.max_failures && !*stop.borrow() => {
                if s.through_seq.load(Ordering::Relaxed) > before {
                    failures = 0;
                }
                failures += 1;
                tracing::warn!("shard {shard}: {e:#}; reopening (attempt {failures})");
                tokio::time::sleep(Duration::from_millis(250 * u64::from(failures.min(8)))).await;
            }
            Err(e) => return Err(e).with_context(|| format!("shard {shard} failed")),
        }
    }
}

/// One session of a shard (see the module docs): open the channel, then read, append and
/// follow commits until `opts.until` or `stop`, then drain and close.
async fn session(
    source: &Source,
    shard: u32,
    opts: &ConsumeOptions,
    s: &ShardStats,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let key = shard.to_string();
    let mut session = Session::open(source, shard, opts, s).await?;
    let mut watch = session.channel.watch_committed();
    let mut messages = session.subscribe().await?;
    let mut until = opts.until.clone();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let mut at_rest = false; // idle, the broker agreeing: waiting for the other shards
    loop {
        let mut resubscribe = false;
        tokio::select! {
            chunk = messages.next() => {
                let Some(chunk) = chunk else { bail!("the broker ended the consumer of {}", broker::subject(shard)) };
                at_rest = source.board.note(&key, false);
                resubscribe = session.take_chunk(chunk).await?;
            }
            changed = watch.changed() => {
                if changed.is_err() {
                    return Err(session.stopped().await);
                }
                let now_seq = broker::committed_seq(watch.borrow_and_update().clone(), &session.name)?;
                session.committed_to(now_seq);
            }
            event = session.errors.recv(), if !session.errors.is_ended() => {
                note_row_errors(event, s);
            }
            _ = tick.tick() => {
                if *stop.borrow_and_update() || (at_rest && source.board.note(&key, true)) {
                    break;
                }
                match session.done(&mut until).await? {
                    // Idle: only once every shard's reader is (`kinesis::idle`).
                    Quiet::Done if !matches!(until, Until::Idle(_)) || source.board.note(&key, true) => break,
                    Quiet::Done => at_rest = true,
                    Quiet::Behind => resubscribe = true,
                    Quiet::No => {}
                }
            }
        }
        if resubscribe {
            tokio::time::sleep(Duration::from_millis(200)).await;
            messages = session.subscribe().await?;
        }
    }
    session.finish().await
}

/// How long a pull may bring nothing while the broker holds more: the pull's expiry (30 s).
const STALL_AFTER: Duration = Duration::from_secs(30);

/// What [`Session::done`] found.
enum Quiet {
    /// `until` is reached.
    Done,
    /// Not yet.
    No,
    /// Quiet for the idle window while the broker holds more: read the shard again.
    Behind,
}

/// The state a session's loop shares: the shard's channel and how far it got.
struct Session<'a> {
    source: &'a Source,
    opts: &'a ConsumeOptions,
    s: &'a ShardStats,
    shard: u32,
    name: String,
    channel: Channel,
    /// The channel's row-error reports, and whether they may still come.
    errors: RowErrors,
    /// The channel's committed stream sequence.
    committed: u64,
    /// The last stream sequence handled: appended as a row, or dead-lettered.
    read: u64,
    /// The last offset token appended.
    last_appended: u64,
    /// Appends not yet seen committed, with their rows' event times.
    sent: Pending<u64>,
    /// When a row was last appended or a message dead-lettered.
    last_new: Instant,
    /// When a message last came, or the broker was last asked whether the pull stalled; and
    /// how many pulls stalled (each halves the next pulls: a server buffering less than one).
    quiet_since: Instant,
    stalls: u32,
}

impl<'a> Session<'a> {
    /// Opens the shard's channel and reads its committed token.
    async fn open(
        source: &'a Source,
        shard: u32,
        opts: &'a ConsumeOptions,
        s: &'a ShardStats,
    ) -> Result<Session<'a>> {
        let name = channel_name(&opts.stream, shard);
        let channel = source
            .client
            .pipe(&opts.database, &opts.schema, &opts.pipe)
            .open_channel(&name)
            .await
            .with_context(|| {
                format!(
                    "cannot open channel {name} on pipe {}.{}.{}",
                    opts.database, opts.schema, opts.pipe
                )
            })?;
        // Rows the server rejects still advance the committed token: count them (subscribed
        // before anything is sent, so no report is missed).
        let errors = channel.row_errors();
        s.sessions.fetch_add(1, Ordering::Relaxed);
        let committed = broker::committed_seq(channel.latest_committed_offset_token(), &name)?;
        s.committed_seq.store(committed, Ordering::Relaxed);
        s.through_seq.fetch_max(committed, Ordering::Relaxed);
        Ok(Session {
            source,
            opts,
            s,
            shard,
            name,
            channel,
            errors,
            committed,
            read: committed,
            last_appended: committed,
            sent: Pending::default(),
            last_new: Instant::now(),
            quiet_since: Instant::now(),
            stalls: 0,
        })
    }

    /// Reads the shard from after the last sequence handled, in chunks of what is ready.
    async fn subscribe(
        &self,
    ) -> Result<futures_util::stream::ReadyChunks<async_nats::jetstream::consumer::pull::Ordered>>
    {
        let max_payload = self.source.dead_letters.max_payload();
        let planned = broker::planned_size_of(&self.source.stream, max_payload).await;
        let pull = broker::pull_size(self.opts.batch_max, self.opts.batch_max_bytes, planned)
            .checked_shr(self.stalls)
            .unwrap_or(0)
            .max(1);
        Ok(broker::shard_messages(
            &self.source.stream,
            self.shard,
            self.read + 1,
            false,
            Some(pull),
        )
        .await?
        .ready_chunks(pull))
    }

    /// Decodes one chunk of messages (dead-lettering the bad ones) and appends its rows;
    /// `true` when reading the broker failed and the shard must be read again.
    async fn take_chunk<E: std::fmt::Display>(
        &mut self,
        chunk: Vec<Result<async_nats::jetstream::Message, E>>,
    ) -> Result<bool> {
        let (shard, s) = (self.shard, self.s);
        let mut resubscribe = false;
        self.quiet_since = Instant::now();
        let mut rows: Vec<Reading> = Vec::with_capacity(chunk.len());
        let mut event_ms = Vec::with_capacity(chunk.len());
        for item in chunk {
            let message = match item {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(
                        "shard {shard}: reading the broker failed ({e}); resubscribing after {}",
                        self.read
                    );
                    resubscribe = true;
                    break;
                }
            };
            let info = message.info().map_err(|e| {
                anyhow::anyhow!(
                    "a message of {} has no metadata: {e}",
                    broker::subject(shard)
                )
            })?;
            let seq = info.stream_sequence;
            let published_ms = (info.published.unix_timestamp_nanos() / 1_000_000) as i64;
            if seq <= self.read {
                continue; // delivered again after a consumer was recreated
            }
            // A value the table cannot hold is a dead letter too: the server would reject the
            // row after its token committed (`columns.rs`).
            let decoded = Reading::decode(&message.payload, shard, seq, published_ms)
                .and_then(|(row, ms)| columns::check(&row.measurement).map(|()| (row, ms)));
            match decoded {
                Ok((row, ms)) => {
                    rows.push(row);
                    event_ms.push(ms);
                }
                Err(bad) => {
                    let letter = Letter {
                        shard,
                        seq,
                        subject: message.subject.as_str(),
                        published_ms,
                        headers: message.headers.as_ref(),
                        payload: &message.payload,
                        reason: bad.reason(),
                    };
                    dead_letter(&self.source.dead_letters, &letter, &bad, s).await?;
                    // Committing the row before it now also moves past this message.
                    if let Some(row) = rows.last_mut() {
                        row.token = seq;
                    }
                    self.last_new = Instant::now();
                }
            }
            self.read = seq;
        }
        if let Some(last) = rows.last().map(|r| r.token) {
            append_batch(&self.channel, &rows).await?;
            s.appended.fetch_add(rows.len() as u64, Ordering::Relaxed);
            self.sent.push(last, event_ms);
            self.last_appended = last;
            self.last_new = Instant::now();
        }
        if self.sent.is_empty() {
            s.through_seq.fetch_max(self.read, Ordering::Relaxed);
        }
        Ok(resubscribe)
    }

    /// The channel's committed token moved to `now_seq`: records the commits it covers.
    fn committed_to(&mut self, now_seq: u64) {
        if now_seq > self.committed {
            self.committed = now_seq;
            let s = self.s;
            s.committed_seq.store(self.committed, Ordering::Relaxed);
            record_commits(&mut self.sent, self.committed, s);
            s.through_seq.fetch_max(
                if self.sent.is_empty() {
                    self.read
                } else {
                    self.committed
                },
                Ordering::Relaxed,
            );
        }
    }

    /// The error of a channel whose commits stopped: its own (say `OwnershipLost`) says more
    /// than "stopped".
    async fn stopped(&self) -> anyhow::Error {
        let name = &self.name;
        match self
            .channel
            .flush()
            .await
            .with_context(|| format!("channel {name} stopped"))
        {
            Err(e) => e,
            Ok(()) => anyhow::anyhow!("channel {name} stopped"),
        }
    }

    /// Whether `until` is reached. Idle is the broker's word, not the clock's alone: after the
    /// window with nothing new and everything committed, the shard's last stream sequence must
    /// be one already handled; a message the broker holds past it (a large pull still arriving,
    /// a consumer being recreated) restarts the window.
    ///
    /// A pull that stays quiet for the window while the broker holds more is stalled: the
    /// shard is read again after the last sequence handled ([`Quiet::Behind`]), with a
    /// warning. Whatever `until`, a pull quiet for [`STALL_AFTER`] is checked the same way.
    ///
    /// # Errors
    /// When the broker cannot say the shard's last sequence.
    async fn done(&mut self, until: &mut Until) -> Result<Quiet> {
        if let Until::Idle(d) = until {
            if !(self.sent.is_empty() && self.last_new.elapsed() >= *d) {
                return Ok(Quiet::No);
            }
            let quiet = self.last_new.elapsed();
            self.last_new = Instant::now();
            return Ok(if self.behind(quiet).await? {
                Quiet::Behind
            } else {
                Quiet::Done
            });
        }
        if self.quiet_since.elapsed() >= STALL_AFTER && self.behind(STALL_AFTER).await? {
            return Ok(Quiet::Behind);
        }
        Ok(match until {
            Until::Forever | Until::Idle(_) => Quiet::No,
            Until::Reached(targets) => {
                let reached = targets.borrow_and_update().as_ref().is_some_and(|t| {
                    self.read.max(self.committed) >= t[self.shard as usize] && self.sent.is_empty()
                });
                if reached {
                    Quiet::Done
                } else {
                    Quiet::No
                }
            }
        })
    }

    /// Whether the broker holds past what was read after `quiet` with nothing new (asked at
    /// most once per [`STALL_AFTER`] of quiet): then the pull stalled, and a warning says so.
    async fn behind(&mut self, quiet: Duration) -> Result<bool> {
        self.quiet_since = Instant::now();
        let (last, read, quiet) = (
            broker::last_seq(&self.source.stream, self.shard).await?,
            self.read,
            quiet.as_secs(),
        );
        if last > read {
            self.stalls += 1;
            tracing::warn!("shard {}: no message for {quiet} s though the broker holds up to {last} (read {read}): the pull stalled (a server that cut this client as a slow consumer logs \"Slow Consumer Detected\"); reading again after {read}, in pulls of half the bytes", self.shard);
        }
        Ok(last > read)
    }

    /// Stopping: what was appended is committed before the channel closes (Ctrl-C drains);
    /// then the row errors the close reported are counted.
    async fn finish(mut self) -> Result<()> {
        let (name, s) = (&self.name, self.s);
        if self.last_appended > self.committed {
            self.channel
                .wait_for_commit(
                    &OffsetToken::from(self.last_appended),
                    Duration::from_secs(60),
                )
                .await
                .with_context(|| format!("channel {name}: the last rows were not committed"))?;
            self.committed = self.last_appended;
            s.committed_seq.store(self.committed, Ordering::Relaxed);
            record_commits(&mut self.sent, self.committed, s);
        }
        s.through_seq.fetch_max(self.read, Ordering::Relaxed);
        self.channel
            .close()
            .await
            .with_context(|| format!("closing channel {name} failed"))?;
        // Closing polls the status once more: its row errors are queued by now.
        while let Some(e) = self.errors.try_recv() {
            note_row_errors(Some(e), s);
        }
        Ok(())
    }
}

/// Dead-letters one bad message (see `dead_letter.rs`); logs it once, when it is stored.
async fn dead_letter(
    dead_letters: &DeadLetters,
    letter: &Letter<'_>,
    bad: &BadRecord,
    s: &ShardStats,
) -> Result<()> {
    let (shard, seq) = (letter.shard, letter.seq);
    let outcome = dead_letters.send(letter).await.with_context(|| {
        format!(
            "stream sequence {seq} of {} is not a sensor reading ({bad}) and cannot be \
             dead-lettered; it is read again after a reopen",
            broker::subject(shard)
        )
    })?;
    match outcome {
        Outcome::Stored => {
            s.dead_lettered.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                "shard {shard}: stream sequence {seq} is not a sensor reading ({bad}); \
                 dead-lettered to {}",
                dead_letters.subject(shard)
            );
        }
        Outcome::AlreadyThere => {
            s.already_dead_lettered.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("shard {shard}: stream sequence {seq} was already dead-lettered");
        }
    }
    Ok(())
}

/// Counts one row-error report of the SDK (`None`: the channel's reports are over).
fn note_row_errors(event: Option<RowErrorEvent>, s: &ShardStats) {
    if let Some(e) = event {
        lock(&s.row_errors).record(&e);
    }
}

/// Takes the appends up to `committed` off `sent` and records their rows' latency.
fn record_commits(sent: &mut Pending<u64>, committed: u64, s: &ShardStats) {
    let event_ms = sent.take_committed(&committed);
    if event_ms.is_empty() {
        return;
    }
    let now = chrono::Utc::now().timestamp_millis();
    s.committed_rows
        .fetch_add(event_ms.len() as u64, Ordering::Relaxed);
    for histogram in [&s.latency, &s.window] {
        let mut h = lock(histogram);
        for ms in &event_ms {
            h.record(now - ms);
        }
    }
}

/// Locks a mutex even if a panicking holder poisoned it (the counters stay usable).
pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_pop_whole_appends_and_record_their_rows() {
        let s = ShardStats::default();
        let now = chrono::Utc::now().timestamp_millis();
        let mut sent: Pending<u64> = Pending::default();
        sent.push(5, vec![now - 1_000, now - 900]);
        sent.push(9, vec![now - 500]);
        record_commits(&mut sent, 4, &s);
        assert_eq!(sent.len(), 2);
        record_commits(&mut sent, 7, &s);
        assert_eq!(sent.len(), 1);
        assert_eq!(s.committed_rows.load(Ordering::Relaxed), 2);
        let p99 = lock(&s.latency).percentile(99.0).unwrap();
        assert!((1_000..1_500).contains(&p99), "{p99}");
        record_commits(&mut sent, 9, &s);
        assert!(sent.is_empty());
        assert_eq!(lock(&s.window).count(), 3);
    }
}
