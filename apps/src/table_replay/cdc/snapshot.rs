//! The consistent snapshot and the binlog position it matches.
//!
//! MariaDB: `START TRANSACTION WITH CONSISTENT SNAPSHOT`, then the status variables
//! `Binlog_snapshot_file`/`Binlog_snapshot_position`, which MariaDB fixes at the moment the
//! snapshot was taken (under the same lock as the commit order): every transaction before
//! that position is in the snapshot, none after it. No global lock is taken.
//! MySQL (no such variables): `FLUSH TABLES WITH READ LOCK`, the snapshot transaction,
//! `SHOW MASTER STATUS`, `UNLOCK TABLES`: writes wait for the instant between (this needs
//! the RELOAD privilege).
//!
//! **A transaction a page** (MariaDB). Each page after a table's first is read in a snapshot
//! transaction of its own, and its rows' change position (`_BINLOG_POS`) is that
//! transaction's. The binlog is read from the first page's position (the tokens' `resume`),
//! and the current state orders a key's changes by position, so a change the page's read
//! already reflects (before its position) sorts before the page's `'r'` row and a later one
//! after it: an update or a delete during the snapshot is neither lost nor undone, and no
//! transaction (no undo history) is held for a whole table. MySQL reports no position per
//! transaction: one transaction reads every page there.
//!
//! Each table is read by its key (`key.rs`: every key column, in the server's order), a page
//! at a time, each row a change `'r'` whose token is `s:FILE:POS:KEY` (`token.rs`; a key
//! too long for a token: the last key that fit), on the lane of its key (`snapshot_lanes.rs`).
//! A row the type mapping refuses is a dead letter
//! (`dead_letters.rs`, its reason `snapshot key K (r): …`), committed before its page's good
//! rows are appended, and the snapshot goes on; a page's dead letters an earlier run
//! committed are left out, the server deciding which in the key's order (`dead_resume.rs`).

use anyhow::{Context, Result};
use mysql_async::prelude::*;
use mysql_async::{Conn, Row, Value};
use snowpipe_streaming::OffsetToken;

use crate::common::say::{say, say_warn};
use crate::table_replay::cdc::changes::{Op, Origin};
use crate::table_replay::cdc::dead_letters::DeadChange;
use crate::table_replay::cdc::dead_resume;
use crate::table_replay::cdc::key::{Pager, TokenKey};
use crate::table_replay::cdc::snapshot_lanes::{self, Lanes};
use crate::table_replay::cdc::snapshot_ranges;
use crate::table_replay::cdc::token::{BinlogPos, Token};
use crate::table_replay::cdc::Followed;
use crate::table_replay::row_size::ROW_BYTES_GUESS;
use crate::table_replay::row_text::Page;

