//! The closing report: reconciliation of what was generated against what landed, and the
//! quickstart's dashboard views computed from the landed rows.
//!
//! The tables are read through Snowflake's SQL API (`snowpipe_streaming::sql`), which the
//! embedded emulator answers too: the same statements run against the emulator and a real
//! account. The views are translations of the dynamic tables in `sql/dashboard.sql` into SQL
//! both Snowflake and SQLite (the emulator's storage) run (`CASE`, `SUBSTR`, `CAST … AS
//! VARCHAR`, `ROUND`, `NULLIF`). `report --data-dir` reads a stopped emulator's SQLite file
//! directly, with the same statements.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use serde_json::Value;
use snowpipe_streaming::sql::{Column, SqlClient};

use crate::common::{format_table, thousands};
use crate::ski_resort::catalog::RESORTS;
use crate::ski_resort::model::Table;
use crate::ski_resort::queue::{txid_hash, LedgerEntry};

/// Something that answers SQL with rows of JSON values: Snowflake's SQL API (a real account
/// or the emulator), or the emulator's SQLite file opened read-only.
#[async_trait::async_trait(?Send)]
pub(super) trait SqlSource {
    /// The name to query a landed table by.
    fn table_name(&self, table: Table) -> String {
        format!("STREAMING_INGEST.STREAMING_INGEST.{}", table.name())
    }

    /// Runs `sql` and returns every row.
    ///
    /// # Errors
    /// If the query fails.
    async fn query(&self, sql: &str) -> Result<Vec<Vec<Value>>>;
}

/// The SQL API: values arrive as text and are typed by their column (`fixed` → integer or
/// decimal, `real`, `date` → `YYYY-MM-DD`, `boolean`; the rest text).
#[async_trait::async_trait(?Send)]
impl SqlSource for SqlClient {
    async fn query(&self, sql: &str) -> Result<Vec<Vec<Value>>> {
        let result = SqlClient::query(self, sql)
            .await
            .with_context(|| format!("report query failed: {sql}"))?;
        Ok(result
            .rows
            .iter()
            .map(|row| {
                row.iter()
                    .zip(&result.columns)
                    .map(|(v, c)| typed(v.as_deref(), c))
                    .collect()
            })
            .collect())
    }
}

/// A SQL API value as JSON, by its column's type.
fn typed(v: Option<&str>, column: &Column) -> Value {
    let Some(v) = v else { return Value::Null };
    let number = |v: &str| {
        v.parse::<f64>()
            .map_or_else(|_| Value::from(v), Value::from)
    };
    match column.type_name.as_str() {
        "fixed" if column.scale.unwrap_or(0) == 0 => v
            .parse::<u64>()
            .map(Value::from)
            .or_else(|_| v.parse::<i64>().map(Value::from))
            .unwrap_or_else(|_| Value::from(v)),
        "fixed" | "real" => number(v),
        "boolean" => Value::from(v.eq_ignore_ascii_case("true")),
        "date" => v.parse::<i64>().map_or_else(
            |_| Value::from(v),
            |days| {
                Value::from(
                    (chrono::NaiveDate::default() + chrono::Duration::days(days)).to_string(),
                )
            },
        ),
        _ => Value::from(v),
    }
}

/// The emulator's SQLite file: its tables are named `"DB.SCHEMA.TABLE"`.
#[async_trait::async_trait(?Send)]
impl SqlSource for rusqlite::Connection {
    fn table_name(&self, table: Table) -> String {
        landed(table)
    }

