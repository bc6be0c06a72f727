//! `sensor_stream lambda`: the AWS Lambda handler for a Kinesis event source mapping.
//!
//! Each invocation gets a batch of one shard's records (or, with `ParallelizationFactor` > 1,
//! of one of the shard's concurrent lanes). The handler:
//!
//! 1. groups the records by channel: `<ACCOUNT>_<REGION>_<STREAM>_<shardId>` from the
//!    record's `eventSourceARN` (the consumer's name, so the two can take over from each
//!    other; another account's stream of the same name gets other channels), or with
//!    `PARALLELIZATION_FACTOR` > 1 `…_<shardId>_k<16 hex digits of SHA-256(partition key)>`;
//! 2. writes each group through a [`Writer`]: records at or below the channel's committed
//!    token are skipped (a redelivered or retried batch lands nothing twice), bad records are
//!    dead letters, the rest one append;
//! 3. once every group is appended, waits until each group's last row is committed (one
//!    commit latency per invocation, however many channels), then answers success. Success
//!    moves the mapping's checkpoint past the batch, so it is never given before the rows are
//!    committed;
//! 4. on a failure (an append, a commit that does not come before the deadline, a fenced
//!    channel: `OwnershipLost` means another instance opened the channel since), the writer
//!    is stopped before the answer (its channels closed, not dropped: a dropped channel
//!    stops in the background, and an open of its name before then is refused) — the next
//!    invocation reopens it and reads its committed token — and the
//!    answer is `batchItemFailures` naming the first record, in batch order, that is not
//!    committed (`FAILURE_MODE=report`, for `FunctionResponseTypes: ReportBatchItemFailures`),
//!    or an error (`FAILURE_MODE=error`, for mappings that retry or bisect whole batches).
//!    Never success.
//!
//! # Why a channel per partition key when batches run in parallel
//!
//! With `ParallelizationFactor` N, Lambda runs up to N batches of one shard at once, each
//! key's records in order in one lane, by a hash of the key that Lambda does not document.
//! One channel for the shard would then get tokens out of order from several instances (and
//! fence itself); a channel per *our* hash slot would still mix lanes. Only the partition key
//! is known to stay in one lane and in order, so with N > 1 each key gets its own channel:
//! its tokens increase, one batch at a time writes it, and "skip at or below the committed
//! token" is exact. The cost is one channel per key and shard: fine for devices in the
//! thousands (the seed has 50), not for millions of keys — use more shards and N = 1 there.
//! `PARALLELIZATION_FACTOR` must match the mapping: N = 1 here with N > 1 there mixes lanes
//! on one channel, which can skip records.
//!
//! Channels stay open in the warm instance (no open per invocation), up to
//! [`MAX_OPEN_WRITERS`] channel pairs, least recently used closed past it, and any unused for
//! [`WRITER_IDLE`] closed too (their rows are committed). A cold start pays the process
//! start, the client's authentication and one open per channel it meets: about 0.1 s over a
//! warm invocation on the emulator (the tests print both).
//!
//! # The deadline
//!
//! The invocation's deadline (`Lambda-Runtime-Deadline-Ms`, the context's `deadline`) less a
//! margin bounds everything: the groups are opened and written at once (up to
//! [`CONCURRENT_GROUPS`]), each group's dead letters are one append and one commit wait, and
//! every open, append and commit wait stops at the deadline. What is not committed by then
//! is answered as failed from its first record, before the deadline, never after it.
//!
//! # The channel budget
//!
//! Snowflake allows 2,000 channels a pipe (channels stay on the server when closed: only a
//! drop removes one, and it takes the channel's committed position with it). With
//! `PARALLELIZATION_FACTOR` > 1 the readings pipe holds one channel per partition key and
//! shard, and so does the dead-letters pipe; see docs/kinesis.md "Channel budget". When the
//! service refuses a channel for the budget, the invocation fails with an error naming it
//! (both failure modes: a `batchItemFailures` entry would be retried silently forever), the
//! handler counts it ([`Handler::channel_budget_refusals`]) and writes a CloudWatch metric
//! (`sensor_stream` / `ChannelBudgetRefusals`, embedded metric format on stdout).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use aws_lambda_events::event::kinesis::{KinesisEvent, KinesisEventRecord};
use aws_lambda_events::event::streams::{KinesisBatchItemFailure, KinesisEventResponse};
use futures_util::StreamExt as _;
use sha2::Digest as _;
use snowpipe_streaming::StreamingIngestClient;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::sensor_stream::kinesis::channel_cap::{CapReached, ChannelCap};
use crate::sensor_stream::kinesis::record::Record;
use crate::sensor_stream::kinesis::sequence::SequenceNumber;
use crate::sensor_stream::kinesis::writer::{Target, Writer};

