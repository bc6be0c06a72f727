//! `table_replay follow`: change data capture from the MariaDB/MySQL binlog, exactly once.
//!
//! A consistent snapshot of the tables named (`snapshot.rs`), each row a change `'r'`, then
//! the binlog from the snapshot's position (`stream.rs`): one row per change in the change
//! table `<TABLE>_CHANGES` (`changes.rs`), through one channel per table whose offset tokens
//! (`token.rs`) are binlog positions with the row's index in its event; a table with an
//! integer key is snapshotted over several channels of its pipe, that one first
//! (`snapshot_lanes.rs`, `--snapshot-lanes`), read by several connections at once, each a
//! range of the key (`snapshot_ranges.rs`, `--snapshot-readers`). A restart reads the
//! committed tokens, finishes a snapshot cut short (a new snapshot for the keys after the
//! last committed one; the binlog still resumes at the first snapshot's position, so the
//! changes in between are written too, ordered before the new snapshot's rows), and reads
//! the binlog again from the earliest transaction some table still needs, skipping on each
//! channel every change at or before its committed one.
//!
//! A lost binlog connection (a server restart, or a connection gone silent: no event and no
//! heartbeat for a few heartbeat periods, `heartbeat.rs`) is connected again for up to
//! `RECONNECT_FOR` per outage, from each table's last appended change. Another replica
//! that registers with `follow`'s replica id stops it, naming `--server-id`
//! (`replica_id.rs`). Before each connection opens, the resume position is checked against
//! the server read (`failover.rs`): a purged file stops `follow` naming it (or, with
//! `--resnapshot-purged`, the tables it lost take a new snapshot); another server (a
//! failover) is read by GTID, its changes in the next `_EPOCH`.
//!
//! A `TRUNCATE` of a followed table is one change `'t'` (no source column): the current state
//! drops every row before it. So does a `'p'` row: a new snapshot of a table already copied
//! begins with one, when its binlog was purged (`--resnapshot-purged`, `failover.rs`) or when
//! asked (`--resnapshot TABLE`: a copy found wrong, `snapshot.rs`); the binlog goes on for the
//! other tables while it is read (`alongside.rs`). A snapshot row or a change
//! whose value the type mapping refuses, or whose row the change channel cannot send for its
//! size (measured before the append by the SDK's rule, `row_size.rs`), is a dead letter in
//! `<TABLE>_DLQ` (`dead_letters.rs`), and `follow` goes on. `ALTER TABLE … ADD/DROP/MODIFY
//! COLUMN` evolves the change table (`evolve.rs`; a `MODIFY` widens its column in place, or,
//! when the change table's column cannot take the new type, *diverts* the table, at the
//! `ALTER` or at the next start: `retype.rs`; so does a change table that would pass
//! `--max-change-columns`, or a column type with no mapping). Statements are matched to the
//! followed tables by `(database, table)` as the server ran them (`statement.rs`): a rename,
//! `DROP`, `CREATE OR REPLACE` or a partition verb that moves rows without rows events stops
//! `follow`, naming the statement and the fix; a child of a cascading foreign key is refused
//! at the start (`cascade.rs`).
//!
//! A diverted table's changes (those its change channel has not committed) are dead letters
//! in `<TABLE>_DLQ` (a rows event's in one append, not waited for one by one: the other
//! tables stay current), each once by its token, with a reason naming the column, both types,
//! the `ALTER`'s binlog position and the fix (a new snapshot of that table); one warning line
//! when it is diverted; the other tables go on; the JSON line's `diverted` says why, and
//! `follow` exits non-zero naming it. Its change channel's committed token stays before the
//! `ALTER`, so each start reads the binlog again from there (skipping the dead letters
//! already committed) and meets the `ALTER` again.
//!
//! A change the destination refuses server-side (a row error: the committed token moves past
//! it) is logged at once with its position and the fix (a new snapshot of that table), and
//! `follow` goes on; when it ends it reports every table's rejected rows (`rejected.rs`), and
//! the command exits non-zero.
//!
//! The current state is per key (`key.rs`): the primary key, of any columns (integer, text in
//! its collation, binary); else a unique key over NOT NULL columns (the start line names
//! it); else the columns `--key TABLE=COL[,COL…]` names, or `follow` stops naming the table
//! and that flag. A change of an update that changes the key is a delete of the old key
//! and the new row.

