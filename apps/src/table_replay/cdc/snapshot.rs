//! The snapshot of the tables that need one, and `--resnapshot`. The consistent snapshot
//! transaction and the binlog position it matches: `snapshot_tx.rs`; a page's rows written
//! and landed on the lanes: `snapshot_page.rs`; several readers: `snapshot_ranges.rs`.
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
use mysql_async::{Conn, Value};
use snowpipe_streaming::OffsetToken;

use crate::common::say::{say, say_warn};
use crate::table_replay::cdc::changes::{Op, Origin};
use crate::table_replay::cdc::key::{Pager, TokenKey};
use crate::table_replay::cdc::snapshot_lanes::{self, Lanes};
use crate::table_replay::cdc::snapshot_page::{land, PageWriter};
use crate::table_replay::cdc::snapshot_plan;
use crate::table_replay::cdc::snapshot_ranges;
use crate::table_replay::cdc::snapshot_tx::{begin, binlog_end, start, Taken};
use crate::table_replay::cdc::token::{BinlogPos, Token};
use crate::table_replay::cdc::Followed;
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
            lanes.complete = snapshot_plan::complete(f, &resume).await?;
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
            let over = (lanes.count(), &resume, lanes.fresh());
            let plan = snapshot_plan::plan(conn, f, over, (how.readers, taken.per_page));
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
            snapshot_plan::record_complete(f, plan, &resume).await?;
        }
        completed(f, resume.clone());
        earliest = Some(earliest.map_or(resume.clone(), |e| e.min(resume)));
    }
    // The last page's transaction (it only read) ends with the connection, which the caller
    // drops: no statement after the last row's commit wait, so a connection gone silent
    // since cannot hold `follow` before the binlog, whose silence is watched.
    Ok(earliest)
}

/// Marks `f`'s snapshot resuming at `resume` complete: every key is done, and the binlog from
/// `resume` brings the rest.
pub(super) fn completed(f: &mut Followed<'_>, resume: BinlogPos) {
    f.committed = Some(Token::Snapshot {
        resume,
        key: TokenKey::default(),
        done: true,
    });
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