    async fn query(&self, sql: &str) -> Result<Vec<Vec<Value>>> {
        let mut stmt = self
            .prepare(sql)
            .with_context(|| format!("bad report query: {sql}"))?;
        let n = stmt.column_count();
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let mut row = Vec::with_capacity(n);
            for i in 0..n {
                row.push(match r.get_ref(i)? {
                    rusqlite::types::ValueRef::Null => Value::Null,
                    rusqlite::types::ValueRef::Integer(v) => Value::from(v),
                    rusqlite::types::ValueRef::Real(v) => Value::from(v),
                    rusqlite::types::ValueRef::Text(t) => {
                        Value::from(String::from_utf8_lossy(t).into_owned())
                    }
                    rusqlite::types::ValueRef::Blob(b) => {
                        Value::from(format!("<{} bytes>", b.len()))
                    }
                });
            }
            out.push(row);
        }
        Ok(out)
    }
}

/// The SQLite name of a landed table in the emulator's file.
pub(super) fn landed(table: Table) -> String {
    format!("\"STREAMING_INGEST.STREAMING_INGEST.{}\"", table.name())
}

/// Reconciliation of one table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(super) struct Reconciliation {
    /// Table name.
    pub table: &'static str,
    /// Rows generated (ledger).
    pub generated: u64,
    /// Rows in the landed table.
    pub committed: u64,
    /// Generated rows whose TXID is not in the table.
    pub lost: u64,
    /// Landed rows beyond the first of each TXID.
    pub duplicated: u64,
    /// Whether the distinct landed TXIDs hash to the ledger's digest (same set of TXIDs),
    /// with the dead-lettered TXIDs added when the ledger counted them.
    pub digest_matches: bool,
    /// Records moved to the queue's dead_letters table.
    pub dead_lettered: u64,
    /// Of those, how many the ledger's `generated` counts (written by the generator, damaged
    /// later): 0 when they came from other writers.
    pub dead_generated: u64,
}

impl Reconciliation {
    /// True when the table holds exactly the generated rows, once each.
    pub(super) fn exact(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.digest_matches
            && self.committed + self.dead_generated == self.generated
    }
}

/// Compares the ledger with the landed tables.
///
/// # Errors
/// If a query fails.
pub(super) async fn reconcile(
    source: &dyn SqlSource,
    ledger: &[LedgerEntry; 3],
) -> Result<Vec<Reconciliation>> {
    let mut out = Vec::with_capacity(Table::ALL.len());
    for &t in &Table::ALL {
        out.push({
            let rows = source
                .query(&format!(
                    "SELECT TXID, COUNT(*) FROM {} GROUP BY TXID",
                    source.table_name(t)
                ))
                .await?;
            let (mut committed, mut distinct, mut digest) = (0u64, 0u64, 0u64);
            for row in &rows {
                let txid = row.first().and_then(Value::as_str).unwrap_or_default();
                committed += row.get(1).and_then(Value::as_u64).unwrap_or(0);
                distinct += 1;
                digest = digest.wrapping_add(txid_hash(txid));
            }
            let l = ledger[t.index()];
            // Dead letters from other writers are not in the ledger; ones the generator wrote
            // are, and then the landed TXIDs plus the dead-lettered ones make up the digest.
            let dead_generated = if digest != l.digest
                && l.dead_lettered > 0
                && digest.wrapping_add(l.dead_digest) == l.digest
            {
                l.dead_lettered
            } else {
                0
            };
            Reconciliation {
                table: t.name(),
                generated: l.generated,
                committed,
                lost: l.generated.saturating_sub(distinct + dead_generated),
                duplicated: committed - distinct,
                digest_matches: digest.wrapping_add(if dead_generated > 0 {
                    l.dead_digest
                } else {
                    0
                }) == l.digest,
                dead_lettered: l.dead_lettered,
                dead_generated,
            }
        });
    }
    Ok(out)
}

