//! `sensor_stream consume --source kinesis`: every shard of a stream into Snowflake, one
//! channel per shard (`<ACCOUNT>_<REGION>_<STREAM>_<shardId>` from the stream's ARN, the Lambda
//! handler's name too), exactly once.
//!
//! A shard's session: open its [`Writer`]; read from `AFTER_SEQUENCE_NUMBER` the readings
//! channel's committed token (`TRIM_HORIZON` when none); for each GetRecords page, write it
//! (one append) and note commits; when GetRecords gives no next iterator the shard is closed
//! and drained: wait for its last rows, close its channels, and report it finished, which may
//! let its children start (`shards.rs`). Killed anywhere, the next process reopens the
//! channels (which discards rows appended and not committed) and reads again after the
//! committed token: nothing is lost and the writer skips what landed.
//!
//! GetRecords is called at most every `poll` per shard (Kinesis allows 5 calls a second per
//! shard); throttling and expired iterators are retried after the last record handled.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use aws_sdk_kinesis::types::ShardIteratorType;
use aws_sdk_kinesis::Client;
use snowpipe_streaming::{OffsetToken, StreamingIngestClient};
use tokio::sync::watch;

use crate::sensor_stream::consume::lock;
use crate::sensor_stream::idle_board::IdleBoard;
use crate::sensor_stream::kinesis::idle::IdleClock;
use crate::sensor_stream::kinesis::record::Record;
use crate::sensor_stream::kinesis::sequence::SequenceNumber;
use crate::sensor_stream::kinesis::shards::{self, ShardInfo};
use crate::sensor_stream::kinesis::writer::{Target, Writer};
use crate::sensor_stream::latency::{Histogram, Pending};

/// How the consumer reads and when it stops.
#[derive(Debug, Clone)]
pub struct Options {
    /// The Kinesis stream; channels are `<account>_<region>_<stream>_<shardId>` (its ARN).
    pub stream: String,
    /// Where rows go.
    pub target: Target,
    /// Most records per GetRecords (one append).
    pub batch_max: i32,
    /// Least time between two GetRecords of one shard.
    pub poll: Duration,
    /// Stop after this long with nothing new and everything committed, counted from the last
    /// page that was not empty at the shard's tip (`MillisBehindLatest` 0), once every running
    /// shard's reader is idle so (`idle.rs`) (`None`: never).
    pub until_idle: Option<Duration>,
    /// Consecutive failed sessions of a shard before the consumer gives up.
    pub max_failures: u32,
}

/// What the consumer did with one shard.
#[derive(Debug, Default, Clone)]
pub struct ShardProgress {
    /// Rows this process saw committed.
    pub rows: u64,
    /// The readings channel's committed sequence number.
    pub committed: Option<SequenceNumber>,
    /// Dead letters this process stored.
    pub dead_lettered: u64,
    /// Records read again and skipped as already handled.
    pub skipped: u64,
    /// Channel opens.
    pub sessions: u64,
    /// Read to its end and closed.
    pub finished: bool,
    /// Arrival → committed latency (ms) of the rows seen committed.
    pub latency: Histogram,
}

/// Every shard's progress, by shard id.
pub type Progress = Arc<Mutex<BTreeMap<String, ShardProgress>>>;

/// The channel stem of a shard: `<prefix>_<shardId>`, the prefix from the stream's ARN
/// (`stream::channel_prefix`; before, the stream's name).
pub fn channel_name(stream: &str, shard_id: &str) -> String {
    format!("{stream}_{shard_id}")
}

