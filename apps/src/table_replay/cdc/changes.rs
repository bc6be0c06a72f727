//! The change table `<TABLE>_CHANGES`: its DDL, and one change as its row.
//!
//! Columns: the source's (all nullable: a delete carries the key's columns alone, a truncate
//! no source column), then `_OP` (`r` snapshot read, `c` insert, `u` update, `d` delete, as Debezium
//! names them, `t` a `TRUNCATE` of the table, and `p` the start of a new snapshot after the
//! binlog was purged: `--resnapshot-purged`),
//! `_BINLOG_FILE`, `_BINLOG_POS` (the rows event's start; for snapshot rows, the position of the
//! snapshot transaction that read the row's page), `_ROW` (the row's index in its event), `_GTID` (MariaDB's
//! `domain-server-sequence`; NULL without GTIDs and for snapshot rows) and `_COMMIT_TS` (UTC:
//! the timestamp the server wrote on the transaction's first event, to the second; the
//! snapshot's time for snapshot rows).
//!
//! `_EPOCH` (how many times `follow` moved to another server, NULL for 0: `failover.rs`).
//!
//! The current state is the latest row per key (every key column, `key.rs`) by `(_EPOCH, _BINLOG_FILE, _BINLOG_POS, _ROW)` with
//! deletes removed and every row before the latest truncate removed (the view in
//! `apps/docs/table_replay.md`, [`current_state_view`]).

use mysql_async::Value;
use serde_json::Value as Json;

use crate::table_replay::cdc::token::BinlogPos;
use crate::table_replay::row_text::{Mapped, RowText};
use crate::table_replay::schema::{self, ident, snowflake_name, snowflake_type, SourceTable};

/// The change table of a destination table: `<DEST>_CHANGES`.
pub fn table_name(dest: &str) -> String {
    format!("{dest}_CHANGES")
}

/// The change pipe of a source table: `<TABLE>_CHANGES_PIPE`.
pub fn pipe_name(table: &str) -> String {
    format!("{}_CHANGES_PIPE", snowflake_name(table))
}

/// How to take a new snapshot of `tables` (the fix when the binlog cannot go on), the change
/// table's history kept first: rename each change table (its rows stay, under
/// `<TABLE>_CHANGES_HISTORY`) and drop its change pipe (which drops its channel and
/// committed position), or, to discard the history, drop both ([`snapshot_drops`]); create
/// them again, and run follow again. Runs as printed: the names quoted as Snowflake needs
/// ([`ident`]) and each table as the shell needs ([`shell_word`]), one `ddl` command a table.
pub fn new_snapshot_fix<'a>(tables: impl IntoIterator<Item = &'a str>) -> String {
    let tables: Vec<&str> = tables.into_iter().collect();
    let keeps: Vec<String> = tables
        .iter()
        .map(|t| {
            let changes = table_name(&snowflake_name(t));
            format!(
                "ALTER TABLE {} RENAME TO {}; DROP PIPE {};",
                ident(&changes),
                ident(&format!("{changes}_HISTORY")),
                ident(&pipe_name(t))
            )
        })
        .collect();
    let commands: Vec<String> = tables
        .iter()
        .map(|t| format!("`table_replay ddl --changes --table {}`", shell_word(t)))
        .collect();
    format!(
        "take a new snapshot, keeping the change table's history under another name: {} \
         (or, to discard the history: {}), create them again with the DDL {} print{}, and \
         run follow again",
        keeps.join(" "),
        snapshot_drops(&tables),
        commands.join(" and "),
        if commands.len() == 1 { "s" } else { "" }
    )
}