/// Formats a JSON cell: integers with separators, reals with two decimals.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::Number(n) if n.is_u64() => thousands(n.as_u64().unwrap_or(0)),
        Value::Number(n) if n.is_i64() => n.to_string(),
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or(0.0);
            let whole = thousands(f.trunc().abs() as u64);
            let sign = if f < 0.0 { "-" } else { "" };
            format!(
                "{sign}{whole}.{:02}",
                ((f.abs().fract() * 100.0).round() as u64).min(99)
            )
        }
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One dashboard view: its title, columns and query.
#[derive(Debug)]
pub(super) struct View {
    /// Heading printed above the table.
    pub title: &'static str,
    /// The matching dynamic table in `sql/dashboard.sql`.
    pub dynamic_table: &'static str,
    /// Column headers.
    pub headers: Vec<String>,
    /// The query (SQL that Snowflake and SQLite both run).
    pub sql: String,
    /// Print at most this many rows.
    pub max_rows: usize,
}

/// `YYYY-MM-DD` of a timestamp column, in both Snowflake and SQLite.
fn day_of(column: &str) -> String {
    format!("SUBSTR(CAST({column} AS VARCHAR), 1, 10)")
}

/// The dashboard views of the quickstart, over `source`'s table names.
pub(super) fn views(source: &dyn SqlSource) -> Vec<View> {
    let (rt, sp, lr) = (
        source.table_name(Table::ResortTicket),
        source.table_name(Table::SeasonPass),
        source.table_name(Table::LiftRide),
    );
    let mut by_hour_cols: Vec<String> = RESORTS
        .iter()
        .map(|r| {
            format!(
                "SUM(CASE WHEN RESORT = '{}' THEN 1 ELSE 0 END)",
                r.name.replace('\'', "''")
            )
        })
        .collect();
    by_hour_cols.push("COUNT(*)".into());
    let mut by_hour_headers = vec!["HOUR".to_string()];
    by_hour_headers.extend(
        RESORTS
            .iter()
            .map(|r| r.name.to_uppercase().replace(' ', "_")),
    );
    by_hour_headers.push("TOTAL".into());
    vec![
        View {
            title: "Ticket revenue by resort and day",
            dynamic_table: "DAILY_RESORT_REVENUE",
            headers: ["DAY", "RESORT", "TICKETS", "SKI_DAYS", "REVENUE_USD", "AVG_PRICE_USD"].map(String::from).to_vec(),
            sql: format!(
                "SELECT {} AS DAY, RESORT, COUNT(*), SUM(DAYS), \
                 ROUND(SUM(PRICE_USD), 2), ROUND(AVG(PRICE_USD), 2) \
                 FROM {rt} GROUP BY 1, 2 ORDER BY 1, 2",
                day_of("PURCHASE_TIME")
            ),
            max_rows: 25,
        },
        View {
            title: "Lift rides by resort and hour",
            dynamic_table: "HOURLY_LIFT_RIDES",
            headers: by_hour_headers,
            sql: format!(
                "SELECT SUBSTR(CAST(RIDE_TIME AS VARCHAR), 12, 2) || ':00' AS HOUR, {} \
                 FROM {lr} GROUP BY 1 ORDER BY 1",
                by_hour_cols.join(", ")
            ),
            max_rows: 24,
        },
        View {
            title: "Busiest lifts",
            dynamic_table: "LIFT_POPULARITY",
            headers: ["RESORT", "LIFT", "RIDES", "RIDERS", "RIDES_PER_RIDER"].map(String::from).to_vec(),
            sql: format!(
                "SELECT RESORT, LIFT, COUNT(*) AS RIDES, COUNT(DISTINCT RFID), \
                 ROUND(COUNT(*) * 1.0 / COUNT(DISTINCT RFID), 2) \
                 FROM {lr} GROUP BY 1, 2 ORDER BY RIDES DESC, 1, 2 LIMIT 10"
            ),
            max_rows: 10,
        },
        View {
            title: "Season pass vs ticket revenue by day",
            dynamic_table: "PASS_VS_TICKET_REVENUE",
            headers: ["DAY", "TICKETS", "TICKET_USD", "PASSES", "PASS_USD", "TOTAL_USD", "PASS_SHARE_%"]
                .map(String::from)
                .to_vec(),
            sql: format!(
                "WITH s AS (SELECT {day} AS DAY, 1 AS T, PRICE_USD AS P FROM {rt} \
                            UNION ALL SELECT {day}, 0, PRICE_USD FROM {sp}), \
                      d AS (SELECT DAY, SUM(T) AS TICKETS, SUM(T * P) AS TICKET_USD, \
                                   SUM(1 - T) AS PASSES, SUM((1 - T) * P) AS PASS_USD FROM s GROUP BY DAY) \
                 SELECT DAY, TICKETS, ROUND(TICKET_USD, 2), PASSES, ROUND(PASS_USD, 2), \
                        ROUND(TICKET_USD + PASS_USD, 2), \
                        ROUND(100.0 * PASS_USD / NULLIF(TICKET_USD + PASS_USD, 0), 1) \
                 FROM d \
                 UNION ALL \
                 SELECT 'TOTAL', SUM(TICKETS), ROUND(SUM(TICKET_USD), 2), SUM(PASSES), ROUND(SUM(PASS_USD), 2), \
                        ROUND(SUM(TICKET_USD + PASS_USD), 2), \
                        ROUND(100.0 * SUM(PASS_USD) / NULLIF(SUM(TICKET_USD + PASS_USD), 0), 1) FROM d",
                day = day_of("PURCHASE_TIME")
            ),
            max_rows: 25,
        },
        View {
            title: "Ski days and rides by product",
            dynamic_table: "RIDES_BY_PRODUCT",
            headers: ["PRODUCT", "RIDERS", "SKI_DAYS", "RIDES", "RIDES_PER_DAY"].map(String::from).to_vec(),
            sql: format!(
                "SELECT CASE WHEN r.RFID IN (SELECT RFID FROM {sp}) THEN 'Season pass' ELSE 'Day ticket' END, \
                        COUNT(DISTINCT r.RFID), COUNT(DISTINCT r.RFID || {day}), COUNT(*), \
                        ROUND(COUNT(*) * 1.0 / COUNT(DISTINCT r.RFID || {day}), 1) \
                 FROM {lr} r GROUP BY 1 ORDER BY 1",
                day = day_of("r.RIDE_TIME")
            ),
            max_rows: 5,
        },
    ]
}

