//! What `DROP TABLE`/`DROP PIPE` (and `CREATE OR REPLACE` of an existing object) remove
//! from the store, in the transaction that stores the statement: a table's SQLite table,
//! its error table and its identity sequences; a pipe's channels (their committed tokens:
//! a channel opened again under the same name starts with none) and the record that its
//! default pipe was created.

use rusqlite::Connection;

/// Removes the stored rows of each table (`(qualified name, error table name)`) and the
/// channels of each pipe (`(database, schema, pipe)`).
///
/// # Errors
/// SQLite's error; the caller's transaction is then rolled back and nothing is removed.
pub(crate) fn remove(
    conn: &Connection,
    tables: &[(String, String)],
    pipes: &[(String, String, String)],
) -> rusqlite::Result<()> {
    for (table, error_table) in tables {
        for name in [table, error_table] {
            conn.execute_batch(&format!(
                "DROP TABLE IF EXISTS {}",
                crate::convert::quote_ident(name)
            ))?;
        }
        conn.execute(
            "DELETE FROM _emulator_sequences WHERE tbl = ?1",
            rusqlite::params![table],
        )?;
    }
    for (database, schema, pipe) in pipes {
        for sql in [
            "DELETE FROM _emulator_channels WHERE database = ?1 AND schema = ?2 AND pipe = ?3",
            "DELETE FROM _emulator_default_pipes WHERE database = ?1 AND schema = ?2 AND pipe = ?3",
        ] {
            conn.execute(sql, rusqlite::params![database, schema, pipe])?;
        }
    }
    Ok(())
}