/// The statements that drop `tables`' change pipes and change tables, history and all.
pub fn snapshot_drops(tables: &[&str]) -> String {
    tables
        .iter()
        .map(|t| {
            format!(
                "DROP PIPE {}; DROP TABLE {};",
                ident(&pipe_name(t)),
                ident(&table_name(&snowflake_name(t)))
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `word` as one word of a POSIX shell: as it is when it holds only characters no shell
/// reads specially, else in single quotes (a single quote in it as `'\''`).
pub fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.,/:=@%+".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// The change channel of a source table (one per table, so a restart reopens it).
pub fn channel_name(table: &str) -> String {
    format!("table_replay_changes_{table}")
}

/// The operation of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Read,
    Insert,
    Update,
    Delete,
    /// `TRUNCATE` of the whole table: every row before it is gone.
    Truncate,
    /// A new snapshot of a table already copied (`--resnapshot`, or `--resnapshot-purged`
    /// after its binlog was purged) begins: every row before it is gone; the snapshot's rows
    /// after it are the state.
    Resnapshot,
}

impl Op {
    pub fn code(self) -> &'static str {
        match self {
            Op::Read => "r",
            Op::Insert => "c",
            Op::Update => "u",
            Op::Delete => "d",
            Op::Truncate => "t",
            Op::Resnapshot => "p",
        }
    }
}

/// Where a change comes from, written on its row.
#[derive(Debug, Clone)]
pub struct Origin<'a> {
    pub op: Op,
    pub file: &'a str,
    pub pos: u64,
    pub row: u32,
    pub gtid: Option<&'a str>,
    /// Seconds since the epoch (UTC).
    pub commit_ts: i64,
    /// How many times `follow` moved to another server (`failover.rs`): `_EPOCH`, written
    /// when above 0.
    pub epoch: u32,
}

impl<'a> Origin<'a> {
    /// A snapshot row's: read in the transaction at `at`, begun at `now` (epoch seconds).
    pub fn read(at: &'a BinlogPos, now: i64, epoch: u32) -> Self {
        Self {
            op: Op::Read,
            file: &at.file,
            pos: at.pos,
            row: 0,
            gtid: None,
            commit_ts: now,
            epoch,
        }
    }
}

/// `CREATE TABLE <DEST>_CHANGES` and `CREATE PIPE <TABLE>_CHANGES_PIPE`.
pub fn ddl(table: &SourceTable, database: &str, schema_name: &str, dest: &str) -> String {
    let qualified = |n: &str| format!("{}.{}.{}", ident(database), ident(schema_name), ident(n));
    let mut columns: Vec<String> = table
        .columns
        .iter()
        .map(|c| {
            // The key too is nullable: a truncate's row has no key.
            format!(
                "    {} {}",
                ident(&snowflake_name(&c.name)),
                snowflake_type(&c.kind)
            )
        })
        .collect();
    columns.extend(
        [
            "_OP VARCHAR(1) NOT NULL",
            "_BINLOG_FILE VARCHAR NOT NULL",
            "_BINLOG_POS NUMBER(20,0) NOT NULL",
            "_ROW NUMBER(10,0) NOT NULL",
            "_GTID VARCHAR",
            "_COMMIT_TS TIMESTAMP_LTZ(0) NOT NULL",
            "_EPOCH NUMBER(10,0)",
        ]
        .map(|c| format!("    {c}")),
    );
    let changes = table_name(dest);
    format!(
        "CREATE TABLE IF NOT EXISTS {} (\n{}\n);\n\
         CREATE PIPE IF NOT EXISTS {} AS\n    COPY INTO {} FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING'))\n    MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE;\n",
        qualified(&changes),
        columns.join(",\n"),
        qualified(&pipe_name(&table.name)),
        qualified(&changes),
    )
}

/// One change as its row, written into `row`: the source columns of `values` (for a delete,
/// the key's alone; for a truncate, none: `values` is not read) and the origin's columns.
///
/// # Errors
/// When a value cannot become a value (`column c (TYPE): …`), as the replay says it.
pub fn write_row(
    table: &SourceTable,
    names: &[String],
    values: &[Value],
    origin: &Origin<'_>,
    row: &mut RowText<'_>,
) -> Result<(), String> {
    if matches!(origin.op, Op::Truncate | Op::Resnapshot) {
    } else if origin.op == Op::Delete {
        for &k in &table.keys {
            let c = &table.columns[k];
            let key = schema::map(&c.kind, &values[k])
                .map_err(|e| format!("column {} ({}): {e}", c.name, c.column_type))?;
            // A key is named even when NULL (a `--key` column may hold one).
            if key == Mapped::Null {
                row.field_json(&names[k], &Json::Null);
            } else {
                row.field(&names[k], &key);
            }
        }
    } else {
        crate::table_replay::replay::write_columns(table, names, values, row)?;
    }
    row.field_json("_OP", origin.op.code());
    row.field_json("_BINLOG_FILE", origin.file);
    row.field_json("_BINLOG_POS", &origin.pos);
    row.field_json("_ROW", &origin.row);
    if let Some(g) = origin.gtid {
        row.field_json("_GTID", g);
    }
    if origin.epoch > 0 {
        row.field_json(EPOCH, &origin.epoch);
    }
    with_commit_ts_text(origin.commit_ts, |ts| row.field_json("_COMMIT_TS", ts));
    Ok(())
}

/// `f` of `_COMMIT_TS` of a commit at `ts` (epoch seconds), `YYYY-MM-DDTHH:MM:SS+00:00`:
/// the text is made once per second met, not once per row (a snapshot's rows, and a
/// transaction's, share one).
fn with_commit_ts_text<T>(ts: i64, f: impl FnOnce(&str) -> T) -> T {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(i64, String)>> = const { std::cell::RefCell::new(None) };
    }
    LAST.with_borrow_mut(|last| match last {
        Some((at, text)) if *at == ts => f(text),
        _ => {
            let t = chrono::DateTime::from_timestamp(ts, 0).unwrap_or_default();
            let text = t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string();
            let out = f(&text);
            *last = Some((ts, text));
            out
        }
    })
}

