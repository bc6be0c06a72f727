//! `verify --changes` and the dead letters of `follow`: a key with a change in `<TABLE>_DLQ`
//! (the type mapping refused one of its changes, `cdc/dead_letters.rs`) is reported as
//! dead-lettered, not compared: its state in the change table is the one before the refused
//! change, so a difference there is expected, and named by the dead letter.
//!
//! A single integer key is read from `SOURCE_KEY` ([`load`]); any other from
//! `SOURCE_KEY_TEXT` (the key columns as JSON, `dead_letter.rs` `key_text`, [`keyed`]), or,
//! for a dead letter written before that column (NULL there) or whose key text was cut, from
//! the key columns in its `RAW_VALUES`.

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use serde_json::Value as Json;
use snowpipe_streaming::sql::SqlClient;

use crate::table_replay::dead_letter;
use crate::table_replay::schema::{self, SourceTable};
use crate::table_replay::verify_report::{from_source, Class};

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

/// The keys of `table`'s dead letters in `dlq` (qualified), canonical (one value per key
/// column, as `verify_keyed.rs` holds keys), from their `SOURCE_KEY_TEXT`, else their
/// `RAW_VALUES` (see the module docs).
///
/// # Errors
/// When the dead-letter table cannot be read.
pub(super) async fn keyed(
    sql: &SqlClient,
    dlq: &str,
    table: &SourceTable,
    classes: &[Class],
) -> Result<BTreeSet<Vec<Option<String>>>> {
    // `*`: a table an earlier version created may not have SOURCE_KEY_TEXT yet.
    let result = sql
        .query(&format!(
            "SELECT * FROM {dlq} WHERE SOURCE_TABLE = '{}'",
            table.name.replace('\'', "''")
        ))
        .await
        .with_context(|| format!("cannot read the dead letters in {dlq}"))?;
    let text = result.column_index("SOURCE_KEY_TEXT");
    let raw = result.column_index("RAW_VALUES");
    let json = |row: &[Option<String>], i: Option<usize>| {
        i.and_then(|i| row.get(i)?.as_deref())
            .and_then(|s| serde_json::from_str::<Json>(s).ok())
    };
    let mut keys = BTreeSet::new();
    for row in &result.rows {
        let from_text = json(row, text).and_then(|parts| match parts {
            Json::Array(parts) if parts.len() == table.keys.len() => Some(parts),
            _ => None,
        });
        let parts = match from_text {
            Some(parts) if !parts.iter().any(|p| p.get("cut").is_some()) => parts,
            _ => {
                let Some(raw) = json(row, raw) else { continue };
                table
                    .keys
                    .iter()
                    .map(|&k| {
                        raw.get(&table.columns[k].name)
                            .cloned()
                            .unwrap_or(Json::Null)
                    })
                    .collect()
            }
        };
        keys.insert(
            table
                .keys
                .iter()
                .zip(&parts)
                .map(|(&k, v)| canonical(classes[k], v))
                .collect(),
        );
    }
    Ok(keys)
}

/// A key part as a dead letter writes it (text, a number, `{"hex": …}`), canonical.
fn canonical(class: Class, v: &Json) -> Option<String> {
    match (class, v) {
        (Class::Binary, Json::String(s)) => Some(schema::hex(s.as_bytes())),
        (Class::Binary, Json::Object(m)) => m
            .get("hex")
            .and_then(Json::as_str)
            .map(str::to_ascii_lowercase),
        (class, v) => from_source(class, v),
    }
}