/// Takes the snapshot of every table whose channel has no binlog token yet (none, or a
/// snapshot cut short), as `how` says;
/// returns the position the binlog must resume at for them. The last snapshot transaction
/// is left open on `conn`: drop the connection to end it.
pub(super) async fn where_needed(
    conn: &mut Conn,
    tables: &mut [Followed<'_>],
    how: &Reading<'_>,
) -> Result<Option<BinlogPos>> {
    if !tables.iter().any(needs) {
        return Ok(None);
    }
    let mut taken = begin(conn).await?;
    let (at, now) = (taken.at.clone(), taken.now);
    say!("snapshot at {at}");
    let mut earliest: Option<BinlogPos> = None;
    // Whether a snapshot by several readers ended the transaction `taken` began.
    let mut ended = false;
    for f in tables.iter_mut().filter(|f| needs(f)) {
        let mut lanes = snapshot_lanes::open(f, how.lanes, &at).await?;
        let resume = lanes.resume.clone();
        if std::mem::take(&mut f.resnapshot) {
            purged_marker(f, &at, now).await?;
            // The `p` row names this snapshot for a restart before another lane has a row.
            lanes.wait(f).await?;
        }
        if !lanes.complete && lanes.count() > 1 {
            // A snapshot whose last row marks no lane (a dead letter, or a last page with
            // none) is recorded complete in its plan.
            lanes.complete = snapshot_ranges::complete(f, &resume).await?;
        }
        let mut read = None;
        if lanes.complete {
            say!(
                "{}: snapshot complete (committed over {} lanes)",
                f.table.name,
                lanes.count()
            );
        } else {
            if std::mem::take(&mut ended) {
                // The readers' table ended the snapshot transaction: a new one for this table.
                taken = start(conn).await?;
            }
            let plan = snapshot_ranges::plan(conn, f, &lanes, (how.readers, taken.per_page));
            let plan = plan.await?;
            let n = match &plan {
                Some(plan) => {
                    ended = true;
                    let source = (&mut *conn, how.source);
                    snapshot_ranges::table(source, f, &mut lanes, plan, how.batch).await?
                }
                None => table(conn, f, &mut lanes, &mut taken, how.batch).await?,
            };
            match lanes.count() {
                1 => say!("{}: {n} snapshot rows", f.table.name),
                k => say!("{}: {n} snapshot rows over {k} lanes", f.table.name),
            }
            read = Some(plan);
        }
        let lanes_count = lanes.count();
        lanes.close(f).await?;
        if let Some(plan) = read.filter(|_| lanes_count > 1) {
            snapshot_ranges::record_complete(f, plan, &resume).await?;
        }
        // Keys up to the committed one are done; the rest need the binlog from `resume`.
        f.committed = Some(Token::Snapshot {
            resume: resume.clone(),
            key: TokenKey::default(),
            done: true,
        });
        earliest = Some(earliest.map_or(resume.clone(), |e| e.min(resume)));
    }
    // The last page's transaction (it only read) ends with the connection, which the caller
    // drops: no statement after the last row's commit wait, so a connection gone silent
    // since cannot hold `follow` before the binlog, whose silence is watched.
    Ok(earliest)
}

/// Whether `f` takes a snapshot: none is complete (a binlog token, or the snapshot's last row).
pub(super) fn needs(f: &Followed<'_>) -> bool {
    !matches!(
        f.committed,
        Some(Token::Binlog { .. } | Token::Snapshot { done: true, .. })
    )
}

/// How a snapshot reads: `batch` rows a page, over up to `lanes` lanes (`snapshot_lanes.rs`)
/// by up to `readers` readers, each a connection to `source` (`snapshot_ranges.rs`).
pub(super) struct Reading<'a> {
    pub(super) batch: usize,
    pub(super) lanes: usize,
    pub(super) readers: usize,
    pub(super) source: &'a str,
}

/// A snapshot transaction: the binlog position it matches and the server's time (epoch
/// seconds) when it began.
pub(super) struct Taken {
    pub(super) at: BinlogPos,
    pub(super) now: i64,
    /// The server reports each transaction's own position (MariaDB), so each page is read in
    /// a transaction of its own; else (MySQL, the position taken under a global lock) one
    /// transaction reads every page.
    pub(super) per_page: bool,
}

/// Sets `conn`'s session to REPEATABLE READ and starts a snapshot transaction on it.
///
/// # Errors
/// When the server gives no binlog position (binary log off), naming the setting.
pub(super) async fn begin(conn: &mut Conn) -> Result<Taken> {
    conn.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .await?;
    start(conn).await
}

/// Starts a snapshot transaction on `conn`, whose session [`begin`] set.
///
/// # Errors
/// As [`begin`].
pub(super) async fn start(conn: &mut Conn) -> Result<Taken> {
    conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        .await
        .context("cannot start the snapshot transaction")?;
    let status: Vec<Row> = conn
        .query("SHOW STATUS LIKE 'binlog_snapshot_%'")
        .await
        .context("cannot read the snapshot's binlog position")?;
    let get = |name: &str| -> Option<String> {
        status.iter().find_map(|r| {
            let n: String = r.get(0)?;
            n.eq_ignore_ascii_case(name).then(|| r.get(1)).flatten()
        })
    };
    let (at, per_page) = match (get("Binlog_snapshot_file"), get("Binlog_snapshot_position")) {
        (Some(file), Some(pos)) if !file.is_empty() => (
            BinlogPos {
                file,
                pos: pos
                    .parse()
                    .context("Binlog_snapshot_position is not a number")?,
            },
            true,
        ),
        _ => (locked_position(conn).await?, false),
    };
    let now: Option<i64> = conn.query_first("SELECT UNIX_TIMESTAMP()").await?;
    Ok(Taken {
        at,
        now: now.unwrap_or(0),
        per_page,
    })
}