/// Renders the reconciliation table.
pub(super) fn format_reconciliation(recs: &[Reconciliation]) -> String {
    let rows: Vec<Vec<String>> = recs
        .iter()
        .map(|r| {
            vec![
                r.table.to_string(),
                thousands(r.generated),
                thousands(r.committed),
                thousands(r.lost),
                thousands(r.duplicated),
                thousands(r.dead_lettered),
                if r.digest_matches {
                    "match".into()
                } else {
                    "MISMATCH".into()
                },
                if r.exact() {
                    "exactly once".into()
                } else {
                    "NOT EXACT".into()
                },
            ]
        })
        .collect();
    format_table(
        &[
            "TABLE",
            "GENERATED",
            "COMMITTED",
            "LOST",
            "DUPLICATED",
            "DEAD_LETTERED",
            "TXID_DIGEST",
            "RESULT",
        ],
        &rows,
    )
}

/// Runs every view and renders them.
///
/// # Errors
/// If a query fails.
pub(super) async fn format_views(source: &dyn SqlSource) -> Result<String> {
    let mut out = String::new();
    for view in views(source) {
        let rows = source.query(&view.sql).await?;
        let shown: Vec<Vec<String>> = rows
            .iter()
            .take(view.max_rows)
            .map(|r| r.iter().map(cell).collect())
            .collect();
        let headers: Vec<&str> = view.headers.iter().map(String::as_str).collect();
        let _ = writeln!(out, "\n{} ({})", view.title, view.dynamic_table);
        out.push_str(&format_table(&headers, &shown));
        if rows.len() > view.max_rows {
            let _ = writeln!(out, "  … {} more rows", rows.len() - view.max_rows);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_format_numbers() {
        assert_eq!(cell(&Value::from(1234567u64)), "1,234,567");
        assert_eq!(cell(&Value::from(1234.5f64)), "1,234.50");
        assert_eq!(cell(&Value::from(0.07f64)), "0.07");
        assert_eq!(cell(&Value::Null), "-");
    }

    /// A SQLite database shaped like the emulator's: one table per landed table, VARIANT as
    /// JSON text, timestamps as text.
    fn landed_db(rows: &[crate::ski_resort::model::Row]) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        for t in Table::ALL {
            let cols = match t {
                Table::ResortTicket => "TXID, RFID, RESORT, PURCHASE_TIME, PRICE_USD, EXPIRATION_TIME, DAYS, NAME, ADDRESS, PHONE, EMAIL, EMERGENCY_CONTACT",
                Table::SeasonPass => "TXID, RFID, PURCHASE_TIME, PRICE_USD, EXPIRATION_TIME, NAME, ADDRESS, PHONE, EMAIL, EMERGENCY_CONTACT",
                Table::LiftRide => "TXID, RFID, RESORT, LIFT, RIDE_TIME, ACTIVATION_DAY_COUNT",
            };
            conn.execute_batch(&format!("CREATE TABLE {} ({cols})", landed(t)))
                .unwrap();
        }
        for row in rows {
            let v: Value = serde_json::from_str(&row.to_json()).unwrap();
            let obj = v.as_object().unwrap();
            let names: Vec<&String> = obj.keys().collect();
            let sql = format!(
                "INSERT INTO {} ({}) VALUES ({})",
                landed(row.table()),
                names
                    .iter()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                vec!["?"; names.len()].join(", ")
            );
            let values: Vec<rusqlite::types::Value> = obj
                .values()
                .map(|v| match v {
                    Value::String(s) => rusqlite::types::Value::Text(s.clone()),
                    Value::Number(n) if n.is_i64() => {
                        rusqlite::types::Value::Integer(n.as_i64().unwrap())
                    }
                    Value::Number(n) => rusqlite::types::Value::Real(n.as_f64().unwrap()),
                    other => rusqlite::types::Value::Text(other.to_string()),
                })
                .collect();
            conn.execute(&sql, rusqlite::params_from_iter(values))
                .unwrap();
        }
        conn
    }

    /// Dead letters reconcile exactly whether they came from another writer (not in the
    /// ledger) or from the generator (counted in `generated`, never landed).
    #[tokio::test]
    async fn dead_letters_are_accounted_for_either_way() {
        use crate::ski_resort::generator::{Generator, GeneratorConfig};
        let mut g = Generator::new(&GeneratorConfig {
            seed: 8,
            start: chrono::NaiveDate::from_ymd_opt(2025, 12, 20).unwrap(),
            events_per_day: 800,
        });
        let rows: Vec<_> = (0..300).map(|_| g.next_row()).collect();
        let (kept, damaged) = rows.split_at(rows.len() - 2);
        let mut ledger = [LedgerEntry::default(); 3];
        for r in kept {
            let l = &mut ledger[r.table().index()];
            l.generated += 1;
            l.digest = l.digest.wrapping_add(txid_hash(r.txid()));
        }
        let db = landed_db(kept);
        // Two foreign records: not in `generated`.
        let mut foreign = ledger;
        for l in &mut foreign {
            l.dead_lettered = 2;
            l.dead_digest = txid_hash("x").wrapping_add(txid_hash("y"));
        }
        let recs = reconcile(&db, &foreign).await.unwrap();
        assert!(recs.iter().all(Reconciliation::exact), "{recs:?}");
        assert!(recs
            .iter()
            .all(|r| r.dead_lettered == 2 && r.dead_generated == 0));
        // The generator's last two rows, damaged in the queue: counted, dead-lettered.
        let mut own = ledger;
        for r in damaged {
            let l = &mut own[r.table().index()];
            l.generated += 1;
            l.digest = l.digest.wrapping_add(txid_hash(r.txid()));
            l.dead_lettered += 1;
            l.dead_digest = l.dead_digest.wrapping_add(txid_hash(r.txid()));
        }
        let recs = reconcile(&db, &own).await.unwrap();
        assert!(recs.iter().all(Reconciliation::exact), "{recs:?}");
        // Without the dead letters those two rows are lost.
        let mut lost = own;
        for l in &mut lost {
            (l.dead_lettered, l.dead_digest) = (0, 0);
        }
        let recs = reconcile(&db, &lost).await.unwrap();
        assert_eq!(recs.iter().map(|r| r.lost).sum::<u64>(), 2, "{recs:?}");
    }

    #[tokio::test]
    async fn reconciliation_and_views_over_landed_rows() {
        use crate::ski_resort::generator::{Generator, GeneratorConfig};
        let mut g = Generator::new(&GeneratorConfig {
            seed: 4,
            start: chrono::NaiveDate::from_ymd_opt(2025, 12, 20).unwrap(),
            events_per_day: 800,
        });
        let rows: Vec<_> = (0..3000).map(|_| g.next_row()).collect();
        let mut ledger = [LedgerEntry::default(); 3];
        for r in &rows {
            let l = &mut ledger[r.table().index()];
            l.generated += 1;
            l.digest = l.digest.wrapping_add(txid_hash(r.txid()));
        }
        let db = landed_db(&rows);
        let recs = reconcile(&db, &ledger).await.unwrap();
        assert!(recs.iter().all(Reconciliation::exact), "{recs:?}");
        let text = format_reconciliation(&recs);
        assert_eq!(text.matches("exactly once").count(), 3, "{text}");

        // A lost row and a duplicated row are both reported.
        let ride = rows
            .iter()
            .rev()
            .find(|r| r.table() == Table::LiftRide)
            .unwrap()
            .txid()
            .to_string();
        let ticket = rows
            .iter()
            .find(|r| r.table() == Table::ResortTicket)
            .unwrap()
            .txid()
            .to_string();
        db.execute(
            &format!("DELETE FROM {} WHERE TXID = ?1", landed(Table::LiftRide)),
            [&ride],
        )
        .unwrap();
        db.execute(
            &format!(
                "INSERT INTO {t} SELECT * FROM {t} WHERE TXID = ?1",
                t = landed(Table::ResortTicket)
            ),
            [&ticket],
        )
        .unwrap();
        let recs = reconcile(&db, &ledger).await.unwrap();
        let by = |t: Table| recs.iter().find(|r| r.table == t.name()).unwrap().clone();
        assert_eq!(
            (by(Table::LiftRide).lost, by(Table::LiftRide).duplicated),
            (1, 0)
        );
        assert!(!by(Table::LiftRide).digest_matches);
        assert_eq!(
            (
                by(Table::ResortTicket).lost,
                by(Table::ResortTicket).duplicated
            ),
            (0, 1)
        );
        assert!(by(Table::SeasonPass).exact());

        let views = format_views(&db).await.unwrap();
        for v in super::views(&db) {
            assert!(views.contains(v.title), "missing {}", v.title);
        }
        // The rides-by-hour pivot adds up to the number of rides.
        let total_rides: u64 = SqlSource::query(&db, &super::views(&db)[1].sql)
            .await
            .unwrap()
            .iter()
            .map(|r| r.last().unwrap().as_u64().unwrap())
            .sum();
        assert_eq!(total_rides, ledger[Table::LiftRide.index()].generated - 1);
        assert!(views.contains("TOTAL"), "{views}");
        assert!(
            views.contains("Season pass") && views.contains("Day ticket"),
            "{views}"
        );
    }
}