/// Time kept before the invocation's deadline to answer (a quarter of what is left when that
/// is less).
const ANSWER_MARGIN: Duration = Duration::from_millis(1_500);

/// Most channel groups of one invocation opened and written at once.
pub const CONCURRENT_GROUPS: usize = 64;

/// A warm instance closes a writer no invocation used for this long (its rows are committed):
/// the keys of a shard come and go, and an instance must not hold every key it ever met.
pub const WRITER_IDLE: Duration = Duration::from_secs(300);

/// The service's error code for a pipe at its channel limit.
const TOO_MANY_CHANNELS: &str = "ERR_TOO_MANY_CHANNELS";

/// How failures are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailureMode {
    /// `batchItemFailures` from the first record not committed (the mapping must have
    /// `FunctionResponseTypes: ["ReportBatchItemFailures"]`).
    Report,
    /// A function error (the mapping retries, or bisects, the whole batch).
    Error,
}

/// The handler's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where rows go.
    pub target: Target,
    /// The mapping's `ParallelizationFactor`.
    pub parallelization_factor: u32,
    /// How failures are answered.
    pub failure_mode: FailureMode,
}

/// Most writers (channel pairs) a warm instance keeps open between invocations; past it the
/// least recently used are closed. Their rows are committed, so a later batch of theirs pays
/// one open. Bounds an instance's memory and open channels when keys are many
/// (`ParallelizationFactor` > 1).
pub const MAX_OPEN_WRITERS: usize = 256;

/// The handler, shared by the invocations of one instance (one at a time).
pub struct Handler {
    client: StreamingIngestClient,
    settings: Settings,
    writers: Mutex<OpenWriters>,
    budget_refusals: AtomicU64,
    /// `MAX_KEY_CHANNELS` (`channel_cap.rs`), when set.
    cap: Option<ChannelCap>,
    cap_refusals: AtomicU64,
}

/// The writers kept open between invocations, each with the invocation that last used it and
/// when.
struct OpenWriters<W = Writer> {
    writers: HashMap<String, (u64, Instant, W)>,
    invocations: u64,
}

impl<W> Default for OpenWriters<W> {
    fn default() -> Self {
        OpenWriters {
            writers: HashMap::new(),
            invocations: 0,
        }
    }
}

impl<W> OpenWriters<W> {
    /// Takes out the writers unused for `idle` or longer at `now`, then the least recently
    /// used past `max`.
    fn evict(&mut self, max: usize, now: Instant, idle: Duration) -> Vec<W> {
        let stale: Vec<String> = self
            .writers
            .iter()
            .filter(|(_, (_, at, _))| now.saturating_duration_since(*at) >= idle)
            .map(|(stem, _)| stem.clone())
            .collect();
        let mut out: Vec<W> = stale
            .iter()
            .filter_map(|stem| self.writers.remove(stem).map(|(_, _, w)| w))
            .collect();
        if self.writers.len() <= max {
            return out;
        }
        let mut by_use: Vec<(u64, String)> = self
            .writers
            .iter()
            .map(|(stem, (used, _, _))| (*used, stem.clone()))
            .collect();
        by_use.sort_unstable();
        let excess = self.writers.len() - max;
        out.extend(
            by_use
                .into_iter()
                .take(excess)
                .filter_map(|(_, stem)| self.writers.remove(&stem).map(|(_, _, w)| w)),
        );
        out
    }
}

/// One channel's records of a batch, and where each stands in the batch.
struct Group {
    stem: String,
    records: Vec<Record>,
    positions: Vec<usize>,
}

/// A group written: its writer and its last row appended, or why not.
type GroupWritten = Result<(Writer, Option<SequenceNumber>), Failure>;

/// Why a group is not committed, what its channel had committed (when known), and its
/// writer when one was open (stopped before the answer: [`Writer::discard`]).
struct Failure {
    committed: Option<SequenceNumber>,
    error: anyhow::Error,
    writer: Option<Writer>,
}

/// When to have answered: `deadline_ms` (ms since the epoch) less [`ANSWER_MARGIN`], or less a
/// quarter of what is left when that is less; now when it has passed.
fn answer_by(deadline_ms: u64, now_ms: i64) -> Instant {
    let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms.max(0) as u64));
    Instant::now() + left.saturating_sub(ANSWER_MARGIN.min(left / 4))
}

