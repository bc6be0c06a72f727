//! Changes the type mapping refuses (an invalid date kept under `ALLOW_INVALID_DATES`, text
//! that is not UTF-8, a JSON column that is not JSON, a value past Snowflake's sizes), and a row
//! too large to send (`row_size.rs`: larger than a request and not compressing into one): a dead
//! letter in the replay's `<TABLE>_DLQ` (through `<TABLE>_DLQ_PIPE`, `dead_letter.rs`'s
//! table), and `follow` goes on.
//!
//! The snapshot's rows and the binlog's changes alike, and every change of a diverted table
//! (a `MODIFY` its change table cannot take, `retype.rs`; its reason says so).
//!
//! The dead-letter channel `table_replay_changes_<table>_dlq` carries the change's own token
//! (`token.rs`: `s:FILE:POS:KEY` for a snapshot row, the binlog token for a change), so dead
//! letters are ordered as the changes are. A snapshot page's or a rows event's dead letters
//! are one append; they are committed before the table's next good changes are appended
//! (`DeadLetters::settle`): the change channel's committed token never passes a dead letter
//! that is not committed. A diverted table appends no good change, so its dead letters are
//! never waited for one by one (only when `follow` ends): the other tables' changes are not
//! held behind its commits. A restart reads the snapshot again after
//! the change channel's committed key, or the binlog again from its committed transaction,
//! and skips every dead letter the dead-letter channel's committed token covers (a snapshot
//! row by its key, a change by its place): each bad row or change is in `<TABLE>_DLQ`
//! exactly once, crashes included. A snapshot row's key is compared here where the answer
//! is certain without the server (integer parts, an equal key: `key.rs` `TokenKey::covers`),
//! else by the server, in the snapshot's own order (text in its collation: `dead_resume.rs`);
//! only rows of `--key` columns that repeat a key, or whose key is too long for a token, past
//! the committed one may be written twice (never lost). Only the same snapshot's token
//! covers a snapshot row (the binlog position it resumes at names the snapshot): a new
//! snapshot, taken after the change table and its pipe were made again, writes every dead
//! letter of its own, whatever an earlier one committed. A kill inside a snapshot's first
//! page, after its dead letters and before any of its rows were committed, starts the
//! snapshot again at a new position when the binlog moved meanwhile: that page's dead
//! letters are then written twice (never lost).
//!
//! A dead letter: `SOURCE_TABLE`, `SOURCE_KEY` (0 when the key itself is unreadable or is
//! not one integer column: the column is a number), `SOURCE_KEY_TEXT` (the key columns as
//! a JSON array, `dead_letter.rs` `key_text`; NULL without a row: a `TRUNCATE`), `REASON` (`binlog FILE:POS row N (OP): …`
//! with the operation, or `snapshot key K (r): …`, `K` as `key.rs` shows a key: `('a', 3)`;
//! then the column, its type and why),
//! `RAW_VALUES` (every source column as read, as the replay writes it, with `_OP`,
//! `_BINLOG_FILE`, `_BINLOG_POS`, `_ROW` as on a change row) and `DEAD_LETTERED_AT`.

use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Map, Value as Json};
use snowpipe_streaming::{OffsetToken, RowErrorSummary, StreamingIngestClient};

use crate::common::dead_letters::{DeadLetterChannel, Place};
use crate::common::say::say_warn;
use crate::table_replay::cdc::changes::{Op, Origin};
use crate::table_replay::cdc::key::{self, TokenKey};
use crate::table_replay::cdc::rejected::{Kind, Rejected};
use crate::table_replay::cdc::token::{BinlogPos, Token};
use crate::table_replay::cdc::Followed;
use crate::table_replay::{dead_letter, schema};

/// How long `follow` waits for a rows event's dead letters to commit.
const COMMIT_WAIT: Duration = Duration::from_secs(120);

/// The dead-letter channel of change `<TABLE>`: `table_replay_changes_<table>_dlq`.
pub fn channel_name(table: &str) -> String {
    format!("table_replay_changes_{table}_dlq")
}

/// One change that cannot become a change row.
#[derive(Debug)]
pub(super) struct DeadChange {
    pub token: Token,
    /// The key for `SOURCE_KEY`: a single integer key's value, else 0 (the key is in
    /// `REASON` and `RAW_VALUES`).
    pub key: u64,
    /// `SOURCE_KEY_TEXT` (`dead_letter.rs` `key_text`): the key columns as JSON, `None`
    /// without a row (a `TRUNCATE`).
    pub key_json: Option<String>,
    /// The key as people read it (`key.rs`).
    pub key_text: String,
    /// The key columns' values as read (none when the change has no row: a `TRUNCATE`).
    pub key_values: Vec<mysql_async::Value>,
    pub reason: String,
    /// The source columns as read and the change's place (`_OP`, `_BINLOG_*`, `_ROW`).
    pub raw: Map<String, Json>,
}

