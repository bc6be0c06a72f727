//! The binlog, read as a replica reads it, from a position: each rows event of a followed
//! table becomes its change rows, appended with their tokens (`token.rs`).
//!
//! Read through `mysql_async`'s binlog stream (`COM_BINLOG_DUMP`, events parsed by
//! `mysql_common`); what this adds: MariaDB's GTID event (type 162, which `mysql_common`
//! does not parse: sequence, domain, flags), asked for with `@mariadb_slave_capability=4`,
//! and the binlog → snapshot value forms (`binlog_value.rs`).

use std::time::Duration;

use anyhow::{bail, Context, Result};
use futures_util::StreamExt;
use mysql_async::binlog::events::{EventData, RowsEventData};
use mysql_async::{BinlogStream, BinlogStreamRequest, Conn};
use snowpipe_streaming::OffsetToken;

use crate::table_replay::cdc::changes::{self, Op, Origin};
use crate::table_replay::cdc::dead_letters::DeadChange;
use crate::table_replay::cdc::evolve::{self, Place};
use crate::table_replay::cdc::observe::{self, Observer};
use crate::table_replay::cdc::token::{BinlogPos, ChangePos, Token};
use crate::table_replay::cdc::Followed;

/// MariaDB's GTID event type.
const MARIADB_GTID_EVENT: u8 = 162;

/// Opens the binlog stream at `from` on `conn` (which it consumes); returns it with whether
/// the server checksums its events.
///
/// # Errors
/// When the server refuses (a purged position says so when the first event is read).
pub(super) async fn open(
    mut conn: Conn,
    server_id: u32,
    from: &BinlogPos,
) -> Result<(BinlogStream, bool)> {
    use mysql_async::prelude::Queryable as _;
    let checksum: Option<String> = conn.query_first("SELECT @@binlog_checksum").await?;
    let checksum = checksum.is_some_and(|c| !c.eq_ignore_ascii_case("NONE"));
    // GTID events as MariaDB writes them (a lower capability gets them as BEGIN queries).
    conn.query_drop("SET @mariadb_slave_capability = 4").await?;
    let request = BinlogStreamRequest::new(server_id)
        .with_filename(from.file.as_bytes())
        .with_pos(from.pos);
    let stream = conn
        .get_binlog_stream(request)
        .await
        .with_context(|| format!("the server refused the binlog stream at {from}"))?;
    Ok((stream, checksum))
}

/// The file a Rotate event names. The stream's first Rotate comes before the format
/// description that says events carry a checksum, so the parser leaves the 4 checksum bytes
/// at the end of its name (found by the crash test: `binlog.000001rL\S`).
fn rotate_name(name: &[u8], checksum: bool, seen_fde: bool) -> String {
    let name = if checksum && !seen_fde && name.len() > 4 {
        &name[..name.len() - 4]
    } else {
        name
    };
    String::from_utf8_lossy(name).into_owned()
}

/// The binlog connection was lost (the server restarted, the network broke): `follow`
/// connects again and resumes after its last appended change.
#[derive(Debug)]
pub(super) struct Disconnected(pub String);

impl std::fmt::Display for Disconnected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the binlog connection was lost: {}", self.0)
    }
}

impl std::error::Error for Disconnected {}

/// The transaction being read.
#[derive(Debug, Default)]
struct Tx {
    file: String,
    start: u64,
    gtid: Option<String>,
    ts: i64,
}

/// What [`follow`] did.
#[derive(Debug, Default)]
pub(super) struct Streamed {
    pub changes: u64,
    pub at: Option<BinlogPos>,
}

