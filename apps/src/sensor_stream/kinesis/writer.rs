//! The one place a shard's records become rows: shared by the long-running consumer and the
//! Lambda handler, so both land a record once whoever reads it, however often.
//!
//! A writer owns two channels of the same name stem: `<stem>` on the readings pipe and
//! `<stem>_DLQ` on the dead-letters pipe. Each record's offset token is its sequence number.
//! Records arrive in sequence order (a shard's, or one partition key's), so:
//!
//! * a record at or below the readings channel's committed token was handled: its row is
//!   committed, or it was a bad record whose dead letter was committed before anything after
//!   it was appended (the rule below);
//! * a bad record above it was handled if it is at or below the dead-letters channel's
//!   committed token;
//! * the dead letters of one [`Writer::write`] are appended (one append, per-row tokens) **and
//!   committed** before any of its readings is appended, so before any record after them. One
//!   commit wait per call however many records are bad (a shard flooded with garbage moves
//!   at a batch per commit, not a record per commit), and the two rules above are exact after
//!   any crash.
//!
//! Everything else is new: appended, with per-row tokens, in one append per call.
//!
//! No record sticks a shard for its size: a reading whose row would pass
//! [`MAX_READING_ROW_BYTES`] is a dead letter, and a dead letter holds its payload once, cut
//! at [`MAX_DEAD_LETTER_PAYLOAD`] with the whole payload's length and SHA-256, so every row
//! fits a request (4 MB) whatever Kinesis carries (10 MiB records with large records on).

use snowpipe_streaming::{Positions, Rows};
use std::time::Duration;

use crate::common::dead_letters::{DeadLetterChannel, Place};

use anyhow::{Context, Result};
use snowpipe_streaming::{Channel, OffsetToken, StreamingIngestClient};
use tokio::time::Instant;

pub use crate::sensor_stream::kinesis::record::MAX_DEAD_LETTER_PAYLOAD;
use crate::sensor_stream::kinesis::record::{DeadLetterRow, KinesisReading, Record};
use crate::sensor_stream::kinesis::sequence::{Rules, SequenceNumber};
use crate::sensor_stream::reading::BadRecord;

/// How long dead letters may take to commit before the write fails (sooner when the caller's
/// deadline is sooner).
pub const DEAD_LETTER_COMMIT: Duration = Duration::from_secs(60);

/// Largest `KINESIS_READINGS` row: a reading's columns are a few hundred bytes; a record whose
/// row would be larger (a 5 MB `status`) is a dead letter rather than a row no request can
/// carry.
pub const MAX_READING_ROW_BYTES: usize = 1 << 20;

/// Where rows go.
#[derive(Debug, Clone)]
pub struct Target {
    /// Database.
    pub database: String,
    /// Schema.
    pub schema: String,
    /// The readings pipe (`KINESIS_READINGS_PIPE`).
    pub pipe: String,
    /// The dead-letters pipe (`KINESIS_DEAD_LETTERS_PIPE`).
    pub dead_letter_pipe: String,
    /// The rules a sequence number is held to (`--trust-sequence-numbers`: only the
    /// documented ones).
    pub sequences: Rules,
}

/// What one [`Writer::write`] did.
#[derive(Debug, Default)]
pub struct Written {
    /// Dead letters stored (committed).
    pub dead_lettered: usize,
    /// Records skipped as already handled (a redelivery, a replay after a crash).
    pub skipped: usize,
    /// The last appended row's sequence number.
    pub last_appended: Option<SequenceNumber>,
    /// The event time (ms) of every appended row, in order.
    pub event_ms: Vec<i64>,
}

/// The two channels of one stem, and what they have committed.
pub struct Writer {
    rules: Rules,
    readings: Channel,
    dead_letters: DeadLetterChannel<SequenceNumber>,
    committed: Option<SequenceNumber>,
}

/// A record's place: its sequence number (a shard's increase).
impl Place for SequenceNumber {
    fn from_token(token: &OffsetToken, channel: &str) -> Result<Self> {
        SequenceNumber::from_token(token, channel)
    }

    fn token(&self) -> Result<OffsetToken> {
        Ok(SequenceNumber::token(self))
    }

    fn covers(&self, later: &Self) -> bool {
        later <= self
    }
}

