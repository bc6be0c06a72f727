//! How many columns producers may add to a table by client-side schema evolution (issue 81):
//! per message, per table per minute, and per table in all. Connector v4 has no such limit
//! (`SnowflakeSchemaEvolutionService.evolveSchemaIfNeeded` adds every key a row has no column
//! for), so one 35 KB message of 2,000 new keys ran 2,000 `ALTER TABLE … ADD COLUMN` up to the
//! service's column limit, after which every new key of every producer was a dead letter.
//!
//! A row past a cap is a dead letter naming the cap, its flag and the fix; nothing is altered
//! for it, and the rows after it go on. The defaults follow what Snowflake documents or what
//! the emulator enforces for its own (server-side) evolution (`docs/protocol.md`, "Schema
//! evolution"): at most 100 new columns at once (the `COPY INTO` default, [SEVL]), and at most
//! 1,000 columns per table reached by evolution (the emulator stores 2,000, SQLite's limit;
//! Snowflake documents none). 500 a minute lets a new table of wide rows take its columns
//! within its first messages, and stops a producer that invents keys from filling the table
//! in seconds.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The most new columns one message may add (`--max-new-columns-per-message`).
pub(crate) const PER_MESSAGE: usize = 100;
/// The most columns evolution may add to one table within a minute
/// (`--max-new-columns-per-minute`).
pub(crate) const PER_MINUTE: usize = 500;
/// The most columns a table may have for evolution to add one (`--max-evolved-table-columns`).
pub(crate) const PER_TABLE: usize = 1_000;

/// The window `PER_MINUTE` counts in.
const MINUTE: Duration = Duration::from_secs(60);

/// The caps, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvolutionCaps {
    /// At most this many new columns for one message.
    pub per_message: usize,
    /// At most this many columns added to one table within any 60 s.
    pub per_minute: usize,
    /// No column added past this many columns in the table.
    pub per_table: usize,
}

impl Default for EvolutionCaps {
    fn default() -> Self {
        Self {
            per_message: PER_MESSAGE,
            per_minute: PER_MINUTE,
            per_table: PER_TABLE,
        }
    }
}

/// The columns one table's evolution added lately (guarded by the table's evolution lock).
#[derive(Debug, Default)]
pub(crate) struct Added {
    /// When, and how many, oldest first; none older than a minute once [`Self::check`] ran.
    recent: VecDeque<(Instant, usize)>,
}

impl Added {
    /// Whether `new` more columns may be added to `table`, which has `columns` now, at `now`.
    ///
    /// # Errors
    /// The cap `new` would pass, with its flag and the fix (the dead letter's reason).
    pub(crate) fn check(
        &mut self,
        caps: EvolutionCaps,
        table: &str,
        columns: usize,
        new: usize,
        now: Instant,
    ) -> Result<(), String> {
        while let Some(&(at, _)) = self.recent.front() {
            if now.saturating_duration_since(at) < MINUTE {
                break;
            }
            self.recent.pop_front();
        }
        let fix = "add the columns yourself (ALTER TABLE … ADD COLUMN), or raise the limit";
        if new > caps.per_message {
            return Err(format!(
                "the message has {new} keys with no column in {table}, more than the \
                 {} one message may add (--max-new-columns-per-message): {fix}",
                caps.per_message
            ));
        }
        if columns.saturating_add(new) > caps.per_table {
            return Err(format!(
                "{table} has {columns} columns and the message {new} new ones, more than the \
                 {} schema evolution may take a table to (--max-evolved-table-columns): {fix}",
                caps.per_table
            ));
        }
        let lately: usize = self.recent.iter().map(|(_, n)| n).sum();
        if lately.saturating_add(new) > caps.per_minute {
            return Err(format!(
                "{lately} columns were added to {table} in the last minute and the message has \
                 {new} new ones, more than the {} a minute schema evolution may add \
                 (--max-new-columns-per-minute): {fix}, or send the message again later",
                caps.per_minute
            ));
        }
        Ok(())
    }

    /// Counts `n` columns added at `now`.
    pub(crate) fn record(&mut self, n: usize, now: Instant) {
        if n > 0 {
            self.recent.push_back((now, n));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cap_is_named_and_a_minute_frees_its_room() {
        let caps = EvolutionCaps {
            per_message: 3,
            per_minute: 4,
            per_table: 8,
        };
        let t0 = Instant::now();
        let mut added = Added::default();
        let per_message = added.check(caps, "T", 3, 4, t0).unwrap_err();
        assert!(per_message.contains("4 keys with no column in T, more than the 3"));
        assert!(per_message.contains("--max-new-columns-per-message"));
        added.check(caps, "T", 3, 3, t0).unwrap();
        added.record(3, t0);
        let per_minute = added.check(caps, "T", 6, 2, t0).unwrap_err();
        assert!(per_minute.contains("3 columns were added to T in the last minute"));
        assert!(per_minute.contains("--max-new-columns-per-minute"));
        added.check(caps, "T", 6, 1, t0).unwrap();
        added.record(1, t0);
        let per_table = added.check(caps, "T", 7, 2, t0).unwrap_err();
        assert!(per_table.contains("T has 7 columns and the message 2 new ones"));
        assert!(per_table.contains("--max-evolved-table-columns"));
        // The minute's room comes back a minute after the columns were added, not before.
        let later = t0 + MINUTE - Duration::from_millis(1);
        assert!(added.check(caps, "T", 7, 1, later).is_err());
        added.check(caps, "T", 7, 1, t0 + MINUTE).unwrap();
        assert!(added.recent.is_empty());
    }
}