/// Writes `count` to the CloudWatch metric `sensor_stream/<name>{Pipe}` in the embedded metric
/// format (Lambda's log capture turns the stdout line into the metric).
fn emit_metric(name: &str, target: &Target, count: u64) {
    let mut line = serde_json::json!({
        "_aws": {
            "Timestamp": chrono::Utc::now().timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": "sensor_stream",
                "Dimensions": [["Pipe"]],
                "Metrics": [{"Name": name, "Unit": "Count"}],
            }],
        },
        "Pipe": format!("{}.{}.{}", target.database, target.schema, target.pipe),
    });
    line[name] = serde_json::json!(count);
    println!("{line}");
}

/// Whether the service refused a channel because its pipe has as many as it allows.
fn refused_for_budget(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<snowpipe_streaming::Error>()
            .and_then(snowpipe_streaming::Error::snowflake_code)
            == Some(TOO_MANY_CHANNELS)
    }) || format!("{e:#}").contains(TOO_MANY_CHANNELS)
}

impl Handler {
    /// A handler writing through `client`.
    pub fn new(client: StreamingIngestClient, settings: Settings) -> Self {
        Handler {
            client,
            settings,
            writers: Mutex::new(OpenWriters::default()),
            budget_refusals: AtomicU64::new(0),
            cap: None,
            cap_refusals: AtomicU64::new(0),
        }
    }

    /// The handler with `MAX_KEY_CHANNELS`: no channel this instance does not hold is opened
    /// once its pipe holds `cap`'s count (`channel_cap.rs`).
    pub fn with_channel_cap(mut self, cap: ChannelCap) -> Self {
        self.cap = Some(cap);
        self
    }

    /// Channels refused for `MAX_KEY_CHANNELS`, since the start.
    pub fn channel_cap_refusals(&self) -> u64 {
        self.cap_refusals.load(Ordering::Relaxed)
    }

    /// Channels the service refused for its per-pipe channel budget, since the start.
    pub fn channel_budget_refusals(&self) -> u64 {
        self.budget_refusals.load(Ordering::Relaxed)
    }

