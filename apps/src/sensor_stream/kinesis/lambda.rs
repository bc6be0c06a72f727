//! `sensor_stream lambda`: the AWS Lambda handler for a Kinesis event source mapping.
//!
//! Each invocation gets a batch of one shard's records (or, with `ParallelizationFactor` > 1,
//! of one of the shard's concurrent lanes). The handler:
//!
//! 1. groups the records by channel: `<STREAM>_<shardId>` (the consumer's name, so the two
//!    can take over from each other), or with `PARALLELIZATION_FACTOR` > 1
//!    `<STREAM>_<shardId>_k<16 hex digits of SHA-256(partition key)>`;
//! 2. writes each group through a [`Writer`]: records at or below the channel's committed
//!    token are skipped (a redelivered or retried batch lands nothing twice), bad records are
//!    dead letters, the rest one append;
//! 3. once every group is appended, waits until each group's last row is committed (one
//!    commit latency per invocation, however many channels), then answers success. Success
//!    moves the mapping's checkpoint past the batch, so it is never given before the rows are
//!    committed;
//! 4. on a failure (an append, a commit that does not come before the deadline, a fenced
//!    channel: `OwnershipLost` means another instance opened the channel since), the writer
//!    is dropped — the next invocation reopens it and reads its committed token — and the
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
//! [`MAX_OPEN_WRITERS`] channel pairs, least recently used closed past it (their rows are
//! committed). A cold start pays the process start, the client's authentication and one open
//! per channel it meets: about 0.1 s over a warm invocation on the emulator (the tests print
//! both).

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use aws_lambda_events::event::kinesis::{KinesisEvent, KinesisEventRecord};
use aws_lambda_events::event::streams::{KinesisBatchItemFailure, KinesisEventResponse};
use sha2::Digest as _;
use snowpipe_streaming::StreamingIngestClient;
use tokio::sync::Mutex;

use crate::sensor_stream::kinesis::record::Record;
use crate::sensor_stream::kinesis::sequence::SequenceNumber;
use crate::sensor_stream::kinesis::writer::{Target, Writer};

/// Least time kept before the invocation's deadline to answer.
const ANSWER_MARGIN: Duration = Duration::from_millis(1_500);

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
}

/// The writers kept open between invocations, each with the invocation that last used it.
struct OpenWriters<W = Writer> {
    writers: HashMap<String, (u64, W)>,
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
    /// Takes out the least recently used writers past `max`.
    fn evict(&mut self, max: usize) -> Vec<W> {
        if self.writers.len() <= max {
            return Vec::new();
        }
        let mut by_use: Vec<(u64, String)> = self
            .writers
            .iter()
            .map(|(stem, (used, _))| (*used, stem.clone()))
            .collect();
        by_use.sort_unstable();
        let excess = self.writers.len() - max;
        by_use
            .into_iter()
            .take(excess)
            .filter_map(|(_, stem)| self.writers.remove(&stem).map(|(_, w)| w))
            .collect()
    }
}

/// One channel's records of a batch, and where each stands in the batch.
struct Group {
    stem: String,
    records: Vec<Record>,
    positions: Vec<usize>,
}

impl Handler {
    /// A handler writing through `client`.
    pub fn new(client: StreamingIngestClient, settings: Settings) -> Self {
        Handler {
            client,
            settings,
            writers: Mutex::new(OpenWriters::default()),
        }
    }

    /// Handles one invocation whose deadline is `deadline_ms` (ms since the epoch).
    ///
    /// # Errors
    /// With [`FailureMode::Error`], when any record is not committed; with
    /// [`FailureMode::Report`], only when the event is not a Kinesis batch (a record without
    /// a shard or a sequence number): the answer names the record.
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
        let now = chrono::Utc::now().timestamp_millis().max(0) as u64;
        let budget = Duration::from_millis(deadline_ms.saturating_sub(now))
            .saturating_sub(ANSWER_MARGIN)
            .max(Duration::from_secs(1));
        let deadline = tokio::time::Instant::now() + budget;
        let mut open = self.writers.lock().await;
        open.invocations += 1;
        let this_invocation = open.invocations;
        // Per failed group: the batch position of its first record not committed.
        let mut failed: Vec<(usize, anyhow::Error)> = Vec::new();
        let mut fail = |group: &Group, committed: Option<SequenceNumber>, e: anyhow::Error| {
            tracing::warn!("channel {}: {e:#}", group.stem);
            let first = group
                .records
                .iter()
                .position(|r| committed.as_ref().is_none_or(|c| r.seq > *c));
            if let Some(i) = first {
                failed.push((group.positions[i], e));
            }
        };
        // Every group appended first, then every commit awaited: the invocation costs one
        // commit latency, not one per channel.
        let mut appended: Vec<(&Group, Writer, Option<SequenceNumber>)> = Vec::new();
        for group in &groups {
            let writer = match open.writers.remove(&group.stem) {
                Some((_, w)) => Ok(w),
                None => Writer::open(&self.client, &self.settings.target, &group.stem).await,
            };
            match writer {
                Ok(mut w) => match w.write(&group.records).await {
                    Ok(written) => appended.push((group, w, written.last_appended)),
                    // The writer is dropped: the next invocation reopens and re-reads.
                    Err(e) => fail(group, w.committed().cloned(), e),
                },
                Err(e) => fail(group, None, e),
            }
        }
        for (group, mut w, last) in appended {
            let waited = match &last {
                Some(last) => {
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    w.wait_committed(last, left).await
                }
                None => Ok(()),
            };
            match waited {
                Ok(()) => {
                    open.writers
                        .insert(group.stem.clone(), (this_invocation, w));
                }
                Err(e) => fail(group, w.committed().cloned(), e),
            }
        }
        let evicted = open.evict(MAX_OPEN_WRITERS);
        drop(open);
        // Every row of an evicted writer is committed: closing loses nothing, and a failed
        // close only leaves a channel for the service to expire.
        for w in evicted {
            if let Err(e) = w.close().await {
                tracing::warn!("closing an idle channel: {e:#}");
            }
        }
        // The first record, in batch order, that is not committed.
        let Some((at, e)) = failed.into_iter().min_by_key(|(at, _)| *at) else {
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

    fn groups(&self, records: &[KinesisEventRecord]) -> Result<Vec<Group>> {
        let mut groups: Vec<Group> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for (at, r) in records.iter().enumerate() {
            let record = to_record(r)?;
            let stream = r
                .event_source_arn
                .as_deref()
                .and_then(|arn| arn.rsplit_once(":stream/").map(|(_, s)| s.to_owned()))
                .ok_or_else(|| {
                    anyhow!(
                        "record {} has no Kinesis stream ARN (eventSourceARN)",
                        record.seq
                    )
                })?;
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
        let mut open = OpenWriters::<&str>::default();
        for (used, stem) in [(3, "c"), (1, "a"), (5, "e"), (2, "b"), (4, "d")] {
            open.writers.insert(stem.into(), (used, stem));
        }
        assert!(open.evict(5).is_empty());
        let mut evicted = open.evict(3);
        evicted.sort_unstable();
        assert_eq!(evicted, ["a", "b"]);
        let mut kept: Vec<_> = open.writers.keys().cloned().collect();
        kept.sort_unstable();
        assert_eq!(kept, ["c", "d", "e"]);
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
