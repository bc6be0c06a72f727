//! The consistent snapshot transaction and the binlog position it matches.
//!
//! MariaDB: `START TRANSACTION WITH CONSISTENT SNAPSHOT`, then the status variables
//! `Binlog_snapshot_file`/`Binlog_snapshot_position`, which MariaDB fixes at the moment the
//! snapshot was taken (under the same lock as the commit order): every transaction before
//! that position is in the snapshot, none after it. No global lock is taken.
//! MySQL (no such variables): `FLUSH TABLES WITH READ LOCK`, the snapshot transaction,
//! `SHOW MASTER STATUS`, `UNLOCK TABLES`: writes wait for the instant between (this needs
//! the RELOAD privilege).

use anyhow::{Context, Result};
use mysql_async::prelude::*;
use mysql_async::{Conn, Row};

use crate::table_replay::cdc::token::BinlogPos;

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
pub(super) fn binlog_end(row: Option<Row>) -> Result<BinlogPos> {
    let row = row.context(
        "the server has no binary log: start it with --log-bin --binlog-format=ROW \
         (table_replay follow reads the binlog)",
    )?;
    Ok(BinlogPos {
        file: row.get(0).context("SHOW MASTER STATUS gave no file")?,
        pos: row.get(1).context("SHOW MASTER STATUS gave no position")?,
    })
}
