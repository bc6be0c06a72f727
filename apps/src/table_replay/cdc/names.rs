//! Source column names that would share one change-table column, refused.
//!
//! A change table's column for a source column is its name upper-cased
//! ([`schema::snowflake_name`], Unicode-aware: `ß` becomes `SS`), and its pipe maps columns by
//! name case-insensitively; the metadata columns (`_OP`, `_BINLOG_FILE`, …, `changes.rs`) are
//! unquoted, so Snowflake folds them to upper case. Two source columns whose names agree
//! that way (`xss` and `xß`), or a source column named like a metadata column (`_op`), would
//! write into one column: `ddl --changes`, `follow`'s start and each `ADD COLUMN` it follows
//! (`evolve.rs`) refuse them, naming both and the fix (rename one source column).

use anyhow::{bail, Result};

use crate::table_replay::schema::{snowflake_name, SourceTable};

/// The change table's metadata columns (`changes::ddl`).
pub(crate) const METADATA: [&str; 6] = [
    "_OP",
    "_BINLOG_FILE",
    "_BINLOG_POS",
    "_ROW",
    "_GTID",
    "_COMMIT_TS",
];

/// How a name lands in the change table, compared as the pipe matches names.
fn folded(name: &str) -> String {
    snowflake_name(name).to_lowercase()
}

/// Refuses `table` when two of its columns, or a column and a metadata column, are one
/// change-table column.
///
/// # Errors
/// Naming both columns, the change-table column and the fix.
pub(crate) fn check(table: &SourceTable) -> Result<()> {
    for (i, c) in table.columns.iter().enumerate() {
        let f = folded(&c.name);
        if let Some(m) = METADATA.iter().find(|m| folded(m) == f) {
            bail!(
                "table {}: source column {} would be the change table's metadata column {m} \
                 (names are upper-cased there); rename the source column (ALTER TABLE {} \
                 RENAME COLUMN {} TO …) before following it",
                table.name,
                c.name,
                table.name,
                c.name
            );
        }
        if let Some(other) = table.columns[..i].iter().find(|o| folded(&o.name) == f) {
            bail!(
                "table {}: source columns {} and {} would both be the change table's column {} \
                 (names are upper-cased there); rename one of them (ALTER TABLE {} RENAME \
                 COLUMN {} TO …) before following it",
                table.name,
                other.name,
                c.name,
                snowflake_name(&c.name),
                table.name,
                c.name
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table_replay::schema::{Kind, SourceColumn};

    fn table(names: &[&str]) -> SourceTable {
        SourceTable {
            name: "t".into(),
            columns: names
                .iter()
                .map(|n| SourceColumn {
                    name: (*n).into(),
                    column_type: "int".into(),
                    kind: Kind::Float,
                    nullable: true,
                    charset: None,
                })
                .collect(),
            key: 0,
            keys: vec![0],
        }
    }

    #[test]
    fn collisions_name_both_columns() {
        let e = check(&table(&["id", "xss", "xß"])).unwrap_err().to_string();
        assert!(e.contains("xss and xß") && e.contains("XSS"), "{e}");
        let e = check(&table(&["id", "_Op"])).unwrap_err().to_string();
        assert!(e.contains("_Op") && e.contains("_OP"), "{e}");
        check(&table(&["id", "op", "x_s", "Binlog_file"])).unwrap();
    }
}