/// Consumes every shard of the stream, parents before children, until idle or `stop`.
///
/// # Errors
/// The first shard that keeps failing or whose channel another writer took over
/// (`OwnershipLost`, final: no reopen); the other shards are then dropped.
///
/// # Cancellation
/// Dropping the future stops reading; the next run resumes after the committed tokens.
pub async fn consume(
    client: &StreamingIngestClient,
    kinesis: &Client,
    opts: &Options,
    progress: Progress,
    stop: watch::Receiver<bool>,
) -> Result<()> {
    let mut finished: BTreeSet<String> = BTreeSet::new();
    let mut idle_done: BTreeSet<String> = BTreeSet::new();
    let mut busy: BTreeSet<String> = BTreeSet::new();
    let mut failures: BTreeMap<String, u32> = BTreeMap::new();
    let mut tasks: tokio::task::JoinSet<(String, Result<End>)> = tokio::task::JoinSet::new();
    let mut relist = tokio::time::interval(Duration::from_secs(2));
    // Channels are named by the stream's ARN (account, region, name), as the handler names them.
    let arn = crate::sensor_stream::kinesis::stream::arn(kinesis, &opts.stream).await?;
    let prefix: Arc<str> = crate::sensor_stream::kinesis::stream::channel_prefix(&arn)?.into();
    let board = Arc::new(IdleBoard::default());
    loop {
        let listed = shards::list(kinesis, &opts.stream).await?;
        let ready: Vec<ShardInfo> = shards::ready(&listed, &finished, &busy)
            .into_iter()
            .filter(|s| !idle_done.contains(&s.id))
            .cloned()
            .collect();
        for shard in ready {
            busy.insert(shard.id.clone());
            let (client, kinesis, opts) = (client.clone(), kinesis.clone(), opts.clone());
            let (progress, stop) = (progress.clone(), stop.clone());
            let (prefix, board) = (prefix.clone(), board.clone());
            tasks.spawn(async move {
                let reader = Reader {
                    kinesis: &kinesis,
                    opts: &opts,
                    prefix: &prefix,
                    progress: &progress,
                    board: &board,
                };
                let end = session(&client, &reader, &shard.id, stop).await;
                board.leave(&shard.id);
                (shard.id, end)
            });
        }
        if tasks.is_empty() {
            return Ok(()); // every shard finished or idle
        }
        tokio::select! {
            joined = tasks.join_next() => {
                let Some(joined) = joined else { continue };
                let (id, end) = joined.context("a shard's reader panicked")?;
                busy.remove(&id);
                match end {
                    Ok(End::Finished) => {
                        lock(&progress).entry(id.clone()).or_default().finished = true;
                        finished.insert(id);
                    }
                    Ok(End::Stopped) => {
                        idle_done.insert(id);
                    }
                    Err(e) if crate::common::is_ownership_lost(&e) => {
                        return Err(e).with_context(|| format!("shard {id} stopped"));
                    }
                    Err(e) => {
                        let n = failures.entry(id.clone()).or_default();
                        *n += 1;
                        if *n > opts.max_failures || *stop.borrow() {
                            return Err(e).with_context(|| format!("shard {id} failed"));
                        }
                        tracing::warn!("shard {id}: {e:#}; reopening (attempt {n})");
                        tokio::time::sleep(Duration::from_millis(250 * u64::from((*n).min(8)))).await;
                    }
                }
            }
            _ = relist.tick() => {}
        }
    }
}

/// How a session ended.
enum End {
    /// The shard is closed, read to its end, committed and its channels closed.
    Finished,
    /// Idle or asked to stop; what was appended is committed.
    Stopped,
}

/// What every shard's reader shares.
struct Reader<'a> {
    kinesis: &'a Client,
    opts: &'a Options,
    /// Channels are `<prefix>_<shardId>`.
    prefix: &'a str,
    progress: &'a Progress,
    /// Which readers are idle: one stops only when all are.
    board: &'a IdleBoard,
}

async fn session(
    client: &StreamingIngestClient,
    reader: &Reader<'_>,
    shard_id: &str,
    mut stop: watch::Receiver<bool>,
) -> Result<End> {
    let Reader {
        kinesis,
        opts,
        prefix,
        progress,
        board,
    } = *reader;
    let stem = channel_name(prefix, shard_id);
    let mut writer = Writer::open(client, &opts.target, &stem).await?;
    let mut watch = writer.channel().watch_committed();
    update(progress, shard_id, |p| {
        p.sessions += 1;
        p.committed = writer.committed().cloned();
    });
    // The last record read (handled or skipped): where to resume after an expired iterator.
    let mut read: Option<SequenceNumber> = match writer.committed() {
        Some(c) => Some(c.clone()),
        None => legacy_position(client, &opts.target, &opts.stream, shard_id).await?,
    };
    let mut iterator = Some(shard_iterator(kinesis, &opts.stream, shard_id, read.as_ref()).await?);
    let mut sent: Pending<SequenceNumber> = Pending::default();
    let mut last_appended: Option<SequenceNumber> = None;
    let mut clock = IdleClock::new(opts.until_idle, Instant::now());
    let ended = loop {
        let Some(it) = iterator.take() else {
            break true;
        };
        let started = Instant::now();
        let page = match kinesis
            .get_records()
            .shard_iterator(&it)
            .limit(opts.batch_max)
            .send()
            .await
        {
            Ok(page) => page,
            Err(e) => {
                let e = e.into_service_error();
                if e.is_expired_iterator_exception() {
                    iterator =
                        Some(shard_iterator(kinesis, &opts.stream, shard_id, read.as_ref()).await?);
                    continue;
                }
                if e.is_provisioned_throughput_exceeded_exception() {
                    tracing::debug!("shard {shard_id}: throttled; waiting");
                    iterator = Some(it);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                return Err(anyhow::Error::new(e))
                    .with_context(|| format!("GetRecords on {}/{shard_id} failed", opts.stream));
            }
        };
        iterator = page.next_shard_iterator().map(str::to_owned);
        let records = page
            .records()
            .iter()
            .map(|r| to_record(shard_id, r))
            .collect::<Result<Vec<_>>>()?;
        if let Some(last) = records.last() {
            read = Some(last.seq.clone());
        }
        let written = writer
            .write(
                &records,
                tokio::time::Instant::now()
                    + crate::sensor_stream::kinesis::writer::DEAD_LETTER_COMMIT,
            )
            .await?;
        if let Some(last) = written.last_appended.clone() {
            sent.push(last.clone(), written.event_ms);
            last_appended = Some(last);
        }
        // After the write: a slow one is not quiet time.
        clock.page(records.len(), page.millis_behind_latest(), Instant::now());
        update(progress, shard_id, |p| {
            p.dead_lettered += written.dead_lettered as u64;
            p.skipped += written.skipped as u64;
        });
        if watch.has_changed().unwrap_or(false) {
            let token = watch.borrow_and_update().clone();
            note_commits(&mut writer, token, &mut sent, progress, shard_id)?;
        }
        if iterator.is_none() {
            break true;
        }
        let idle = board.note(shard_id, clock.idle(!sent.is_empty(), Instant::now()));
        if *stop.borrow() || idle {
            break false;
        }
        let wait = opts.poll.saturating_sub(started.elapsed());
        if !wait.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
                changed = watch.changed() => {
                    if changed.is_err() {
                        writer.channel().flush().await.with_context(|| format!("channel {stem} stopped"))?;
                        bail!("channel {stem} stopped");
                    }
                    let token = watch.borrow_and_update().clone();
                    note_commits(&mut writer, token, &mut sent, progress, shard_id)?;
                }
            }
        }
    };
    if let Some(last) = last_appended {
        writer
            .wait_committed(&last, Duration::from_secs(60))
            .await?;
        note_commits(
            &mut writer,
            Some(last.token()),
            &mut sent,
            progress,
            shard_id,
        )?;
    }
    writer.close().await?;
    Ok(if ended { End::Finished } else { End::Stopped })
}

