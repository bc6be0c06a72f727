//! `ALTER TABLE` on the catalog: `ADD [COLUMN] [IF NOT EXISTS]`, `ALTER [COLUMN] c DROP|SET
//! NOT NULL` and `ALTER [COLUMN] c [SET DATA] TYPE <type>`, the last with Snowflake's rules
//! ("ALTER TABLE … ALTER COLUMN", Data Types): a type may only be widened in place.
//!
//! | from → to | Snowflake | here |
//! |---|---|---|
//! | the same type, or a synonym (`STRING` → `VARCHAR`) | allowed | nothing changes |
//! | `VARCHAR(n)` → `VARCHAR(m)`, m ≥ n (`VARCHAR` is 16,777,216) | allowed | the column takes `VARCHAR(m)` |
//! | `VARCHAR(n)` → `VARCHAR(m)`, m < n | refused, `040050` | refused: `… because reducing the byte-length of a varchar is not supported.` |
//! | `BINARY(n)` → `BINARY(m)`, m ≥ n (`BINARY` is 8,388,608) | allowed | the column takes `BINARY(m)` |
//! | `BINARY(n)` → `BINARY(m)`, m < n | refused | refused: `… because reducing the byte-length of a binary is not supported.` |
//! | `NUMBER(p,s)` → `NUMBER(q,s)`, q ≥ p | allowed | the column takes `NUMBER(q,s)` |
//! | `NUMBER(p,s)` → `NUMBER(q,t)`, t ≠ s | refused | refused: `… because changing the scale of a number is not supported.` |
//! | `NUMBER(p,s)` → `NUMBER(q,s)`, q < p | allowed when every stored value fits | refused (the catalog does not read the stored values), naming this |
//! | any other change (`NUMBER` → `VARCHAR`, `TIMESTAMP_NTZ(9)` → `TIMESTAMP_NTZ(3)`) | refused, `002108` | refused: `cannot change column C from type X to Y` |
//!
//! The refusals are [`StatementError::TypeChange`] with Snowflake's code; the SQL API answers
//! them as Snowflake does (`sql_api/ddl.rs`).

use sqlparser::ast::{AlterColumnOperation, AlterTable, AlterTableOperation};

use super::column_defs::{columns, MAX_COLUMNS};
use super::*;

/// Snowflake's longest `VARCHAR`, in characters: a `VARCHAR` without a length.
const VARCHAR_MAX: u64 = 16_777_216;
/// Snowflake's longest `BINARY`, in bytes: a `BINARY` without a length.
const BINARY_MAX: u64 = 8_388_608;

