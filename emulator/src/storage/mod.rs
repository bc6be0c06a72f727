//! SQLite storage: one writer thread, and read-only connections beside it.
//!
//! One database file in WAL mode: `<data-dir>/emulator.sqlite3`, or, without a data
//! directory, the same file in a private temporary directory removed at the end (it is a
//! file rather than an in-memory database so that readers can run beside the writer).
//! Writes (commits, DDL, channel records) run in order on the writer thread (`Storage::run`);
//! reads that users start (the SQL API, the console, `Emulator::query`) run on reader
//! connections (`Storage::read`), so a slow query never delays a commit.
//! Each Snowflake table is a SQLite table named `"DB.SCHEMA.TABLE"`; the emulator's own state
//! lives in tables prefixed `_emulator_`: `_emulator_ddl` (the DDL scripts applied, replayed at
//! start) and `_emulator_channels` (committed offset token and counters per channel). Committed
//! rows and the channel's new committed token are written in one transaction. No secret is
//! stored here (the SQL API reads this database): the scoped-token signing secret is in
//! `security/token_secret.rs`'s file, and the `_emulator_meta` table that held it before is
//! dropped.

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};

use rusqlite::{Connection, OptionalExtension};

use crate::base::error::{sqlite_cause, EmulatorError};
use crate::convert::{output, SqlValue};

pub(crate) mod dropped;
mod readers;
mod retype;

pub(crate) use readers::MAX_RESULT_BYTES;
pub(crate) use retype::retype_columns;

/// Name of the database file inside the data directory.
pub const DB_FILE: &str = "emulator.sqlite3";

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Handle to the writer thread and the readers.
pub(crate) struct Storage {
    tx: mpsc::Sender<Job>,
    /// The database file in the user's data directory (`None`: a temporary one).
    path: Option<PathBuf>,
    readers: Arc<readers::Readers>,
    /// Declared last: removed after the readers are closed.
    _temp: Option<readers::TempDir>,
}

/// A channel's row counters and latest row error, as `GET /` and the bulk status show them.
#[derive(Debug, Clone, Default)]
pub(crate) struct RowCounters {
    pub rows_inserted: u64,
    pub rows_parsed: u64,
    pub rows_error_count: u64,
    pub last_error_offset_upper_bound: Option<String>,
    pub last_error_message: Option<String>,
    pub last_error_timestamp_ms: Option<i64>,
}

/// A channel's durable state (one row of `_emulator_channels`).
#[derive(Debug, Clone, Default)]
pub(crate) struct ChannelRecord {
    pub database: String,
    pub schema: String,
    pub pipe: String,
    pub channel: String,
    pub client_seq: u64,
    pub created_on_ms: i64,
    pub committed_offset_token: Option<String>,
    pub counters: RowCounters,
    pub status_code: String,
}

/// Rows to insert into one table.
pub(crate) struct TableInsert {
    pub insert_sql: String,
    /// The table's qualified name (the key of its sequences).
    pub table: String,
    /// Its `AUTOINCREMENT`/`IDENTITY` columns.
    pub identities: Vec<IdentityColumn>,
    pub rows: Vec<Vec<SqlValue>>,
}

/// An `AUTOINCREMENT`/`IDENTITY` column: where [`SqlValue::NextIdentity`] may appear in a
/// row, and its sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IdentityColumn {
    pub index: usize,
    pub column: String,
    pub start: i64,
    pub increment: i64,
}