fn note_commits(
    writer: &mut Writer,
    token: Option<OffsetToken>,
    sent: &mut Pending<SequenceNumber>,
    progress: &Progress,
    shard_id: &str,
) -> Result<()> {
    let Some(committed) = writer.note_committed(token)?.cloned() else {
        return Ok(());
    };
    let event_ms = sent.take_committed(&committed);
    let now = chrono::Utc::now().timestamp_millis();
    update(progress, shard_id, |p| {
        p.rows += event_ms.len() as u64;
        for ms in &event_ms {
            p.latency.record(now - ms);
        }
        p.committed = Some(committed);
    });
    Ok(())
}

fn update(progress: &Progress, shard_id: &str, f: impl FnOnce(&mut ShardProgress)) {
    f(lock(progress).entry(shard_id.to_owned()).or_default());
}

/// The committed position of the shard's channel named the old way (`<stream>_<shardId>`,
/// before channels were named by ARN), read without opening it: a new channel with no position
/// starts reading after it instead of at the shard's start. Checked as a first record is
/// (`SequenceNumber::check_after`): a number its shard cannot have produced is refused.
async fn legacy_position(
    client: &StreamingIngestClient,
    target: &crate::sensor_stream::kinesis::writer::Target,
    stream: &str,
    shard_id: &str,
) -> Result<Option<SequenceNumber>> {
    let legacy = channel_name(stream, shard_id);
    let tokens = client
        .pipe(&target.database, &target.schema, &target.pipe)
        .latest_committed_offset_tokens(&[legacy.as_str()])
        .await
        .with_context(|| format!("cannot read the position of the old channel {legacy}"))?;
    let Some(Some(token)) = tokens.get(&legacy) else {
        return Ok(None);
    };
    let seq = SequenceNumber::from_token(token, &legacy)?;
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    seq.check_after(shard_id, None, now, target.sequences)
        .with_context(|| format!("the old channel {legacy}'s position"))?;
    tracing::info!("{shard_id}: no position under the ARN's name; resuming after {seq} ({legacy})");
    Ok(Some(seq))
}

/// An iterator after `after` (the committed token), or at the shard's start.
async fn shard_iterator(
    kinesis: &Client,
    stream: &str,
    shard_id: &str,
    after: Option<&SequenceNumber>,
) -> Result<String> {
    let mut request = kinesis
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard_id);
    request = match after {
        Some(seq) => request
            .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
            .starting_sequence_number(seq.as_str()),
        None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
    };
    let out = request
        .send()
        .await
        .with_context(|| format!("GetShardIterator on {stream}/{shard_id} failed"))?;
    out.shard_iterator()
        .map(str::to_owned)
        .with_context(|| format!("GetShardIterator on {stream}/{shard_id} gave no iterator"))
}

/// A GetRecords record as a [`Record`].
///
/// # Errors
/// When Kinesis gave a sequence number that is not one.
pub fn to_record(shard_id: &str, r: &aws_sdk_kinesis::types::Record) -> Result<Record> {
    Ok(Record {
        shard_id: shard_id.to_owned(),
        seq: SequenceNumber::parse(r.sequence_number())?,
        partition_key: r.partition_key().unwrap_or_default().to_owned(),
        data: r.data().as_ref().to_vec(),
        // Rounded, not truncated: the SDK read the number through f64 (record.rs).
        arrival_ms: r
            .approximate_arrival_timestamp()
            .and_then(crate::sensor_stream::kinesis::record::arrival_ms_of)
            .unwrap_or_else(|| chrono::Utc::now().timestamp_millis()),
    })
}
