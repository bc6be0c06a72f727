//! The queue → channel → delete loop, with its exactly-once rules.
//!
//! For each table, a session opens the channel and reads its committed offset token `c`:
//!
//! 1. rows with id `<= c` are already in the table: delete them from the queue;
//! 2. append the rows with id `> c` in order, each batch with offset tokens `first..=last` id;
//! 3. whenever the committed token advances, delete the rows up to it.
//!
//! A crash anywhere (SIGKILL included) loses only uncommitted in-flight data, which reopening
//! the channel discards on the server; the next session resumes at step 1. Errors from the
//! channel end the session the same way: the loop reopens it and resumes from the committed
//! token, so no row is lost and none is written twice. Except `OwnershipLost` (another process
//! opened the channel): reopening would fence that writer and both would write, so the table's
//! loop stops at once and [`stream_all`] drops the other tables' channels and returns it.
//!
//! A bad record never wedges a table: a queued record that cannot become a row
//! (see `validate.rs`) is moved to the queue file's `dead_letters` table in one transaction
//! with its removal from the queue ([`Queue::dead_letter`]), logged once at `warn` with its
//! table, id and reason (never its contents), counted in [`TableStats::dead_lettered`], and
//! the loop reads on. Its id is simply never sent; the offset tokens of the next batch skip it.
//! A crash before that transaction commits leaves the record queued, so the next run
//! dead-letters it; after the commit it is gone from the queue: it is in `dead_letters` exactly
//! once, and no run stops on it.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use async_trait::async_trait;
use bytes::Bytes;

use crate::ski_resort::model::Table;
use crate::ski_resort::queue::{Next, Queue};

/// Where rows go: the SDK in production, an in-memory fake in tests.
#[async_trait]
pub(super) trait Destination: Send + Sync + 'static {
    /// The channel type this destination opens.
    type Channel: DestinationChannel;

    /// Opens (or reopens) the table's channel. Reopening discards what a previous handle sent
    /// but had not committed.
    ///
    /// # Errors
    /// If the channel cannot be opened.
    async fn open(&self, table: Table) -> Result<Self::Channel>;
}

/// One open channel.
#[async_trait]
pub(super) trait DestinationChannel: Send + 'static {
    /// The latest committed offset token, as a queue id.
    ///
    /// # Errors
    /// If the token is not a number (the channel was fed by something else).
    fn committed(&self) -> Result<Option<u64>>;

    /// Appends NDJSON rows whose offsets run from `first` to `last`. Returns when the rows are
    /// accepted for sending, not when they are committed.
    ///
    /// # Errors
    /// If the channel rejects the rows or is no longer valid.
    async fn append(&mut self, ndjson: Bytes, first: u64, last: u64) -> Result<()>;

    /// Sends everything appended so far without waiting for the client lag.
    ///
    /// # Errors
    /// If sending fails.
    async fn flush(&mut self) -> Result<()>;

    /// Flushes and closes the channel.
    ///
    /// # Errors
    /// If the final flush fails.
    async fn close(self) -> Result<()>;
}

/// Tuning of the streamer.
#[derive(Debug, Clone)]
pub(super) struct StreamOptions {
    /// Queue file.
    pub queue: PathBuf,
    /// Most rows per append.
    pub batch_rows: usize,
    /// About the most bytes per append.
    pub batch_bytes: usize,
    /// Rows sent but not yet committed before reading pauses (keeps memory flat).
    pub max_in_flight_rows: u64,
    /// How often to look at the committed token when there is nothing to send.
    pub poll: Duration,
    /// Exit once the queue is empty, everything is committed and no generator is running.
    pub until_drained: bool,
    /// Consecutive session failures tolerated before giving up.
    pub max_failures: u32,
}

impl StreamOptions {
    /// Defaults for `queue`.
    pub(super) fn new(queue: PathBuf) -> Self {
        StreamOptions {
            queue,
            batch_rows: 2_000,
            batch_bytes: 1 << 20,
            max_in_flight_rows: 50_000,
            poll: Duration::from_millis(20),
            until_drained: false,
            max_failures: 20,
        }
    }
}

/// Signals from the outside (Ctrl-C or SIGTERM).
#[derive(Debug, Default)]
pub(super) struct Control {
    /// Finish what is queued, wait for its commit, and exit (the first Ctrl-C or SIGTERM).
    pub drain: AtomicBool,
    /// Stop now; whatever is not committed stays in the queue (the second).
    pub abort: AtomicBool,
}

