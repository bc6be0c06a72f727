//! `CREATE TABLE` column definitions → catalog columns: types, `NOT NULL`, `DEFAULT`,
//! `AUTOINCREMENT`/`IDENTITY`.

use sqlparser::ast::{ColumnDef, ColumnOption};

use super::super::{Column, ColumnDefault, ColumnType, Ident, StatementError};
use crate::convert::evolution::MAX_COLUMN_NAME_CHARS;

/// The most columns a table may have: SQLite's (`SQLITE_MAX_COLUMN`), where it is stored.
const MAX_COLUMNS: usize = 2_000;

/// # Errors
/// A duplicate name, a name over 255 characters, more than 2,000 columns, or a type or option
/// the emulator does not model.
pub(super) fn columns(defs: &[ColumnDef]) -> Result<Vec<Column>, StatementError> {
    if defs.len() > MAX_COLUMNS {
        // Checked before anything else: the duplicate check and SQLite's own refusal come later.
        return Err(StatementError::Syntax(format!(
            "{} columns: the emulator stores at most {MAX_COLUMNS} per table (SQLite's limit)",
            defs.len()
        )));
    }
    let mut out: Vec<Column> = Vec::with_capacity(defs.len());
    let mut seen = std::collections::HashSet::with_capacity(defs.len());
    for def in defs {
        let name = Ident {
            value: def.name.value.clone(),
            quoted: def.name.quote_style.is_some(),
        }
        .normalized();
        let chars = name.chars().count();
        if chars > MAX_COLUMN_NAME_CHARS {
            return Err(StatementError::Syntax(format!(
                "a column name of {chars} characters: identifiers are at most {MAX_COLUMN_NAME_CHARS}"
            )));
        }
        if !seen.insert(name.clone()) {
            return Err(StatementError::Syntax(format!("duplicate column {name}")));
        }
        let ty = ColumnType::from_data_type(&def.data_type).map_err(|message| {
            StatementError::ColumnType {
                column: name.clone(),
                message,
            }
        })?;
        let nullable = !def.options.iter().any(|o| {
            matches!(
                o.option,
                ColumnOption::NotNull | ColumnOption::PrimaryKey(_)
            )
        });
        let mut default = None;
        for o in &def.options {
            let parsed = match &o.option {
                ColumnOption::Default(expr) => ColumnDefault::from_default_expr(expr),
                ColumnOption::Identity(kind) => {
                    if !matches!(ty, ColumnType::Number { scale: 0, .. }) {
                        return Err(StatementError::ColumnType {
                            column: name.clone(),
                            message: format!("{kind} needs an integer column, not {ty}"),
                        });
                    }
                    ColumnDefault::from_identity(kind)
                }
                _ => continue,
            };
            let parsed = parsed.map_err(|message| StatementError::ColumnType {
                column: name.clone(),
                message,
            })?;
            if default.replace(parsed).is_some() {
                return Err(StatementError::Syntax(format!(
                    "column {name} has more than one DEFAULT/AUTOINCREMENT/IDENTITY"
                )));
            }
        }
        out.push(Column {
            name,
            ty,
            nullable,
            default,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::catalog::Catalog;

    /// Issue 56: `CREATE TABLE` of 100,000 columns is refused at once naming the limit
    /// (each name was compared with every name before it: 5·10^9 comparisons before SQLite
    /// refused the table), and a column name of 1 MB is refused naming Snowflake's limit.
    #[test]
    fn wide_tables_and_long_names_are_refused_at_once() {
        let started = std::time::Instant::now();
        let columns: Vec<String> = (0..100_000).map(|i| format!("C{i} INT")).collect();
        let e = Catalog::new()
            .apply_sql(&format!(
                "CREATE DATABASE D; CREATE SCHEMA D.S; CREATE TABLE D.S.T ({})",
                columns.join(", ")
            ))
            .unwrap_err();
        assert!(e.to_string().contains("at most 2000"), "{e}");
        let e = Catalog::new()
            .apply_sql(&format!(
                "CREATE DATABASE D; CREATE SCHEMA D.S; CREATE TABLE D.S.T (\"{}\" INT)",
                "x".repeat(1 << 20)
            ))
            .unwrap_err();
        assert!(e.to_string().contains("at most 255"), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
        let ok: Vec<String> = (0..2_000).map(|i| format!("C{i} INT")).collect();
        Catalog::new()
            .apply_sql(&format!(
                "CREATE DATABASE D; CREATE SCHEMA D.S; CREATE TABLE D.S.T ({})",
                ok.join(", ")
            ))
            .unwrap();
    }
}