/// The change rows' epoch column (`failover.rs`): NULL (0) until `follow` first moves to
/// another server.
pub const EPOCH: &str = "_EPOCH";

/// The order of changes, latest first, for `ORDER BY`: by epoch (when the change table has
/// the column) and then the binlog position, which compares only within one epoch.
pub fn latest_first(alias: &str, epoch: bool) -> String {
    let a = if alias.is_empty() {
        String::new()
    } else {
        format!("{alias}.")
    };
    let by_epoch = if epoch {
        format!("COALESCE({a}{EPOCH}, 0) DESC, ")
    } else {
        String::new()
    };
    format!("{by_epoch}{a}_BINLOG_FILE DESC, {a}_BINLOG_POS DESC, {a}_ROW DESC")
}

/// What `table_replay ddl --changes` prints for `table` into `database.schema_name.dest`: a
/// script that runs as pasted, every object qualified the same way (`DATABASE.SCHEMA.NAME`):
/// the database and schema (`IF NOT EXISTS`), the change table and its pipe, the dead-letter
/// table and its pipe (the replay's), and the current-state view.
pub fn ddl_script(table: &SourceTable, database: &str, schema_name: &str, dest: &str) -> String {
    let qualified = |n: &str| format!("{}.{}.{}", ident(database), ident(schema_name), ident(n));
    let dlq = crate::table_replay::dead_letter::ddl(
        database,
        schema_name,
        &crate::table_replay::dead_letter::table_name(dest),
        &crate::table_replay::dead_letter::pipe_name(&table.name),
    );
    format!(
        "CREATE DATABASE IF NOT EXISTS {db};
CREATE SCHEMA IF NOT EXISTS {db}.{schema};
         {changes}{dlq}{view}",
        db = ident(database),
        schema = ident(schema_name),
        changes = ddl(table, database, schema_name, dest),
        view = current_state_view(
            table,
            &qualified(&table_name(dest)),
            &qualified(&format!("{dest}_CURRENT"))
        ),
    )
}