mod alongside;
mod binlog_value;
mod cascade;
pub mod changes;
mod charset;
pub mod cli;
pub mod dead_letters;
mod dead_resume;
pub mod demo;
mod evolve;
mod failover;
pub mod heartbeat;
mod inet6;
pub mod key;
mod names;
pub mod observe;
mod rejected;
mod relabel;
pub mod replica_id;
mod report;
mod retype;
mod snapshot;
mod snapshot_lanes;
mod snapshot_page;
mod snapshot_plan;
mod snapshot_ranges;
mod snapshot_tx;
pub mod statement;
mod stream;
pub mod token;
mod transient;

pub use replica_id::default_server_id;
pub use report::{FollowReport, TableReport};
pub(crate) use retype::diverted_column;
pub use snapshot_plan::MAX_READERS as MAX_SNAPSHOT_READERS;

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mysql_async::binlog::row::BinlogRow;
use mysql_async::Value;
use snowpipe_streaming::{Channel, OffsetToken, StreamingIngestClient};

use crate::table_replay::row_text::Page;

use crate::common::say::{say, say_warn};
use crate::table_replay::schema::{self, SourceTable};
use crate::table_replay::secret;
use crate::table_replay::source;
use token::{BinlogPos, ChangePos, Gtid, Token};

/// What to follow and where to.
#[derive(Clone)]
pub struct FollowOptions {
    /// The source URL, with its password: never printed.
    pub source: String,
    pub tables: Vec<String>,
    pub database: String,
    pub schema: String,
    /// Snapshot rows per page (and per append).
    pub batch: usize,
    /// `--snapshot-lanes`: the channels a new snapshot of a table with an integer key is
    /// spread over (`snapshot_lanes.rs`); 1: the change channel alone.
    pub snapshot_lanes: usize,
    /// `--snapshot-readers`: the readers (a source connection each) a new snapshot of a table
    /// over several lanes takes, each over a range of its key (`snapshot_ranges.rs`), at
    /// most one a lane; 1: one reader.
    pub snapshot_readers: usize,
    /// Stop when no binlog event came for this long (else only on `stop`).
    pub until_idle: Option<Duration>,
    /// The replica id this reader registers with (unique among the server's replicas).
    pub server_id: u32,
    /// The binlog heartbeat asked for; a few periods of silence end the connection.
    pub heartbeat: heartbeat::Heartbeat,
    /// The destination's SQL API (database and schema set): `ALTER TABLE … ADD COLUMN` on a
    /// change table when its source table gains a column. Without it a shape change stops.
    pub sql: Option<snowpipe_streaming::sql::SqlClient>,
    /// `--key TABLE=COL[,COL…]`: the columns that identify a row of a table (else its
    /// primary key or a unique NOT NULL key, `key.rs`).
    pub keys: Vec<(String, Vec<String>)>,
    /// `--max-change-columns`: the most columns a change table takes (`evolve.rs`); past it
    /// the table is diverted.
    pub max_columns: usize,
    /// `--resnapshot-purged`: a table whose binlog was purged takes a new snapshot into its
    /// change table instead of stopping `follow` (`failover.rs`).
    pub resnapshot_purged: bool,
    /// `--resnapshot`: tables read again now, into their change tables after a `p` row
    /// (`snapshot.rs`), unless a snapshot of the table is under way (resumed).
    pub resnapshot: Vec<String>,
    /// Progress lines, metrics, probes and the stall signal (`observe/`).
    pub observe: std::sync::Arc<observe::Observer>,
}

/// `--snapshot-lanes` by default: four channels, 80 MB/s at the service's pace.
pub const DEFAULT_SNAPSHOT_LANES: u16 = 4;

/// `--snapshot-readers` by default: four connections read a table's snapshot.
pub const DEFAULT_SNAPSHOT_READERS: u16 = 4;

/// `--max-change-columns` by default: a change table never grows past 1,000 columns.
pub const DEFAULT_MAX_CHANGE_COLUMNS: usize = 1_000;

impl FollowOptions {
    fn place(&self) -> evolve::Place<'_> {
        evolve::Place {
            source: &self.source,
            sql: self.sql.as_ref(),
            database: &self.database,
            schema: &self.schema,
            max_columns: self.max_columns,
        }
    }
}

impl std::fmt::Debug for FollowOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FollowOptions")
            .field("source", &secret::redact(&self.source))
            .field("tables", &self.tables)
            .field("database", &self.database)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

