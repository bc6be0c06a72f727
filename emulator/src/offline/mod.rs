//! The emulator's data and row conversion without a running server, for applications and
//! their tests:
//!
//! * read what an emulator stored in its data directory: [`open_read_only`], [`query`] (values
//!   printed as every output of the emulator prints them), [`DB_FILE`];
//! * check rows against the tables and pipes a DDL script declares, and store them in any
//!   SQLite connection exactly as the emulator would: [`OfflineTables`].
//!
//! A small, stable surface over the emulator's internal modules: use it rather than
//! `catalog`, `convert` or `storage`.

use rusqlite::Connection;
use serde_json::{Map, Value};

use crate::catalog::Catalog;
use crate::convert::{
    convert_row_for, sqlite_create_table, sqlite_insert, ConvertOptions, SqlValue,
};

pub use crate::storage::{open_read_only, query, QueryResult, DB_FILE};

pub(crate) mod status;

/// Why [`OfflineTables`] refused a script, a name or a row.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OfflineError {
    /// The DDL could not be applied, or a database, schema, table or pipe is unknown.
    #[error("DDL error: {0}")]
    Catalog(String),
    /// The pipe refuses the row (a value its column's type does not accept, a missing
    /// NOT NULL column, ...), with the emulator's message.
    #[error("row rejected: {0}")]
    Row(String),
    /// The pipe's `WHERE` drops the row: Snowflake neither stores it nor counts it as an
    /// error.
    #[error("row filtered out by the pipe's WHERE clause")]
    Filtered,
    /// SQLite refused a statement.
    #[error("storage error")]
    Storage(#[from] rusqlite::Error),
}

/// The tables and pipes of a DDL script, as the emulator declares them, with its row
/// conversion: whether a pipe accepts a row, and the values it stores, without a server.
///
/// ```
/// use snowpipe_emulator::offline::OfflineTables;
///
/// let tables = OfflineTables::from_ddl(
///     "CREATE DATABASE DB; CREATE SCHEMA DB.S; CREATE TABLE DB.S.T (ID NUMBER NOT NULL)",
/// )?;
/// let conn = rusqlite::Connection::open_in_memory()?;
/// tables.create_table(&conn, "DB", "S", "T")?;
/// let row = serde_json::json!({"ID": 7});
/// let nulls = tables.insert(&conn, "DB", "S", "T-STREAMING", row.as_object().unwrap())?;
/// assert!(nulls.is_empty());
/// assert!(tables.insert(&conn, "DB", "S", "T-STREAMING", &Default::default()).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct OfflineTables {
    catalog: Catalog,
}

impl OfflineTables {
    /// Applies `ddl` (the statements the emulator's `--ddl` accepts).
    ///
    /// # Errors
    /// [`OfflineError::Catalog`] when a statement is refused.
    pub fn from_ddl(ddl: &str) -> Result<Self, OfflineError> {
        let mut catalog = Catalog::new();
        catalog
            .apply_sql(ddl)
            .map_err(|e| OfflineError::Catalog(e.to_string()))?;
        Ok(Self { catalog })
    }

    /// The name of the table `pipe` loads into: a declared pipe, or the default pipe
    /// `<TABLE>-STREAMING` of a table. Names are looked up as the REST API does.
    ///
    /// # Errors
    /// [`OfflineError::Catalog`] for an unknown database, schema, pipe or table.
    pub fn pipe_table(
        &self,
        database: &str,
        schema: &str,
        pipe: &str,
    ) -> Result<String, OfflineError> {
        self.catalog
            .resolve_pipe(database, schema, pipe)
            .map(|resolved| resolved.table.name.clone())
            .map_err(|e| OfflineError::Catalog(e.to_string()))
    }

    /// Whether the script declares `table`.
    pub fn has_table(&self, database: &str, schema: &str, table: &str) -> bool {
        self.catalog.table(database, schema, table).is_some()
    }

    /// Creates `table` in `conn` with the column types the emulator stores.
    ///
    /// # Errors
    /// [`OfflineError::Catalog`] for an unknown table; [`OfflineError::Storage`] when SQLite
    /// refuses the statement (the table exists already).
    pub fn create_table(
        &self,
        conn: &Connection,
        database: &str,
        schema: &str,
        table: &str,
    ) -> Result<(), OfflineError> {
        let table = self.catalog.table(database, schema, table).ok_or_else(|| {
            OfflineError::Catalog(format!("unknown table {database}.{schema}.{table}"))
        })?;
        conn.execute_batch(&sqlite_create_table(table))?;
        Ok(())
    }

    /// Converts `row` as `pipe` would (its transform, or matching by column name) and inserts
    /// the values into the pipe's table in `conn` (made by [`OfflineTables::create_table`]).
    /// Returns the names of the columns stored as NULL.
    ///
    /// # Errors
    /// [`OfflineError::Catalog`] for an unknown pipe; [`OfflineError::Row`] when the pipe
    /// refuses the row; [`OfflineError::Filtered`] when its `WHERE` drops it; [`OfflineError::Storage`] when SQLite refuses the insert.
    pub fn insert(
        &self,
        conn: &Connection,
        database: &str,
        schema: &str,
        pipe: &str,
        row: &Map<String, Value>,
    ) -> Result<Vec<String>, OfflineError> {
        let resolved = self
            .catalog
            .resolve_pipe(database, schema, pipe)
            .map_err(|e| OfflineError::Catalog(e.to_string()))?;
        let table = resolved.table;
        let options = ConvertOptions::default();
        let definition = self.catalog.pipe_definition(database, schema, pipe);
        let values = convert_row_for(table, definition, row, &options)
            .map_err(|e| OfflineError::Row(e.to_string()))?
            .ok_or(OfflineError::Filtered)?;
        conn.execute(&sqlite_insert(table), rusqlite::params_from_iter(&values))?;
        Ok(table
            .columns
            .iter()
            .zip(&values)
            .filter(|(_, v)| **v == SqlValue::Null)
            .map(|(c, _)| c.name.clone())
            .collect())
    }
}
