//! The audit as lines for people ([`Audit::text`]).

use std::fmt::Write as _;

use super::Audit;

impl Audit {
    /// The audit as lines for people.
    pub(crate) fn text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "snowpipe-kafka audit ({})\n",
            if self.applied.is_some() {
                "--apply: the dedup statements ran, then this audit"
            } else {
                "read-only: nothing changed; --apply runs the dedup statements"
            }
        );
        for a in self.applied.iter().flatten() {
            let _ = writeln!(
                s,
                "applied    {}: {} rows kept",
                a.table,
                a.rows_kept
                    .map_or_else(|| "?".to_owned(), |n| n.to_string())
            );
        }
        for t in &self.tables {
            let _ = writeln!(s, "table {} (topics {})", t.table, t.topics.join(", "));
            if let Some(e) = &t.error {
                let _ = writeln!(s, "  CANNOT BE READ: {e}");
                continue;
            }
            for p in &t.partitions {
                let _ = writeln!(
                    s,
                    "  {}/{}: {} rows, {} distinct offsets ({}..{}), {} with push time",
                    p.topic,
                    p.partition,
                    p.rows,
                    p.distinct_offsets,
                    p.first_offset.map_or("-".into(), |o| o.to_string()),
                    p.last_offset.map_or("-".into(), |o| o.to_string()),
                    p.rows_with_push_time,
                );
                if p.rows_untrusted > 0 {
                    let _ = writeln!(
                        s,
                        "    UNTRUSTED: {} rows whose push time is 0 or less, or before their \
                         record's timestamp (never kept over a copy whose is not)",
                        p.rows_untrusted
                    );
                }
                let _ = writeln!(
                    s,
                    "    channel {}: token {}; group offset {}; log {}..{}",
                    p.channel.as_deref().unwrap_or("-"),
                    p.committed_token.as_deref().unwrap_or("none"),
                    p.group_offset.map_or("none".into(), |o| o.to_string()),
                    p.log_start.map_or("?".into(), |o| o.to_string()),
                    p.log_end.map_or("?".into(), |o| o.to_string()),
                );
                if p.duplicated_offsets > 0 {
                    let listed: Vec<String> = p
                        .duplicates
                        .iter()
                        .map(|d| format!("{}×{}", d.offset, d.copies))
                        .collect();
                    let _ = writeln!(
                        s,
                        "    DUPLICATES: {} offsets, {} extra rows: {}{}",
                        p.duplicated_offsets,
                        p.extra_copies,
                        listed.join(" "),
                        if p.duplicated_offsets > p.duplicates.len() as u64 {
                            " …"
                        } else {
                            ""
                        }
                    );
                }
                if p.missing > 0 {
                    let listed: Vec<String> = p.gaps.iter().map(ToString::to_string).collect();
                    let _ = writeln!(
                        s,
                        "    GAPS: {} offsets the broker holds: {}",
                        p.missing,
                        listed.join(" ")
                    );
                }
                if p.rejected > 0 {
                    let listed: Vec<String> =
                        p.rejected_offsets.iter().map(ToString::to_string).collect();
                    let _ = writeln!(
                        s,
                        "    REJECTED: {} offsets Snowflake refused (its error table): {}",
                        p.rejected,
                        listed.join(" ")
                    );
                }
                if p.absent_not_held > 0 || p.absent_not_checked > 0 {
                    let _ = writeln!(
                        s,
                        "    absent, not gaps: {} the broker no longer holds (retention, \
                         compaction, markers); {} not checked",
                        p.absent_not_held, p.absent_not_checked
                    );
                }
            }
            let _ = writeln!(
                s,
                "  dedup statement (keeps the earliest SnowflakeConnectorPushTime of each \
                 offset; never the last copy):\n    {};",
                t.dedup_statement
            );
        }
        let _ = writeln!(s, "\nchannel of each row: {}", self.channel_of_rows);
        for n in &self.notes {
            let _ = writeln!(s, "note: {n}");
        }
        if self.clean {
            let _ = writeln!(
                s,
                "\nclean: every offset landed once, no gap the broker holds"
            );
        } else {
            let _ = writeln!(s, "\nPROBLEMS:");
            for p in &self.problems {
                let _ = writeln!(s, "  - {p}");
            }
        }
        s
    }
}
