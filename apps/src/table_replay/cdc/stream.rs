//! The binlog, read as a replica reads it, from a position: each rows event of a followed
//! table becomes its change rows, appended with their tokens (`token.rs`).
//!
//! Read through `mysql_async`'s binlog stream (`COM_BINLOG_DUMP`, events parsed by
//! `mysql_common`); what this adds: MariaDB's GTID event (type 162, which `mysql_common`
//! does not parse: sequence, domain, flags), asked for with `@mariadb_slave_capability=4`,
//! and the binlog → snapshot value forms (`binlog_value.rs`). A heartbeat asked for at the
//! open, and a read that brings nothing for a few of its periods ends the connection as lost
//! (`heartbeat.rs`).

use std::time::Duration;

use anyhow::{bail, Context, Result};
use futures_util::StreamExt;
use mysql_async::binlog::events::{EventData, RowsEventData};
use mysql_async::{BinlogStream, BinlogStreamRequest, Conn};
use snowpipe_streaming::OffsetToken;

use crate::table_replay::cdc::changes::{self, Op, Origin};
use crate::table_replay::cdc::dead_letters::DeadChange;
use crate::table_replay::cdc::evolve::{self, Place};
use crate::table_replay::cdc::failover::Start;
use crate::table_replay::cdc::heartbeat::Heartbeat;
use crate::table_replay::cdc::observe::{self, Observer};
use crate::table_replay::cdc::replica_id;
use crate::table_replay::cdc::statement::{self, Effect, Names};
use crate::table_replay::cdc::token::{BinlogPos, ChangePos, Gtid, Token};
use crate::table_replay::cdc::Followed;
use crate::table_replay::cdc::{binlog_value, relabel};
use crate::table_replay::row_text::Page;

/// MariaDB's GTID event type.
const MARIADB_GTID_EVENT: u8 = 162;

/// The heartbeat event's types (`HEARTBEAT_LOG_EVENT`, and MySQL 8's `HEARTBEAT_LOG_EVENT_V2`,
/// which `mysql_common` leaves unparsed): the server had nothing to send for a heartbeat
/// period; not a binlog event.
const HEARTBEAT_EVENTS: [u8; 2] = [27, 41];

/// Opens the binlog stream at `from` on `conn` (which it consumes), with `heartbeat` asked
/// for: a position, or a GTID state (MariaDB: `@slave_connect_state`, then `COM_BINLOG_DUMP`
/// with no file name); returns it with whether the server checksums its events.
///
/// # Errors
/// When the server refuses (a purged position says so when the first event is read).
pub(super) async fn open(
    mut conn: Conn,
    (server_id, heartbeat): (u32, Heartbeat),
    from: &Start,
) -> Result<(BinlogStream, bool)> {
    use mysql_async::prelude::Queryable as _;
    let checksum: Option<String> = conn.query_first("SELECT @@binlog_checksum").await?;
    let checksum = checksum.is_some_and(|c| !c.eq_ignore_ascii_case("NONE"));
    // GTID events as MariaDB writes them (a lower capability gets them as BEGIN queries).
    conn.query_drop("SET @mariadb_slave_capability = 4").await?;
    // A heartbeat event whenever the server had no event to send for a period: silence
    // longer than a few periods is a lost connection.
    conn.query_drop(heartbeat.statement())
        .await
        .context("cannot ask the server for a binlog heartbeat")?;
    let request = match from {
        Start::At(at) => BinlogStreamRequest::new(server_id)
            .with_filename(at.file.as_bytes())
            .with_pos(at.pos),
        Start::Gtid(state) => {
            // Not strict: the state names the transaction before the one to read again,
            // which need not be in this server's binlog.
            conn.exec_drop("SET @slave_connect_state = ?", (state.as_str(),))
                .await?;
            conn.query_drop("SET @slave_gtid_strict_mode = 0").await?;
            conn.query_drop("SET @slave_gtid_ignore_duplicates = 0")
                .await?;
            BinlogStreamRequest::new(server_id).with_pos(4u64)
        }
    };
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
    /// The next change's place within the transaction (two per row: `row_index`).
    ordinal: u32,
}

impl Tx {
    /// The transaction's GTID with change `ordinal`'s place in it.
    fn at(&self, ordinal: u32) -> Option<(Gtid, u32)> {
        let g = Gtid::parse(self.gtid.as_deref()?)?;
        Some((g, self.ordinal.saturating_add(ordinal)))
    }
}

