//! The replay: keyset pages from the source, one channel, the key as each row's offset token,
//! resumed after the channel's committed token. Memory is bounded by one page plus the
//! client's memory budget, whatever the table's size.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{Map, Value as Json};
use snowpipe_streaming::{Channel, OffsetToken, StreamingIngestClient};

use crate::schema::{self, SourceTable};
use crate::source::{self, KeysetReader};

/// What to replay and how.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub source: String,
    pub table: String,
    pub key: Option<String>,
    pub database: String,
    pub schema: String,
    pub pipe: String,
    pub batch: usize,
    pub follow: bool,
    pub poll_interval: Duration,
    /// Print a progress line at most this often (`None`: never).
    pub progress_every: Option<Duration>,
}

/// The closing numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    pub table: String,
    /// Rows appended by this run.
    pub rows: u64,
    /// The channel's committed token at the end (the last key replayed).
    pub committed: Option<u64>,
    /// The committed token this run resumed after.
    pub resumed_after: Option<u64>,
    pub elapsed: Duration,
}

impl ReplayReport {
    /// The last stdout line: `{"replayed": {"table": "T", "rows": n, "committed": "<token>"}}`.
    pub fn json_line(&self) -> String {
        serde_json::json!({"replayed": {
            "table": self.table,
            "rows": self.rows,
            "committed": self.committed.map(|c| c.to_string()),
        }})
        .to_string()
    }
}

/// The channel name: one per source table, so a restart reopens the same channel.
pub fn channel_name(table: &str) -> String {
    format!("table_replay_{table}")
}

/// One append: every row carries its key as its offset token, so a split append is still
/// exact and keys need not be dense.
async fn append(channel: &Channel, rows: Vec<(Map<String, Json>, OffsetToken)>) -> Result<()> {
    channel
        .append_rows_with_tokens(rows)
        .await
        .context("append failed")
}

/// Replays `opts.table` into `opts.pipe` through `client`; returns when the source is
/// exhausted and everything is committed (or, with `follow`, when `stop` resolves).
///
/// # Errors
/// On a source error, an unsupported table, or a channel error.
pub async fn replay(
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
        .open_channel(
            &opts.database,
            &opts.schema,
            &opts.pipe,
            &channel_name(&opts.table),
        )
        .await
        .with_context(|| {
            format!(
                "cannot open a channel on pipe {}.{}.{}",
                opts.database, opts.schema, opts.pipe
            )
        })?;
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
        eprintln!("resuming {} after committed key {after}", opts.table);
    }
    eprintln!(
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
    let mut after = resumed_after;
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
        let n = page.len();
        let batch = convert_page(&table, &names, page)?;
        after = batch.last().and_then(|(_, t)| t.as_u64());
        append(&channel, batch).await?;
        rows_sent += n as u64;
        if let Some(every) = opts.progress_every {
            if last_progress.elapsed() >= every {
                last_progress = Instant::now();
                eprintln!(
                    "{}",
                    progress_line(
                        started.elapsed(),
                        rows_sent,
                        range_start,
                        after,
                        max_key,
                        &channel
                    )
                );
            }
        }
    }
    let committed = match after {
        Some(last) if after != resumed_after => {
            channel
                .wait_for_commit(&OffsetToken::from(last), Duration::from_secs(120))
                .await
                .context("the last rows were not committed within 120 s")?;
            Some(last)
        }
        _ => resumed_after,
    };
    channel
        .close()
        .await
        .context("closing the channel failed")?;
    Ok(ReplayReport {
        table: opts.table.clone(),
        rows: rows_sent,
        committed,
        resumed_after,
        elapsed: started.elapsed(),
    })
}

/// Source rows → (JSON object, key token).
fn convert_page(
    table: &SourceTable,
    names: &[String],
    page: Vec<mysql_async::Row>,
) -> Result<Vec<(Map<String, Json>, OffsetToken)>> {
    page.into_iter()
        .map(|row| {
            let values = row.unwrap();
            let key = schema::key_value(&values[table.key])?;
            let mut object = Map::with_capacity(names.len());
            for ((column, name), value) in table.columns.iter().zip(names).zip(&values) {
                let json = schema::to_json(&column.kind, value)
                    .with_context(|| format!("row with key {key}, column {}", column.name))?;
                // SQL NULL is an absent field: a JSON null in a VARIANT column would land as a
                // VARIANT null, not NULL (Snowflake's semantics, which the emulator follows).
                if !json.is_null() {
                    object.insert(name.clone(), json);
                }
            }
            Ok((object, OffsetToken::from(key)))
        })
        .collect()
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
        group(rows),
        group(rate as u64),
        at.map_or("-".into(), |k| k.to_string()),
        max_key.map_or("-".into(), |k| k.to_string()),
    )
}

/// `1234567` → `1,234,567`.
pub fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
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
        };
        let v: Json = serde_json::from_str(&r.json_line()).unwrap();
        assert_eq!(v["replayed"]["table"], "orders");
        assert_eq!(v["replayed"]["rows"], 3);
        assert_eq!(v["replayed"]["committed"], "42");
        assert_eq!(group(1_234_567), "1,234,567");
        assert_eq!(group(12), "12");
    }
}
