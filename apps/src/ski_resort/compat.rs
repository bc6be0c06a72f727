//! Tests against the emulator's own catalog and row conversion: the generated rows must be
//! accepted by the pipes declared in `sql/setup.sql`, and the report's SQL must work on the
//! values the emulator stores.

use chrono::NaiveDate;
use snowpipe_emulator::offline::OfflineTables;

use crate::ski_resort::generator::{Generator, GeneratorConfig};
use crate::ski_resort::model::Table;
use crate::ski_resort::queue::{txid_hash, LedgerEntry};
use crate::ski_resort::report;

const SETUP_SQL: &str = include_str!("sql/setup.sql");

#[test]
fn setup_sql_declares_the_quickstart_objects() {
    let tables = OfflineTables::from_ddl(SETUP_SQL).expect("setup.sql applies");
    for t in Table::ALL {
        let table = tables
            .pipe_table("STREAMING_INGEST", "STREAMING_INGEST", &t.pipe())
            .unwrap_or_else(|e| panic!("pipe {}: {e:?}", t.pipe()));
        assert_eq!(table, t.name());
    }
}

#[tokio::test]
async fn emulator_accepts_every_generated_row_and_reports_over_them() {
    let tables = OfflineTables::from_ddl(SETUP_SQL).unwrap();
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    for t in Table::ALL {
        tables
            .create_table(&conn, "STREAMING_INGEST", "STREAMING_INGEST", t.name())
            .unwrap();
    }
    let mut g = Generator::new(&GeneratorConfig {
        seed: 12,
        start: NaiveDate::from_ymd_opt(2025, 12, 20).unwrap(),
        events_per_day: 1000,
    });
    let mut ledger = [LedgerEntry::default(); 3];
    for _ in 0..5000 {
        let row = g.next_row();
        let t = row.table();
        let json: serde_json::Value = serde_json::from_str(&row.to_json()).unwrap();
        let nulls = tables
            .insert(
                &conn,
                "STREAMING_INGEST",
                "STREAMING_INGEST",
                &t.pipe(),
                json.as_object().unwrap(),
            )
            .unwrap_or_else(|e| panic!("emulator rejects {}: {e}", row.to_json()));
        assert!(nulls.is_empty(), "NULL in {nulls:?}");
        let l = &mut ledger[t.index()];
        l.generated += 1;
        l.digest = l.digest.wrapping_add(txid_hash(row.txid()));
    }
    let recs = report::reconcile(&conn, &ledger).await.unwrap();
    assert!(recs.iter().all(report::Reconciliation::exact), "{recs:?}");
    let text = report::format_views(&conn).await.unwrap();
    // Prices survive as two-decimal numbers and variants as JSON text.
    let revenue: f64 = one(&conn, "SUM(PRICE_USD)", Table::SeasonPass);
    assert!(revenue > 0.0);
    let city: String = one(
        &conn,
        "json_extract(ADDRESS, '$.city')",
        Table::ResortTicket,
    );
    assert!(!city.is_empty());
    assert!(text.contains("Busiest lifts"), "{text}");
    let hours: i64 = one(
        &conn,
        "COUNT(DISTINCT strftime('%H', RIDE_TIME))",
        Table::LiftRide,
    );
    assert!(hours >= 8, "rides spread over {hours} hours only");
}

/// The first row's value of `SELECT {select}` over a table as it landed.
fn one<T: rusqlite::types::FromSql>(conn: &rusqlite::Connection, select: &str, table: Table) -> T {
    let sql = format!("SELECT {select} FROM {} LIMIT 1", report::landed(table));
    conn.query_row(&sql, [], |r| r.get(0)).unwrap()
}
