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
//! Each table is read by its key (`key.rs`: every key column, in the server's order), a page
//! at a time, each row a change `'r'` whose token is `s:FILE:POS:KEY` (`token.rs`; a key
//! too long for a token: the last key that fit). A row the type mapping refuses is a dead letter
//! (`dead_letters.rs`, its reason `snapshot key K (r): …`), committed before its page's good
//! rows are appended, and the snapshot goes on; a page's dead letters an earlier run
//! committed are left out, the server deciding which in the key's order (`dead_resume.rs`).

use anyhow::{Context, Result};
use mysql_async::prelude::*;
use mysql_async::{Conn, Row};
use snowpipe_streaming::OffsetToken;

use crate::table_replay::cdc::changes::{Op, Origin};
use crate::table_replay::cdc::dead_letters::DeadChange;
use crate::table_replay::cdc::dead_resume;
use crate::table_replay::cdc::key::{Pager, TokenKey};
use crate::table_replay::cdc::token::{BinlogPos, Token};
use crate::table_replay::cdc::Followed;
use crate::table_replay::row_size::ROW_BYTES_GUESS;
use crate::table_replay::row_text::Page;

/// Starts the snapshot transaction on `conn`; returns its binlog position and the server's
/// time (epoch seconds) at that moment.
///
/// # Errors
/// When the server gives no binlog position (binary log off), naming the setting.
pub(super) async fn begin(conn: &mut Conn) -> Result<(BinlogPos, i64)> {
    conn.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .await?;
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
    let pos = match (get("Binlog_snapshot_file"), get("Binlog_snapshot_position")) {
        (Some(file), Some(pos)) if !file.is_empty() => BinlogPos {
            file,
            pos: pos
                .parse()
                .context("Binlog_snapshot_position is not a number")?,
        },
        _ => locked_position(conn).await?,
    };
    let now: Option<i64> = conn.query_first("SELECT UNIX_TIMESTAMP()").await?;
    Ok((pos, now.unwrap_or(0)))
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
    let row = taken?.context(
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

/// The `p` row a new snapshot of `f` after its binlog was purged begins with (no source
/// column; at position 0 of the snapshot's file, before its rows): the current state drops
/// every row before it. Its token is the snapshot's before any key: a restart goes on with
/// the snapshot, and writes no second one.
///
/// # Errors
/// A failed append.
pub(super) async fn purged_marker(f: &mut Followed<'_>, at: &BinlogPos, now: i64) -> Result<()> {
    let origin = Origin {
        op: Op::Resnapshot,
        file: &at.file,
        pos: 0,
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

/// Snapshots `f`'s keys after `key` (all when empty) in the snapshot transaction on
/// `conn`, taken at `at` (server time `now`); the tokens resume the binlog at `resume`.
/// Returns how many rows were read (dead letters included).
///
/// # Errors
/// A source error, a key value of no key type, a failed append or dead letter.
pub(super) async fn table(
    conn: &mut Conn,
    f: &mut Followed<'_>,
    (at, now): (&BinlogPos, i64),
    resume: &BinlogPos,
    // The token key of the row before (`key.rs`): a key too long for a token, or the same
    // again, carries it with its count one more. From the committed one on a resume.
    mut key: TokenKey,
    batch: usize,
) -> Result<u64> {
    let reader = Pager::new(&f.table);
    let mut n = 0;
    let mut after = key.values()?;
    loop {
        // One row more than a page: without it, this page is the last, and its last row's
        // token says the snapshot is complete.
        let mut page = reader.page(conn, &after, batch + 1).await?;
        if page.is_empty() {
            return Ok(n);
        }
        let last = if page.len() > batch {
            page.truncate(batch);
            None
        } else {
            Some(page.len() - 1)
        };
        n += page.len() as u64;
        let mut rows = Page::with_capacity(page.len(), ROW_BYTES_GUESS);
        let mut dead = Vec::new();
        for (i, row) in page.into_iter().enumerate() {
            let values = row.unwrap();
            let key_values: Vec<_> = f.table.keys.iter().map(|&k| &values[k]).collect();
            key = key
                .next(&key_values)
                .with_context(|| format!("the key of a row of {}", f.table.name))?;
            after = key_values.into_iter().cloned().collect();
            let origin = Origin {
                op: Op::Read,
                file: &at.file,
                pos: at.pos,
                row: 0,
                gtid: None,
                commit_ts: now,
                epoch: f.epoch,
            };
            let token = Token::Snapshot {
                resume: resume.clone(),
                key: key.clone(),
                done: last == Some(i),
            };
            let at = OffsetToken::new(token.render())?;
            if let Err(reason) = f.row(&mut rows, at, &values, &origin) {
                dead.push(DeadChange::new(f, &values, &origin, token, &reason));
            }
        }
        // Dead letters first, committed: the change channel's token never passes one. Those
        // an earlier run committed are left out, by the server's order (`dead_resume.rs`).
        let dead = dead_resume::unsent(conn, f, dead).await?;
        f.dead.send(dead).await?;
        f.append(rows).await?;
    }
}