/// MySQL's way: the position under a global read lock, the snapshot taken inside it.
async fn locked_position(conn: &mut Conn) -> Result<BinlogPos> {
    conn.query_drop("ROLLBACK").await?;
    conn.query_drop("FLUSH TABLES WITH READ LOCK")
        .await
        .context(
            "FLUSH TABLES WITH READ LOCK failed (the snapshot needs the RELOAD privilege on MySQL)",
        )?;
    let taken = async {
        conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            .await?;
        let row: Option<Row> = conn.query_first("SHOW MASTER STATUS").await?;
        anyhow::Ok(row)
    }
    .await;
    conn.query_drop("UNLOCK TABLES").await?;
    binlog_end(taken?)
}

/// The binlog's end from the row `SHOW MASTER STATUS` gave (none: the binary log is off).
fn binlog_end(row: Option<Row>) -> Result<BinlogPos> {
    let row = row.context(
        "the server has no binary log: start it with --log-bin --binlog-format=ROW \
         (table_replay follow reads the binlog)",
    )?;
    Ok(BinlogPos {
        file: row.get(0).context("SHOW MASTER STATUS gave no file")?,
        pos: row.get(1).context("SHOW MASTER STATUS gave no position")?,
    })
}

/// Checks the server logs whole rows: binary log on, `binlog_format=ROW`,
/// `binlog_row_image=FULL`.
///
/// # Errors
/// Naming the setting to change.
pub(super) async fn check_server(conn: &mut Conn) -> Result<()> {
    let row: Option<(i64, String, String)> = conn
        .query_first("SELECT @@log_bin, @@binlog_format, @@binlog_row_image")
        .await
        .context("cannot read the server's binlog settings")?;
    let (log_bin, format, image) = row.context("no binlog settings")?;
    if log_bin == 0 {
        anyhow::bail!(
            "the source server's binary log is off: start it with --log-bin --binlog-format=ROW"
        );
    }
    if !format.eq_ignore_ascii_case("ROW") {
        anyhow::bail!(
            "the source server logs binlog_format={format}: table_replay follow needs ROW \
             (SET GLOBAL binlog_format=ROW, or --binlog-format=ROW)"
        );
    }
    if !image.eq_ignore_ascii_case("FULL") {
        anyhow::bail!(
            "the source server logs binlog_row_image={image}: table_replay follow needs FULL \
             (whole rows: SET GLOBAL binlog_row_image=FULL)"
        );
    }
    Ok(())
}

