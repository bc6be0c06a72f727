//! The Kinesis reconciliation: every record of the stream, by shard, against the rows and dead
//! letters in the tables; and the lineage check (no child row ingested before a parent's last).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::{Context, Result};
use snowpipe_streaming::sql::SqlClient;

use crate::common::{format_table, thousands};
use crate::sensor_stream::kinesis::sequence::SequenceNumber;

/// The two tables of `sql/setup.sql`.
const READINGS: &str = "KINESIS_READINGS";
const DEAD_LETTERS: &str = "KINESIS_DEAD_LETTERS";

/// What landed in an emulator, checked against the stream.
#[derive(Debug)]
pub struct Reconciled {
    /// Every shard's check.
    pub checks: BTreeMap<String, ShardCheck>,
    /// Children with a row ingested before a parent's last: `(child, parent)`.
    pub violations: Vec<(String, String)>,
    /// The dead letters, as (shard, sequence number).
    pub dead: Vec<(String, String)>,
}

impl Reconciled {
    /// Every record once, and every child after its parents.
    pub fn exact(&self) -> bool {
        self.checks.values().all(ShardCheck::exact) && self.violations.is_empty()
    }
}

/// Reads `KINESIS_READINGS` and `KINESIS_DEAD_LETTERS` through the SQL API (`sql`, in the
/// tables' database and schema) and checks them against `stream` (every record's sequence
/// number, by shard) and `parents` (each shard's).
///
/// # Errors
/// When a query fails, or an `INGESTED_AT` is not a timestamp.
///
/// # Cancellation
/// Safe to drop: it only reads.
pub async fn against_tables(
    sql: &SqlClient,
    stream: &BTreeMap<String, Vec<SequenceNumber>>,
    parents: &BTreeMap<String, Vec<String>>,
) -> Result<Reconciled> {
    let pairs = |rows: Vec<Vec<Option<String>>>| -> Vec<(String, String)> {
        rows.into_iter()
            .map(|mut r| (text(&mut r, 0), text(&mut r, 1)))
            .collect()
    };
    let rows = pairs(query(sql, READINGS, "SHARD_ID, SEQUENCE_NUMBER", "").await?);
    let dead = pairs(query(sql, DEAD_LETTERS, "SHARD_ID, SEQUENCE_NUMBER", "").await?);
    let mut ingested = BTreeMap::new();
    for mut r in query(
        sql,
        READINGS,
        "SHARD_ID, MIN(INGESTED_AT), MAX(INGESTED_AT)",
        "GROUP BY SHARD_ID",
    )
    .await?
    {
        let span = time_ms(r[1].as_deref()).zip(time_ms(r[2].as_deref()));
        let span = span.with_context(|| format!("shard {:?}: INGESTED_AT {r:?}", r[0]))?;
        ingested.insert(text(&mut r, 0), span);
    }
    Ok(Reconciled {
        checks: check(stream, &rows, &dead),
        violations: lineage_violations(parents, &ingested),
        dead,
    })
}

/// `SELECT columns FROM table rest` through the SQL API: every row, values as text.
async fn query(
    sql: &SqlClient,
    table: &str,
    columns: &str,
    rest: &str,
) -> Result<Vec<Vec<Option<String>>>> {
    Ok(sql
        .query(&format!("SELECT {columns} FROM {table} {rest}"))
        .await
        .with_context(|| format!("cannot read {table} through the SQL API"))?
        .rows)
}

/// Takes column `i` of a row as text (empty when NULL).
fn text(row: &mut [Option<String>], i: usize) -> String {
    row.get_mut(i).and_then(Option::take).unwrap_or_default()
}

/// A timestamp as the SQL API sends it (epoch seconds with a fraction, as text) in ms; RFC 3339
/// and `YYYY-MM-DD HH:MM:SS.fff` are read too.
pub fn time_ms(s: Option<&str>) -> Option<i64> {
    let s = s?.trim();
    if let Some(nanos) = crate::common::sql_api_epoch_nanos(s) {
        // To the nearest millisecond.
        return i64::try_from((nanos + 500_000).div_euclid(1_000_000)).ok();
    }
    let t = chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(s.trim_end_matches('Z'), "%Y-%m-%d %H:%M:%S%.f")
                .map(|t| t.and_utc().timestamp_millis())
        });
    t.ok()
}

/// One shard's records against the tables.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShardCheck {
    /// Records in the stream.
    pub records: usize,
    /// Rows in `KINESIS_READINGS`.
    pub rows: usize,
    /// Rows in `KINESIS_DEAD_LETTERS`.
    pub dead_letters: usize,
    /// Records in neither table.
    pub lost: Vec<String>,
    /// Sequence numbers in the tables more than once (readings and dead letters together).
    pub duplicated: Vec<String>,
    /// Sequence numbers in the tables that the stream does not have.
    pub extra: Vec<String>,
}

impl ShardCheck {
    /// Compares one shard's records with what landed.
    pub fn of(stream: &[SequenceNumber], rows: &[String], dead: &[String]) -> Self {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for s in rows.iter().chain(dead) {
            *seen.entry(s.as_str()).or_default() += 1;
        }
        let in_stream: BTreeSet<&str> = stream.iter().map(SequenceNumber::as_str).collect();
        let mut duplicated: Vec<String> = seen
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(s, _)| (*s).to_owned())
            .collect();
        duplicated.sort();
        let mut extra: Vec<String> = seen
            .keys()
            .filter(|s| !in_stream.contains(*s))
            .map(|s| (*s).to_owned())
            .collect();
        extra.sort();
        ShardCheck {
            records: stream.len(),
            rows: rows.len(),
            dead_letters: dead.len(),
            lost: stream
                .iter()
                .filter(|s| !seen.contains_key(s.as_str()))
                .map(ToString::to_string)
                .collect(),
            duplicated,
            extra,
        }
    }

    /// Every record once, nothing else.
    pub fn exact(&self) -> bool {
        self.lost.is_empty() && self.duplicated.is_empty() && self.extra.is_empty()
    }
}

