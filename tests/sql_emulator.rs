//! The SDK's SQL API client (`sql` feature) against the emulator's `/api/v2/statements`:
//! rows streamed through a channel come back through SQL; failures are typed.

use std::time::Duration;

use serde::Serialize;
use snowpipe_streaming::sql::SqlErrorKind;
use snowpipe_streaming::{Error, OffsetToken};

mod common;

use common::emulator::{self as emu, DB, PIPE, SCHEMA};

#[derive(Serialize)]
struct Row {
    #[serde(rename = "ID")]
    id: u64,
    #[serde(rename = "NAME")]
    name: Option<String>,
}

#[tokio::test]
async fn streamed_rows_come_back_through_the_sql_api() {
    let emulator = emu::start().await;
    let client = emu::client(&emulator).await;
    let channel = client.open_channel(DB, SCHEMA, PIPE, "sql").await.unwrap();
    let rows = (1..=5u64).map(|id| {
        let name = (id != 3).then(|| format!("name {id} ✓"));
        (Row { id, name }, OffsetToken::from(id * 10))
    });
    channel.append_rows_with_tokens(rows).await.unwrap();
    let sql = sql_after_commit(channel, client, 50, &emulator).await;
    let result = sql
        .query("SELECT ID, NAME FROM T WHERE ID > 1 ORDER BY ID DESC LIMIT 3")
        .await
        .unwrap();
    assert_eq!(result.columns[0].type_name, "fixed");
    assert_eq!(result.columns[1].type_name, "text");
    assert_eq!(
        result.rows,
        vec![
            vec![Some("5".into()), Some("name 5 ✓".into())],
            vec![Some("4".into()), Some("name 4 ✓".into())],
            vec![Some("3".into()), None],
        ]
    );
    let count = sql
        .query(&format!("SELECT COUNT(*), MAX(ID) FROM {DB}.{SCHEMA}.T"))
        .await
        .unwrap();
    assert_eq!(count.rows, vec![vec![Some("5".into()), Some("5".into())]]);
}

#[tokio::test]
async fn missing_tables_and_writes_are_typed_errors_and_a_wrong_key_is_refused() {
    let emulator = emu::start().await;
    let sql = emu::builder(&emulator)
        .build_sql()
        .unwrap()
        .database(DB)
        .schema(SCHEMA);
    let err = sql.query("SELECT * FROM NOPE").await.unwrap_err();
    let Error::Sql(e) = &err else {
        panic!("expected Error::Sql, got {err:?}")
    };
    assert_eq!(e.kind, SqlErrorKind::Failed);
    assert_eq!(
        (e.code.as_deref(), e.sql_state.as_deref()),
        (Some("002003"), Some("42S02"))
    );
    for statement in [
        "DELETE FROM T",
        "SELECT 1; DROP TABLE T",
        "INSERT INTO T VALUES (1, 'x')",
    ] {
        let err = sql.query(statement).await.unwrap_err();
        assert!(matches!(&err, Error::Sql(_)), "{statement}: {err:?}");
    }
    assert_eq!(emu::ids(&emulator), Vec::<i64>::new());

    let (other, _) = emu::other_key();
    let err = emu::builder(&emulator)
        .private_key_pem(other.clone())
        .build_sql()
        .unwrap()
        .query("SELECT 1")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Auth { .. }), "{err:?}");
    assert!(!err.to_string().contains("PRIVATE KEY"));
}

/// Snowflake's semantics for exact numbers and fractional seconds, through the whole path:
/// rows streamed by the SDK, read back through the SQL API and the emulator's own query.
#[tokio::test]
async fn exact_numbers_fraction_digits_and_offsets_come_back_through_the_sql_api() {
    let emulator = snowpipe_emulator::Emulator::start(emu::config().with_ddl(
        "USE DATABASE DB; USE SCHEMA SCH;
         CREATE TABLE W (ID NUMBER, BIG NUMBER(38,0), FRAC NUMBER(38,10), PRICE NUMBER(10,2),
                         AT TIMESTAMP_NTZ(3), TZ TIMESTAMP_TZ, TM TIME(0));",
    ))
    .await
    .unwrap();
    let client = emu::client(&emulator).await;
    let channel = client
        .open_channel(DB, SCHEMA, "W-STREAMING", "exact")
        .await
        .unwrap();
    let rows = [
        serde_json::json!({"ID": 1, "BIG": "123456789012345678901234567890",
            "FRAC": "0.1234567890", "PRICE": "12.345",
            "AT": "2024-01-02 03:04:05.678999", "TZ": "2024-01-02T03:04:05.5+05:30",
            "TM": "12:34:56.999"}),
        serde_json::json!({"ID": 2, "BIG": "-99999999999999999999999999999999999999",
            "FRAC": "1234567890123456789.01234567894", "PRICE": -0.005,
            "AT": 1_700_000_000_123_456_789_i64, "TZ": "2024-01-02 03:04:05-08:00",
            "TM": "00:00:01"}),
    ];
    for (i, row) in rows.iter().enumerate() {
        channel
            .append_row(row, Some(OffsetToken::from(i as u64 + 1)))
            .await
            .unwrap();
    }
    let sql = sql_after_commit(channel, client, 2, &emulator).await;
    let result = sql
        .query("SELECT BIG, FRAC, PRICE, AT, TZ, TM FROM W ORDER BY ID")
        .await
        .unwrap();
    let scales: Vec<Option<u32>> = result.columns.iter().map(|c| c.scale).collect();
    assert_eq!(
        scales,
        [Some(0), Some(10), Some(2), Some(3), Some(9), Some(0)]
    );
    let some = |v: &[&str]| v.iter().map(|s| Some(s.to_string())).collect::<Vec<_>>();
    assert_eq!(
        result.rows,
        vec![
            some(&[
                "123456789012345678901234567890",
                "0.1234567890",
                "12.35",
                // 2024-01-02 03:04:05.678 (truncated to 3 digits)
                "1704164645.678",
                // 03:04:05.5 at +05:30 is 21:34:05.5 UTC the day before; 330 + 1440
                "1704144845.500000000 1770",
                "45296",
            ]),
            some(&[
                "-99999999999999999999999999999999999999",
                "1234567890123456789.0123456789",
                "-0.01",
                "1700000000.123",
                "1704193445.000000000 960",
                "1",
            ]),
        ]
    );
    // The emulator's own query gives exact decimals back as text too.
    let rows = emulator
        .query("SELECT BIG, FRAC FROM \"DB.SCH.W\" ORDER BY ID")
        .unwrap();
    assert_eq!(rows[0][0], "123456789012345678901234567890");
    assert_eq!(rows[1][1], "1234567890123456789.0123456789");
}

/// Waits until `token` is committed on `channel`, closes it and its client, and returns a SQL
/// API client of `emulator` in the test's database and schema.
async fn sql_after_commit(
    channel: snowpipe_streaming::Channel,
    client: snowpipe_streaming::StreamingIngestClient,
    token: u64,
    emulator: &snowpipe_emulator::Emulator,
) -> snowpipe_streaming::sql::SqlClient {
    channel
        .wait_for_commit(&OffsetToken::from(token), Duration::from_secs(10))
        .await
        .unwrap();
    channel.close().await.unwrap();
    client.close().await.unwrap();
    emu::builder(emulator)
        .build_sql()
        .unwrap()
        .database(DB)
        .schema(SCHEMA)
}
