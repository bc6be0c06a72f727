//! JSON numbers kept as written for NUMBER columns.
//!
//! `serde_json` (without its `arbitrary_precision` feature, which would change every crate of
//! the workspace) reads a number that is not a 64-bit integer as a double, so
//! `12345678901234567890.1234567891` would reach a `NUMBER(38,10)` column rounded to 17
//! significant digits. The service stores the decimal as sent (docs/protocol-types-and-sql.md "Type
//! conversion (emulator)"). So a line whose top-level fields hold such numbers for NUMBER
//! columns is read a second time, as raw JSON texts, and those fields are handed to the
//! NUMBER conversion as the text written (a JSON string, which NUMBER reads exactly). Other
//! columns and nested values keep the parsed value; pipes with a transform are unchanged.

use std::collections::HashMap;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::catalog::{ColumnType, MatchByColumnName, PipeDefinition, Table};

/// Replaces in `row` (parsed from `line`) each top-level number that went through a double
/// and fills a NUMBER column (matched as `pipe` matches names; `None`: the default pipe) with
/// its text in `line`.
pub(super) fn keep_exact_numbers(
    table: &Table,
    pipe: Option<&PipeDefinition>,
    row: &mut Map<String, Value>,
    line: &[u8],
) {
    let ignore_case = match pipe {
        None => true,
        Some(p) if p.transform.is_some() => return,
        Some(p) => p.match_by_column_name != MatchByColumnName::CaseSensitive,
    };
    let rounded: Vec<String> = row
        .iter()
        .filter(|(key, value)| {
            matches!(value, Value::Number(n) if n.is_f64())
                && table
                    .column_for_key(key, ignore_case)
                    .is_some_and(|c| matches!(c.ty, ColumnType::Number { .. }))
        })
        .map(|(key, _)| key.clone())
        .collect();
    if rounded.is_empty() {
        return;
    }
    // The same line parsed once already: this cannot fail but on memory.
    let Ok(raw) = serde_json::from_slice::<HashMap<String, &RawValue>>(line) else {
        return;
    };
    for key in rounded {
        if let Some(text) = raw.get(&key) {
            row.insert(key, Value::String(text.get().to_owned()));
        }
    }
}