impl IdentityColumn {
    /// The identity columns of `table`.
    pub(crate) fn of(table: &crate::catalog::Table) -> Vec<Self> {
        table
            .columns
            .iter()
            .enumerate()
            .filter_map(|(index, c)| match c.default {
                Some(crate::catalog::ColumnDefault::Identity { start, increment }) => Some(Self {
                    index,
                    column: c.name.clone(),
                    start,
                    increment,
                }),
                _ => None,
            })
            .collect()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS _emulator_ddl (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sql TEXT NOT NULL UNIQUE,
    applied_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS _emulator_channels (
    database TEXT NOT NULL,
    schema TEXT NOT NULL,
    pipe TEXT NOT NULL,
    channel TEXT NOT NULL,
    client_seq INTEGER NOT NULL,
    created_on_ms INTEGER NOT NULL,
    committed_offset_token TEXT,
    rows_inserted INTEGER NOT NULL,
    rows_parsed INTEGER NOT NULL,
    rows_error_count INTEGER NOT NULL,
    last_error_offset_upper_bound TEXT,
    last_error_message TEXT,
    last_error_timestamp_ms INTEGER,
    status_code TEXT NOT NULL,
    PRIMARY KEY (database, schema, pipe, channel)
);
CREATE TABLE IF NOT EXISTS _emulator_default_pipes (
    database TEXT NOT NULL,
    schema TEXT NOT NULL,
    pipe TEXT NOT NULL,
    created_on_ms INTEGER NOT NULL,
    PRIMARY KEY (database, schema, pipe)
);
CREATE TABLE IF NOT EXISTS _emulator_sequences (
    tbl TEXT NOT NULL,
    col TEXT NOT NULL,
    next INTEGER NOT NULL,
    PRIMARY KEY (tbl, col)
);
";

fn sql_err(e: rusqlite::Error) -> EmulatorError {
    EmulatorError::storage("").with_source(sqlite_cause(&e))
}

impl Storage {
    /// Opens (creating if needed) the database and starts the writer thread. Without a data
    /// directory the database lives in a new private temporary directory.
    ///
    /// # Errors
    /// When the directory or the database cannot be created, or the thread cannot start.
    pub(crate) fn open(data_dir: Option<&Path>) -> Result<Self, EmulatorError> {
        let (path, temp, file) = match data_dir {
            Some(d) => {
                std::fs::create_dir_all(d).map_err(|e| {
                    EmulatorError::storage(format!("cannot create data dir {}", d.display()))
                        .with_source(e)
                })?;
                let file = d.join(DB_FILE);
                (Some(file.clone()), None, file)
            }
            None => {
                let temp = readers::TempDir::create()?;
                let file = temp.path().join(DB_FILE);
                (None, Some(temp), file)
            }
        };
        if !crate::sql_sandbox::heap::is_bounded() {
            tracing::debug!(
                "one SQL API statement's SQLite memory is bounded per value only, not per row: \
                 call snowpipe_emulator::bound_sql_statement_memory() first in main"
            );
        }
        let mut conn = Connection::open(&file).map_err(sql_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql_err)?;
        // A temporary database does not outlive the process: no sync at all.
        let sync = if temp.is_some() { "OFF" } else { "NORMAL" };
        conn.pragma_update(None, "synchronous", sync)
            .map_err(sql_err)?;
        conn.execute_batch(SCHEMA).map_err(sql_err)?;
        // Earlier versions stored the scoped-token signing secret here, readable through
        // the SQL API; it is not used any more (see `security/token_secret.rs`).
        conn.execute_batch("DROP TABLE IF EXISTS _emulator_meta")
            .map_err(sql_err)?;
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("emulator-sqlite".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    job(&mut conn);
                }
            })
            .map_err(|e| EmulatorError::storage("cannot start the writer thread").with_source(e))?;
        Ok(Self {
            tx,
            path,
            readers: Arc::new(readers::Readers::new(file)),
            _temp: temp,
        })
    }

    /// The database file, if on disk.
    pub(crate) fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Runs `f` on the writer thread and awaits its result.
    ///
    /// Cancelling the future does not cancel the job; it still runs to completion.
    pub(crate) async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> R + Send + 'static,
    ) -> Result<R, EmulatorError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tx
            .send(Box::new(move |c| {
                let _ = tx.send(f(c));
            }))
            .map_err(|_| EmulatorError::storage("the storage thread has stopped"))?;
        rx.await
            .map_err(|_| EmulatorError::storage("the storage thread has stopped"))
    }

    /// Runs `f` on a read-only connection on a blocking thread: it sees the last committed
    /// transaction and never delays the writer.
    ///
    /// # Errors
    /// When no reader connection can be opened.
    ///
    /// # Cancellation
    /// Dropping the future does not stop `f`; it runs to its end.
    pub(crate) async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> R + Send + 'static,
    ) -> Result<R, EmulatorError> {
        self.readers.run(f).await
    }

    /// Runs `f` on a read-only connection on the calling thread.
    ///
    /// # Errors
    /// When no reader connection can be opened.
    pub(crate) fn read_blocking<R>(
        &self,
        f: impl FnOnce(&Connection) -> R,
    ) -> Result<R, EmulatorError> {
        self.readers.with(f)
    }
}

