//! The consistent snapshot and the binlog position it matches.
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