/// What [`follow`] did.
#[derive(Debug, Default)]
pub(super) struct Streamed {
    pub changes: u64,
    pub at: Option<BinlogPos>,
}

/// How one binlog connection is read: its replica id and heartbeat, and `--until-idle`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Reading {
    pub server_id: u32,
    pub heartbeat: Heartbeat,
    pub until_idle: Option<Duration>,
}

/// Reads the binlog from `stream` until `stop` resolves or, with `until_idle`, no binlog
/// event came for that long on this connection (heartbeats are not events; the window
/// starts when the connection opens); appends each followed table's changes to its channel.
/// `heard` is set once anything (an event or a heartbeat) arrived on this connection.
///
/// # Errors
/// A read that brought nothing, not even a heartbeat, for the heartbeat's read timeout (a
/// [`Disconnected`]: `follow` connects again), another replica that registered with this
/// replica id (stops, naming `--server-id`), a stream error (a purged position: the fix is
/// a new snapshot), a followed table whose shape changed in a way the change table cannot
/// follow (`evolve.rs`), a statement that drops, replaces, renames or moves rows of one
/// without rows events (`statement.rs`), or an append that failed. A value that cannot be
/// converted is a dead letter,
/// not an error, and so is every change of a diverted table (a `MODIFY` the change table
/// cannot take: `retype.rs`).
pub(super) async fn follow(
    (stream, checksum): (&mut BinlogStream, bool),
    start: &BinlogPos,
    (source_db, names, place): (&str, Names, &Place<'_>),
    tables: &mut [Followed<'_>],
    (reading, heard, observer): (Reading, &mut bool, &Observer),
    mut stop: impl std::future::Future<Output = ()> + Unpin,
) -> Result<Streamed> {
    let mut tx = Tx {
        file: start.file.clone(),
        start: start.pos,
        ..Tx::default()
    };
    let mut out = Streamed::default();
    let mut seen_fde = false;
    let read_timeout = reading.heartbeat.read_timeout();
    let mut idle_since = tokio::time::Instant::now();
    // Anything that arrives (an event or a heartbeat) moves it: a deadline, not a timeout
    // around each read, so the observer's tick does not restart it.
    let mut read_by = tokio::time::Instant::now() + read_timeout;
    let mut tick = tokio::time::interval(observe::TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let next = tokio::select! {
            () = &mut stop => break,
            () = idle_end(idle_since, reading.until_idle) => break,
            () = tokio::time::sleep_until(read_by) => Err(()),
            _ = tick.tick() => {
                observer.tick(tables);
                continue;
            }
            n = stream.next() => Ok(n),
        };
        let event = match next {
            Err(_) => {
                return Err(anyhow::Error::new(Disconnected(format!(
                    "nothing arrived for {read_timeout:?}, not even the heartbeat asked for every                      {:?} (--heartbeat), after {}:{}: the connection went silent (a firewall or                      NAT that dropped it)",
                    reading.heartbeat.period(),
                    tx.file,
                    tx.start
                ))))
            }
            Ok(None) => {
                return Err(anyhow::Error::new(Disconnected(format!(
                    "the server ended the binlog stream at {}:{}",
                    tx.file, tx.start
                ))))
            }
            Ok(Some(Err(e))) => return Err(stream_error(e, reading.server_id, &tx, tables)),
            Ok(Some(Ok(e))) => e,
        };
        *heard = true;
        read_by = tokio::time::Instant::now() + read_timeout;
        let h = event.header();
        if HEARTBEAT_EVENTS.contains(&h.event_type_raw()) {
            continue;
        }
        // The events the server makes up at each connection's start (a Rotate to the file,
        // its format description) carry no position: not activity either.
        if h.log_pos() != 0 {
            idle_since = tokio::time::Instant::now();
        }
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
            (tx.start, tx.ts, tx.ordinal) = (begin, i64::from(h.timestamp()), 0);
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
                        (tx.start, tx.ts, tx.ordinal) = (begin, i64::from(h.timestamp()), 0);
                    }
                } else if !sql.eq_ignore_ascii_case("COMMIT") {
                    let source = (source_db, names);
                    for (i, ddl) in check_ddl(&sql, &q.schema(), source, tables, &tx, begin)? {
                        if ddl == Ddl::Truncate {
                            out.changes += truncate(&mut tables[i], &tx, begin).await?;
                        } else {
                            let at = format!("{}:{begin}", tx.file);
                            evolve::check_types(&mut tables[i], place, &at).await?;
                        }
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
                let source = (source_db, names, place);
                out.changes += rows_event(stream, &rows, source, tables, &mut tx, begin).await?;
            }
            _ => {}
        }
        // Idle is time with nothing to read, not time spent on what was read: an event that
        // took longer than `--until-idle` to write (a row of 60 MB) must not end the run
        // with the next one already waiting.
        if h.log_pos() != 0 {
            idle_since = tokio::time::Instant::now();
        }
    }
    Ok(out)
}