/// Opens an existing data directory's database read-only (for `query` and `status`).
///
/// # Errors
/// When the file does not exist or cannot be opened.
pub fn open_read_only(data_dir: &Path) -> Result<Connection, EmulatorError> {
    let p = data_dir.join(DB_FILE);
    if !p.exists() {
        return Err(EmulatorError::storage(format!(
            "{} does not exist; is --data-dir the directory the emulator was started with?",
            p.display()
        )));
    }
    readers::open_query_only(&p).map_err(sql_err)
}

/// Result of a read-only query: column names and rows of JSON values.
pub type QueryResult = (Vec<String>, Vec<Vec<serde_json::Value>>);

/// Runs one read-only statement. Values print as every output of the emulator prints them
/// (the one printer, `convert::output`): a column declared `NUMBER(p,s)` gives its values at the
/// column's scale, exactly (JSON integers for `NUMBER(p,0)` values that fit `i64` or `u64`,
/// else strings: `"3194301642615.2778"`, `"12.50"`); BLOBs are upper-case hex strings
/// (BINARY); FLOAT values are JSON numbers, text is a string.
///
/// # Errors
/// When the SQL is invalid or would modify the database.
pub fn query(conn: &Connection, sql: &str) -> Result<QueryResult, EmulatorError> {
    query_declared(conn, sql).map(|(cols, _, rows)| (cols, rows))
}

/// A [`QueryResult`] with each result column's declared type between the names and the rows.
pub(crate) type DeclaredResult = (
    Vec<String>,
    Vec<Option<String>>,
    Vec<Vec<serde_json::Value>>,
);

/// Like [`query`], also returning each result column's declared type (`None` for an
/// expression).
///
/// # Errors
/// As [`query`].
pub(crate) fn query_declared(
    conn: &Connection,
    sql: &str,
) -> Result<DeclaredResult, EmulatorError> {
    with_current_schema(conn, |conn| query_now(conn, sql)).map_err(sql_err)?
}

/// Runs `f` on `conn` in one read transaction that sees the database's schema as it is now.
///
/// A connection caches the schema it last read, and SQLite prepares a statement against that
/// cache: a `SELECT *` prepared on a reader that last read before the writer added columns
/// (schema evolution, an `ALTER TABLE` of the SQL API) expands to the old columns, and when
/// its first step finds the schema moved on it is prepared again, wider, while the names and
/// types the caller read after preparing are still the old ones: the answer loses every
/// column added since. Here a read of `sqlite_master` first reloads a stale cache (its
/// schema check fails, and SQLite reads the schema again), and the transaction holds that
/// snapshot (WAL), so a column added meanwhile cannot come between preparing and stepping.
/// Nothing is written: the transaction is rolled back.
///
/// # Errors
/// SQLite's, when the transaction or the schema read fails.
pub(crate) fn with_current_schema<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> T,
) -> rusqlite::Result<T> {
    let tx = if conn.is_autocommit() {
        Some(conn.unchecked_transaction()?)
    } else {
        None
    };
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))?;
    let out = f(conn);
    drop(tx);
    Ok(out)
}

