//! The Kinesis reconciliation: every record of the stream, by shard, against the rows and dead
//! letters in the tables; and the lineage check (no child row ingested before a parent's last).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::{Context, Result};
use snowpipe_emulator::Emulator;

use crate::common::{format_table, thousands};
use crate::sensor_stream::kinesis::sequence::SequenceNumber;
use crate::sensor_stream::pipeline::{DATABASE, SCHEMA};

/// The two tables of `sql/setup.sql` as the emulator names them.
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

/// Reads `KINESIS_READINGS` and `KINESIS_DEAD_LETTERS` from `emulator` and checks them
/// against `stream` (every record's sequence number, by shard) and `parents` (each shard's).
///
/// # Errors
/// When the emulator cannot be queried, or an `INGESTED_AT` is not a timestamp.
pub fn against_emulator(
    emulator: &Emulator,
    stream: &BTreeMap<String, Vec<SequenceNumber>>,
    parents: &BTreeMap<String, Vec<String>>,
) -> Result<Reconciled> {
    let query = |table: &str, columns: &str, rest: &str| {
        emulator
            .query(&format!(
                "SELECT {columns} FROM \"{DATABASE}.{SCHEMA}.{table}\" {rest}"
            ))
            .with_context(|| format!("cannot read {table} from the emulator"))
    };
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    let pairs = |rows: Vec<Vec<serde_json::Value>>| -> Vec<(String, String)> {
        rows.iter().map(|r| (text(&r[0]), text(&r[1]))).collect()
    };
    let rows = pairs(query(READINGS, "SHARD_ID, SEQUENCE_NUMBER", "")?);
    let dead = pairs(query(DEAD_LETTERS, "SHARD_ID, SEQUENCE_NUMBER", "")?);
    let mut ingested = BTreeMap::new();
    for r in query(
        READINGS,
        "SHARD_ID, MIN(INGESTED_AT), MAX(INGESTED_AT)",
        "GROUP BY SHARD_ID",
    )? {
        let span = time_ms(&r[1]).zip(time_ms(&r[2]));
        let span = span.with_context(|| format!("shard {}: INGESTED_AT {r:?}", text(&r[0])))?;
        ingested.insert(text(&r[0]), span);
    }
    Ok(Reconciled {
        checks: check(stream, &rows, &dead),
        violations: lineage_violations(parents, &ingested),
        dead,
    })
}

/// An emulator timestamp value (RFC 3339, or `YYYY-MM-DD HH:MM:SS.fff`) in ms.
pub fn time_ms(v: &serde_json::Value) -> Option<i64> {
    let s = v.as_str()?;
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
