//! `CREATE TABLE` column definitions → catalog columns: types, `NOT NULL`, `DEFAULT`,
//! `AUTOINCREMENT`/`IDENTITY`.

use sqlparser::ast::{ColumnDef, ColumnOption};

use super::super::{check_name_length, Column, ColumnDefault, ColumnType, Ident, StatementError};

/// The most columns a table may have: SQLite's (`SQLITE_MAX_COLUMN`), where it is stored.
pub(super) const MAX_COLUMNS: usize = 2_000;

/// # Errors
/// A duplicate name, a name over 255 characters or with a NUL, more than 2,000 columns, or a
/// type or option the emulator does not model. Names that differ only in case (`"a"` beside
/// `A`) are two columns, as in Snowflake (stored apart: [`crate::catalog::storage_names`]).
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
        #[cfg(test)]
        tests::DEFS.with(|d| d.set(d.get() + 1));
        let name = Ident {
            value: def.name.value.clone(),
            quoted: def.name.quote_style.is_some(),
        }
        .normalized();
        check_name_length("a column name", &name).map_err(StatementError::Syntax)?;
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

    thread_local! {
        /// Column definitions converted on this thread (the work is counted, not timed).
        pub(super) static DEFS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// Column definitions [`super::columns`] converted on this thread since the last call.
    fn defs_converted() -> usize {
        DEFS.with(|d| d.replace(0))
    }

    /// Issue 56: `CREATE TABLE` of 100,000 columns is refused at once naming the limit
    /// (each name was compared with every name before it: 5·10^9 comparisons before SQLite
    /// refused the table), and a column name of 1 MB is refused naming Snowflake's limit.
    #[test]
    fn wide_tables_and_long_names_are_refused_at_once() {
        defs_converted();
        let columns: Vec<String> = (0..100_000).map(|i| format!("C{i} INT")).collect();
        let e = Catalog::new()
            .apply_sql(&format!(
                "CREATE DATABASE D; CREATE SCHEMA D.S; CREATE TABLE D.S.T ({})",
                columns.join(", ")
            ))
            .unwrap_err();
        assert!(e.to_string().contains("at most 2000"), "{e}");
        // Refused before any definition is looked at (the work is counted, not timed).
        assert_eq!(defs_converted(), 0);
        let e = Catalog::new()
            .apply_sql(&format!(
                "CREATE DATABASE D; CREATE SCHEMA D.S; CREATE TABLE D.S.T (\"{}\" INT)",
                "x".repeat(1 << 20)
            ))
            .unwrap_err();
        assert!(e.to_string().contains("at most 255"), "{e}");
        let ok: Vec<String> = (0..2_000).map(|i| format!("C{i} INT")).collect();
        Catalog::new()
            .apply_sql(&format!(
                "CREATE DATABASE D; CREATE SCHEMA D.S; CREATE TABLE D.S.T ({})",
                ok.join(", ")
            ))
            .unwrap();
    }

    /// `ALTER TABLE … ADD` of 100,000 columns: each name was compared with every column
    /// before it (5·10^9 comparisons); now a set, and refused past 2,000 columns.
    #[test]
    fn a_table_altered_past_2000_columns_is_refused_at_once() {
        let adds: Vec<String> = (0..100_000)
            .map(|i| format!("ADD COLUMN C{i} INT"))
            .collect();
        let e = Catalog::new()
            .apply_sql(&format!(
                "CREATE DATABASE D; CREATE TABLE D.PUBLIC.T (A INT); ALTER TABLE D.PUBLIC.T {}",
                adds.join(", ")
            ))
            .unwrap_err();
        assert!(e.to_string().contains("more than 2000 columns"), "{e}");
        // Refused at the 2,000th (the work is counted, not timed): not after all 100,000.
        let converted = defs_converted();
        assert!(converted <= 2_001, "{converted} definitions converted");
        let mut catalog = Catalog::new();
        catalog
            .apply_sql(&format!(
                "CREATE DATABASE D; CREATE TABLE D.PUBLIC.T (A INT); ALTER TABLE D.PUBLIC.T {}; \
                 ALTER TABLE D.PUBLIC.T ADD COLUMN IF NOT EXISTS C5 INT",
                adds[..1_999].join(", ")
            ))
            .unwrap();
        assert_eq!(
            catalog.table("D", "PUBLIC", "T").unwrap().columns.len(),
            2_000
        );
        let e = catalog
            .apply_sql("ALTER TABLE D.PUBLIC.T ADD COLUMN C7 INT")
            .unwrap_err();
        assert!(e.to_string().contains("already exists"), "{e}");
    }

    /// Databases, schemas, tables and pipes: 255 characters as for columns (a 1 MB name was
    /// kept, in the catalog, the DDL log and every message that names the object).
    #[test]
    fn object_names_past_255_characters_are_refused() {
        let long = "é".repeat(256);
        for ddl in [
            format!("CREATE DATABASE \"{long}\""),
            format!("CREATE DATABASE D; CREATE SCHEMA D.\"{long}\""),
            format!("CREATE DATABASE D; CREATE TABLE D.PUBLIC.\"{long}\" (A INT)"),
            format!(
                "CREATE DATABASE D; CREATE TABLE D.PUBLIC.T (A INT); CREATE PIPE \
                 D.PUBLIC.\"{long}\" AS COPY INTO D.PUBLIC.T FROM \
                 TABLE(DATA_SOURCE(TYPE => 'STREAMING'))"
            ),
        ] {
            let Err(e) = Catalog::new().apply_sql(&ddl) else {
                panic!("accepted: {}", ddl.chars().take(60).collect::<String>());
            };
            assert!(e.to_string().contains("at most 255"), "{ddl:.60}: {e}");
        }
        let ok = "é".repeat(255);
        Catalog::new()
            .apply_sql(&format!(
                "CREATE DATABASE \"{ok}\"; CREATE TABLE \"{ok}\".PUBLIC.\"{ok}\" (A INT)"
            ))
            .unwrap();
    }
}