impl Catalog {
    /// `ALTER TABLE t ADD [COLUMN] [IF NOT EXISTS] <column>` (what schema evolution stores,
    /// docs/protocol-types-and-sql.md "Table features"), `ALTER TABLE t ALTER [COLUMN] c DROP|SET NOT
    /// NULL` and `ALTER TABLE t ALTER [COLUMN] c SET DATA TYPE <type>` (a widening, see the
    /// module docs); `Ok(false)` when no operation of the statement is modelled (other
    /// `ALTER`s, Iceberg, dynamic and external tables).
    pub(super) fn alter_table(
        &mut self,
        session: &Session,
        alter: AlterTable,
    ) -> Result<bool, StatementError> {
        let is_modelled = |op: &AlterTableOperation| {
            matches!(
                op,
                AlterTableOperation::AddColumn { .. }
                    | AlterTableOperation::AlterColumn {
                        op: AlterColumnOperation::DropNotNull
                            | AlterColumnOperation::SetNotNull
                            | AlterColumnOperation::SetDataType { .. },
                        ..
                    }
            )
        };
        if alter.table_type.is_some() || !alter.operations.iter().any(is_modelled) {
            return Ok(false);
        }
        let name = qualify(session, &idents(&alter.name)?)?;
        let Some(table) = self.schema_mut(&name)?.tables.get_mut(&name.name) else {
            if alter.if_exists {
                return Ok(true);
            }
            return Err(StatementError::DoesNotExist {
                kind: "table",
                name: name.display(),
            });
        };
        // Names looked up in a set, not column by column: a statement may add many.
        let mut names: std::collections::HashSet<String> =
            table.columns.iter().map(|c| c.name.clone()).collect();
        for operation in alter.operations {
            match operation {
                AlterTableOperation::AddColumn {
                    if_not_exists,
                    column_def,
                    ..
                } => {
                    let column = columns(std::slice::from_ref(&column_def))?
                        .pop()
                        .expect("one column definition gives one column");
                    if names.contains(&column.name) {
                        if if_not_exists {
                            continue;
                        }
                        return Err(StatementError::Syntax(format!(
                            "column {} already exists in {}; use ADD COLUMN IF NOT EXISTS to keep it",
                            column.name,
                            name.display()
                        )));
                    }
                    if table.columns.len() >= MAX_COLUMNS {
                        return Err(StatementError::Syntax(format!(
                            "{} would have more than {MAX_COLUMNS} columns, the most the \
                             emulator stores per table (SQLite's limit)",
                            name.display()
                        )));
                    }
                    names.insert(column.name.clone());
                    table.columns.push(column);
                }
                AlterTableOperation::AlterColumn { column_name, op } => {
                    let column_name = Ident {
                        value: column_name.value,
                        quoted: column_name.quote_style.is_some(),
                    }
                    .normalized();
                    let column = table
                        .columns
                        .iter_mut()
                        .find(|c| c.name == column_name)
                        .ok_or_else(|| StatementError::DoesNotExist {
                            kind: "column",
                            name: format!("{}.{column_name}", name.display()),
                        })?;
                    match op {
                        AlterColumnOperation::DropNotNull => column.nullable = true,
                        AlterColumnOperation::SetNotNull => column.nullable = false,
                        AlterColumnOperation::SetDataType {
                            data_type, using, ..
                        } => {
                            if using.is_some() {
                                return Err(StatementError::Unsupported(
                                    "SET DATA TYPE … USING (Snowflake has no USING clause)".into(),
                                ));
                            }
                            let to = ColumnType::from_data_type(&data_type).map_err(|message| {
                                StatementError::ColumnType {
                                    column: column.name.clone(),
                                    message,
                                }
                            })?;
                            column.ty = widened(&column.name, &column.ty, to)?;
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        Ok(true)
    }
}

/// The type column `name` of type `from` takes at `SET DATA TYPE to`: `to` when Snowflake
/// allows the change (the module docs).
///
/// # Errors
/// [`StatementError::TypeChange`] with Snowflake's message and code for a change Snowflake
/// refuses, or one the emulator cannot check (a number's precision decreased).
pub(super) fn widened(
    name: &str,
    from: &ColumnType,
    to: ColumnType,
) -> Result<ColumnType, StatementError> {
    let refuse = |code: &'static str, because: &str| {
        Err(StatementError::TypeChange {
            code,
            message: format!(
                "cannot change column {name} from type {} to {}{because}",
                from.sql_name(),
                to.sql_name()
            ),
        })
    };
    let len = |n: Option<u32>, max: u64| n.map_or(max, u64::from);
    match (from, &to) {
        _ if *from == to => Ok(to),
        (ColumnType::Varchar { max_len: a }, ColumnType::Varchar { max_len: b }) => {
            if len(*b, VARCHAR_MAX) >= len(*a, VARCHAR_MAX) {
                Ok(to)
            } else {
                refuse(
                    "040050",
                    " because reducing the byte-length of a varchar is not supported.",
                )
            }
        }
        (ColumnType::Binary { max_len: a }, ColumnType::Binary { max_len: b }) => {
            if len(*b, BINARY_MAX) >= len(*a, BINARY_MAX) {
                Ok(to)
            } else {
                refuse(
                    "040050",
                    " because reducing the byte-length of a binary is not supported.",
                )
            }
        }
        (
            ColumnType::Number {
                precision: p,
                scale: s,
            },
            ColumnType::Number {
                precision: q,
                scale: t,
            },
        ) => {
            if s != t {
                refuse(
                    "002108",
                    " because changing the scale of a number is not supported.",
                )
            } else if q >= p {
                Ok(to)
            } else {
                refuse(
                    "002108",
                    ": the emulator does not decrease a number's precision (Snowflake does \
                     only when every stored value fits the new one, which the emulator's \
                     catalog does not read); keep the precision, or widen it",
                )
            }
        }
        _ => refuse("002108", ""),
    }
}

#[cfg(test)]
mod tests {
    use crate::catalog::{Catalog, CatalogError, StatementError};

    fn catalog() -> Catalog {
        let mut c = Catalog::new();
        c.apply_sql(
            "CREATE DATABASE D; CREATE SCHEMA D.S; \
             CREATE TABLE D.S.T (ID NUMBER(10,0) IDENTITY, V VARCHAR(20), \
             M NUMBER(10,2), B BINARY(8), TS TIMESTAMP_NTZ(9), F FLOAT)",
        )
        .unwrap();
        c
    }

    fn types(c: &Catalog) -> Vec<String> {
        let t = c.table_exact("D", "S", "T").unwrap();
        t.columns.iter().map(|c| c.ty.sql_name()).collect()
    }

    fn refusal(sql: &str) -> (&'static str, String) {
        let mut c = catalog();
        match c.apply_sql(sql).unwrap_err() {
            CatalogError::Statement {
                kind: StatementError::TypeChange { code, message },
                ..
            } => (code, message),
            other => panic!("{sql}: not a type change refusal: {other}"),
        }
    }

    /// Widening in place: a VARCHAR's length, a BINARY's, a NUMBER's precision at the same
    /// scale; the same type (a synonym) changes nothing; both spellings of the clause.
    #[test]
    fn a_type_is_widened_in_place() {
        let mut c = catalog();
        c.apply_sql(
            "ALTER TABLE D.S.T ALTER COLUMN V SET DATA TYPE VARCHAR(200); \
             ALTER TABLE D.S.T ALTER M SET DATA TYPE DECIMAL(14,2); \
             ALTER TABLE D.S.T ALTER COLUMN B TYPE BINARY(16); \
             ALTER TABLE D.S.T ALTER COLUMN ID SET DATA TYPE NUMBER(38,0); \
             ALTER TABLE D.S.T ALTER COLUMN F SET DATA TYPE DOUBLE",
        )
        .unwrap();
        assert_eq!(
            types(&c),
            [
                "NUMBER(38,0)",
                "VARCHAR(200)",
                "NUMBER(14,2)",
                "BINARY(16)",
                "TIMESTAMP_NTZ",
                "FLOAT"
            ]
        );
        // A VARCHAR without a length is Snowflake's longest: a widening too.
        c.apply_sql("ALTER TABLE D.S.T ALTER COLUMN V SET DATA TYPE STRING")
            .unwrap();
        assert_eq!(types(&c)[1], "VARCHAR");
    }

    /// Snowflake's refusals, with its codes and words: a shorter VARCHAR or BINARY, another
    /// scale, another type; a lower precision is refused naming why.
    #[test]
    fn narrowing_a_scale_change_and_a_type_change_are_refused() {
        let (code, m) = refusal("ALTER TABLE D.S.T ALTER COLUMN V SET DATA TYPE VARCHAR(10)");
        assert_eq!(code, "040050");
        assert_eq!(
            m,
            "cannot change column V from type VARCHAR(20) to VARCHAR(10) because reducing the \
             byte-length of a varchar is not supported."
        );
        let (_, m) = refusal("ALTER TABLE D.S.T ALTER COLUMN B SET DATA TYPE BINARY(4)");
        assert!(
            m.ends_with("reducing the byte-length of a binary is not supported."),
            "{m}"
        );
        let (_, m) = refusal("ALTER TABLE D.S.T ALTER COLUMN M SET DATA TYPE NUMBER(12,4)");
        assert_eq!(
            m,
            "cannot change column M from type NUMBER(10,2) to NUMBER(12,4) because changing \
             the scale of a number is not supported."
        );
        let (_, m) = refusal("ALTER TABLE D.S.T ALTER COLUMN M SET DATA TYPE NUMBER(8,2)");
        assert!(m.contains("does not decrease a number's precision"), "{m}");
        let (code, m) = refusal("ALTER TABLE D.S.T ALTER COLUMN M SET DATA TYPE VARCHAR(50)");
        assert_eq!(code, "002108");
        assert_eq!(
            m,
            "cannot change column M from type NUMBER(10,2) to VARCHAR(50)"
        );
        let (code, _) = refusal("ALTER TABLE D.S.T ALTER COLUMN TS SET DATA TYPE TIMESTAMP_NTZ(3)");
        assert_eq!(code, "002108");
        // A refused statement changes nothing.
        let mut c = catalog();
        let before = types(&c);
        c.apply_sql("ALTER TABLE D.S.T ALTER COLUMN V SET DATA TYPE VARCHAR(1)")
            .unwrap_err();
        assert_eq!(types(&c), before);
    }

    #[test]
    fn a_missing_column_is_named() {
        let e = catalog()
            .apply_sql("ALTER TABLE D.S.T ALTER COLUMN NOPE SET DATA TYPE VARCHAR(5)")
            .unwrap_err();
        assert!(e.to_string().contains("D.S.T.NOPE does not exist"), "{e}");
    }
}