/// [`query_declared`] on the schema `conn` has cached.
fn query_now(conn: &Connection, sql: &str) -> Result<DeclaredResult, EmulatorError> {
    let mut stmt = conn.prepare(sql).map_err(sql_err)?;
    if !stmt.readonly() {
        return Err(EmulatorError::storage(
            "only read-only statements (SELECT, read-only PRAGMA) are allowed",
        ));
    }
    let cols: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    let declared: Vec<Option<String>> = stmt
        .columns()
        .iter()
        .map(|c| c.decl_type().map(str::to_owned))
        .collect();
    let mut rows = stmt.query([]).map_err(sql_err)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(sql_err)? {
        let mut r = Vec::with_capacity(declared.len());
        for (i, decl) in declared.iter().enumerate() {
            r.push(output::json_cell(
                row.get_ref(i).map_err(sql_err)?,
                decl.as_deref(),
            ));
        }
        out.push(r);
    }
    Ok((cols, declared, out))
}

/// `table`'s SQLite name and its columns (storage name, declared type), as
/// [`add_missing_columns`] takes them.
pub(crate) fn declared_columns(table: &crate::catalog::Table) -> (String, Vec<(String, String)>) {
    let columns = table
        .storage_names()
        .into_iter()
        .zip(&table.columns)
        .map(|(stored, c)| (stored, c.ty.sql_name()))
        .collect();
    (table.qualified_name(), columns)
}

/// Adds to the SQLite table `table` the `columns` (name, declared type) it lacks: columns DDL
/// added (`ALTER TABLE … ADD COLUMN`) to a table an earlier run created.
pub(crate) fn add_missing_columns(
    conn: &Connection,
    table: &str,
    columns: &[(String, String)],
) -> rusqlite::Result<()> {
    let quoted = crate::convert::quote_ident(table);
    let existing: Vec<String> = conn
        .prepare(&format!(
            "SELECT name FROM pragma_table_info({})",
            sql_string(table)
        ))?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for (name, ty) in columns {
        // SQLite compares column names ignoring ASCII case.
        if !existing.iter().any(|e| e.eq_ignore_ascii_case(name)) {
            conn.execute_batch(&format!(
                "ALTER TABLE {quoted} ADD COLUMN {} {ty}",
                crate::convert::quote_ident(name)
            ))?;
        }
    }
    Ok(())
}

/// A SQL string literal.
fn sql_string(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Stores a DDL script unless already stored.
pub(crate) fn store_ddl(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR IGNORE INTO _emulator_ddl (sql, applied_at_ms) VALUES (?1, ?2)",
        rusqlite::params![sql, chrono::Utc::now().timestamp_millis()],
    )?;
    Ok(())
}

/// The stored DDL scripts in order.
pub fn stored_ddl(conn: &Connection) -> Result<Vec<String>, EmulatorError> {
    let mut stmt = conn
        .prepare("SELECT sql FROM _emulator_ddl ORDER BY seq")
        .map_err(sql_err)?;
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(sql_err)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
}

/// The default pipes created so far (database, schema, pipe), from `_emulator_default_pipes`
/// and, for data directories written before that table existed, the pipes of stored channels.
pub(crate) fn created_default_pipes(
    conn: &Connection,
) -> rusqlite::Result<Vec<(String, String, String)>> {
    let mut out = Vec::new();
    for sql in [
        "SELECT database, schema, pipe FROM _emulator_default_pipes",
        "SELECT DISTINCT database, schema, pipe FROM _emulator_channels",
    ] {
        let mut stmt = match conn.prepare(sql) {
            Ok(stmt) => stmt,
            // A read-only copy of an older data directory has no such table.
            Err(_) => continue,
        };
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        for row in rows {
            out.push(row?);
        }
    }
    Ok(out)
}

/// Records that a default pipe was created (its first pipe-info, open or append).
pub(crate) fn store_default_pipe(
    conn: &Connection,
    database: &str,
    schema: &str,
    pipe: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR IGNORE INTO _emulator_default_pipes VALUES (?1, ?2, ?3, ?4)",
        rusqlite::params![
            database,
            schema,
            pipe,
            chrono::Utc::now().timestamp_millis()
        ],
    )?;
    Ok(())
}