impl Writer {
    /// Opens (and so takes over) the channels `<stem>` and `<stem>_DLQ`.
    ///
    /// # Errors
    /// When a channel cannot be opened, or its committed token is not a sequence number.
    ///
    /// # Cancellation
    /// Dropping the future leaves whatever channel was opened to the next open.
    pub async fn open(client: &StreamingIngestClient, target: &Target, stem: &str) -> Result<Self> {
        let on = |pipe: &str, name: &str| {
            format!(
                "cannot open channel {name} on pipe {}.{}.{pipe}",
                target.database, target.schema
            )
        };
        let readings_pipe = client.pipe(&target.database, &target.schema, &target.pipe);
        let letters_pipe = client.pipe(&target.database, &target.schema, &target.dead_letter_pipe);
        let letters_name = format!("{stem}_DLQ");
        // Both at once: an open is a round trip, and the Lambda handler's are on its deadline.
        let (readings, dead_letters) = tokio::try_join!(
            async {
                readings_pipe
                    .open_channel(stem)
                    .await
                    .with_context(|| on(&target.pipe, stem))
            },
            async {
                DeadLetterChannel::open(&letters_pipe, &letters_name)
                    .await
                    .with_context(|| on(&target.dead_letter_pipe, &letters_name))
            },
        )?;
        let committed = readings
            .latest_committed_offset_token()
            .map(|t| SequenceNumber::from_token(&t, readings.name()))
            .transpose()?;
        Ok(Writer {
            rules: target.sequences,
            readings,
            dead_letters,
            committed,
        })
    }

    /// The readings channel (to watch its commits and row errors).
    pub fn channel(&self) -> &Channel {
        &self.readings
    }

    /// The readings channel's committed sequence number, as of the last open or wait.
    pub fn committed(&self) -> Option<&SequenceNumber> {
        self.committed.as_ref()
    }

    /// Appends what is new in `records` (in sequence order); see the module docs. Dead
    /// letters are waited for until `deadline` at the latest ([`DEAD_LETTER_COMMIT`] at most).
    ///
    /// # Errors
    /// When an append, the dead letters or their commit fail (`OwnershipLost` among them), or
    /// the dead letters are not committed by `deadline`: the writer should then be dropped and
    /// the records given again to a new one.
    ///
    /// # Cancellation
    /// Dropping the future may leave rows appended and not committed; a new writer's open
    /// discards them, and the records are read again.
    pub async fn write(&mut self, records: &[Record], deadline: Instant) -> Result<Written> {
        let mut out = Written::default();
        let mut rows: Vec<(KinesisReading, OffsetToken)> = Vec::new();
        let mut letters: Vec<(DeadLetterRow, SequenceNumber)> = Vec::new();
        let now = chrono::Utc::now().timestamp().max(0) as u64;
        let mut previous: Option<&SequenceNumber> = None;
        for record in records {
            if self.committed.as_ref().is_some_and(|c| record.seq <= *c) {
                out.skipped += 1;
                continue;
            }
            // A shard's numbers increase (documented, so checked under every rule set).
            if let Some(p) = previous.filter(|p| record.seq <= **p) {
                anyhow::bail!(
                    "channel {}: sequence number {} of {} does not follow {p} before it: a \
                     shard's numbers increase; the record is refused (not written, not \
                     committed, not skipped)",
                    self.readings.name(),
                    record.seq,
                    record.shard_id
                );
            }
            previous = Some(&record.seq);
            // A number the shard cannot have produced is refused: never skipped, never
            // committed (`SequenceNumber::check_after`, docs/kinesis.md).
            record
                .seq
                .check_after(&record.shard_id, self.committed.as_ref(), now, self.rules)
                .with_context(|| format!("channel {}", self.readings.name()))?;
            match reading_of(record) {
                Ok((row, ms)) => {
                    rows.push((row, record.seq.token()));
                    out.event_ms.push(ms);
                    out.last_appended = Some(record.seq.clone());
                }
                Err(_) if self.dead_letters.covers(&record.seq) => {
                    out.skipped += 1;
                }
                Err(bad) => {
                    tracing::warn!(
                        "{} {}: not a sensor reading ({bad}); dead-lettered to {}",
                        record.shard_id,
                        record.seq,
                        self.dead_letters.channel().name()
                    );
                    letters.push((record.dead_letter(&bad), record.seq.clone()));
                }
            }
        }
        if let Some((_, last)) = letters.last() {
            let n = letters.len();
            let last = last.clone();
            self.dead_letters
                .append(letters)
                .await
                .with_context(|| format!("dead-lettering {n} records failed"))?;
            let left = deadline
                .saturating_duration_since(Instant::now())
                .min(DEAD_LETTER_COMMIT);
            self.dead_letters
                .settle(left)
                .await
                .with_context(|| format!("the dead letters up to {last} did not commit"))?;
            out.dead_lettered = n;
        }
        if !rows.is_empty() {
            self.readings
                .append(
                    Rows::serde(rows.iter().map(|(r, _)| r)),
                    Positions::per_row(rows.iter().map(|(_, t)| t.clone())),
                )
                .await
                .with_context(|| format!("append to channel {} failed", self.readings.name()))?;
        }
        Ok(out)
    }