/// Reads the binlog from `stream` until `stop` resolves or, with `until_idle`, no event came
/// for that long; appends each followed table's changes to its channel.
///
/// # Errors
/// A stream error (a purged position: the fix is a new snapshot), a followed table whose
/// shape changed in a way the change table cannot follow (`evolve.rs`; `DROP`/`RENAME
/// TABLE`), or an append that failed. A value that cannot be converted is a dead letter,
/// not an error, and so is every change of a diverted table (a `MODIFY` the change table
/// cannot take: `retype.rs`).
pub(super) async fn follow(
    (stream, checksum): (&mut BinlogStream, bool),
    start: &BinlogPos,
    (source_db, place): (&str, &Place<'_>),
    tables: &mut [Followed<'_>],
    (until_idle, observer): (Option<Duration>, &Observer),
    mut stop: impl std::future::Future<Output = ()> + Unpin,
) -> Result<Streamed> {
    let mut tx = Tx {
        file: start.file.clone(),
        start: start.pos,
        ..Tx::default()
    };
    let mut out = Streamed::default();
    let mut seen_fde = false;
    let idle = until_idle.unwrap_or(Duration::from_secs(u64::MAX / 4));
    let mut idle_at = tokio::time::Instant::now() + idle;
    let mut tick = tokio::time::interval(observe::TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let next = tokio::select! {
            () = &mut stop => break,
            () = tokio::time::sleep_until(idle_at) => break,
            _ = tick.tick() => {
                observer.tick(tables);
                continue;
            }
            n = stream.next() => n,
        };
        idle_at = tokio::time::Instant::now() + idle;
        let event = match next {
            None => {
                return Err(anyhow::Error::new(Disconnected(format!(
                    "the server ended the binlog stream at {}:{}",
                    tx.file, tx.start
                ))))
            }
            Some(Err(e)) => return Err(stream_error(e, &tx, tables)),
            Some(Ok(e)) => e,
        };
        let h = event.header();
        let end = u64::from(h.log_pos());
        let begin = end.saturating_sub(u64::from(h.event_size()));
        observer.read(&tx.file, end, h.timestamp());
        if h.event_type_raw() == MARIADB_GTID_EVENT {
            let d = event.data();
            if d.len() >= 12 {
                let seq = u64::from_le_bytes(d[0..8].try_into().unwrap_or_default());
                let domain = u32::from_le_bytes(d[8..12].try_into().unwrap_or_default());
                tx.gtid = Some(format!("{domain}-{}-{seq}", h.server_id()));
            }
            (tx.start, tx.ts) = (begin, i64::from(h.timestamp()));
            continue;
        }
        match event.read_data().context("cannot parse a binlog event")? {
            Some(EventData::RotateEvent(r)) => {
                tx.file = rotate_name(r.name_raw(), checksum, seen_fde);
            }
            Some(EventData::FormatDescriptionEvent(_)) => seen_fde = true,
            Some(EventData::QueryEvent(q)) => {
                let sql = q.query();
                if sql.eq_ignore_ascii_case("BEGIN") {
                    if tx.start != begin && tx.gtid.is_none() {
                        (tx.start, tx.ts) = (begin, i64::from(h.timestamp()));
                    }
                } else if !sql.eq_ignore_ascii_case("COMMIT") {
                    match check_ddl(&sql, &q.schema(), source_db, tables, &tx, begin)? {
                        Some((i, Ddl::Truncate)) => {
                            out.changes += truncate(&mut tables[i], &tx, begin).await?;
                        }
                        Some((i, Ddl::Alter)) => {
                            let at = format!("{}:{begin}", tx.file);
                            evolve::check_types(&mut tables[i], place, &at).await?;
                        }
                        None => {}
                    }
                    tx.gtid = None;
                }
            }
            Some(EventData::XidEvent(_)) => {
                tx.gtid = None;
                out.at = Some(BinlogPos {
                    file: tx.file.clone(),
                    pos: end,
                });
            }
            Some(EventData::RowsEvent(rows)) => {
                out.changes +=
                    rows_event(stream, &rows, (source_db, place), tables, &tx, begin).await?;
            }
            _ => {}
        }
    }
    Ok(out)
}

/// A purged or missing position says what to do: a new snapshot of the followed tables.
fn stream_error(e: mysql_async::Error, tx: &Tx, tables: &[Followed<'_>]) -> anyhow::Error {
    let text = e.to_string();
    if text.contains("1236")
        || text
            .to_lowercase()
            .contains("could not find first log file")
    {
        anyhow::anyhow!(
            "the binlog at {}:{} is no longer on the server ({text}): it was purged \
             (expire_logs_days / binlog_expire_logs_seconds, or PURGE BINARY LOGS). The changes \
             committed so far stay in the change tables; the changes since cannot be read: {}",
            tx.file,
            tx.start,
            changes::new_snapshot_fix(tables.iter().map(|f| f.table.name.as_str()))
        )
    } else {
        anyhow::Error::new(Disconnected(format!("at {}:{}: {text}", tx.file, tx.start)))
    }
}

/// A statement on a followed table: a `TRUNCATE` → the table's index (its change is a `t`
/// row); an `ALTER TABLE` → the table's index (its types are checked); one the change
/// table cannot express (a rename, `DROP TABLE`) → stop,
/// naming it.
fn check_ddl(
    sql: &str,
    schema_name: &str,
    source_db: &str,
    tables: &[Followed<'_>],
    tx: &Tx,
    at: u64,
) -> Result<Option<(usize, Ddl)>> {
    if !schema_name.is_empty() && schema_name != source_db {
        return Ok(None);
    }
    let lower = sql.to_lowercase();
    let words: Vec<&str> = lower.split_whitespace().take(4).collect();
    let verb = match words.as_slice() {
        ["truncate", ..] => "TRUNCATE",
        // ADD/DROP/MODIFY COLUMN: the next rows event's table map has the new shape
        // (`evolve.rs`); a rename loses the table.
        ["alter", "table", ..] | ["alter", "online", "table", ..] if renames_table(&lower) => {
            "ALTER TABLE … RENAME"
        }
        ["alter", "table", ..] | ["alter", "online", "table", ..] => "ALTER TABLE",
        ["drop", "table", ..] => "DROP TABLE",
        ["rename", "table", ..] => "RENAME TABLE",
        _ => return Ok(None),
    };
    for (i, f) in tables.iter().enumerate() {
        let name = f.table.name.to_lowercase();
        let named = lower
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
            .any(|w| w == name);
        if named && verb == "TRUNCATE" {
            return Ok(Some((i, Ddl::Truncate)));
        }
        if named && verb == "ALTER TABLE" {
            return Ok(Some((i, Ddl::Alter)));
        }
        if named {
            bail!(
                "{verb} on followed table {} at {}:{at}: the change table cannot express it \
                 (a {verb} writes no row changes to the binlog). Changes before it are \
                 committed; to go on, {}",
                f.table.name,
                tx.file,
                changes::new_snapshot_fix([f.table.name.as_str()])
            );
        }
    }
    Ok(None)
}

/// A statement on a followed table that `follow` goes on through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ddl {
    /// A `t` change row.
    Truncate,
    /// ADD/DROP/MODIFY COLUMN: the types are checked now, the shape at the next rows event.
    Alter,
}

/// Whether an `ALTER TABLE` renames the table (`RENAME [TO|AS] x`, not `RENAME COLUMN`,
/// `RENAME INDEX` or `RENAME KEY`).
fn renames_table(lower: &str) -> bool {
    let words: Vec<&str> = lower.split_whitespace().collect();
    words.windows(2).any(|w| {
        w[0] == "rename" && !matches!(w[1].trim_end_matches(','), "column" | "index" | "key")
    })
}

/// A `TRUNCATE` of `f`'s table at `begin`: one `t` row (no source column), its token the
/// statement's position as row 0, so a rerun skips it once committed. Returns how many
/// rows it wrote (0 when already committed).
async fn truncate(f: &mut Followed<'_>, tx: &Tx, begin: u64) -> Result<u64> {
    let change = ChangePos {
        event: BinlogPos {
            file: tx.file.clone(),
            pos: begin,
        },
        row: 0,
    };
    if !f.wants(&change) {
        return Ok(0);
    }
    let origin = Origin {
        op: Op::Truncate,
        file: &tx.file,
        pos: begin,
        row: 0,
        gtid: tx.gtid.as_deref(),
        commit_ts: tx.ts,
    };
    let token = Token::Binlog {
        tx: BinlogPos {
            file: tx.file.clone(),
            pos: tx.start,
        },
        change,
    };
    if let Some(why) = f.diverted.clone() {
        // A diverted table's TRUNCATE is a dead letter too (key 0: it has none).
        let dead = DeadChange::new(f, &[], &origin, token, &why);
        f.dead.send(vec![dead]).await?;
        return Ok(0);
    }
    let object = changes::row(&f.table, &f.names, &[], &origin).map_err(|e| anyhow::anyhow!(e))?;
    f.append(vec![(object, OffsetToken::new(token.render())?)])
        .await?;
    Ok(1)
}

/// One rows event: its changes for a followed table, appended. Returns how many.
async fn rows_event(
    stream: &BinlogStream,
    rows: &RowsEventData<'_>,
    (source_db, place): (&str, &Place<'_>),
    tables: &mut [Followed<'_>],
    tx: &Tx,
    begin: u64,
) -> Result<u64> {
    let tme = stream
        .get_tme(rows.table_id())
        .context("a rows event without its table map")?;
    if tme.database_name() != source_db {
        return Ok(0);
    }
    let name = tme.table_name();
    let Some(f) = tables.iter_mut().find(|f| f.table.name == name) else {
        return Ok(0);
    };
    let names = evolve::column_names(tme);
    let count = usize::try_from(tme.columns_count()).unwrap_or(usize::MAX);
    if evolve::differs(f, names.as_deref(), count) {
        let at = format!("{}:{begin}", tx.file);
        evolve::evolve(f, place, (tme, names), count, &at).await?;
    }
    let op = match rows {
        RowsEventData::WriteRowsEventV1(_) | RowsEventData::WriteRowsEvent(_) => Op::Insert,
        RowsEventData::DeleteRowsEventV1(_) | RowsEventData::DeleteRowsEvent(_) => Op::Delete,
        _ => Op::Update,
    };
    let txpos = BinlogPos {
        file: tx.file.clone(),
        pos: tx.start,
    };
    let mut batch = Vec::new();
    let mut dead = Vec::new();
    for (i, row) in rows.rows(tme).enumerate() {
        let (before, after) = row.with_context(|| {
            format!(
                "cannot read row {i} of the rows event at {}:{begin}",
                tx.file
            )
        })?;
        let i = u32::try_from(i).context("more than 2^32 rows in one event")?;
        let before = before.map(|r| f.values(r)).transpose()?;
        let after = after.map(|r| f.values(r)).transpose()?;
        let key_of = |v: &Option<(Vec<mysql_async::Value>, Option<String>)>| {
            v.as_ref().map(|v| {
                f.table
                    .keys
                    .iter()
                    .map(|&k| v.0[k].clone())
                    .collect::<Vec<_>>()
            })
        };
        // An update that changes the key: the old key is deleted first.
        let mut parts = Vec::new();
        if op == Op::Update && key_of(&before) != key_of(&after) {
            parts.push((0, Op::Delete, before.clone()));
        }
        let image = if op == Op::Delete { before } else { after };
        parts.push((1, op, image));
        for (sub, op, image) in parts {
            let change = ChangePos {
                event: BinlogPos {
                    file: tx.file.clone(),
                    pos: begin,
                },
                row: 2 * i + sub,
            };
            let (values, refused) = image.with_context(|| {
                format!(
                    "row {i} of the rows event at {}:{begin} has no row image",
                    tx.file
                )
            })?;
            let origin = Origin {
                op,
                file: &tx.file,
                pos: begin,
                row: i,
                gtid: tx.gtid.as_deref(),
                commit_ts: tx.ts,
            };
            let token = Token::Binlog {
                tx: txpos.clone(),
                change: change.clone(),
            };
            // A delete carries the key alone: only the key's value can refuse it.
            let refused = refused.filter(|_| op != Op::Delete);
            // A diverted table: every change its change channel lacks is a dead letter.
            let row = match &f.diverted {
                Some(why) => Err(why.clone()),
                None => {
                    refused.map_or_else(|| changes::row(&f.table, &f.names, &values, &origin), Err)
                }
            };
            match row {
                Ok(object) => {
                    if f.wants(&change) {
                        batch.push((object, OffsetToken::new(token.render())?));
                    }
                }
                Err(_) if f.diverted.is_some() && !f.wants(&change) => {}
                Err(reason) => dead.push(DeadChange::new(f, &values, &origin, token, &reason)),
            }
        }
    }
    // Dead letters first, committed: the change channel's token never passes one.
    f.dead.send(dead).await?;
    let n = batch.len() as u64;
    f.append(batch).await?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::rotate_name;

    #[test]
    fn the_first_rotate_loses_its_checksum_bytes_and_later_ones_keep_their_name() {
        assert_eq!(
            rotate_name(b"binlog.000001rL\\S", true, false),
            "binlog.000001"
        );
        assert_eq!(rotate_name(b"binlog.000002", true, true), "binlog.000002");
        assert_eq!(rotate_name(b"binlog.000003", false, false), "binlog.000003");
    }
}
