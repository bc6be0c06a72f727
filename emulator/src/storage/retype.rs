//! A column widened in place (`ALTER COLUMN … SET DATA TYPE`, `catalog/apply/alter_table.rs`):
//! the SQLite table declares the new type too, since the SQL API's result types come from
//! the declared ones (`sql_api/encode.rs`). SQLite cannot change a column's declared type,
//! so the table is rebuilt (its rows, rowids kept, copied to a new table of the new
//! declaration, which takes the old one's name), in the caller's transaction; a widening
//! keeps each column's SQLite affinity, so no value changes.

use rusqlite::Connection;

use crate::convert::quote_ident;

/// Rebuilds the SQLite table `table` when a column's declared type is not the one `columns`
/// (storage name, declared type) give; a table without such a column is left alone.
///
/// # Errors
/// When SQLite fails (the caller's transaction is then rolled back).
pub(crate) fn retype_columns(
    conn: &Connection,
    table: &str,
    columns: &[(String, String)],
) -> rusqlite::Result<()> {
    let declared: Vec<(String, String)> = conn
        .prepare("SELECT name, type FROM pragma_table_info(?1)")?
        .query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let differs = declared.iter().any(|(name, ty)| {
        columns
            .iter()
            .any(|(n, t)| n.eq_ignore_ascii_case(name) && !t.eq_ignore_ascii_case(ty))
    });
    if !differs {
        return Ok(());
    }
    // The stored columns in their stored order, each with its new declared type.
    let defs: Vec<String> = declared
        .iter()
        .map(|(name, ty)| {
            let ty = columns
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map_or(ty.as_str(), |(_, t)| t.as_str());
            format!("{} {ty}", quote_ident(name))
        })
        .collect();
    let names: Vec<String> = declared.iter().map(|(n, _)| quote_ident(n)).collect();
    let names = names.join(", ");
    let quoted = quote_ident(table);
    let scratch = quote_ident(&format!("{table} (retyped)"));
    conn.execute_batch(&format!(
        "CREATE TABLE {scratch} ({defs});\n\
         INSERT INTO {scratch} (rowid, {names}) SELECT rowid, {names} FROM {quoted};\n\
         DROP TABLE {quoted};\n\
         ALTER TABLE {scratch} RENAME TO {quoted};",
        defs = defs.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_widened_column_is_declared_again_and_its_rows_kept() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE \"D.S.T\" (\"ID\" NUMBER(10,0), \"V\" VARCHAR(20), \"M\" NUMBER(10,2));\n\
             INSERT INTO \"D.S.T\" VALUES (1, 'a', 1.25), (2, NULL, 3);\n\
             DELETE FROM \"D.S.T\" WHERE \"ID\" = 1;\n\
             INSERT INTO \"D.S.T\" VALUES (3, 'c', 2.5);",
        )
        .unwrap();
        let before: Vec<(i64, Option<String>)> = rows(&c);
        let cols = |v: &str, m: &str| {
            vec![
                ("ID".to_owned(), "NUMBER(10,0)".to_owned()),
                ("V".to_owned(), v.to_owned()),
                ("M".to_owned(), m.to_owned()),
            ]
        };
        retype_columns(&c, "D.S.T", &cols("VARCHAR(200)", "NUMBER(14,2)")).unwrap();
        let types: Vec<String> = c
            .prepare("SELECT type FROM pragma_table_info('D.S.T')")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(types, ["NUMBER(10,0)", "VARCHAR(200)", "NUMBER(14,2)"]);
        // Same rows, same rowids (2 and 3), same values.
        assert_eq!(rows(&c), before);
        assert_eq!(before.iter().map(|r| r.0).collect::<Vec<_>>(), [2, 3]);
        // Nothing to do: the table is not rebuilt (its schema text stays).
        let schema = |c: &Connection| -> String {
            c.query_row(
                "SELECT sql FROM sqlite_schema WHERE name = 'D.S.T'",
                [],
                |r| r.get(0),
            )
            .unwrap()
        };
        let s = schema(&c);
        retype_columns(&c, "D.S.T", &cols("VARCHAR(200)", "NUMBER(14,2)")).unwrap();
        assert_eq!(schema(&c), s);
    }

    fn rows(c: &Connection) -> Vec<(i64, Option<String>)> {
        c.prepare("SELECT rowid, \"V\" FROM \"D.S.T\" ORDER BY rowid")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }
}
