//! The MySQL/MariaDB side: connect, describe a table, and read it by keyset pages
//! (`WHERE key > ? ORDER BY key LIMIT n`: an index range scan, never an OFFSET scan).

use anyhow::{bail, Context, Result};
use mysql_async::prelude::*;
use std::time::Duration;

use mysql_async::{Conn, Opts, OptsBuilder, Row, Value};

use crate::table_replay::schema::{self, ColumnInfo, SourceColumn, SourceTable};

/// A MySQL identifier in backquotes.
pub fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Every column of `table`, quoted, in its order: a `SELECT` list.
pub fn select_list(table: &SourceTable) -> String {
    table
        .columns
        .iter()
        .map(|c| quote(&c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// TCP keep-alive on every source connection: the kernel probes a connection idle this
/// long, so one whose peer vanished (no FIN/RST) fails instead of waiting forever.
pub const TCP_KEEPALIVE: Duration = Duration::from_secs(30);

/// The connection options of `url`: exactly the address it names. The library's socket
/// preference (`prefer_socket`, on by default) would move a connection to `127.0.0.1:PORT`
/// onto the server's local socket file, which may be another server's (an SSH tunnel to a
/// remote server on a host that runs its own MariaDB); it is off, so the TCP port is used.
/// A URL's `socket=PATH` still connects through that socket. TCP keep-alive is on
/// ([`TCP_KEEPALIVE`]).
///
/// # Errors
/// For a malformed URL (without its password) or one without a database.
pub fn opts(url: &str) -> Result<Opts> {
    let opts = Opts::from_url(url).map_err(|e| {
        anyhow::anyhow!("invalid --source URL ({e}); expected mysql://USER:PASS@HOST:PORT/DB")
    })?;
    if opts.db_name().is_none() {
        bail!("--source names no database; expected mysql://USER:PASS@HOST:PORT/DB");
    }
    Ok(OptsBuilder::from_opts(opts)
        .prefer_socket(false)
        .tcp_keepalive(Some(TCP_KEEPALIVE))
        .into())
}

/// The address `opts` connects to, for messages and the default replica id: the socket
/// path when the URL names one, else `HOST:PORT`. Never the user or password.
pub fn address(opts: &Opts) -> String {
    opts.socket().map_or_else(
        || format!("{}:{}", opts.ip_or_hostname(), opts.tcp_port()),
        |s| format!("socket {s}"),
    )
}

/// Connects (to exactly the address the URL names: [`opts`]) and sets the session to UTC
/// (TIMESTAMP values are read as UTC) and utf8mb4.
///
/// # Errors
/// For a malformed URL (without its password) or a failed connection.
pub async fn connect(url: &str) -> Result<Conn> {
    let opts = opts(url)?;
    let host = address(&opts);
    let mut conn = Conn::new(opts)
        .await
        .with_context(|| format!("cannot connect to MySQL at {host}"))?;
    conn.query_drop("SET time_zone = '+00:00', NAMES utf8mb4")
        .await
        .context("cannot set the session time zone")?;
    Ok(conn)
}

/// Describes `table`: its columns (mapped) and its key.
///
/// # Errors
/// When the table does not exist, a column type is not supported, or the key is not a single
/// integer column.
pub async fn describe(conn: &mut Conn, table: &str, key: Option<&str>) -> Result<SourceTable> {
    let columns = columns(conn, table).await?;
    let primary = primary_key(conn, table).await?;
    let key = schema::key_index(table, &columns, &primary, key)?;
    Ok(SourceTable {
        name: table.to_owned(),
        columns,
        key,
        keys: vec![key],
    })
}

/// The primary key's columns of `table`, in the key's order (none without one).
///
/// # Errors
/// When the query fails.
pub async fn primary_key(conn: &mut Conn, table: &str) -> Result<Vec<String>> {
    conn.exec(
        "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' \
         ORDER BY ORDINAL_POSITION",
        (table,),
    )
    .await
    .with_context(|| format!("cannot read the primary key of {table}"))
}

/// The columns of `table`, mapped.
///
/// # Errors
/// When the table does not exist or a column type is not supported.
pub async fn columns(conn: &mut Conn, table: &str) -> Result<Vec<SourceColumn>> {
    let rows: Vec<Row> = conn
        .exec(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, NUMERIC_PRECISION, NUMERIC_SCALE, \
             CHARACTER_MAXIMUM_LENGTH, DATETIME_PRECISION, IS_NULLABLE, CHARACTER_SET_NAME \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? \
             ORDER BY ORDINAL_POSITION",
            (table,),
        )
        .await?;
    if rows.is_empty() {
        bail!("table {table} not found in the source database");
    }
    // MariaDB spells JSON as LONGTEXT with a json_valid() check.
    let checks: Vec<String> = conn
        .exec(
            "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
             WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = ?",
            (table,),
        )
        .await
        .unwrap_or_default();
    let mut columns = Vec::new();
    for row in rows {
        let get_s = |i: usize| -> String {
            match row.as_ref(i) {
                Some(Value::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
                _ => String::new(),
            }
        };
        let get_n = |i: usize| -> Option<u64> {
            match row.as_ref(i) {
                Some(Value::Int(n)) => Some(*n as u64),
                Some(Value::UInt(n)) => Some(*n),
                Some(Value::Bytes(b)) => std::str::from_utf8(b).ok()?.parse().ok(),
                _ => None,
            }
        };
        let name = get_s(0);
        let needle = format!("json_valid(`{name}`)");
        let info = ColumnInfo {
            json_checked: checks
                .iter()
                .any(|c| c.to_lowercase().contains(&needle.to_lowercase())),
            name,
            data_type: get_s(1),
            column_type: get_s(2),
            precision: get_n(3),
            scale: get_n(4),
            max_chars: get_n(5),
            datetime_precision: get_n(6),
            nullable: get_s(7) == "YES",
        };
        columns.push(SourceColumn {
            kind: schema::kind_of(&info)?,
            name: info.name,
            column_type: info.column_type,
            nullable: info.nullable,
            charset: (!get_s(8).is_empty()).then(|| get_s(8)),
        });
    }
    Ok(columns)
}

/// Reads a table page by page in key order.
pub struct KeysetReader {
    select: String,
}

impl KeysetReader {
    pub fn new(table: &SourceTable) -> Self {
        let cols = select_list(table);
        let key = quote(&table.columns[table.key].name);
        Self {
            select: format!(
                "SELECT {cols} FROM {} WHERE {key} > ? ORDER BY {key} LIMIT ?",
                quote(&table.name)
            ),
        }
    }

    /// The rows with key > `after` (all rows when `None`), at most `limit`, in key order.
    ///
    /// # Errors
    /// When the query fails.
    pub async fn page(
        &self,
        conn: &mut Conn,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Row>> {
        // -1 is below every key (keys are non-negative); the server compares numerically.
        let after: Value = match after {
            Some(k) => Value::UInt(k),
            None => Value::Int(-1),
        };
        conn.exec(self.select.as_str(), (after, limit as u64))
            .await
            .context("keyset page query failed")
    }
}

/// `(rows, min key, max key)` of the table.
///
/// # Errors
/// When the query fails.
pub async fn key_range(
    conn: &mut Conn,
    table: &SourceTable,
) -> Result<(u64, Option<u64>, Option<u64>)> {
    let key = quote(&table.columns[table.key].name);
    let row: Option<Row> = conn
        .query_first(format!(
            "SELECT COUNT(*), MIN({key}), MAX({key}) FROM {}",
            quote(&table.name)
        ))
        .await?;
    let row = row.context("COUNT(*) returned no row")?;
    let num = |i: usize| -> Result<Option<u64>> {
        match row.as_ref(i) {
            None | Some(Value::NULL) => Ok(None),
            Some(v) => schema::key_value(v).map(Some),
        }
    };
    Ok((num(0)?.unwrap_or(0), num(1)?, num(2)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_goes_to_the_address_given_with_keep_alive() {
        let o = opts("mysql://u:secret@127.0.0.1:3307/shop").unwrap();
        assert!(
            !o.prefer_socket(),
            "a loopback URL would move to the socket file"
        );
        assert_eq!(o.tcp_keepalive(), Some(TCP_KEEPALIVE));
        assert_eq!(address(&o), "127.0.0.1:3307");
        // A socket the URL asks for is used, and named.
        let o = opts("mysql://u@localhost/shop?socket=%2Ftmp%2Fm.sock").unwrap();
        assert_eq!(o.socket(), Some("/tmp/m.sock"));
        assert_eq!(address(&o), "socket /tmp/m.sock");
        assert!(opts("mysql://u@127.0.0.1:3307").is_err());
    }
}
