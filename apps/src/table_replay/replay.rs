//! The replay: keyset pages from the source, one channel, the key as each row's offset token,
//! resumed after the channel's committed token. Memory is bounded by one page plus the
//! client's memory budget, whatever the table's size.
//!
//! A row that cannot become a row, or that the channel cannot send for its size (measured
//! before the append by the SDK's rule: `row_size.rs`), is dead-lettered (`dead_letter.rs`)
//! and the replay goes on;
//! rows the server rejects are counted from the channel's row-error reports (`row_errors.rs`).

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use snowpipe_streaming::{Channel, OffsetToken, RowErrorSummary, StreamingIngestClient};

use crate::common::say::say;
use crate::common::thousands;
use crate::table_replay::dead_letter::{self, BadRow, DeadLetters};
use crate::table_replay::row_errors::{drain, key_range};
use crate::table_replay::row_size;
use crate::table_replay::row_text::{Page, RowText};
use crate::table_replay::schema::{self, SourceTable};
use crate::table_replay::secret;
use crate::table_replay::source::{self, KeysetReader};

/// What to replay and how.
#[derive(Clone)]
pub(super) struct ReplayOptions {
    /// The source URL, with its password: never printed ([`Debug`] redacts it).
    pub source: String,
    pub table: String,
    pub key: Option<String>,
    pub database: String,
    pub schema: String,
    pub pipe: String,
    /// The dead-letter pipe (`<TABLE>_DLQ_PIPE`), in `database.schema`.
    pub dlq_pipe: String,
    pub batch: usize,
    pub follow: bool,
    pub poll_interval: Duration,
    /// Print a progress line at most this often (`None`: never).
    pub progress_every: Option<Duration>,
}

impl std::fmt::Debug for ReplayOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayOptions")
            .field("source", &secret::redact(&self.source))
            .field("table", &self.table)
            .field("key", &self.key)
            .field("database", &self.database)
            .field("schema", &self.schema)
            .field("pipe", &self.pipe)
            .field("dlq_pipe", &self.dlq_pipe)
            .field("batch", &self.batch)
            .field("follow", &self.follow)
            .finish_non_exhaustive()
    }
}

/// The closing numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ReplayReport {
    pub table: String,
    /// Rows appended by this run.
    pub rows: u64,
    /// The channel's committed token at the end (the last key replayed).
    pub committed: Option<u64>,
    /// The committed token this run resumed after.
    pub resumed_after: Option<u64>,
    pub elapsed: Duration,
    /// Bad rows dead-lettered by this run.
    pub dead_lettered: u64,
    /// Bad rows read again after a restart and skipped: already dead-lettered.
    pub already_dead_lettered: u64,
    /// The dead-letter pipe, qualified.
    pub dead_letter_place: String,
    /// Rows the server rejected.
    pub row_errors: RowErrorSummary,
}

impl ReplayReport {
    /// The last stdout line: `{"replayed": {"table": "T", "rows": n, "committed": "<token>",
    /// "dead_lettered": n, "already_dead_lettered": n, "row_errors": {…}}}`.
    pub(super) fn json_line(&self) -> String {
        serde_json::json!({"replayed": {
            "table": self.table,
            "rows": self.rows,
            "committed": self.committed.map(|c| c.to_string()),
            "dead_lettered": self.dead_lettered,
            "already_dead_lettered": self.already_dead_lettered,
            "row_errors": &self.row_errors,
        }})
        .to_string()
    }

    /// The closing report's bad-row line.
    pub(super) fn bad_rows_line(&self) -> String {
        let mut line = if self.dead_lettered + self.already_dead_lettered == 0 {
            format!(
                "bad rows: none dead-lettered (they would go to {})",
                self.dead_letter_place
            )
        } else {
            format!(
                "bad rows: {} dead-lettered to {} ({} more already there from an earlier run)",
                thousands(self.dead_lettered),
                self.dead_letter_place,
                thousands(self.already_dead_lettered)
            )
        };
        let r = &self.row_errors;
        if r.count() == 0 {
            line.push_str("; no row rejected by the server");
        } else {
            line.push_str(&format!(
                "; {} rows rejected by the server ({}; first: {}): they are not in the table",
                thousands(r.count()),
                key_range(r),
                r.first_message().unwrap_or("(no message)")
            ));
        }
        line
    }
}

/// The channel name: one per source table, so a restart reopens the same channel.
pub(super) fn channel_name(table: &str) -> String {
    format!("table_replay_{table}")
}

/// One append: every row carries its key as its offset token, so a split append is still
/// exact and keys need not be dense.
async fn append(channel: &Channel, page: Page) -> Result<()> {
    let (rows, positions) = page.into_append();
    channel
        .append(rows, positions)
        .await
        .context("append failed")
}