/// `CREATE TABLE IF NOT EXISTS "ERROR_TABLE(DB.SCHEMA.TABLE)" (…)`: the error table of a
/// table with `ERROR_LOGGING = TRUE`, with Snowflake's fixed columns, in its order
/// (docs/protocol-types-and-sql.md "Table features"): when the row was rejected, the query id (none for
/// streaming), the error code, the error's metadata and the payload as sent.
pub(crate) fn error_table_create(table: &crate::catalog::Table) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} ({ERROR_TABLE_COLUMNS})",
        crate::convert::quote_ident(&table.error_table_name())
    )
}

const ERROR_TABLE_COLUMNS: &str = "TIMESTAMP TIMESTAMP_LTZ, QUERY_ID VARCHAR, \
     ERROR_CODE \"NUMBER(38,0)\", ERROR_METADATA OBJECT, ERROR_DATA OBJECT";

/// Rewrites an error table an older emulator created with an `ERROR_MESSAGE` column into
/// Snowflake's shape (see [`error_table_create`]): the message, column, pipe and channel move
/// into `ERROR_METADATA`, the row into `ERROR_DATA:"$1"` (as JSON text), and `ERROR_CODE` is
/// read from the message. Does nothing to an error table of the current shape.
pub(crate) fn upgrade_error_table(conn: &Connection, error_table: &str) -> rusqlite::Result<()> {
    let name = crate::convert::quote_ident(error_table);
    let old_shape = conn
        .prepare(&format!("SELECT * FROM {name} LIMIT 0"))?
        .column_names()
        .contains(&"ERROR_MESSAGE");
    if !old_shape {
        return Ok(());
    }
    let old = crate::convert::quote_ident(&format!("{error_table} (old shape)"));
    let code = crate::convert::RowErrorKind::code_from_message_sql("ERROR_MESSAGE");
    conn.execute_batch(&format!(
        "ALTER TABLE {name} RENAME TO {old};
         CREATE TABLE {name} ({ERROR_TABLE_COLUMNS});
         INSERT INTO {name} SELECT TIMESTAMP, QUERY_ID, COALESCE(ERROR_CODE, {code}),
             json_object('error_code', COALESCE(ERROR_CODE, {code}),
                 'error_message', ERROR_MESSAGE,
                 'error_source', json_extract(ERROR_METADATA, '$.column'),
                 'service', 'snowpipe_streaming',
                 'details', json_object(
                     'pipe_name', json_extract(ERROR_METADATA, '$.pipe'),
                     'channel_name', json_extract(ERROR_METADATA, '$.channel'),
                     'error_data_truncated', json('false'),
                     'error_data_content_type', 'json')),
             json_object('$1', ERROR_DATA)
           FROM {old};
         DROP TABLE {old};"
    ))
}

/// A row an append rejected, for its table's error table.
#[derive(Debug, Clone)]
pub(crate) struct RejectedRow {
    /// `ERROR_CODE`.
    pub code: u32,
    /// `ERROR_METADATA` (`service`, `error_code`, `error_message`, `error_source`,
    /// `sql_state`, `details`).
    pub metadata: serde_json::Value,
    /// `ERROR_DATA`: `{"$1": <the line as sent>}`.
    pub data: serde_json::Value,
}

/// Writes rejected rows to the error table `error_table` (its SQLite name).
pub(crate) fn write_rejected(
    conn: &mut Connection,
    error_table: &str,
    rows: &[RejectedRow],
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(&format!(
            "INSERT INTO {} VALUES (?1, NULL, ?2, ?3, ?4)",
            crate::convert::quote_ident(error_table)
        ))?;
        let now = chrono::Utc::now()
            .format("%Y-%m-%d %H:%M:%S%.9fZ")
            .to_string();
        for r in rows {
            stmt.execute(rusqlite::params![
                now,
                r.code,
                r.metadata.to_string(),
                r.data.to_string()
            ])?;
        }
    }
    tx.commit()
}