    /// Handles one invocation whose deadline is `deadline_ms` (ms since the epoch): answers
    /// before it (see the module docs).
    ///
    /// # Errors
    /// With [`FailureMode::Error`], when any record is not committed; in both modes, when the
    /// event is not a Kinesis batch (a record without a shard or a sequence number: the answer
    /// names the record), or when the service refused a channel for its channel budget (the
    /// answer names the budget and the fix).
    ///
    /// # Cancellation
    /// Dropping the future drops the writers in use (rows not committed are discarded by the
    /// next open); the mapping retries the batch.
    pub async fn handle(
        &self,
        event: KinesisEvent,
        deadline_ms: u64,
    ) -> Result<KinesisEventResponse> {
        let groups = self.groups(&event.records)?;
        let deadline = answer_by(deadline_ms, chrono::Utc::now().timestamp_millis());
        let mut open = self.writers.lock().await;
        open.invocations += 1;
        let this_invocation = open.invocations;
        let taken: Vec<Option<Writer>> = groups
            .iter()
            .map(|g| open.writers.remove(&g.stem).map(|(_, _, w)| w))
            .collect();
        // Every group opened and appended at once, then every commit awaited at once: the
        // invocation costs one open, one dead-letter commit and one commit latency, not one
        // per channel or per bad record.
        let written: Vec<(usize, GroupWritten)> =
            futures_util::stream::iter(groups.iter().zip(taken).enumerate())
                .map(|(i, (group, writer))| async move {
                    (i, self.write_group(group, writer, deadline).await)
                })
                .buffer_unordered(CONCURRENT_GROUPS)
                .collect()
                .await;
        let mut failures: Vec<(usize, Failure)> = Vec::new();
        let mut appended: Vec<(usize, Writer, Option<SequenceNumber>)> = Vec::new();
        for (i, r) in written {
            match r {
                Ok((w, last)) => appended.push((i, w, last)),
                Err(f) => failures.push((i, f)),
            }
        }
        let waits = appended.into_iter().map(|(i, mut w, last)| async move {
            let waited = match &last {
                Some(last) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    w.wait_committed(last, left).await
                }
                None => Ok(()),
            };
            (i, w, waited)
        });
        let now = Instant::now();
        for (i, w, waited) in futures_util::future::join_all(waits).await {
            match waited {
                Ok(()) => {
                    open.writers
                        .insert(groups[i].stem.clone(), (this_invocation, now, w));
                }
                // The writer is stopped below: the next invocation reopens and re-reads.
                Err(error) => failures.push((
                    i,
                    Failure {
                        committed: w.committed().cloned(),
                        error,
                        writer: Some(w),
                    },
                )),
            }
        }
        // Failed writers are stopped before the answer, not dropped: a dropped channel stops
        // in the background, and the next invocation's open of its name would be refused
        // ("already open") when that has not happened yet, failing good records.
        let discards = failures
            .iter_mut()
            .filter_map(|(_, f)| f.writer.take())
            .map(|w| w.discard(deadline.saturating_duration_since(Instant::now())));
        futures_util::stream::iter(discards)
            .buffer_unordered(CONCURRENT_GROUPS)
            .collect::<Vec<()>>()
            .await;
        let evicted = open.evict(MAX_OPEN_WRITERS, Instant::now(), WRITER_IDLE);
        drop(open);
        // Every row of an evicted writer is committed: closing loses nothing, and a close that
        // fails or meets the deadline only leaves a channel for the service to expire.
        let closes = evicted.into_iter().map(|w| async move {
            match tokio::time::timeout_at(deadline, w.close()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!("closing an idle channel: {e:#}"),
                Err(_) => tracing::warn!("closing an idle channel: the deadline came first"),
            }
        });
        futures_util::stream::iter(closes)
            .buffer_unordered(CONCURRENT_GROUPS)
            .collect::<Vec<()>>()
            .await;
        self.answer(&event, &groups, failures)
    }

    /// Opens (unless `writer` is open) and writes one group, all within `deadline`. A writer
    /// that was open when the write failed is returned in the failure (to be stopped).
    async fn write_group(
        &self,
        group: &Group,
        writer: Option<Writer>,
        deadline: Instant,
    ) -> GroupWritten {
        let late = || {
            anyhow!(
                "channel {}: the invocation's deadline came before its records were written",
                group.stem
            )
        };
        let mut w = match writer {
            Some(w) => w,
            None => match tokio::time::timeout_at(deadline, self.open(&group.stem)).await {
                Ok(Ok(w)) => w,
                Ok(Err(error)) => {
                    return Err(Failure {
                        committed: None,
                        error,
                        writer: None,
                    })
                }
                Err(_) => {
                    return Err(Failure {
                        committed: None,
                        error: late(),
                        writer: None,
                    })
                }
            },
        };
        let error = match tokio::time::timeout_at(deadline, w.write(&group.records, deadline)).await
        {
            Ok(Ok(written)) => return Ok((w, written.last_appended)),
            Ok(Err(error)) => error,
            Err(_) => late(),
        };
        Err(Failure {
            committed: w.committed().cloned(),
            error,
            writer: Some(w),
        })
    }

    /// Opens the channel pair of `stem`, each admitted by `MAX_KEY_CHANNELS` first when set.
    async fn open(&self, stem: &str) -> Result<Writer> {
        let target = &self.settings.target;
        if let Some(cap) = &self.cap {
            let (db, schema) = (&target.database, &target.schema);
            cap.admit(db, schema, &target.pipe, stem).await?;
            let dead = format!("{stem}_DLQ");
            cap.admit(db, schema, &target.dead_letter_pipe, &dead)
                .await?;
        }
        Writer::open(&self.client, target, stem).await
    }

    /// The answer: success, the first record not committed, or an error.
    fn answer(
        &self,
        event: &KinesisEvent,
        groups: &[Group],
        failures: Vec<(usize, Failure)>,
    ) -> Result<KinesisEventResponse> {
        // Per failed group: the batch position of its first record not committed.
        let mut first: Option<(usize, anyhow::Error)> = None;
        let mut refused: Vec<&str> = Vec::new();
        let mut capped: Option<String> = None;
        let mut capped_count = 0u64;
        for (i, f) in failures {
            let group = &groups[i];
            tracing::warn!("channel {}: {:#}", group.stem, f.error);
            if refused_for_budget(&f.error) {
                refused.push(&group.stem);
            }
            if let Some(c) = f.error.chain().find_map(|e| e.downcast_ref::<CapReached>()) {
                capped_count += 1;
                capped.get_or_insert_with(|| c.to_string());
            }
            let at = group
                .records
                .iter()
                .position(|r| f.committed.as_ref().is_none_or(|c| r.seq > *c))
                .map(|k| group.positions[k]);
            if let Some(at) = at {
                if first.as_ref().is_none_or(|(a, _)| at < *a) {
                    first = Some((at, f.error));
                }
            }
        }
        if !refused.is_empty() {
            return Err(self.budget_exhausted(&refused));
        }
        if let Some(first) = capped {
            return Err(self.cap_reached(capped_count, &first));
        }
        let Some((at, e)) = first else {
            return Ok(KinesisEventResponse::default());
        };
        let seq = &event.records[at].kinesis.sequence_number;
        match self.settings.failure_mode {
            FailureMode::Report => {
                let mut failure = KinesisBatchItemFailure::default();
                failure.item_identifier = Some(seq.clone());
                let mut response = KinesisEventResponse::default();
                response.batch_item_failures.push(failure);
                Ok(response)
            }
            FailureMode::Error => Err(e.context(format!(
                "record {seq} and what follows it were not committed"
            ))),
        }
    }

    /// Counts the channels `refused` for the pipes' channel budget, writes the metric, and
    /// names the budget and the fix.
    fn budget_exhausted(&self, refused: &[&str]) -> anyhow::Error {
        let n = refused.len() as u64;
        self.budget_refusals.fetch_add(n, Ordering::Relaxed);
        let target = &self.settings.target;
        emit_metric("ChannelBudgetRefusals", target, n);
        let shown: Vec<&str> = refused.iter().take(3).copied().collect();
        anyhow!(
            "channel budget exhausted: the service refused {n} channel(s) ({}{}) on pipe \
             {}.{}.{} or {} ({TOO_MANY_CHANNELS}: Snowflake allows 2,000 channels a pipe, \
             closed ones included). With PARALLELIZATION_FACTOR={} each partition key of each \
             shard has its own channel on both pipes, so keys × shards must stay under the \
             limit: use PARALLELIZATION_FACTOR=1 (and more shards for throughput), fewer \
             partition keys, or drop the channels of keys no longer written once the stream's \
             retention has passed (docs/kinesis.md \"Channel budget\")",
            shown.join(", "),
            if refused.len() > shown.len() {
                ", …"
            } else {
                ""
            },
            target.database,
            target.schema,
            target.pipe,
            target.dead_letter_pipe,
            self.settings.parallelization_factor,
        )
    }

    /// Counts `n` channels refused for `MAX_KEY_CHANNELS`, writes the metric, and names the
    /// cap (`first`: the first refusal) and the fix.
    fn cap_reached(&self, n: u64, first: &str) -> anyhow::Error {
        self.cap_refusals.fetch_add(n, Ordering::Relaxed);
        let target = &self.settings.target;
        emit_metric("KeyChannelCapRefusals", target, n);
        anyhow!(
            "{first} ({n} channel(s) this invocation). With PARALLELIZATION_FACTOR={} each \
             partition key of each shard has a channel on both pipes: raise MAX_KEY_CHANNELS \
             (below Snowflake's 2,000 a pipe), use fewer keys or PARALLELIZATION_FACTOR=1, or \
             drop the channels of keys no longer written once the stream's retention has \
             passed (docs/kinesis.md \"Channel budget\")",
            self.settings.parallelization_factor,
        )
    }

    fn groups(&self, records: &[KinesisEventRecord]) -> Result<Vec<Group>> {
        let mut groups: Vec<Group> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for (at, r) in records.iter().enumerate() {
            let record = to_record(r)?;
            // Channels are named by the stream's account, region and name: another account's
            // stream of the same name gets other channels (stream.rs `channel_prefix`).
            let stream = r
                .event_source_arn
                .as_deref()
                .ok_or_else(|| {
                    anyhow!(
                        "record {} has no Kinesis stream ARN (eventSourceARN)",
                        record.seq
                    )
                })
                .and_then(crate::sensor_stream::kinesis::stream::channel_prefix)
                .with_context(|| format!("record {}", record.seq))?;
            let stem = if self.settings.parallelization_factor > 1 {
                key_channel(&stream, &record.shard_id, &record.partition_key)
            } else {
                crate::sensor_stream::kinesis::consume::channel_name(&stream, &record.shard_id)
            };
            let i = *index.entry(stem.clone()).or_insert_with(|| {
                groups.push(Group {
                    stem,
                    records: Vec::new(),
                    positions: Vec::new(),
                });
                groups.len() - 1
            });
            if let Some(prev) = groups[i].records.last() {
                if prev.seq >= record.seq {
                    bail!(
                        "records {} and {} of channel {} are out of order in one batch, which a \
                         Kinesis event source mapping never sends",
                        prev.seq,
                        record.seq,
                        groups[i].stem
                    );
                }
            }
            groups[i].records.push(record);
            groups[i].positions.push(at);
        }
        Ok(groups)
    }
}