    /// Waits until the readings channel has committed `seq`.
    ///
    /// # Errors
    /// When it does not within `timeout`, or the channel fails (`OwnershipLost` among them).
    ///
    /// # Cancellation
    /// Safe: nothing is changed by waiting.
    pub async fn wait_committed(&mut self, seq: &SequenceNumber, timeout: Duration) -> Result<()> {
        self.readings
            .wait_for_commit(&seq.token(), timeout)
            .await
            .with_context(|| {
                format!("channel {}: {seq} was not committed", self.readings.name())
            })?;
        if self.committed.as_ref().is_none_or(|c| c < seq) {
            self.committed = Some(seq.clone());
        }
        Ok(())
    }

    /// Records a committed token seen on the readings channel's watch.
    ///
    /// # Errors
    /// When it is not a sequence number.
    pub fn note_committed(
        &mut self,
        token: Option<OffsetToken>,
    ) -> Result<Option<&SequenceNumber>> {
        if let Some(t) = token {
            let seq = SequenceNumber::from_token(&t, self.readings.name())?;
            if self.committed.as_ref().is_none_or(|c| *c < seq) {
                self.committed = Some(seq);
            }
        }
        Ok(self.committed.as_ref())
    }

    /// Stops both channels of a writer whose write or commit wait failed, waiting at most
    /// `timeout` (and a second past it for a channel that must be stopped at once). When this
    /// returns, both names are free for the next open in this client; a writer merely dropped
    /// stops in the background, and an open of its stem before that is refused as "already
    /// open" (the Lambda handler's next invocation met exactly that on a busy machine).
    /// Errors are logged at debug level: the channel failed already, and rows it had not
    /// committed are read again by whoever opens it next.
    ///
    /// # Cancellation
    /// Dropping the future drops the channels unstopped (as dropping the writer would).
    pub async fn discard(self, timeout: Duration) {
        let options = snowpipe_streaming::CloseOptions::default().timeout(timeout);
        let name = self.readings.name().to_owned();
        let (readings, dead_letters) = tokio::join!(
            self.readings.close_with(options.clone()),
            self.dead_letters.discard(options)
        );
        for (e, which) in [(readings.err(), ""), (dead_letters.err(), "_DLQ")] {
            if let Some(e) = e {
                tracing::debug!("stopping channel {name}{which} after a failure: {e:#}");
            }
        }
    }

    /// Closes both channels (after the caller waited for what it appended).
    ///
    /// # Errors
    /// When a close fails.
    ///
    /// # Cancellation
    /// Dropping the future drops the channels unclosed; nothing committed is lost.
    pub async fn close(self) -> Result<()> {
        let name = self.readings.name().to_owned();
        self.readings
            .close()
            .await
            .with_context(|| format!("closing channel {name} failed"))?;
        self.dead_letters
            .close(Duration::ZERO)
            .await
            .with_context(|| format!("closing channel {name}_DLQ failed"))?;
        Ok(())
    }
}

/// The reading `record` holds, or why it is a dead letter (the reading's rules, a row no
/// larger than [`MAX_READING_ROW_BYTES`], values the table's columns hold).
fn reading_of(record: &Record) -> Result<(KinesisReading, i64), BadRecord> {
    let (row, ms) = record.reading()?;
    // A reading's row holds a few of the payload's values, each escaped at most 6 times
    // over, and the origin's columns: only a large payload can make a large row.
    if record.data.len() * 6 + record.partition_key.len() * 6 + 1_024 > MAX_READING_ROW_BYTES {
        let size = serde_json::to_vec(&row).map_or(usize::MAX, |v| v.len());
        if size > MAX_READING_ROW_BYTES {
            return Err(BadRecord::new(format!(
                "a reading row of {size} bytes is too large (at most {MAX_READING_ROW_BYTES})"
            )));
        }
    }
    // A value the table cannot hold: the server would reject the row after its token
    // committed, and nothing here reads row errors (`columns.rs`).
    crate::sensor_stream::columns::check(&row.measurement)?;
    Ok((row, ms))
}
