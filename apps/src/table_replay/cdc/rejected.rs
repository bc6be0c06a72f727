//! Changes the server rejected (row errors, Snowflake's `ON_ERROR = CONTINUE`: a value the
//! change table's column no longer holds, say): the channel's committed token moves past
//! them, so they are not in `<TABLE>_CHANGES` (or `<TABLE>_DLQ`) and reading the binlog again
//! would not bring them back.
//!
//! Each change channel, and each dead-letter channel once opened, is watched from its opening:
//! a task takes every report on `Channel::events` into the table's `RowErrorSummary` and
//! logs it at once (the table, how many, the server's first message, the binlog positions
//! "at or before", and the fix: a new snapshot of that table). `follow` goes on (the
//! token has moved past them; stopping would not bring them back) and, when it ends, exits
//! non-zero with the summary: exit 0 means every change is in the table.
//!
//! A watch that falls behind (more than the SDK's 64 queued reports) still counts the rows
//! of the reports it missed: the SDK's `RowErrorSummary` takes them from the server's
//! cumulative count (the next report's, or the channel's status read before it is closed;
//! their positions are then unknown). Its baseline is the channel's status when the watch
//! starts, so rows rejected before (an earlier run's) are not counted again.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use snowpipe_streaming::{
    Channel, ChannelStatus, OffsetToken, RowErrorEvent, RowErrorSummary, RowErrors,
};

use crate::common::say::say_warn;
use crate::table_replay::cdc::changes;
use crate::table_replay::cdc::token::Token;

/// How long `finish` waits for a closed channel's last reports.
const LAST_REPORTS: Duration = Duration::from_secs(10);

/// Which of a table's channels a watch is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Changes,
    DeadLetters,
}

/// The row-error watch on one channel.
pub(super) struct Rejected {
    summary: Arc<Mutex<RowErrorSummary>>,
    task: tokio::task::JoinHandle<()>,
}

impl Rejected {
    /// Watches `channel` (of source table `table`) from now on: the rows rejected after its
    /// status now (read before subscribing, the order `RowErrorSummary::since` asks for).
    pub(super) fn watch(table: &str, kind: Kind, channel: &Channel) -> Self {
        let summary = Arc::new(Mutex::new(RowErrorSummary::since(&channel.status())));
        let task = tokio::spawn(watch(
            (table.to_owned(), kind),
            channel.row_errors(),
            summary.clone(),
        ));
        Self { summary, task }
    }

    /// Watches `channel`, the same channel's new handle (a reopen that fenced the one
    /// watched so far), into the same summary: what it counted stays, and the new handle's
    /// status now is the baseline (`RowErrorSummary::set_baseline`).
    pub(super) fn rewatch(&mut self, table: &str, kind: Kind, channel: &Channel) {
        self.task.abort();
        self.summary
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .set_baseline(&channel.status());
        self.task = tokio::spawn(watch(
            (table.to_owned(), kind),
            channel.row_errors(),
            self.summary.clone(),
        ));
    }

    /// Adds the rows another channel's finished watch counted (a snapshot lane's).
    pub(super) fn absorb(&self, other: &RowErrorSummary) {
        self.summary
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .absorb(other);
    }

