//! Against real servers: a private MariaDB, the embedded emulator, the SQL API. Skipped (with
//! a line saying how to install MariaDB) when `mariadbd` is missing, except under `CI=true`.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable as _;
use mysql_async::Conn;

use crate::table_replay::replay::{replay, ReplayOptions};
use crate::table_replay::{mariadb, sample, schema, source, verify};

const DB: &str = "REPLAY";
const SCHEMA: &str = "PUBLIC";

struct Setup {
    _db: mariadb::MariaDb,
    url: String,
    emulator: crate::table_replay::EmbeddedEmulator,
}

impl Setup {
    /// A SQL API client of the emulator in the destination's database and schema.
    fn sql(&self) -> snowpipe_streaming::sql::SqlClient {
        self.emulator
            .builder()
            .build_sql()
            .unwrap()
            .database(DB)
            .schema(SCHEMA)
    }
}

/// A connection to `db`'s `mysql` database (`MariaDb::start` returned once the server takes
/// connections).
async fn admin_connection(db: &mariadb::MariaDb) -> Conn {
    let url = format!("{}/mysql", db.server_url());
    source::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the private MariaDB at {url}: {e:#}"))
}

/// MariaDB with the sample table (`rows` generated rows) and an emulator with its DDL.
async fn setup(database: &str, rows: u64) -> Option<Setup> {
    let db = mariadb::start_or_skip()?;
    let mut admin = admin_connection(&db).await;
    admin
        .query_drop(format!("CREATE DATABASE {database}"))
        .await
        .unwrap();
    let url = db.url(database);
    let mut conn = source::connect(&url).await.unwrap();
    sample::create(&mut conn, rows).await.unwrap();
    let table = source::describe(&mut conn, sample::TABLE, None)
        .await
        .unwrap();
    let ddl = schema::ddl(&table, DB, SCHEMA, "REPLAY_SAMPLE", "REPLAY_SAMPLE_PIPE");
    let emulator = crate::table_replay::start_emulator(DB, SCHEMA, &ddl, None)
        .await
        .unwrap();
    Some(Setup {
        _db: db,
        url,
        emulator,
    })
}

fn options(url: &str, follow: bool) -> ReplayOptions {
    ReplayOptions {
        source: url.to_owned(),
        table: sample::TABLE.into(),
        key: None,
        database: DB.into(),
        schema: SCHEMA.into(),
        pipe: "REPLAY_SAMPLE_PIPE".into(),
        dlq_pipe: "REPLAY_SAMPLE_DLQ_PIPE".into(),
        batch: 97,
        follow,
        poll_interval: Duration::from_millis(100),
        progress_every: None,
    }
}

fn dest() -> verify::Dest {
    verify::Dest {
        database: DB.into(),
        schema: SCHEMA.into(),
        table: "REPLAY_SAMPLE".into(),
        changes: false,
    }
}

/// One row of the destination through the SQL API, by column name.
async fn dest_row(s: &Setup, id: u64, cols: &str) -> Vec<Option<String>> {
    let sql = s.sql();
    let r = sql
        .query(&format!("SELECT {cols} FROM REPLAY_SAMPLE WHERE ID = {id}"))
        .await
        .unwrap();
    assert_eq!(r.rows.len(), 1, "row {id}");
    r.rows[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_round_trips_through_the_emulator_and_the_sql_api() {
    let Some(s) = setup("matrix", 300).await else {
        return;
    };
    let client = s.emulator.builder().build().await.unwrap();
    let report = replay(&client, &options(&s.url, false), std::future::pending())
        .await
        .unwrap();
    client.close().await.unwrap();
    assert_eq!(report.rows, 305);
    assert_eq!(report.committed, Some(sample::key_of(299)));

    let sql = s.sql();
    let v = verify::verify(&s.url, sample::TABLE, None, &sql, &dest(), 64)
        .await
        .unwrap();
    assert!(v.is_exact(), "{}", v.render(sample::TABLE, &dest()));
    assert_eq!(v.columns.len(), 25);

    // The edge rows as the SQL API returns them, against values written by hand.
    let s4 = dest_row(
        &s,
        4,
        "FLAG, NAME, NOTE, RAW, FIXED_B, DOC, TAGS, BITS, DUR, AT_DT, DAY, F32",
    )
    .await;
    let want4 = [
        "true",
        "🎿 スキー 滑雪 ⛷️ Ünïcödé",
        "line1\nline2\t'quoted' \\ backslash",
        "00",
        "61626364",
        r#"{"arr":[1,"two",null],"cjk":"雪","emoji":"🎿","n":1.5}"#,
        "b,d",
        "2730",
        "00:00:00.001",
        // TIMESTAMP_NTZ(6): the SQL API answers with the column's 6 fractional digits.
        "-0.500000",
        "0",
        "0.1",
    ];
    for (i, (got, want)) in s4.iter().zip(want4).enumerate() {
        let got = got.as_deref().unwrap_or("NULL");
        if i == 5 {
            let g: serde_json::Value = serde_json::from_str(got).unwrap();
            assert_eq!(g, serde_json::from_str::<serde_json::Value>(want).unwrap());
        } else {
            assert_eq!(got, want, "column {i} of row 4");
        }
    }
    let s3 = dest_row(
        &s,
        3,
        "SMALL_I, INT_U, BIG_I, BIG_U, PRICE, RATIO, F64, DAY, AT_DT, AT_TS, DUR, YR, STATUS",
    )
    .await;
    let want3 = [
        "32767",
        "4294967295",
        "9223372036854775807",
        "9223372036854775807",
        "9999999999.99",
        "999999999.999999",
        "1.7976931348623157e308",
        "2932896",
        "253402300799.999999",
        "2147483647.999999",
        "838:59:59.999",
        "2155",
        "returned",
    ];
    let got3: Vec<&str> = s3.iter().map(|v| v.as_deref().unwrap_or("NULL")).collect();
    assert_eq!(got3, want3);
    let s2 = dest_row(&s, 2, "FLAG, BIG_I, PRICE, DAY, DUR, CODE, RAW, DOC, TAGS").await;
    let got2: Vec<&str> = s2.iter().map(|v| v.as_deref().unwrap_or("NULL")).collect();
    assert_eq!(
        got2,
        [
            "false",
            "-9223372036854775808",
            "-9999999999.99",
            "-354285",
            "-838:59:59.000",
            "",
            "",
            "{}",
            ""
        ]
    );
    let nulls = dest_row(&s, 1, "*").await;
    assert_eq!(
        nulls.iter().filter(|v| v.is_none()).count(),
        24,
        "NULL in every type"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wide_values_leave_mariadb_exact() {
    let Some(db) = mariadb::start_or_skip() else {
        return;
    };
    let mut admin = admin_connection(&db).await;
    admin.query_drop("CREATE DATABASE wide").await.unwrap();
    let mut conn: Conn = source::connect(&db.url("wide")).await.unwrap();
    conn.query_drop(
        "CREATE TABLE w (id BIGINT UNSIGNED PRIMARY KEY, u BIGINT UNSIGNED, d DECIMAL(38,10), \
         huge DECIMAL(65,30), f FLOAT, t TIME(6))",
    )
    .await
    .unwrap();
    conn.query_drop(
        "INSERT INTO w VALUES (18446744073709551615, 18446744073709551615, \
         -9999999999999999999999999999.9999999999, \
         12345678901234567890123456789012345.123456789012345678901234567890, 3.40282e38, '-838:59:59.999999')",
    )
    .await
    .unwrap();
    let table = source::describe(&mut conn, "w", None).await.unwrap();
    let types: Vec<String> = table
        .columns
        .iter()
        .map(|c| schema::snowflake_type(&c.kind))
        .collect();
    assert_eq!(
        types,
        [
            "NUMBER(20,0)",
            "NUMBER(20,0)",
            "NUMBER(38,10)",
            "VARCHAR",
            "FLOAT",
            "VARCHAR(20)"
        ]
    );
    let page = source::KeysetReader::new(&table)
        .page(&mut conn, None, 10)
        .await
        .unwrap();
    let values = page.into_iter().next().unwrap().unwrap();
    let sent: Vec<String> = table
        .columns
        .iter()
        .zip(&values)
        .map(|(c, v)| schema::to_json(&c.kind, v).unwrap().to_string())
        .collect();
    assert_eq!(
        sent,
        [
            "18446744073709551615",
            "18446744073709551615",
            "\"-9999999999999999999999999999.9999999999\"",
            "\"12345678901234567890123456789012345.123456789012345678901234567890\"",
            "3.40282e+38",
            "\"-838:59:59.999999\"",
        ]
    );
    assert_eq!(
        schema::key_value(&values[0]).unwrap(),
        u64::MAX,
        "the largest key is a token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reports_missing_extra_and_changed_rows() {
    let Some(s) = setup("drift", 50).await else {
        return;
    };
    let client = s.emulator.builder().build().await.unwrap();
    replay(&client, &options(&s.url, false), std::future::pending())
        .await
        .unwrap();
    client.close().await.unwrap();
    let mut conn = source::connect(&s.url).await.unwrap();
    conn.query_drop("DELETE FROM replay_sample WHERE id = 2")
        .await
        .unwrap();
    conn.query_drop("UPDATE replay_sample SET name = 'changed' WHERE id = 4")
        .await
        .unwrap();
    sample::insert_generated(&mut conn, 50, 2).await.unwrap();
    let sql = s.sql();
    let v = verify::verify(&s.url, sample::TABLE, None, &sql, &dest(), 16)
        .await
        .unwrap();
    assert!(!v.is_exact());
    assert_eq!(
        (v.missing, v.extra),
        (2, 1),
        "{}",
        v.render(sample::TABLE, &dest())
    );
    let name = v.columns.iter().find(|c| c.0 == "NAME").unwrap();
    assert_eq!(name.3, 1);
    assert!(v
        .differences
        .iter()
        .any(|d| d.key == "4" && d.column == "NAME" && d.source.as_deref() == Some("changed")));
    assert!(v
        .render(sample::TABLE, &dest())
        .contains("RESULT: DIFFERENT"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_picks_up_rows_inserted_later() {
    let Some(s) = setup("follow", 100).await else {
        return;
    };
    let client = s.emulator.builder().build().await.unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let url = s.url.clone();
    let task_client = client.clone();
    let task = tokio::spawn(async move {
        replay(&task_client, &options(&url, true), async {
            let _ = stop_rx.await;
        })
        .await
    });
    let count = |n: u64| {
        let emulator = &s.emulator.emulator;
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let rows = emulator
                    .query("SELECT COUNT(*) FROM \"REPLAY.PUBLIC.REPLAY_SAMPLE\"")
                    .unwrap();
                if rows[0][0].as_u64() == Some(n) {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "never reached {n} rows: {rows:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    count(105).await;
    let mut conn = source::connect(&s.url).await.unwrap();
    sample::insert_generated(&mut conn, 100, 40).await.unwrap();
    count(145).await;
    sample::insert_generated(&mut conn, 140, 3).await.unwrap();
    count(148).await;
    stop_tx.send(()).unwrap();
    let report = task.await.unwrap().unwrap();
    client.close().await.unwrap();
    assert_eq!(report.rows, 148);
    assert_eq!(report.committed, Some(sample::key_of(142)));
    let sql = s.sql();
    let v = verify::verify(&s.url, sample::TABLE, None, &sql, &dest(), 1000)
        .await
        .unwrap();
    assert!(v.is_exact(), "{}", v.render(sample::TABLE, &dest()));
}