/// Every shard: the stream's sequence numbers, and the landed rows as (shard, sequence).
pub fn check(
    stream: &BTreeMap<String, Vec<SequenceNumber>>,
    rows: &[(String, String)],
    dead: &[(String, String)],
) -> BTreeMap<String, ShardCheck> {
    let by_shard = |v: &[(String, String)]| {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (shard, seq) in v {
            m.entry(shard.clone()).or_default().push(seq.clone());
        }
        m
    };
    let (rows, dead) = (by_shard(rows), by_shard(dead));
    let shards: BTreeSet<&String> = stream
        .keys()
        .chain(rows.keys())
        .chain(dead.keys())
        .collect();
    shards
        .into_iter()
        .map(|s| {
            let none = Vec::new();
            (
                s.clone(),
                ShardCheck::of(
                    stream.get(s).map_or(&[][..], Vec::as_slice),
                    rows.get(s).unwrap_or(&none),
                    dead.get(s).unwrap_or(&none),
                ),
            )
        })
        .collect()
}

/// Children whose first row was ingested before a parent's last: `(child, parent)` pairs.
/// `ingested` holds each shard's (first, last) ingestion time in ms; `parents` each child's.
pub fn lineage_violations(
    parents: &BTreeMap<String, Vec<String>>,
    ingested: &BTreeMap<String, (i64, i64)>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (child, ps) in parents {
        let Some((child_first, _)) = ingested.get(child) else {
            continue;
        };
        for p in ps {
            if let Some((_, parent_last)) = ingested.get(p) {
                if child_first < parent_last {
                    out.push((child.clone(), p.clone()));
                }
            }
        }
    }
    out
}

/// The closing table.
pub fn format(checks: &BTreeMap<String, ShardCheck>) -> String {
    let rows: Vec<Vec<String>> = checks
        .iter()
        .map(|(shard, c)| {
            vec![
                shard.clone(),
                thousands(c.records as u64),
                thousands(c.rows as u64),
                thousands(c.dead_letters as u64),
                thousands(c.lost.len() as u64),
                thousands(c.duplicated.len() as u64),
                thousands(c.extra.len() as u64),
                if c.exact() {
                    "exactly once"
                } else {
                    "NOT EXACT"
                }
                .into(),
            ]
        })
        .collect();
    format_table(
        &[
            "shard",
            "records",
            "rows",
            "dead letters",
            "lost",
            "duplicated",
            "extra",
            "",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs(v: &[&str]) -> Vec<SequenceNumber> {
        v.iter()
            .map(|s| SequenceNumber::parse(s).unwrap())
            .collect()
    }

    #[test]
    fn timestamps_read_as_the_sql_api_and_the_emulator_write_them() {
        assert_eq!(
            time_ms(Some("1732540000.123000000")),
            Some(1_732_540_000_123)
        );
        assert_eq!(time_ms(Some("1732540000.1239")), Some(1_732_540_000_124));
        assert_eq!(
            time_ms(Some("2024-11-25T13:06:40.123Z")),
            Some(1_732_540_000_123)
        );
        assert_eq!(
            time_ms(Some("2024-11-25 13:06:40.123")),
            Some(1_732_540_000_123)
        );
        assert_eq!(time_ms(Some("yesterday")), None);
        assert_eq!(time_ms(None), None);
    }

    #[test]
    fn counts_lost_duplicated_and_extra_records() {
        let stream: BTreeMap<String, Vec<SequenceNumber>> =
            [("s0".to_string(), seqs(&["1", "2", "3", "4"]))].into();
        let row = |s: &str| ("s0".to_string(), s.to_string());
        let checks = check(
            &stream,
            &[row("1"), row("2"), row("2"), row("9")],
            &[row("3")],
        );
        let c = &checks["s0"];
        assert_eq!((c.records, c.rows, c.dead_letters), (4, 4, 1));
        assert_eq!(c.lost, ["4"]);
        assert_eq!(c.duplicated, ["2"]);
        assert_eq!(c.extra, ["9"]);
        assert!(!c.exact());
        let exact = check(&stream, &[row("1"), row("2"), row("4")], &[row("3")]);
        assert!(exact["s0"].exact());
        // A record both a row and a dead letter is duplicated.
        let both = check(
            &stream,
            &[row("1"), row("2"), row("3"), row("4")],
            &[row("3")],
        );
        assert_eq!(both["s0"].duplicated, ["3"]);
    }

    #[test]
    fn a_child_row_before_its_parents_last_is_reported() {
        let parents: BTreeMap<String, Vec<String>> =
            [("c".to_string(), vec!["p".to_string(), "q".to_string()])].into();
        let ok: BTreeMap<String, (i64, i64)> = [
            ("p".into(), (0, 10)),
            ("q".into(), (5, 12)),
            ("c".into(), (12, 20)),
        ]
        .into();
        assert!(lineage_violations(&parents, &ok).is_empty());
        let bad: BTreeMap<String, (i64, i64)> = [
            ("p".into(), (0, 10)),
            ("q".into(), (5, 15)),
            ("c".into(), (12, 20)),
        ]
        .into();
        assert_eq!(
            lineage_violations(&parents, &bad),
            [("c".to_string(), "q".to_string())]
        );
    }
}