impl DeadChange {
    /// A row or change of `f` the mapping refuses, as its dead letter: its reason names the
    /// binlog position, or `snapshot` and the key for a snapshot row (`Op::Read`).
    pub(super) fn new(
        f: &Followed<'_>,
        values: &[mysql_async::Value],
        origin: &Origin<'_>,
        token: Token,
        reason: &str,
    ) -> Self {
        let mut raw = dead_letter::raw_values(&f.table, values);
        raw.insert("_OP".into(), origin.op.code().into());
        raw.insert("_BINLOG_FILE".into(), origin.file.into());
        raw.insert("_BINLOG_POS".into(), origin.pos.into());
        raw.insert("_ROW".into(), origin.row.into());
        let key_values: Option<Vec<_>> = f.table.keys.iter().map(|&k| values.get(k)).collect();
        let key = match key_values.as_deref() {
            Some([one]) => schema::key_value(one).unwrap_or(0),
            _ => 0,
        };
        let key_text = key_values
            .as_deref()
            .map_or_else(|| "?".into(), key::readable);
        let place = if origin.op == Op::Read {
            format!("snapshot key {key_text}")
        } else {
            format!("binlog {}:{} row {}", origin.file, origin.pos, origin.row)
        };
        let key_json = key_values
            .as_deref()
            .map(|v| dead_letter::key_text(&f.table, v));
        DeadChange {
            key,
            key_json,
            key_text,
            key_values: key_values
                .unwrap_or_default()
                .into_iter()
                .cloned()
                .collect(),
            reason: format!("{place} ({}): {reason}", origin.op.code()),
            raw,
            token,
        }
    }
}

/// A followed table's dead-letter channel: opened at its first bad change.
pub(super) struct DeadLetters<'c> {
    client: &'c StreamingIngestClient,
    database: String,
    schema: String,
    table: String,
    /// The snapshot reader whose channel this is (`snapshot_ranges.rs`): 0, the table's
    /// dead-letter channel; `r`, `<CHANNEL>_r`, so each reader's dead letters keep its order.
    reader: usize,
    channel: Option<DeadLetterChannel<Token>>,
    /// The committed snapshot key, with the binlog position its snapshot resumes at, while it
    /// is an earlier run's and a snapshot page may still be at or before it (`dead_resume.rs`
    /// asks the server).
    earlier: Option<(BinlogPos, TokenKey)>,
    /// The channel's rows the server rejected (`rejected.rs`), watched from its opening.
    rejected: Option<Rejected>,
    /// Snapshot readers 1 and on's dead letters ([`reader`](Self::reader)).
    readers: Vec<DeadLetters<'c>>,
}

/// A change's place: its token (`token.rs`), compared by [`Token::covers`].
impl Place for Token {
    fn from_token(token: &OffsetToken, _channel: &str) -> Result<Self> {
        Token::parse(token.as_str())
    }

    fn token(&self) -> Result<OffsetToken> {
        Ok(OffsetToken::new(self.render())?)
    }

    fn covers(&self, later: &Self) -> bool {
        Token::covers(self, later)
    }
}

impl<'c> DeadLetters<'c> {
    pub(super) fn new(
        client: &'c StreamingIngestClient,
        database: &str,
        schema: &str,
        table: &str,
    ) -> Self {
        Self {
            client,
            database: database.to_owned(),
            schema: schema.to_owned(),
            table: table.to_owned(),
            reader: 0,
            channel: None,
            earlier: None,
            rejected: None,
            readers: Vec::new(),
        }
    }

    /// The dead letters of snapshot reader `reader` (`snapshot_ranges.rs`): this table's,
    /// reader 0's the table's channel, each other's a channel of its own (opened when it
    /// sends), counted and closed with these.
    pub(super) fn reader(&mut self, reader: usize) -> &mut Self {
        if reader == 0 {
            return self;
        }
        while self.readers.len() < reader {
            let mut next = Self::new(self.client, &self.database, &self.schema, &self.table);
            next.reader = self.readers.len() + 1;
            self.readers.push(next);
        }
        &mut self.readers[reader - 1]
    }

    /// Dead-lettered by this run.
    pub(super) fn stored(&self) -> u64 {
        let readers: u64 = self.readers.iter().map(Self::stored).sum();
        readers + self.channel.as_ref().map_or(0, DeadLetterChannel::stored)
    }

    fn place(&self) -> String {
        format!(
            "{}.{}.{}",
            self.database,
            self.schema,
            dead_letter::pipe_name(&self.table)
        )
    }

