//! The SQLite statements a catalog table becomes: its `CREATE TABLE` and its `INSERT`.

use crate::catalog::Table;

/// `CREATE TABLE IF NOT EXISTS "DB.SCHEMA.TABLE" ("COL" <TYPE>, ...)` for SQLite, with the
/// columns under their storage names ([`Table::storage_names`]) and the declared column types from [`ColumnType::sql_name`](crate::catalog::ColumnType::sql_name) (so the SQLite file shows Snowflake
/// types). NOT NULL is enforced by the conversion, not declared.
pub fn sqlite_create_table(table: &Table) -> String {
    let columns: Vec<String> = table
        .columns
        .iter()
        .zip(table.storage_names())
        .map(|(c, stored)| format!("{} {}", quote_ident(&stored), c.ty.sql_name()))
        .collect();
    format!(
        "CREATE TABLE IF NOT EXISTS {} ({})",
        quote_ident(&table.qualified_name()),
        columns.join(", ")
    )
}

/// `INSERT INTO "DB.SCHEMA.TABLE" ("A", "B") VALUES (?1, ?2)`: binds the values of
/// [`convert_row`](super::convert_row) in order.
pub fn sqlite_insert(table: &Table) -> String {
    let columns: Vec<String> = table
        .storage_names()
        .iter()
        .map(|c| quote_ident(c))
        .collect();
    let params: Vec<String> = (1..=table.columns.len()).map(|i| format!("?{i}")).collect();
    format!(
        "INSERT INTO {} ({}) VALUES ({})",
        quote_ident(&table.qualified_name()),
        columns.join(", "),
        params.join(", ")
    )
}

/// A SQLite identifier in double quotes, inner quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
