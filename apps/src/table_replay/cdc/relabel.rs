//! An `ENUM`/`SET` column whose labels the binlog does not carry (`binlog_row_metadata` not
//! `FULL`) and whose table was altered after a change `follow` is about to decode: its labels
//! at that change cannot be known, so the table is diverted (`retype.rs`'s dead letters),
//! never decoded with labels that may be newer.
//!
//! The labels `follow` holds are the column type's, read at the start and at each `ALTER`
//! met in the binlog. They may be newer than a change's only when the table was altered
//! while `follow` was down or lagging, after that change was written: the table's
//! `information_schema.TABLES.CREATE_TIME` (renewed when an `ALTER TABLE` rebuilds the table,
//! as one that reorders or renames labels does; appending labels rebuilds nothing and changes
//! no older row's label), read at the start, later than the change's commit time says so. With `FULL` metadata each TABLE_MAP
//! event carries its labels (`binlog_value::event_labels`) and none of this applies. An
//! `ALTER` in the same second as the change before it is not told apart (seconds are all
//! either clock gives); set `binlog_row_metadata=FULL` to follow relabels exactly.

use anyhow::Result;
use mysql_async::prelude::Queryable as _;

use crate::table_replay::cdc::changes;
use crate::table_replay::schema::{Kind, SourceTable};

/// When `table`'s definition last changed (epoch seconds), for a table with an `ENUM` or
/// `SET` column; `None` for the others or when the server does not say.
///
/// # Errors
/// When the query fails.
pub(super) async fn defined_at(
    conn: &mut mysql_async::Conn,
    table: &SourceTable,
) -> Result<Option<i64>> {
    if !has_labels(table) {
        return Ok(None);
    }
    let t: Option<Option<i64>> = conn
        .exec_first(
            "SELECT CAST(UNIX_TIMESTAMP(CREATE_TIME) AS SIGNED) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
            (&table.name,),
        )
        .await?;
    Ok(t.flatten())
}

/// Whether `table` has an `ENUM` or `SET` column.
pub(super) fn has_labels(table: &SourceTable) -> bool {
    table
        .columns
        .iter()
        .any(|c| matches!(c.kind, Kind::Enum { .. } | Kind::Set { .. }))
}

/// Why a change committed at `ts` (epoch seconds) at `at` cannot be decoded, when the table
/// was defined again (`defined_at`) after it and the event carries no labels.
pub(super) fn unknowable(
    table: &SourceTable,
    defined_at: Option<i64>,
    ts: i64,
    at: &str,
) -> Option<String> {
    let defined = defined_at?;
    if ts >= defined {
        return None;
    }
    let columns: Vec<&str> = table
        .columns
        .iter()
        .filter(|c| matches!(c.kind, Kind::Enum { .. } | Kind::Set { .. }))
        .map(|c| c.name.as_str())
        .collect();
    Some(format!(
        "the ENUM/SET column(s) {} of {} at {at}: the table was altered after this change was \
         written (while follow was down or behind) and the binlog carries no labels \
         (binlog_row_metadata is not FULL), so the labels it was written with cannot be known; \
         set binlog_row_metadata=FULL on the server, then {}",
        columns.join(", "),
        table.name,
        changes::new_snapshot_fix([table.name.as_str()])
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table_replay::schema::SourceColumn;

    #[test]
    fn only_a_change_written_before_the_last_alter_is_unknowable() {
        let col = |name: &str, kind: Kind| SourceColumn {
            name: name.into(),
            column_type: String::new(),
            kind,
            nullable: true,
            charset: None,
        };
        let t = SourceTable {
            name: "t".into(),
            columns: vec![
                col("id", Kind::Float),
                col("e", Kind::Enum { max_chars: None }),
            ],
            key: 0,
            keys: vec![0],
        };
        assert!(has_labels(&t));
        let why = unknowable(&t, Some(100), 99, "binlog.000001:4").unwrap();
        assert!(why.contains("column(s) e of t at binlog.000001:4"), "{why}");
        assert!(unknowable(&t, Some(100), 100, "x").is_none());
        assert!(unknowable(&t, None, 1, "x").is_none());
    }
}