/// `--resnapshot`: the tables named in `asked` are read again, a new snapshot after a `p`
/// row, unless one is under way (it goes on: `snapshot_lanes::finished`) or none was ever
/// taken (the first is).
///
/// Returns whether a table is read again (then [`binlog_moves`] before the snapshot).
///
/// # Errors
/// Reading whether a snapshot is complete.
pub(super) async fn read_again(tables: &mut [Followed<'_>], asked: &[String]) -> Result<bool> {
    let mut any = false;
    let named = |f: &&mut Followed<'_>| asked.iter().any(|t| t.eq_ignore_ascii_case(&f.table.name));
    for f in tables.iter_mut().filter(named) {
        let under_way = matches!(f.committed, Some(Token::Snapshot { done: false, .. }))
            && !snapshot_lanes::finished(f).await?;
        let name = &f.table.name;
        match &f.committed {
            _ if f.resnapshot => {}
            None => say!("{name}: no snapshot yet (--resnapshot): its first is taken"),
            Some(_) if under_way => {
                say!("{name}: its snapshot under way goes on (--resnapshot)");
            }
            Some(t) => {
                say_warn!(
                    "{name}: read again (--resnapshot): a new snapshot into its change table \
                     after a `p` row, the history kept (it was at {})",
                    t.render()
                );
                (f.committed, f.resnapshot) = (None, true);
                any = true;
            }
        }
    }
    Ok(any)
}

/// How long [`binlog_moves`] waits.
const MOVE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Waits until the source's binlog passes where it is now. A snapshot row is at the binlog
/// position of its read, so when no event came since a table's earlier snapshot, a new one's
/// rows would be at the old rows' very position and the `p` row could not come between them:
/// after one event, every old row is before the new snapshot's `p` row and every new row
/// after it.
///
/// # Errors
/// The binlog did not move within 30 s (naming the fix: any write on the server), or the
/// status query failed.
pub(super) async fn binlog_moves(conn: &mut Conn) -> Result<()> {
    let from = binlog_end(conn.query_first("SHOW MASTER STATUS").await?)?;
    let began = std::time::Instant::now();
    say!(
        "waiting for the source's binlog to move past {from} (--resnapshot: a new snapshot's \
         rows must come after the old ones'; any write on the server moves it)"
    );
    while binlog_end(conn.query_first("SHOW MASTER STATUS").await?)? == from {
        if began.elapsed() > MOVE_WAIT {
            anyhow::bail!(
                "--resnapshot: the source's binlog stayed at {from} for {}s, and a new \
                 snapshot's rows must come after the old ones' in it: write anything on the \
                 server (any table, any database) and run again",
                MOVE_WAIT.as_secs()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    Ok(())
}

/// Refuses a `--resnapshot` table that is not followed (before any connection).
///
/// # Errors
/// Naming the table (its first 64 characters, a table name's most) and the fix.
pub(super) fn check_asked(asked: &[String], tables: &[String]) -> Result<()> {
    let Some(t) = asked
        .iter()
        .find(|t| !tables.iter().any(|n| n.eq_ignore_ascii_case(t)))
    else {
        return Ok(());
    };
    let shown: String = t.chars().take(64).collect();
    let more = if shown.len() < t.len() { "…" } else { "" };
    anyhow::bail!(
        "--resnapshot {shown}{more}: not a followed table (--table {}): name one of them, or \
         add it to --table",
        tables.join(",")
    )
}

/// The `p` row a new snapshot of `f` begins with (no source column): the current state drops
/// every row before it. Its position is one byte before the snapshot's, after every change
/// committed before it (each a binlog event that ends by then) and before the snapshot's rows
/// (at that position or later). Its token is the snapshot's before any key: a restart goes on
/// with the snapshot, and writes no second one.
///
/// # Errors
/// A failed append.
pub(super) async fn purged_marker(f: &mut Followed<'_>, at: &BinlogPos, now: i64) -> Result<()> {
    let origin = Origin {
        op: Op::Resnapshot,
        file: &at.file,
        pos: at.pos.saturating_sub(1),
        row: 0,
        gtid: None,
        commit_ts: now,
        epoch: f.epoch,
    };
    let token = Token::Snapshot {
        resume: at.clone(),
        key: TokenKey::default(),
        done: false,
    };
    let mut page = Page::default();
    f.row(&mut page, OffsetToken::new(token.render())?, &[], &origin)
        .map_err(|e| anyhow::anyhow!(e))?;
    f.append(page).await
}

/// Snapshots `f`'s keys after its lanes' committed ones (all when none) over `lanes`
/// (`snapshot_lanes.rs`), its first page in the snapshot transaction `taken` on `conn`, each
/// next one in a new transaction when the server reports each one's position
/// (`Taken::per_page`): a row's change is at its own page's position. The tokens resume the
/// binlog at the lanes' `resume`. Returns how many rows were read and not already committed
/// (dead letters included).
///
/// # Errors
/// A source error, a key value of no key type, a failed append or dead letter.
pub(super) async fn table(
    conn: &mut Conn,
    f: &mut Followed<'_>,
    lanes: &mut Lanes,
    taken: &mut Taken,
    batch: usize,
) -> Result<u64> {
    let reader = Pager::new(&f.table);
    let resume = lanes.resume.clone();
    let mut n = 0;
    // The token key of the row before (`key.rs`): a key too long for a token, or the same
    // again, carries it with its count one more. From the committed one on a resume.
    let mut key = lanes.start();
    let mut after = key.values()?;
    let mut first = true;
    loop {
        if !std::mem::take(&mut first) && taken.per_page {
            // No transaction held for the whole table: each page at its own position, which
            // orders its rows after every binlog change it reflects and before the rest.
            conn.query_drop("COMMIT").await?;
            *taken = start(conn).await?;
        }
        let origin = Origin::read(&taken.at, taken.now, f.epoch);
        let share = batch / lanes.count() + 1;
        let mut page = PageWriter::new(lanes, &resume, share);
        // One row more than a page: without it, this page is the last, and its last row's
        // token says the snapshot is complete. Each row is written when the next arrives
        // (the last one's token waits for that word), the server sending the rest meanwhile.
        let mut rows = reader.stream(conn, &after, batch + 1).await?;
        let (mut read, mut before) = (0, None);
        let mut write = |values: Vec<Value>, last: bool| -> Result<()> {
            let key_values: Vec<_> = f.table.keys.iter().map(|&k| &values[k]).collect();
            key = key
                .next(&key_values)
                .with_context(|| format!("the key of a row of {}", f.table.name))?;
            let lane = lanes.lane_of(&key);
            n += page.write(f, (lane, &key), &values, (&origin, last))?;
            Ok(())
        };
        while let Some(row) = rows.next().await? {
            read += 1;
            if read > batch {
                break;
            }
            if let Some(values) = before.replace(row.unwrap()) {
                write(values, false)?;
            }
        }
        rows.drop_result().await?;
        let Some(values) = before else {
            return Ok(n);
        };
        let last = read <= batch;
        // The next page reads after this one's last row (its values: a token's key may be
        // the last one that fit).
        let next: Vec<Value> = f.table.keys.iter().map(|&k| values[k].clone()).collect();
        write(values, last)?;
        after = next;
        land(conn, f, lanes, 0, page.finish()).await?;
        // The table's end as this page's transaction saw it: rows inserted after it are the
        // binlog's (a page of its own would chase a table that grows).
        if last {
            return Ok(n);
        }
    }
}

/// One page's rows, written to their lanes' pages.
pub(super) struct PageWriter<'l> {
    lanes: &'l Lanes,
    resume: &'l BinlogPos,
    pages: Vec<Page>,
    /// Over several lanes, the table's last row: it waits for every lane to commit the rows
    /// before it.
    held: Option<(usize, Page)>,
    dead: Vec<DeadChange>,
}

/// What a page's rows became: each lane's page, the held last row, the dead letters.
pub(super) type Written = (Vec<Page>, Option<(usize, Page)>, Vec<DeadChange>);

impl<'l> PageWriter<'l> {
    /// A page over `lanes` of the snapshot resuming at `resume`, about `share` rows a lane.
    pub(super) fn new(lanes: &'l Lanes, resume: &'l BinlogPos, share: usize) -> Self {
        Self {
            lanes,
            resume,
            pages: (0..lanes.count())
                .map(|_| Page::with_capacity(share, ROW_BYTES_GUESS))
                .collect(),
            held: None,
            dead: Vec::new(),
        }
    }

    /// Writes the row `values`, token key `key`, to lane `lane` as a change at `origin`
    /// (`last`: the snapshot's last row, its token done): left out when that lane committed
    /// it, a dead letter when the type mapping refuses it. Returns 1 unless left out.
    ///
    /// # Errors
    /// A token too long (never for a key that fits one).
    pub(super) fn write(
        &mut self,
        f: &Followed<'_>,
        (lane, key): (usize, &TokenKey),
        values: &[Value],
        (origin, last): (&Origin<'_>, bool),
    ) -> Result<u64> {
        if self.lanes.has(lane, key) {
            return Ok(0);
        }
        let token = Token::Snapshot {
            resume: self.resume.clone(),
            key: key.clone(),
            done: last,
        };
        let target = if last && self.lanes.count() > 1 {
            &mut self.held.insert((lane, Page::default())).1
        } else {
            &mut self.pages[lane]
        };
        let at = OffsetToken::new(token.render())?;
        if let Err(reason) = f.row(target, at, values, origin) {
            self.dead
                .push(DeadChange::new(f, values, origin, token, &reason));
        }
        Ok(1)
    }

    pub(super) fn finish(self) -> Written {
        (self.pages, self.held, self.dead)
    }
}

/// Lands a page reader `reader` read: its dead letters first, committed (those an earlier run
/// committed left out, by the server's order: `dead_resume.rs`), so no lane's token passes
/// one; then each lane's rows; then the held last row, once every lane committed the rest.
///
/// # Errors
/// A dead letter's or a lane's append; a lane that did not commit in time.
pub(super) async fn land(
    conn: &mut Conn,
    f: &mut Followed<'_>,
    lanes: &mut Lanes,
    reader: usize,
    (pages, held, dead): Written,
) -> Result<()> {
    let dead = dead_resume::unsent(conn, (&f.table, f.dead.reader(reader)), dead).await?;
    f.dead.reader(reader).send(dead).await?;
    lanes.append(f, pages).await?;
    if let Some((lane, page)) = held {
        lanes.wait(f).await?;
        lanes.append_to(f, lane, page).await?;
        lanes.wait(f).await?;
    }
    Ok(())
}