/// Live counters of one table, read by the progress display.
#[derive(Debug, Default)]
pub(super) struct TableStats {
    /// Rows appended by this process (resends after a reopen count again).
    pub sent: AtomicU64,
    /// Rows this process has seen committed.
    pub committed: AtomicU64,
    /// Rows sent and not yet committed.
    pub in_flight: AtomicU64,
    /// Age of the oldest uncommitted batch, or the last batch's send→commit time, in ms.
    pub commit_lag_ms: AtomicU64,
    /// Largest send→commit time seen, in ms.
    pub max_commit_ms: AtomicU64,
    /// Sum of send→commit times over batches, in ms, and the number of batches.
    pub commit_ms_sum: AtomicU64,
    /// Batches seen committed.
    pub commit_batches: AtomicU64,
    /// Sessions (channel opens) so far.
    pub sessions: AtomicU64,
    /// The latest committed offset token.
    pub committed_token: AtomicU64,
    /// Rows the server rejected (they advance the committed token but do not land).
    pub rejected: AtomicU64,
    /// The server's row-error reports: first message and the ids they are at or before.
    pub row_errors: std::sync::Mutex<snowpipe_streaming::RowErrorSummary>,
    /// Records this process moved to `dead_letters`.
    pub dead_lettered: AtomicU64,
}

/// Counters of all tables, indexed by [`Table::index`].
#[derive(Debug, Default)]
pub(super) struct Stats {
    /// One entry per table.
    pub tables: [TableStats; 3],
}

struct InFlight {
    last: u64,
    rows: u64,
    sent_at: Instant,
}

/// Streams every table until the exit condition of `opts` / `control`, one task per table.
///
/// # Errors
/// The first table whose channel keeps failing or was taken over by another writer
/// (`OwnershipLost`), or a queue error. The other tables' tasks are then dropped (aborted), and
/// so are their channels; none is reopened.
///
/// # Cancellation
/// Dropping the future stops streaming; rows not yet committed stay in the queue and are sent
/// again by the next run.
pub(super) async fn stream_all<D: Destination>(
    dest: Arc<D>,
    opts: StreamOptions,
    control: Arc<Control>,
    stats: Arc<Stats>,
) -> Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for table in Table::ALL {
        let (dest, opts, control, stats) =
            (dest.clone(), opts.clone(), control.clone(), stats.clone());
        tasks.spawn(async move { stream_table(&*dest, table, &opts, &control, &stats).await });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.context("stream task panicked")??;
    }
    Ok(())
}

/// Streams one table, reopening the channel after errors (never after `OwnershipLost`).
///
/// # Errors
/// When `max_failures` sessions in a row fail, another writer took the channel over, or the
/// queue cannot be opened.
///
/// # Cancellation
/// As for [`stream_all`].
pub(super) async fn stream_table<D: Destination>(
    dest: &D,
    table: Table,
    opts: &StreamOptions,
    control: &Control,
    stats: &Stats,
) -> Result<()> {
    let mut queue = Queue::open(&opts.queue)?;
    let mut failures = 0u32;
    let table_stats = &stats.tables[table.index()];
    loop {
        let committed_before = table_stats.committed.load(Ordering::Relaxed);
        let result = session(dest, table, &mut queue, opts, control, table_stats).await;
        match result {
            Ok(()) => return Ok(()),
            // Another writer owns the channel now: final, never reopened.
            Err(e) if crate::common::is_ownership_lost(&e) => {
                return Err(e.context(format!("streaming {table} stopped")))
            }
            Err(e) if failures < opts.max_failures && !control.abort.load(Ordering::Relaxed) => {
                // Only consecutive failures without progress count towards giving up.
                if table_stats.committed.load(Ordering::Relaxed) > committed_before {
                    failures = 0;
                }
                failures += 1;
                tracing::warn!(%table, attempt = failures, "channel session failed, reopening: {e:#}");
                tokio::time::sleep(Duration::from_millis(100 * u64::from(failures.min(20)))).await;
            }
            Err(e) => return Err(e.context(format!("streaming {table} failed"))),
        }
    }
}

/// One channel lifetime: open, resume from the committed token, stream, close.
async fn session<D: Destination>(
    dest: &D,
    table: Table,
    queue: &mut Queue,
    opts: &StreamOptions,
    control: &Control,
    stats: &TableStats,
) -> Result<()> {
    let mut channel = dest
        .open(table)
        .await
        .with_context(|| format!("cannot open the {table} channel"))?;
    stats.sessions.fetch_add(1, Ordering::Relaxed);
    match pump(&mut channel, table, queue, opts, control, stats).await {
        Ok(Finish::Close) => channel
            .close()
            .await
            .with_context(|| format!("closing the {table} channel failed")),
        Ok(Finish::Abandon) => Ok(()),
        Err(e) => {
            // Release the channel before reopening it; it is likely unusable, so ignore errors.
            let _ = tokio::time::timeout(Duration::from_secs(5), channel.close()).await;
            Err(e)
        }
    }
}

