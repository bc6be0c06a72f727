//! `verify --changes` and the dead letters of `follow`: a key with a change in `<TABLE>_DLQ`
//! (the type mapping refused one of its changes, `cdc/dead_letters.rs`) is reported as
//! dead-lettered, not compared: its state in the change table is the one before the refused
//! change, so a difference there is expected, and named by the dead letter.

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use snowpipe_streaming::sql::SqlClient;

use crate::table_replay::dead_letter;
use crate::table_replay::schema;

/// The dead-lettered keys of one source table.
#[derive(Debug, Default)]
pub(super) struct DeadKeys {
    /// The dead-letter table, qualified.
    pub table: String,
    source_table: String,
    pub keys: BTreeSet<u64>,
}

impl DeadKeys {
    /// `key_col NOT IN (the dead-lettered keys)`, as SQL both Snowflake and the emulator run.
    pub(super) fn not_in(&self, key_col: &str) -> String {
        format!(
            "{key_col} NOT IN (SELECT SOURCE_KEY FROM {} WHERE SOURCE_TABLE = '{}')",
            self.table,
            self.source_table.replace('\'', "''")
        )
    }
}

/// The keys of `source_table` in the dead-letter table beside the change table
/// `database.schema.changes` (`<BASE>_DLQ` beside `<BASE>_CHANGES`); `None` when `changes`
/// is no change table's name or there is no dead-letter table.
///
/// # Errors
/// When the dead-letter table exists but cannot be read.
pub(super) async fn load(
    sql: &SqlClient,
    (database, schema_name, changes): (&str, &str, &str),
    source_table: &str,
) -> Result<Option<DeadKeys>> {
    let Some(base) = changes.strip_suffix("_CHANGES") else {
        return Ok(None);
    };
    let table = format!(
        "{}.{}.{}",
        schema::ident(database),
        schema::ident(schema_name),
        schema::ident(&dead_letter::table_name(base))
    );
    let mut dead = DeadKeys {
        table,
        source_table: source_table.to_owned(),
        keys: BTreeSet::new(),
    };
    let result = match sql
        .query(&format!(
            "SELECT DISTINCT SOURCE_KEY FROM {} WHERE SOURCE_TABLE = '{}'",
            dead.table,
            source_table.replace('\'', "''")
        ))
        .await
    {
        Ok(r) => r,
        Err(e) if format!("{e:#}").to_lowercase().contains("does not exist") => return Ok(None),
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot read the dead letters in {}", dead.table))
        }
    };
    for row in result.rows {
        if let Some(k) = row
            .first()
            .and_then(|c| c.as_deref())
            .and_then(|s| s.split('.').next().and_then(|k| k.parse().ok()))
        {
            dead.keys.insert(k);
        }
    }
    Ok(Some(dead))
}