/// Resolves when `until_idle` has passed since `since`; never without `until_idle` (or past
/// the clock's end).
async fn idle_end(since: tokio::time::Instant, until_idle: Option<Duration>) {
    match until_idle.and_then(|d| since.checked_add(d)) {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Another replica with this replica id stops `follow`, naming `--server-id`; a purged or
/// missing position says what to do: a new snapshot of the followed tables.
fn stream_error(
    e: mysql_async::Error,
    server_id: u32,
    tx: &Tx,
    tables: &[Followed<'_>],
) -> anyhow::Error {
    let text = e.to_string();
    if replica_id::is_collision(&text) {
        replica_id::collision(server_id, &text)
    } else if text.contains("1236")
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

/// What a Query event's statement does to the followed tables (`statement.rs`): the
/// tables it empties (a `t` row each) or alters (their types checked), each once; a statement
/// that drops, replaces, renames or moves rows of one without rows events stops `follow`,
/// naming it, its position and the fix.
///
/// # Errors
/// Such a statement, or one that cannot be read and names a followed table.
fn check_ddl(
    sql: &str,
    schema_name: &str,
    (source_db, names): (&str, Names),
    tables: &[Followed<'_>],
    tx: &Tx,
    at: u64,
) -> Result<Vec<(usize, Ddl)>> {
    let actions = match statement::read(sql, schema_name) {
        statement::Read::Other => return Ok(Vec::new()),
        statement::Read::Touches(a) => a,
        statement::Read::Unreadable(why) => {
            let lower = sql.to_lowercase();
            let named: Vec<&str> = tables
                .iter()
                .map(|f| f.table.name.as_str())
                .filter(|t| lower.contains(&t.to_lowercase()))
                .collect();
            if named.is_empty() {
                return Ok(Vec::new());
            }
            bail!(
                "the statement at {}:{at} ({}) cannot be read ({why}) and may touch followed \
                 table {}: changes before it are committed; if it changed their rows or \
                 shape, {}",
                tx.file,
                excerpt(sql),
                named.join(", "),
                changes::new_snapshot_fix(named.iter().copied())
            );
        }
    };
    let mut out: Vec<(usize, Ddl)> = Vec::new();
    for a in &actions {
        for (i, f) in tables.iter().enumerate() {
            if !names.touches(a, source_db, &f.table.name) {
                continue;
            }
            let ddl = match a.effect {
                Effect::Emptied => Ddl::Truncate,
                Effect::Altered => Ddl::Alter,
                Effect::Replaced | Effect::RowsLost => {
                    let what = if a.effect == Effect::Replaced {
                        "it replaces, renames or drops the table"
                    } else {
                        "it removes, adds or swaps rows"
                    };
                    bail!(
                        "{} on followed table {source_db}.{} at {}:{at} ({}): the change table \
                         cannot express it ({what} without writing those rows to the binlog). \
                         Changes before it are committed; to go on, {}",
                        a.verb,
                        f.table.name,
                        tx.file,
                        excerpt(sql),
                        changes::new_snapshot_fix([f.table.name.as_str()])
                    );
                }
            };
            if !out.contains(&(i, ddl)) {
                out.push((i, ddl));
            }
        }
    }
    Ok(out)
}

/// The statement as an error names it: its first 200 characters, on one line.
fn excerpt(sql: &str) -> String {
    let one_line: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(200) {
        Some((cut, _)) => format!("`{}…`", &one_line[..cut]),
        None => format!("`{one_line}`"),
    }
}

/// A statement on a followed table that `follow` goes on through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ddl {
    /// A `t` change row.
    Truncate,
    /// ADD/DROP/MODIFY COLUMN: the types are checked now, the shape at the next rows event.
    Alter,
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
    let at = tx.at(0);
    if !f.wants(&change, at) {
        return Ok(0);
    }
    let origin = Origin {
        op: Op::Truncate,
        file: &tx.file,
        pos: begin,
        row: 0,
        gtid: tx.gtid.as_deref(),
        commit_ts: tx.ts,
        epoch: f.epoch,
    };
    let token = Token::Binlog {
        tx: BinlogPos {
            file: tx.file.clone(),
            pos: tx.start,
        },
        change,
        by: Some(f.reader(at.map(|(g, _)| g), at.map_or(0, |(_, o)| o))),
    };
    if let Some(why) = f.diverted.clone() {
        // A diverted table's TRUNCATE is a dead letter too (key 0: it has none).
        let dead = DeadChange::new(f, &[], &origin, token, &why);
        f.dead.send(vec![dead]).await?;
        return Ok(0);
    }
    let mut page = Page::default();
    page.push(OffsetToken::new(token.render())?, |row| {
        changes::write_row(&f.table, &f.names, &[], &origin, row)
    })
    .map_err(|e| anyhow::anyhow!(e))?;
    f.append(page).await?;
    Ok(1)
}

/// One rows event: its changes for a followed table, appended. Returns how many.
async fn rows_event(
    stream: &BinlogStream,
    rows: &RowsEventData<'_>,
    (source_db, names, place): (&str, Names, &Place<'_>),
    tables: &mut [Followed<'_>],
    tx: &mut Tx,
    begin: u64,
) -> Result<u64> {
    let tme = stream
        .get_tme(rows.table_id())
        .context("a rows event without its table map")?;
    if !names.same(&tme.database_name(), source_db) {
        return Ok(0);
    }
    let name = tme.table_name();
    let Some(f) = tables.iter_mut().find(|f| names.same(&f.table.name, &name)) else {
        return Ok(0);
    };
    let names = evolve::column_names(tme);
    let count = usize::try_from(tme.columns_count()).unwrap_or(usize::MAX);
    if evolve::differs(f, names.as_deref(), count) {
        let at = format!("{}:{begin}", tx.file);
        evolve::evolve(f, place, (tme, names), count, &at).await?;
    }
    // ENUM/SET labels as the rows were written (`binlog_value.rs`), else none newer than
    // the change (`relabel.rs`).
    if let Some(labels) = binlog_value::event_labels(tme, &f.table) {
        f.labels = labels;
    } else if relabel::has_labels(&f.table) && f.diverted.is_none() {
        let at = format!("{}:{begin}", tx.file);
        if let Some(why) = relabel::unknowable(&f.table, f.defined_at, tx.ts, &at) {
            f.divert(why);
        }
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
    let (mut batch, mut had) = (Page::default(), Page::default());
    let mut dead = Vec::new();
    let mut slots = 0u32;
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
            slots = slots.max(change.row + 1);
            let at = tx.at(change.row);
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
                epoch: f.epoch,
            };
            let token = Token::Binlog {
                tx: txpos.clone(),
                change: change.clone(),
                by: Some(f.reader(at.map(|(g, _)| g), at.map_or(0, |(_, o)| o))),
            };
            // A delete carries the key alone: only the key's value can refuse it.
            let refused = refused.filter(|_| op != Op::Delete);
            let wanted = f.wants(&change, at);
            // A change the channel has is written all the same, into a page not sent: only
            // to learn whether it is a dead letter.
            let page = if wanted { &mut batch } else { &mut had };
            // A diverted table: every change its change channel lacks is a dead letter.
            let row = match (&f.diverted, refused) {
                (Some(why), _) => Err(why.clone()),
                (None, Some(refused)) => Err(refused),
                (None, None) => f.row(page, OffsetToken::new(token.render())?, &values, &origin),
            };
            match row {
                Ok(()) => {}
                Err(_) if f.diverted.is_some() && !wanted => {}
                Err(reason) => dead.push(DeadChange::new(f, &values, &origin, token, &reason)),
            }
        }
    }
    // Rows of an event have even slots and a key change's delete the odd one before.
    tx.ordinal = tx.ordinal.saturating_add(slots.next_multiple_of(2));
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