/// How a session ends.
enum Finish {
    /// Everything sent is committed: close the channel.
    Close,
    /// Aborted: leave at once; uncommitted rows stay queued.
    Abandon,
}

/// Moves rows from the queue to the channel until an exit condition.
async fn pump<C: DestinationChannel>(
    channel: &mut C,
    table: Table,
    queue: &mut Queue,
    opts: &StreamOptions,
    control: &Control,
    stats: &TableStats,
) -> Result<Finish> {
    let committed = channel.committed()?;
    let shift = blocking(|| queue.bind_channel(table, committed))?;
    if shift > 0 {
        tracing::info!(%table, shift, "fresh queue adopted the channel's committed offset as its base");
    }
    let mut acked = committed.unwrap_or(0);
    blocking(|| queue.delete_through(table, acked))?;
    stats.committed_token.store(acked, Ordering::Relaxed);
    let mut sent = acked;
    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
    stats.in_flight.store(0, Ordering::Relaxed);
    let mut flushed = true;

    loop {
        // 1. Commit progress: delete what is safe, account for it.
        let now_committed = channel.committed()?.unwrap_or(0);
        if now_committed > acked {
            blocking(|| queue.delete_through(table, now_committed))?;
            acked = now_committed;
            stats.committed_token.store(acked, Ordering::Relaxed);
            while in_flight.front().is_some_and(|b| b.last <= acked) {
                let b = in_flight.pop_front().expect("front exists");
                let ms = b.sent_at.elapsed().as_millis() as u64;
                stats.committed.fetch_add(b.rows, Ordering::Relaxed);
                stats.in_flight.fetch_sub(b.rows, Ordering::Relaxed);
                stats.commit_lag_ms.store(ms, Ordering::Relaxed);
                stats.max_commit_ms.fetch_max(ms, Ordering::Relaxed);
                stats.commit_ms_sum.fetch_add(ms, Ordering::Relaxed);
                stats.commit_batches.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Some(oldest) = in_flight.front() {
            stats.commit_lag_ms.fetch_max(
                oldest.sent_at.elapsed().as_millis() as u64,
                Ordering::Relaxed,
            );
        }
        if control.abort.load(Ordering::Relaxed) {
            return Ok(Finish::Abandon);
        }

        // 2. Send what is queued, unless too much is still uncommitted.
        let generator_done = !blocking(|| queue.generator_active())?;
        let in_flight_rows: u64 = in_flight.iter().map(|b| b.rows).sum();
        let batch = if in_flight_rows < opts.max_in_flight_rows {
            blocking(|| queue.read_after(table, sent, opts.batch_rows, opts.batch_bytes))?
        } else {
            None
        };
        if let Some(Next::Bad(bad)) = &batch {
            // Cannot become a row: out of the queue, into dead_letters, and read on.
            if blocking(|| queue.dead_letter(table, bad))? {
                stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    %table,
                    id = bad.id,
                    "queued record cannot become a row, moved to the queue's dead_letters table: {}",
                    bad.reason
                );
            }
            continue;
        }
        if let Some(Next::Rows(batch)) = batch {
            channel
                .append(Bytes::from(batch.ndjson), batch.first, batch.last)
                .await
                .with_context(|| {
                    format!(
                        "append of {table} rows {}..={} failed",
                        batch.first, batch.last
                    )
                })?;
            sent = batch.last;
            flushed = false;
            in_flight.push_back(InFlight {
                last: batch.last,
                rows: batch.rows,
                sent_at: Instant::now(),
            });
            stats.sent.fetch_add(batch.rows, Ordering::Relaxed);
            stats.in_flight.fetch_add(batch.rows, Ordering::Relaxed);
            continue;
        }

        // 3. Nothing to send right now.
        if sent == acked {
            let drained_exit = opts.until_drained && generator_done;
            if drained_exit || control.drain.load(Ordering::Relaxed) {
                return Ok(Finish::Close);
            }
        } else if !flushed && in_flight_rows < opts.max_in_flight_rows {
            // The queue is caught up: send the tail now rather than after the client lag.
            channel
                .flush()
                .await
                .with_context(|| format!("flush of {table} failed"))?;
            flushed = true;
        }
        tokio::time::sleep(opts.poll).await;
    }
}

/// Runs a short blocking SQLite call without stalling the other tasks of the runtime.
fn blocking<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

#[cfg(test)]
mod tests;
