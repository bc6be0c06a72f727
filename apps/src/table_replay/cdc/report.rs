//! What a follow did, per table: the last stdout line and why `follow` exits non-zero.

use std::time::Duration;

use serde_json::Map;
use snowpipe_streaming::RowErrorSummary;

use super::rejected;

/// What a follow did to one table.
#[derive(Debug)]
pub struct TableReport {
    pub table: String,
    /// Changes written by this run.
    pub changes: u64,
    /// The change channel's committed token.
    pub committed: Option<String>,
    /// Dead letters written by this run.
    pub dead_lettered: u64,
    /// Changes the server rejected: not in the change table.
    pub row_errors: RowErrorSummary,
    /// Dead letters the server rejected: not in the dead-letter table.
    pub dead_letter_row_errors: RowErrorSummary,
    /// Why the table's changes are dead letters (`retype.rs`), when it is diverted.
    pub diverted: Option<String>,
}

/// What a follow did, per table.
#[derive(Debug)]
pub struct FollowReport {
    pub tables: Vec<TableReport>,
    pub elapsed: Duration,
}

impl FollowReport {
    /// The last stdout line: `{"followed": {"T": {"changes": n, "committed": "<token>",
    /// "dead_lettered": n, "row_errors": {"count": n, …}, "dead_letter_row_errors": {…},
    /// "diverted": null | "<why>"}}}` (a row-error summary as `RowErrorSummary` serializes).
    pub fn json_line(&self) -> String {
        let mut m = Map::new();
        for t in &self.tables {
            m.insert(
                t.table.clone(),
                serde_json::json!({
                    "changes": t.changes,
                    "committed": t.committed,
                    "dead_lettered": t.dead_lettered,
                    "row_errors": t.row_errors,
                    "dead_letter_row_errors": t.dead_letter_row_errors,
                    "diverted": t.diverted,
                }),
            );
        }
        serde_json::json!({ "followed": m }).to_string()
    }

    /// Every table's rejected changes and dead letters, `None` when the server took every
    /// row: why `follow` exits non-zero (with [`FollowReport::diverted`]).
    pub fn rejected(&self) -> Option<String> {
        let lines: Vec<String> = self
            .tables
            .iter()
            .flat_map(|t| {
                [
                    (&t.row_errors, "changes"),
                    (&t.dead_letter_row_errors, "dead letters"),
                ]
                .into_iter()
                .filter(|(s, _)| s.count() > 0)
                .map(|(s, what)| format!("{}: {}", t.table, rejected::describe(s, what)))
            })
            .collect();
        (!lines.is_empty()).then(|| lines.join("; "))
    }

    /// Every diverted table (`retype.rs`) with why, `None` when none is: also why `follow`
    /// exits non-zero.
    pub fn diverted(&self) -> Option<String> {
        let lines: Vec<String> = self
            .tables
            .iter()
            .filter_map(|t| {
                let why = t.diverted.as_ref()?;
                Some(format!(
                    "{}: diverted, its changes are dead letters in {} ({why})",
                    t.table,
                    crate::table_replay::dead_letter::table_name(&t.table)
                ))
            })
            .collect();
        (!lines.is_empty()).then(|| lines.join("; "))
    }
}