/// One followed table: its shape, its channel and where that channel was committed.
pub struct Followed<'c> {
    pub table: SourceTable,
    pub names: Vec<String>,
    labels: Vec<Vec<String>>,
    /// Each column's character set decoder (`charset.rs`).
    charsets: Vec<charset::Charset>,
    /// When the table's definition last changed, read at the start, for a table with an
    /// `ENUM`/`SET` column (`relabel.rs`).
    defined_at: Option<i64>,
    /// The change channel (a snapshot's lane 0); `None` only while the snapshot's lanes
    /// reopen it (`snapshot_lanes.rs`).
    channel: Option<Channel>,
    /// The change channel's pipe (a snapshot's other lanes are its channels too).
    pipe: snowpipe_streaming::Pipe,
    /// Rows are identified by `--key` columns, which may repeat (no lanes: `snapshot_lanes.rs`).
    keyed_by_user: bool,
    committed: Option<Token>,
    last: Option<OffsetToken>,
    changes: u64,
    dead: dead_letters::DeadLetters<'c>,
    /// The change channel's rows the server rejected (`rejected.rs`).
    rejected: rejected::Rejected,
    /// Why every change of this table is a dead letter (a `MODIFY` the change table cannot
    /// take: `retype.rs`), when it is diverted.
    diverted: Option<String>,
    /// Skip the committed changes by GTID: they were read from another server (`failover.rs`).
    by_gtid: bool,
    /// The server read (its identity, in each token) and this run's epoch (`failover.rs`).
    server: String,
    epoch: u32,
    /// A new snapshot after its binlog was purged (`--resnapshot-purged`): a `p` row first.
    resnapshot: bool,
}

impl Followed<'_> {
    /// The change channel.
    ///
    /// # Panics
    /// While the snapshot's lanes reopen it (never outside `snapshot_lanes::open`).
    fn channel(&self) -> &Channel {
        self.channel.as_ref().expect("the change channel is open")
    }

    /// Diverts this table's changes to its dead letters for `reason`: one warning line the
    /// first time.
    fn divert(&mut self, reason: String) {
        if self.diverted.is_none() {
            say_warn!(
                "warning: {}: diverted: every change from here on is a dead letter in {}: \
                 {reason}",
                self.table.name,
                crate::table_replay::dead_letter::table_name(&self.table.name)
            );
        }
        self.diverted = Some(reason);
    }

    /// Whether the change at `at` (change `ordinal` of transaction `gtid`) is still to be
    /// written on this channel: by GTID after a move to another server, else by position.
    pub fn wants(&self, at: &ChangePos, gtid: Option<(Gtid, u32)>) -> bool {
        self.committed.as_ref().is_none_or(|t| match gtid {
            Some((g, ordinal)) if self.by_gtid => t.wants_by_gtid(&g, ordinal).unwrap_or(true),
            _ => t.wants(at),
        })
    }

    /// Who a change read now was read from, for its token.
    pub fn reader(&self, gtid: Option<Gtid>, ordinal: u32) -> token::Reader {
        token::Reader {
            server: self.server.clone(),
            epoch: self.epoch,
            gtid,
            ordinal,
        }
    }

    /// A binlog row image → the values the snapshot would read, and the first value the
    /// binlog mapping refuses (NULL in its place: the change becomes a dead letter).
    ///
    /// # Errors
    /// For a column missing from the image (not a FULL row image).
    pub fn values(&self, mut row: BinlogRow) -> Result<(Vec<Value>, Option<String>)> {
        let mut refused = None;
        let mut values = Vec::with_capacity(self.table.columns.len());
        for (i, c) in self.table.columns.iter().enumerate() {
            let v = row.take(i).with_context(|| {
                format!(
                    "column {} of {} is missing from the binlog row (binlog_row_image must be FULL)",
                    c.name, self.table.name
                )
            })?;
            match binlog_value::to_value(&c.kind, &self.labels[i], v) {
                Ok(Value::Bytes(b)) if self.charsets[i] != charset::Charset::Utf8 => {
                    values.push(Value::Bytes(self.charsets[i].decode(b)));
                }
                Ok(v) => values.push(binlog_value::pad_binary(
                    v,
                    binlog_value::fixed_binary_len(&c.column_type),
                )),
                Err(e) => {
                    refused.get_or_insert_with(|| {
                        format!("column {} ({}): {e:#}", c.name, c.column_type)
                    });
                    values.push(Value::NULL);
                }
            }
        }
        Ok((values, refused))
    }

    /// A change as its row at `token`, written into `page`; or why it is a dead letter (the
    /// page as before): a value the type mapping refuses (`changes::write_row`), or a row the
    /// change channel cannot send for its size (measured by the SDK's rule before the append:
    /// `row_size.rs`).
    ///
    /// # Errors
    /// The dead letter's reason.
    pub(super) fn row(
        &self,
        page: &mut Page,
        token: OffsetToken,
        values: &[Value],
        origin: &changes::Origin<'_>,
    ) -> std::result::Result<(), String> {
        page.push(token, |row| {
            changes::write_row(&self.table, &self.names, values, origin, row)?;
            crate::table_replay::row_size::check(
                self.channel(),
                &self.table,
                &self.names,
                values,
                row.text(),
            )
        })
    }

    /// Appends a page of rows with their tokens.
    ///
    /// # Errors
    /// When the append fails.
    pub async fn append(&mut self, page: Page) -> Result<()> {
        let Some(last) = page.last_token().cloned() else {
            return Ok(());
        };
        // Dead letters before these changes are committed first.
        self.dead.settle().await?;
        self.changes += page.len() as u64;
        let (rows, positions) = page.into_append();
        self.channel()
            .append(rows, positions)
            .await
            .with_context(|| format!("append to {}'s change channel failed", self.table.name))?;
        self.last = Some(last);
        Ok(())
    }
}