    async fn open(&mut self) -> Result<()> {
        if self.channel.is_some() {
            return Ok(());
        }
        let pipe = self.client.pipe(
            &self.database,
            &self.schema,
            &dead_letter::pipe_name(&self.table),
        );
        let name =
            snowpipe_streaming::LaneStream::lane_name(&channel_name(&self.table), self.reader);
        let channel = DeadLetterChannel::<Token>::open(&pipe, &name)
            .await
            .with_context(|| {
                format!(
                    "{} has a change that cannot be written and the dead-letter pipe {} cannot \
                     be opened: create it with the statements `table_replay ddl --changes` \
                     prints",
                    self.table,
                    self.place()
                )
            })?;
        self.earlier = match channel.covered() {
            Some(Token::Snapshot {
                resume,
                key,
                done: false,
            }) if !key.key.is_empty() => Some((resume.clone(), key.clone())),
            _ => None,
        };
        self.rejected = Some(Rejected::watch(
            &self.table,
            Kind::DeadLetters,
            channel.channel(),
        ));
        self.channel = Some(channel);
        Ok(())
    }

    /// The committed snapshot key of an earlier run that a snapshot page's dead letters
    /// may be at or before (opening the channel): `dead_resume.rs` asks the server which.
    ///
    /// # Errors
    /// When the channel cannot be opened.
    pub(super) async fn earlier_snapshot_key(&mut self) -> Result<Option<(BinlogPos, TokenKey)>> {
        self.open().await?;
        Ok(self.earlier.clone())
    }

    /// The snapshot has read past the earlier run's committed key: nothing more to ask.
    pub(super) fn passed_earlier(&mut self) {
        self.earlier = None;
    }

    /// Writes `dead` (in token order) in one append, each logged once with its reason; those
    /// an earlier run committed are skipped. Their commit is waited for by [`Self::settle`]
    /// (before the table's next good changes) or at the close.
    ///
    /// # Errors
    /// When the channel cannot be opened, or the append fails.
    pub(super) async fn send(&mut self, dead: Vec<DeadChange>) -> Result<()> {
        if dead.is_empty() {
            return Ok(());
        }
        self.open().await?;
        let place = self.place();
        let channel = self.channel.as_mut().expect("opened above");
        let now = chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S%.3f+00:00")
            .to_string();
        let mut batch = Vec::new();
        for d in dead {
            if channel.covers(&d.token) {
                continue;
            }
            say_warn!(
                "{}: the change of key {} cannot be written ({}); dead-lettered to {place}",
                self.table,
                d.key_text,
                d.reason,
            );
            let object =
                dead_letter::dlq_row(&self.table, d.key, d.key_json, d.reason, d.raw, &now);
            batch.push((object, d.token));
        }
        if !batch.is_empty() {
            channel.append(batch).await?;
            self.earlier = None;
        }
        Ok(())
    }

    /// Waits until every dead letter appended is committed: before the table's change
    /// channel takes changes that follow them.
    ///
    /// # Errors
    /// When they are not committed within `COMMIT_WAIT`.
    pub(super) async fn settle(&mut self) -> Result<()> {
        let channels = std::iter::once(&mut self.channel)
            .chain(self.readers.iter_mut().map(|r| &mut r.channel))
            .flatten();
        for channel in channels {
            channel
                .settle(COMMIT_WAIT)
                .await
                .with_context(|| format!("{}'s dead letters", self.table))?;
        }
        Ok(())
    }

    /// The dead letters the server rejected so far.
    pub(super) fn rejected(&self) -> RowErrorSummary {
        let mut summary = RowErrorSummary::default();
        for r in std::iter::once(&self.rejected).chain(self.readers.iter().map(|r| &r.rejected)) {
            summary.absorb(&r.as_ref().map(Rejected::so_far).unwrap_or_default());
        }
        summary
    }

    /// Waits for the dead letters sent to commit and closes the channels; the dead letters
    /// the server rejected.
    ///
    /// # Errors
    /// When they are not committed in time or a close fails.
    pub(super) async fn close(self) -> Result<RowErrorSummary> {
        let mut summary = RowErrorSummary::default();
        let all = std::iter::once((self.channel, self.rejected))
            .chain(self.readers.into_iter().map(|r| (r.channel, r.rejected)));
        for (channel, rejected) in all {
            let Some(channel) = channel else {
                continue;
            };
            let status = channel
                .close(COMMIT_WAIT)
                .await
                .with_context(|| format!("{}'s dead letters", self.table))?;
            if let Some(r) = rejected {
                summary.absorb(&r.finish(&status).await);
            }
        }
        Ok(summary)
    }
}