/// All stored channel records.
pub(crate) fn load_channels(conn: &Connection) -> Result<Vec<ChannelRecord>, EmulatorError> {
    let mut stmt = conn
        .prepare(
            "SELECT database, schema, pipe, channel, client_seq, created_on_ms, committed_offset_token,
                    rows_inserted, rows_parsed, rows_error_count, last_error_offset_upper_bound,
                    last_error_message, last_error_timestamp_ms, status_code
             FROM _emulator_channels ORDER BY database, schema, pipe, channel",
        )
        .map_err(sql_err)?;
    let rows = stmt
        .query_map([], |r| {
            Ok(ChannelRecord {
                database: r.get(0)?,
                schema: r.get(1)?,
                pipe: r.get(2)?,
                channel: r.get(3)?,
                client_seq: r.get::<_, i64>(4)? as u64,
                created_on_ms: r.get(5)?,
                committed_offset_token: r.get(6)?,
                counters: RowCounters {
                    rows_inserted: r.get::<_, i64>(7)? as u64,
                    rows_parsed: r.get::<_, i64>(8)? as u64,
                    rows_error_count: r.get::<_, i64>(9)? as u64,
                    last_error_offset_upper_bound: r.get(10)?,
                    last_error_message: r.get(11)?,
                    last_error_timestamp_ms: r.get(12)?,
                },
                status_code: r.get(13)?,
            })
        })
        .map_err(sql_err)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
}

pub(crate) fn upsert_channel(conn: &Connection, c: &ChannelRecord) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT OR REPLACE INTO _emulator_channels VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)",
    )?;
    stmt.execute(rusqlite::params![
        c.database,
        c.schema,
        c.pipe,
        c.channel,
        c.client_seq as i64,
        c.created_on_ms,
        c.committed_offset_token,
        c.counters.rows_inserted as i64,
        c.counters.rows_parsed as i64,
        c.counters.rows_error_count as i64,
        c.counters.last_error_offset_upper_bound,
        c.counters.last_error_message,
        c.counters.last_error_timestamp_ms,
        c.status_code,
    ])?;
    Ok(())
}

pub(crate) fn delete_channel(
    conn: &Connection,
    db: &str,
    schema: &str,
    pipe: &str,
    channel: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM _emulator_channels WHERE database=?1 AND schema=?2 AND pipe=?3 AND channel=?4",
        rusqlite::params![db, schema, pipe, channel],
    )?;
    Ok(())
}

/// Writes committed rows and the channels' new state in one transaction.
pub(crate) fn write_commit(
    conn: &mut Connection,
    inserts: &[TableInsert],
    channels: &[ChannelRecord],
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    for ins in inserts {
        let mut stmt = tx.prepare_cached(&ins.insert_sql)?;
        if ins.identities.is_empty() {
            for row in &ins.rows {
                stmt.execute(rusqlite::params_from_iter(row.iter()))?;
            }
            continue;
        }
        // Number the rows that omitted an identity column in commit order; the sequence
        // moves in the same transaction, so a failed commit hands out nothing.
        let mut next: Vec<i64> = Vec::with_capacity(ins.identities.len());
        for id in &ins.identities {
            let stored: Option<i64> = tx
                .query_row(
                    "SELECT next FROM _emulator_sequences WHERE tbl = ?1 AND col = ?2",
                    rusqlite::params![ins.table, id.column],
                    |r| r.get(0),
                )
                .optional()?;
            next.push(stored.unwrap_or(id.start));
        }
        for row in &ins.rows {
            let mut row = row.clone();
            for (id, next) in ins.identities.iter().zip(next.iter_mut()) {
                if let Some(slot @ SqlValue::NextIdentity) = row.get_mut(id.index) {
                    *slot = SqlValue::Integer(*next);
                    *next = next.saturating_add(id.increment);
                }
            }
            stmt.execute(rusqlite::params_from_iter(row.iter()))?;
        }
        for (id, next) in ins.identities.iter().zip(next) {
            tx.execute(
                "INSERT OR REPLACE INTO _emulator_sequences (tbl, col, next) VALUES (?1, ?2, ?3)",
                rusqlite::params![ins.table, id.column, next],
            )?;
        }
    }
    for c in channels {
        upsert_channel(&tx, c)?;
    }
    tx.commit()
}

#[cfg(test)]
mod tests;