/// The channel stem of one partition key of a shard (`ParallelizationFactor` > 1).
pub fn key_channel(stream: &str, shard_id: &str, partition_key: &str) -> String {
    let digest = sha2::Sha256::digest(partition_key.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{stream}_{shard_id}_k{hex}")
}

/// A Lambda Kinesis record as a [`Record`].
///
/// # Errors
/// When the record has no `shardId:sequence` event id or its sequence number is not one.
pub fn to_record(r: &KinesisEventRecord) -> Result<Record> {
    let seq = SequenceNumber::parse(&r.kinesis.sequence_number)
        .context("a Kinesis event record's sequenceNumber")?;
    let shard_id = r
        .event_id
        .as_deref()
        .and_then(|id| id.split_once(':').map(|(shard, _)| shard.to_owned()))
        .with_context(|| format!("record {seq} has no eventID of the form shardId-…:sequence"))?;
    Ok(Record {
        shard_id,
        seq,
        partition_key: r.kinesis.partition_key.clone(),
        data: r.kinesis.data.0.clone(),
        arrival_ms: r.kinesis.approximate_arrival_timestamp.0.timestamp_millis(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_writers_past_the_bound_are_evicted() {
        let now = Instant::now();
        let idle = Duration::from_secs(300);
        let mut open = OpenWriters::<&str>::default();
        for (used, stem) in [(3, "c"), (1, "a"), (5, "e"), (2, "b"), (4, "d")] {
            open.writers.insert(stem.into(), (used, now, stem));
        }
        assert!(open.evict(5, now, idle).is_empty());
        let mut evicted = open.evict(3, now, idle);
        evicted.sort_unstable();
        assert_eq!(evicted, ["a", "b"]);
        let mut kept: Vec<_> = open.writers.keys().cloned().collect();
        kept.sort_unstable();
        assert_eq!(kept, ["c", "d", "e"]);
    }

    #[test]
    fn writers_idle_across_warm_invocations_are_closed() {
        let start = Instant::now();
        let idle = Duration::from_secs(300);
        let mut open = OpenWriters::<&str>::default();
        open.writers.insert("old".into(), (1, start, "old"));
        open.writers
            .insert("new".into(), (2, start + Duration::from_secs(200), "new"));
        assert!(open
            .evict(256, start + Duration::from_secs(299), idle)
            .is_empty());
        assert_eq!(
            open.evict(256, start + Duration::from_secs(300), idle),
            ["old"]
        );
        assert_eq!(
            open.evict(256, start + Duration::from_secs(500), idle),
            ["new"]
        );
        assert!(open.writers.is_empty());
    }

    #[test]
    fn the_answer_comes_before_the_deadline() {
        let now_ms = 1_795_685_180_000_i64;
        let at = |deadline_ms: i64| {
            answer_by(deadline_ms as u64, now_ms).saturating_duration_since(Instant::now())
        };
        // A margin of 1.5 s, or a quarter of what is left; nothing when the deadline passed.
        let ms = |d: Duration| d.as_millis() as i64;
        assert!((8_400..=8_500).contains(&ms(at(now_ms + 10_000))));
        assert!((1_400..=1_500).contains(&ms(at(now_ms + 2_000))));
        assert_eq!(at(now_ms - 5), Duration::ZERO);
        assert_eq!(at(0), Duration::ZERO);
    }

    #[test]
    fn a_budget_refusal_is_recognised_by_its_code() {
        assert!(refused_for_budget(&anyhow!(
            "cannot open channel S_k1: 400 ERR_TOO_MANY_CHANNELS: pipe P already has 2000"
        )));
        assert!(!refused_for_budget(&anyhow!(
            "cannot open channel S_k1: 503"
        )));
    }

    #[test]
    fn a_key_channel_is_stable_and_names_its_shard() {
        let a = key_channel("S", "shardId-000000000001", "sensor-7");
        assert_eq!(a, key_channel("S", "shardId-000000000001", "sensor-7"));
        assert!(a.starts_with("S_shardId-000000000001_k"));
        assert_eq!(a.len(), "S_shardId-000000000001_k".len() + 16);
        assert_ne!(a, key_channel("S", "shardId-000000000001", "sensor-8"));
    }
}