    /// The rows rejected so far.
    pub(super) fn so_far(&self) -> RowErrorSummary {
        self.summary
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Every rejected row, once the channel is closed (its last reports are published
    /// before it stops); what came within `LAST_REPORTS` otherwise. `status` is the
    /// channel's, read before it was closed: the rows of reports missed after the last one
    /// received are taken from its cumulative `rows_error_count` (positions unknown).
    pub(super) async fn finish(self, status: &ChannelStatus) -> RowErrorSummary {
        let mut task = self.task;
        if tokio::time::timeout(LAST_REPORTS, &mut task).await.is_err() {
            task.abort();
        }
        let mut summary = self
            .summary
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        summary.catch_up(status);
        summary
    }
}

/// Takes `errors` into `summary`, logging each new report, until the channel stops.
async fn watch(
    (table, kind): (String, Kind),
    mut errors: RowErrors,
    summary: Arc<Mutex<RowErrorSummary>>,
) {
    while let Some(e) = errors.recv().await {
        let mut s = summary.lock().unwrap_or_else(PoisonError::into_inner);
        let count = s.count();
        s.record(&e);
        let new = s.count() - count;
        if new > 0 {
            say_warn!("{}", warning(&table, kind, new, &e));
        }
    }
}

/// The line logged at a new report.
fn warning(table: &str, kind: Kind, new: u64, e: &RowErrorEvent) -> String {
    let (what, dest) = match kind {
        Kind::Changes => ("changes", changes::table_name(&schema_name(table))),
        Kind::DeadLetters => (
            "dead letters",
            crate::table_replay::dead_letter::table_name(table),
        ),
    };
    let what = counted(new, what);
    format!(
        "warning: {table}: the server rejected {new} {what} ({}) at or before {}: they are not \
         in {dest}, and follow goes on (the committed position has moved past them; stopping \
         would not bring them back) and will exit non-zero. The source rows at those positions \
         must be re-sent: {}",
        e.last_error_message.as_deref().unwrap_or("no message"),
        e.offset_upper_bound
            .as_ref()
            .map_or_else(|| "an unknown position".into(), place),
        changes::new_snapshot_fix([table])
    )
}

/// `changes` for any count but one, `change` for one.
fn counted(n: u64, plural: &str) -> &str {
    match n {
        1 => plural.strip_suffix('s').unwrap_or(plural),
        _ => plural,
    }
}

fn schema_name(table: &str) -> String {
    crate::table_replay::schema::snowflake_name(table)
}

/// A change token as a place: `binlog FILE:POS row N`, `snapshot key K`.
pub(super) fn place(token: &OffsetToken) -> String {
    match Token::parse(token.as_str()) {
        Ok(Token::Binlog { change, .. }) => format!("binlog {} row {}", change.event, change.row),
        Ok(Token::Snapshot { key, .. }) => format!("snapshot key {key}"),
        Err(_) => format!("token {token}"),
    }
}

/// `3 changes rejected (first: …; at or before binlog F:P row 0 … binlog F:Q row 2)`.
pub(super) fn describe(s: &RowErrorSummary, what: &str) -> String {
    let range = match (s.first_at_or_before(), s.last_at_or_before()) {
        (Some(a), Some(b)) if a != b => format!("at or before {} … {}", place(a), place(b)),
        (Some(a), _) => format!("at or before {}", place(a)),
        (None, _) => "at unknown positions".into(),
    };
    format!(
        "{} {} rejected by the server ({range}; first: {})",
        s.count(),
        counted(s.count(), what),
        s.first_message().unwrap_or("no message")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_names_the_table_the_count_the_position_and_the_fix() {
        let token = OffsetToken::new("b:mysql-bin.000002:1200:1350:3").unwrap();
        let e = RowErrorEvent::new("table_replay_changes_orders", 2, 2)
            .with_last_error("NULL result in a non-nullable column", token.clone());
        let line = warning("orders", Kind::Changes, 2, &e);
        for part in [
            "orders: the server rejected 2 changes (NULL result in a non-nullable column)",
            "at or before binlog mysql-bin.000002:1350 row 3",
            "not in ORDERS_CHANGES",
            "follow goes on",
            "exit non-zero",
            "take a new snapshot, keeping the change table's history",
        ] {
            assert!(line.contains(part), "{part:?} missing from {line}");
        }
        let mut s = RowErrorSummary::default();
        s.record(&e);
        assert_eq!(
            describe(&s, "changes"),
            "2 changes rejected by the server (at or before binlog mysql-bin.000002:1350 row 3; \
             first: NULL result in a non-nullable column)"
        );
        assert_eq!(place(&OffsetToken::new("x").unwrap()), "token x");
    }

    #[test]
    fn the_report_carries_the_counts_and_says_why_follow_exits_non_zero() {
        use crate::table_replay::cdc::{FollowReport, TableReport};
        let table = |name: &str, rejected: u64| {
            let mut row_errors = RowErrorSummary::default();
            row_errors.record(
                &RowErrorEvent::new(name, rejected, rejected).with_last_error(
                    "String 'x' is too long",
                    OffsetToken::new("b:bin.000001:4:9:0").unwrap(),
                ),
            );
            TableReport {
                table: name.into(),
                changes: 3,
                committed: None,
                dead_lettered: 0,
                row_errors,
                dead_letter_row_errors: RowErrorSummary::default(),
                diverted: None,
            }
        };
        let mut report = FollowReport {
            tables: vec![table("a", 0), table("b", 2)],
            elapsed: Duration::ZERO,
        };
        let json: serde_json::Value = serde_json::from_str(&report.json_line()).unwrap();
        assert_eq!(json["followed"]["a"]["row_errors"]["count"], 0);
        assert_eq!(json["followed"]["b"]["row_errors"]["count"], 2);
        assert_eq!(json["followed"]["b"]["dead_letter_row_errors"]["count"], 0);
        assert_eq!(
            report.rejected().as_deref(),
            Some(
                "b: 2 changes rejected by the server (at or before binlog bin.000001:9 row 0; \
                 first: String 'x' is too long)"
            )
        );
        assert_eq!(json["followed"]["a"]["diverted"], serde_json::Value::Null);
        assert_eq!(report.diverted(), None);
        report.tables[0].diverted = Some("MODIFY COLUMN on followed table a at f:4".into());
        let json: serde_json::Value = serde_json::from_str(&report.json_line()).unwrap();
        assert_eq!(
            json["followed"]["a"]["diverted"],
            "MODIFY COLUMN on followed table a at f:4"
        );
        assert_eq!(
            report.diverted().as_deref(),
            Some(
                "a: diverted, its changes are dead letters in A_DLQ (MODIFY COLUMN on followed \
                 table a at f:4)"
            )
        );
        report.tables.remove(1);
        assert_eq!(report.rejected(), None);
    }
}