/// The view that reads the current state, for `table`'s change table (Snowflake SQL; the
/// names as they are to be written; the change table has `_EPOCH`: `ddl --changes` creates it,
/// `follow` adds it to an older one).
pub fn current_state_view(table: &SourceTable, changes: &str, view: &str) -> String {
    let key = key_columns(table);
    let cols = table
        .columns
        .iter()
        .map(|c| ident(&snowflake_name(&c.name)))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "CREATE OR REPLACE VIEW {view} AS\n  SELECT {cols} FROM (\n    SELECT * FROM {changes}\n    \
         QUALIFY ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY {}) = 1\n  \
         ) s WHERE _OP IN ('r', 'c', 'u')\n    AND {};\n",
        latest_first("", true),
        after_last_truncate(changes, "s", true)
    )
}

/// The key's columns of `table` in the change table, comma-separated (`PARTITION BY` them).
pub fn key_columns(table: &SourceTable) -> String {
    table
        .keys
        .iter()
        .map(|&k| ident(&snowflake_name(&table.columns[k].name)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The operations that drop every row before them from the current state: a truncate and a
/// new snapshot after a purge.
const RESETS: &str = "_OP IN ('t', 'p')";

/// The condition that the row `alias` comes after the table's latest truncate (its `t` or `p` row
/// at the greatest `(_EPOCH, _BINLOG_FILE, _BINLOG_POS)`, the epoch when `epoch`; true
/// without one). Uncorrelated subqueries, each run once: Snowflake and SQLite both run it
/// without a scan per row.
pub fn after_last_truncate(changes: &str, alias: &str, epoch: bool) -> String {
    if !epoch {
        let file = format!("(SELECT MAX(_BINLOG_FILE) FROM {changes} WHERE {RESETS})");
        return format!(
            "({alias}._BINLOG_FILE > COALESCE({file}, '') OR ({alias}._BINLOG_FILE = {file} AND \
             {alias}._BINLOG_POS > (SELECT MAX(_BINLOG_POS) FROM {changes} WHERE {RESETS} AND \
             _BINLOG_FILE = {file})))"
        );
    }
    let e = format!("(SELECT MAX(COALESCE({EPOCH}, 0)) FROM {changes} WHERE {RESETS})");
    let in_e = format!("{RESETS} AND COALESCE({EPOCH}, 0) = {e}");
    let file = format!("(SELECT MAX(_BINLOG_FILE) FROM {changes} WHERE {in_e})");
    let row_e = format!("COALESCE({alias}.{EPOCH}, 0)");
    format!(
        "({row_e} > COALESCE({e}, -1) OR ({row_e} = {e} AND ({alias}._BINLOG_FILE > {file} OR \
         ({alias}._BINLOG_FILE = {file} AND {alias}._BINLOG_POS > (SELECT MAX(_BINLOG_POS) FROM \
         {changes} WHERE {in_e} AND _BINLOG_FILE = {file})))))"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table_replay::schema::{Kind, SourceColumn};
    use serde_json::Map;

    /// One change as its row ([`write_row`]) made a map.
    fn row(
        table: &SourceTable,
        names: &[String],
        values: &[Value],
        origin: &Origin<'_>,
    ) -> Result<Map<String, Json>, String> {
        let mut text = Vec::new();
        let mut row = RowText::begin(&mut text);
        write_row(table, names, values, origin, &mut row)?;
        row.end();
        serde_json::from_slice(&text).map_err(|e| {
            format!("the row's JSON does not read back ({e}): a bug, please report it")
        })
    }

    fn composite() -> SourceTable {
        let col = |name: &str, kind: Kind| SourceColumn {
            name: name.into(),
            column_type: String::new(),
            kind,
            nullable: false,
            charset: None,
        };
        let int = Kind::Int {
            unsigned: false,
            digits: 10,
        };
        SourceTable {
            name: "order_lines".into(),
            columns: vec![
                col(
                    "note",
                    Kind::Text {
                        max_chars: Some(20),
                    },
                ),
                col("order_id", int.clone()),
                col("line_no", int),
            ],
            key: 1,
            keys: vec![1, 2],
        }
    }

    #[test]
    fn a_delete_carries_every_key_column_and_the_state_is_per_whole_key() {
        let table = composite();
        let names: Vec<String> = ["NOTE", "ORDER_ID", "LINE_NO"].map(String::from).into();
        let origin = Origin {
            op: Op::Delete,
            file: "b.000001",
            pos: 4,
            row: 0,
            gtid: None,
            commit_ts: 0,
            epoch: 0,
        };
        let values = [Value::Bytes(b"gone".to_vec()), Value::Int(7), Value::Int(2)];
        let row = row(&table, &names, &values, &origin).unwrap();
        assert_eq!(row["ORDER_ID"], Json::from(7));
        assert_eq!(row["LINE_NO"], Json::from(2));
        assert!(!row.contains_key("NOTE"), "{row:?}");
        let view = current_state_view(&table, "C", "V");
        assert!(
            view.contains(
                "PARTITION BY ORDER_ID, LINE_NO ORDER BY COALESCE(_EPOCH, 0) DESC, \
                 _BINLOG_FILE DESC"
            ),
            "{view}"
        );
        assert!(view.contains("_OP IN ('t', 'p')"), "{view}");
    }

    #[test]
    fn the_ddl_script_qualifies_every_object_and_creates_its_database_first() {
        let script = ddl_script(&composite(), "DB", "my schema", "ORDER_LINES");
        assert!(
            script.starts_with(
                "CREATE DATABASE IF NOT EXISTS DB;\nCREATE SCHEMA IF NOT EXISTS DB.\"my schema\";\n"
            ),
            "{script}"
        );
        for object in [
            "TABLE IF NOT EXISTS DB.\"my schema\".ORDER_LINES_CHANGES ",
            "PIPE IF NOT EXISTS DB.\"my schema\".",
            "TABLE IF NOT EXISTS DB.\"my schema\".ORDER_LINES_DLQ ",
            "VIEW DB.\"my schema\".ORDER_LINES_CURRENT AS",
            "FROM DB.\"my schema\".ORDER_LINES_CHANGES\n",
        ] {
            assert!(script.contains(object), "{object} in:\n{script}");
        }
    }

    #[test]
    fn the_new_snapshot_fix_quotes_names_for_snowflake_and_the_shell() {
        let fix = new_snapshot_fix(["orders"]);
        assert!(fix.starts_with(
            "take a new snapshot, keeping the change table's history under another name: \
             ALTER TABLE ORDERS_CHANGES RENAME TO ORDERS_CHANGES_HISTORY; \
             DROP PIPE ORDERS_CHANGES_PIPE; (or, to discard the history: \
             DROP PIPE ORDERS_CHANGES_PIPE; DROP TABLE ORDERS_CHANGES;)"
        ));
        assert!(fix.contains("`table_replay ddl --changes --table orders` prints"));
        let fix = new_snapshot_fix(["Odd Tbl", "it's"]);
        assert!(
            fix.contains("ALTER TABLE \"ODD TBL_CHANGES\" RENAME TO \"ODD TBL_CHANGES_HISTORY\";"),
            "{fix}"
        );
        assert!(
            fix.contains(
                "DROP PIPE \"ODD TBL_CHANGES_PIPE\"; DROP TABLE \"ODD TBL_CHANGES\"; \
                 DROP PIPE \"IT'S_CHANGES_PIPE\"; DROP TABLE \"IT'S_CHANGES\";"
            ),
            "{fix}"
        );
        assert!(
            fix.contains(
                "`table_replay ddl --changes --table 'Odd Tbl'` and \
                 `table_replay ddl --changes --table 'it'\\''s'` print,"
            ),
            "{fix}"
        );
        assert_eq!(shell_word("a\"b"), "'a\"b'");
        assert_eq!(shell_word(""), "''");
    }
}