/// Replays `opts.table` into `opts.pipe` through `client`; returns when the source is
/// exhausted and everything is committed (or, with `follow`, when `stop` resolves).
///
/// # Errors
/// On a source error, an unsupported table, or a channel error.
pub(super) async fn replay(
    client: &StreamingIngestClient,
    opts: &ReplayOptions,
    stop: impl std::future::Future<Output = ()>,
) -> Result<ReplayReport> {
    let started = Instant::now();
    let mut conn = source::connect(&opts.source).await?;
    let table = source::describe(&mut conn, &opts.table, opts.key.as_deref()).await?;
    let names: Vec<String> = table
        .columns
        .iter()
        .map(|c| schema::snowflake_name(&c.name))
        .collect();
    let channel = client
        .pipe(&opts.database, &opts.schema, &opts.pipe)
        .open_channel(&channel_name(&opts.table))
        .await
        .with_context(|| {
            format!(
                "cannot open a channel on pipe {}.{}.{}",
                opts.database, opts.schema, opts.pipe
            )
        })?;
    // Counts the rows rejected after the channel's status now (an earlier run's are not this
    // run's), read before subscribing (the order `RowErrorSummary::since` asks for).
    let mut row_errors = RowErrorSummary::since(&channel.status());
    let mut errors = channel.row_errors();
    let mut dead_letters = DeadLetters::new(
        client,
        &opts.database,
        &opts.schema,
        &opts.dlq_pipe,
        &opts.table,
    );
    let resumed_after = match channel.latest_committed_offset_token() {
        None => None,
        Some(t) => Some(t.as_u64().with_context(|| {
            format!("the channel's committed offset token {t} is not a key: was it written by another tool?")
        })?),
    };
    let (total, min_key, max_key) = source::key_range(&mut conn, &table).await?;
    let range_start = resumed_after
        .or(min_key.map(|m| m.saturating_sub(1)))
        .unwrap_or(0);
    if let Some(after) = resumed_after {
        say!("resuming {} after committed key {after}", opts.table);
    }
    say!(
        "replaying {} ({total} rows, keys {}..{}) into {}.{}.{} in pages of {}",
        opts.table,
        min_key.map_or("-".into(), |k| k.to_string()),
        max_key.map_or("-".into(), |k| k.to_string()),
        opts.database,
        opts.schema,
        opts.pipe,
        opts.batch
    );
    let reader = KeysetReader::new(&table);
    // The last key read (appended or dead-lettered) and the last key appended.
    let mut after = resumed_after;
    let mut last_appended = resumed_after;
    let mut rows_sent = 0u64;
    let mut last_progress = Instant::now();
    tokio::pin!(stop);
    loop {
        let page = reader.page(&mut conn, after, opts.batch).await?;
        if page.is_empty() {
            if !opts.follow {
                break;
            }
            tokio::select! {
                () = &mut stop => break,
                () = tokio::time::sleep(opts.poll_interval) => continue,
            }
        }
        let (batch, bad, last_key) = convert_page(&channel, &table, &names, page)?;
        after = Some(last_key);
        let n = batch.len() as u64;
        // A page's dead letters are committed before its good rows are appended: the table
        // channel's token must never pass a bad row's key while that row is in flight, or a
        // crash then would resume past it and lose it (`dead_letter.rs`).
        dead_letters.send(bad).await?;
        dead_letters
            .wait_committed(Duration::from_secs(120))
            .await?;
        if let Some(last) = batch.last_token().and_then(OffsetToken::as_u64) {
            append(&channel, batch).await?;
            last_appended = Some(last);
        }
        rows_sent += n;
        drain(&mut row_errors, &mut errors);
        if let Some(every) = opts.progress_every {
            if last_progress.elapsed() >= every {
                last_progress = Instant::now();
                say!(
                    "{}",
                    progress_line(
                        started.elapsed(),
                        rows_sent,
                        range_start,
                        after,
                        max_key,
                        &channel
                    ) + &bad_rows_progress(&dead_letters, &row_errors)
                );
            }
        }
    }
    let committed = match last_appended {
        Some(last) if last_appended != resumed_after => {
            channel
                .wait_for_commit(&OffsetToken::from(last), Duration::from_secs(120))
                .await
                .context("the last rows were not committed within 120 s")?;
            Some(last)
        }
        _ => resumed_after,
    };
    let (dead_lettered, already_dead_lettered) = (dead_letters.stored(), dead_letters.already);
    let dead_letter_place = dead_letters.place();
    dead_letters.finish(Duration::from_secs(120)).await?;
    row_errors.catch_up(&channel.status());
    channel
        .close()
        .await
        .context("closing the channel failed")?;
    // Closing polls the status once more: its row errors are queued by now, the last report
    // (the cumulative count of every missed one) among them.
    drain(&mut row_errors, &mut errors);
    Ok(ReplayReport {
        table: opts.table.clone(),
        rows: rows_sent,
        committed,
        resumed_after,
        elapsed: started.elapsed(),
        dead_lettered,
        already_dead_lettered,
        dead_letter_place,
        row_errors,
    })
}

