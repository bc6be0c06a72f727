//! SQLite's limits while an SQL API statement runs.
//!
//! - values (any string or blob a statement builds or reads) are at most [`VALUE_LIMIT`]
//!   (16 MiB: Snowflake's largest VARCHAR, so every stored value can still be read); a value
//!   costs at most that much memory, and a function that walks one value (`length`, `hex`,
//!   `json_*`, `upper`) at most one pass over 16 MiB;
//! - a `LIKE`/`GLOB` pattern is at most [`LIKE_PATTERN_LIMIT`] bytes: the matcher recurses once
//!   per wildcard, so this bounds its depth (its time is bounded by the statement's deadline,
//!   see `patterns.rs`).
//!
//! The limits are set for the statement and the reader's own limits restored afterwards
//! (the console and `Emulator::query` read on the same connections).

use rusqlite::limits::Limit;
use rusqlite::Connection;

/// The longest string or blob an SQL API statement may build or read, in bytes.
pub(crate) const VALUE_LIMIT: i32 = 16 << 20;

/// The longest `LIKE`/`GLOB` pattern an SQL API statement may use, in bytes.
pub(crate) const LIKE_PATTERN_LIMIT: i32 = 1000;

/// The limits set for a statement, with the values they had before.
const LIMITS: [(Limit, i32); 2] = [
    (Limit::SQLITE_LIMIT_LENGTH, VALUE_LIMIT),
    (Limit::SQLITE_LIMIT_LIKE_PATTERN_LENGTH, LIKE_PATTERN_LIMIT),
];

/// The connection's limits before [`lower`], to give back with [`restore`].
pub(super) struct Saved(Vec<(Limit, i32)>);

/// Lowers `conn`'s limits to the SQL API's (never raises one).
///
/// # Errors
/// When SQLite refuses a limit.
pub(super) fn lower(conn: &Connection) -> rusqlite::Result<Saved> {
    let mut saved = Vec::with_capacity(LIMITS.len());
    for (limit, value) in LIMITS {
        let before = conn.limit(limit)?;
        saved.push((limit, before));
        conn.set_limit(limit, value.min(before))?;
    }
    Ok(Saved(saved))
}

/// Gives `conn` back the limits [`lower`] saved.
pub(super) fn restore(conn: &Connection, saved: &Saved) {
    for &(limit, value) in &saved.0 {
        if let Err(e) = conn.set_limit(limit, value) {
            tracing::error!(error = %e, "cannot restore a reader's SQLite limit");
        }
    }
}