/// Follows `opts.tables`: snapshot where needed, then the binlog, until `stop` (or idle).
///
/// # Errors
/// A source or binlog error, a table without a key and no `--key`, a schema change the change
/// table cannot follow, a failed append; each names the table and the position.
pub async fn follow(
    client: &StreamingIngestClient,
    opts: &FollowOptions,
    stop: impl std::future::Future<Output = ()>,
) -> Result<FollowReport> {
    let started = Instant::now();
    snapshot::check_asked(&opts.resnapshot, &opts.tables)?;
    let mut conn = source::connect(&opts.source).await?;
    snapshot::check_server(&mut conn).await?;
    let db: Option<String> =
        mysql_async::prelude::Queryable::query_first(&mut conn, "SELECT DATABASE()").await?;
    let db = db.context("the source URL names no database")?;
    for name in &opts.tables {
        cascade::refuse_cascading_child(&mut conn, &db, name).await?;
    }
    let names = statement::Names::read(&mut conn).await?;
    let mut tables = Vec::new();
    for name in &opts.tables {
        let mut f = open_table(client, opts, &mut conn, name).await?;
        if let Some(sql) = &opts.sql {
            // A dead-letter table an earlier version created: it gets SOURCE_KEY_TEXT.
            let place = (opts.database.as_str(), opts.schema.as_str());
            crate::table_replay::dead_letter::ensure_key_text_column(sql, place, name).await?;
            // A run killed after an ALTER … ADD COLUMN: the change table gets the column
            // (or, past --max-change-columns, the table is diverted).
            if let Some(why) = evolve::add_missing_columns(sql, &opts.place(), &f.table).await? {
                f.divert(evolve::diverted(name, AT_START, &why));
            }
            // A MODIFY made while follow was down: widened now, or the table diverted.
            let target = opts.place().changes_table(name);
            let (shape, diverted) =
                retype::check((sql, &target), &f.table, &f.table, AT_START).await?;
            evolve::set_shape(&mut f, shape);
            if let Some(reason) = diverted {
                f.divert(reason);
            }
        }
        tables.push(f);
    }
    let server = failover::Server::read(&mut conn).await?;
    let epoch = failover::epoch(&tables, &server);
    for f in &mut tables {
        (f.server, f.epoch) = (server.id.clone(), epoch);
        if opts.resnapshot_purged && failover::purged(f, &server) {
            say_warn!(
                "{}: the binlog after its committed {} was purged: a new snapshot into its \
                 change table (--resnapshot-purged)",
                f.table.name,
                f.committed.as_ref().map(Token::render).unwrap_or_default()
            );
            (f.committed, f.resnapshot) = (None, true);
        }
    }
    if snapshot::read_again(&mut tables, &opts.resnapshot).await? {
        snapshot::binlog_moves(&mut conn).await?;
    }
    let polling = opts.observe.poll_binlog_end(&opts.source);
    let stop = futures_util::FutureExt::shared(Box::pin(stop));
    alongside::snapshot(&mut conn, opts, (&db, names), &mut tables, stop.clone())
        .await
        .map_err(|e| with_rejected(e, &tables))?;
    drop(conn);
    let streamed = stream_all(opts, (&db, names), &mut tables, stop).await;
    opts.observe.stopping();
    drop(polling);
    streamed.map_err(|e| with_rejected(e, &tables))?;
    let mut report = FollowReport {
        tables: Vec::new(),
        elapsed: started.elapsed(),
    };
    for f in tables {
        report.tables.push(finish(f).await?);
    }
    Ok(report)
}