/// `  dead-lettered 3  rejected 1` (empty when there are none), after the progress line.
fn bad_rows_progress(dead_letters: &DeadLetters<'_>, row_errors: &RowErrorSummary) -> String {
    let mut s = String::new();
    if dead_letters.stored() + dead_letters.already > 0 {
        s.push_str(&format!(
            "  dead-lettered {}",
            thousands(dead_letters.stored() + dead_letters.already)
        ));
    }
    if row_errors.count() > 0 {
        s.push_str(&format!("  rejected {}", thousands(row_errors.count())));
    }
    s
}

/// Rows appended with their key tokens, bad rows for the dead-letter table.
type Converted = (Page, Vec<BadRow>, u64);

/// A non-empty page of source rows → (JSON rows with key tokens, bad rows, the last key).
///
/// # Errors
/// Only for a key that is no offset token (NULL or negative); a value the mapping refuses,
/// or a row `channel` cannot send for its size (`row_size.rs`), makes a [`BadRow`].
fn convert_page(
    channel: &Channel,
    table: &SourceTable,
    names: &[String],
    page: Vec<mysql_async::Row>,
) -> Result<Converted> {
    let (mut good, mut bad, mut last) = (
        Page::with_capacity(page.len(), row_size::ROW_BYTES_GUESS),
        Vec::new(),
        0,
    );
    for row in page {
        let values = row.unwrap();
        let key = schema::key_value(&values[table.key])?;
        last = key;
        let written = good.push(OffsetToken::from(key), |row| {
            write_columns(table, names, &values, row)?;
            row_size::check(channel, table, names, &values, row.text())
        });
        if let Err(reason) = written {
            bad.push(BadRow {
                key,
                reason,
                raw: dead_letter::raw_values(table, &values),
            });
        }
    }
    Ok((good, bad, last))
}

/// One source row's columns into `row`, or why it cannot become one (`column c (TYPE): …`).
pub(crate) fn write_columns(
    table: &SourceTable,
    names: &[String],
    values: &[mysql_async::Value],
    row: &mut RowText<'_>,
) -> std::result::Result<(), String> {
    for ((column, name), value) in table.columns.iter().zip(names).zip(values) {
        let mapped = schema::map(&column.kind, value)
            .map_err(|e| format!("column {} ({}): {e}", column.name, column.column_type))?;
        row.field(name, &mapped);
    }
    Ok(())
}

/// `[  12.0s] 120,000 rows  10,000 rows/s  key 120000/1000000  committed 118000  ETA 88s`.
fn progress_line(
    elapsed: Duration,
    rows: u64,
    range_start: u64,
    at: Option<u64>,
    max_key: Option<u64>,
    channel: &Channel,
) -> String {
    let secs = elapsed.as_secs_f64().max(1e-3);
    let rate = rows as f64 / secs;
    let committed = channel
        .latest_committed_offset_token()
        .map_or("-".into(), |t| t.to_string());
    let eta = match (at, max_key) {
        (Some(at), Some(max)) if at > range_start && max >= at => {
            let done = (at - range_start) as f64;
            let left = (max - at) as f64;
            format!("ETA {:.0}s", secs * left / done)
        }
        _ => "ETA -".into(),
    };
    format!(
        "[{secs:7.1}s] {} rows  {} rows/s  key {}/{}  committed {committed}  {eta}",
        thousands(rows),
        thousands(rate as u64),
        at.map_or("-".into(), |k| k.to_string()),
        max_key.map_or("-".into(), |k| k.to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_line_is_the_documented_json() {
        let r = ReplayReport {
            table: "orders".into(),
            rows: 3,
            committed: Some(42),
            resumed_after: None,
            elapsed: Duration::ZERO,
            dead_lettered: 2,
            already_dead_lettered: 1,
            dead_letter_place: "DB.PUBLIC.ORDERS_DLQ_PIPE".into(),
            row_errors: RowErrorSummary::default(),
        };
        let v: serde_json::Value = serde_json::from_str(&r.json_line()).unwrap();
        assert_eq!(v["replayed"]["table"], "orders");
        assert_eq!(v["replayed"]["rows"], 3);
        assert_eq!(v["replayed"]["committed"], "42");
        assert_eq!(v["replayed"]["dead_lettered"], 2);
        assert_eq!(v["replayed"]["already_dead_lettered"], 1);
        assert_eq!(v["replayed"]["row_errors"]["count"], 0);
        assert_eq!(
            r.bad_rows_line(),
            "bad rows: 2 dead-lettered to DB.PUBLIC.ORDERS_DLQ_PIPE (1 more already there from \
             an earlier run); no row rejected by the server"
        );
    }
}