/// An error that stops `follow`, with the rows the server rejected before it (the reports
/// that came so far).
fn with_rejected(e: anyhow::Error, tables: &[Followed<'_>]) -> anyhow::Error {
    let lines: Vec<String> = tables
        .iter()
        .map(|f| (f, f.rejected.so_far(), f.dead.rejected()))
        .flat_map(|(f, changes, dead)| {
            [(changes, "changes"), (dead, "dead letters")]
                .into_iter()
                .filter(|(s, _)| s.count() > 0)
                .map(|(s, what)| format!("{}: {}", f.table.name, rejected::describe(&s, what)))
                .collect::<Vec<_>>()
        })
        .collect();
    if lines.is_empty() {
        return e;
    }
    e.context(format!(
        "follow stopped; before it, {} (not in the tables: a new snapshot of those tables \
         re-sends them)",
        lines.join("; ")
    ))
}

/// Reads the binlog (connecting again after the server went away) until `stop` or idle.
pub(super) async fn stream_all(
    opts: &FollowOptions,
    db: (&str, statement::Names),
    tables: &mut [Followed<'_>],
    stop: impl std::future::Future<Output = ()>,
) -> Result<()> {
    tokio::pin!(stop);
    let mut changes = 0;
    let mut retry_until: Option<Instant> = None;
    loop {
        let mut heard = false;
        let read = read_binlog(opts, db, tables, (&mut stop, &mut heard)).await;
        if heard {
            // The connection worked: a later loss is a new outage with its own deadline.
            retry_until = None;
        }
        match read {
            Ok(streamed) => {
                changes += streamed.changes;
                say!(
                    "followed {changes} binlog changes{}",
                    streamed.at.map_or(String::new(), |p| format!(" up to {p}"))
                );
                return Ok(());
            }
            Err(e) if e.downcast_ref::<stream::Disconnected>().is_some() => {
                // The server went away (a restart): from each table's last appended change.
                opts.observe.connected(false);
                let deadline = *retry_until.get_or_insert_with(|| Instant::now() + RECONNECT_FOR);
                if Instant::now() > deadline {
                    return Err(e.context(format!(
                        "the source server did not come back within {}s",
                        RECONNECT_FOR.as_secs()
                    )));
                }
                say_warn!("{e:#}; connecting again in 1s");
                for f in tables.iter_mut() {
                    if let Some(last) = &f.last {
                        f.committed = Some(Token::parse(last.as_str())?);
                    }
                }
                tokio::select! {
                    () = &mut stop => return Ok(()),
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Waits for a table's last changes to commit, closes its channels and takes their
/// rejected rows (reported before a channel stops).
async fn finish(f: Followed<'_>) -> Result<TableReport> {
    let channel = f.channel.context("a change channel left closed")?;
    if let Some(last) = &f.last {
        channel
            .wait_for_commit(last, Duration::from_secs(120))
            .await
            .with_context(|| {
                format!(
                    "{}'s last changes were not committed within 120 s",
                    f.table.name
                )
            })?;
    }
    let committed = channel
        .latest_committed_offset_token()
        .map(|t| t.to_string());
    let status = channel.status();
    channel
        .close()
        .await
        .context("closing a change channel failed")?;
    let row_errors = f.rejected.finish(&status).await;
    let dead_lettered = f.dead.stored();
    let dead_letter_row_errors = f.dead.close().await?;
    Ok(TableReport {
        table: f.table.name.clone(),
        changes: f.changes,
        committed,
        dead_lettered,
        row_errors,
        dead_letter_row_errors,
        diverted: f.diverted,
    })
}

/// Where a type change found at the start is, for its messages.
const AT_START: &str = "the start (a MODIFY made while follow was not running)";

/// How long `follow` keeps connecting again after the source server went away.
const RECONNECT_FOR: Duration = Duration::from_secs(120);

/// One binlog connection: the server checked (`failover.rs`), opened where the tables
/// need, read until stop, idle or an error.
async fn read_binlog(
    opts: &FollowOptions,
    (db, names): (&str, statement::Names),
    tables: &mut [Followed<'_>],
    (stop, heard): (
        &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
        &mut bool,
    ),
) -> Result<stream::Streamed> {
    let lost = |e: anyhow::Error| anyhow::Error::new(stream::Disconnected(format!("{e:#}")));
    // A connection that goes silent while connecting (its handshake never answered) is lost
    // too: bounded like a read.
    let limit = opts.heartbeat.connect_timeout();
    let too_long = |what: &str| anyhow::anyhow!("{what} took more than {limit:?}");
    let connected = tokio::time::timeout(limit, async {
        let mut conn = source::connect(&opts.source).await?;
        let server = failover::Server::read(&mut conn).await?;
        Ok::<_, anyhow::Error>((conn, server))
    })
    .await
    .map_err(|_| too_long("connecting to the source"))
    .and_then(|r| r);
    let (bin_conn, server) = connected.map_err(lost)?;
    let start = failover::plan(tables, &server)?;
    // A move to another server while running: a new epoch (never a lower one).
    let epoch =
        failover::epoch(tables, &server).max(tables.iter().map(|f| f.epoch).max().unwrap_or(0));
    for f in tables.iter_mut() {
        (f.server, f.epoch) = (server.id.clone(), epoch);
    }
    say!("following the binlog from {start}");
    let opened = tokio::time::timeout(
        limit,
        stream::open(bin_conn, (opts.server_id, opts.heartbeat), &start),
    )
    .await
    .map_err(|_| too_long("opening the binlog stream"))
    .and_then(|r| r);
    let (mut binlog, checksum) = opened.map_err(lost)?;
    opts.observe.connected(true);
    let at = match start {
        failover::Start::At(p) => p,
        // The server's first event (a Rotate) names the file.
        failover::Start::Gtid(_) => BinlogPos {
            file: String::new(),
            pos: 4,
        },
    };
    let reading = stream::Reading {
        server_id: opts.server_id,
        heartbeat: opts.heartbeat,
        until_idle: opts.until_idle,
    };
    stream::follow(
        (&mut binlog, checksum),
        &at,
        (db, names, &opts.place()),
        tables,
        (reading, heard, &opts.observe),
        stop,
    )
    .await
}

async fn open_table<'c>(
    client: &'c StreamingIngestClient,
    opts: &FollowOptions,
    conn: &mut mysql_async::Conn,
    name: &str,
) -> Result<Followed<'c>> {
    let user = opts
        .keys
        .iter()
        .find(|(t, _)| t.eq_ignore_ascii_case(name))
        .map(|(_, cols)| cols.as_slice());
    let (table, how) = key::describe(conn, name, user).await?;
    say!("{name}: rows by its {}", key::describe_choice(&table, &how));
    let names = table
        .columns
        .iter()
        .map(|c| schema::snowflake_name(&c.name))
        .collect();
    let labels = table
        .columns
        .iter()
        .map(|c| binlog_value::labels(&c.column_type))
        .collect();
    let charsets = charset::of_table(&table);
    let defined_at = relabel::defined_at(conn, &table).await?;
    let pipe = changes::pipe_name(name);
    let pipe_handle = client.pipe(&opts.database, &opts.schema, &pipe);
    let channel = pipe_handle
        .open_channel(&changes::channel_name(name))
        .await
        .with_context(|| {
            format!(
                "cannot open a channel on pipe {}.{}.{pipe}",
                opts.database, opts.schema
            )
        })?;
    let committed = channel
        .latest_committed_offset_token()
        .map(|t| Token::parse(t.as_str()))
        .transpose()?;
    if let Some(t) = &committed {
        say!("{name}: resuming after committed {}", t.render());
    }
    let rejected = rejected::Rejected::watch(name, rejected::Kind::Changes, &channel);
    Ok(Followed {
        rejected,
        table,
        names,
        labels,
        charsets,
        defined_at,
        channel: Some(channel),
        pipe: pipe_handle,
        keyed_by_user: user.is_some(),
        committed,
        last: None,
        changes: 0,
        diverted: None,
        by_gtid: false,
        server: String::new(),
        epoch: 0,
        resnapshot: false,
        dead: dead_letters::DeadLetters::new(client, &opts.database, &opts.schema, name),
    })
}
