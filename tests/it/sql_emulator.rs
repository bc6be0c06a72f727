//! The SDK's SQL API client (`sql` feature) against the emulator's `/api/v2/statements`:
//! rows streamed through a channel come back through SQL; failures are typed.

use snowpipe_streaming::{Positions, Rows};
use std::time::Duration;

use serde::Serialize;
use snowpipe_streaming::sql::SqlErrorKind;
use snowpipe_streaming::{Error, OffsetToken};

use crate::common::emulator::{self as emu, DB, PIPE, SCHEMA};

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
    let channel = emu::open_on(&client, PIPE, "sql").await;
    let rows = (1..=5u64).map(|id| {
        let name = (id != 3).then(|| format!("name {id} ✓"));
        Row { id, name }
    });
    let positions = Positions::per_row((1..=5u64).map(|id| OffsetToken::from(id * 10)));
    channel.append(Rows::serde(rows), positions).await.unwrap();
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

/// A table created through the SQL API (as users and the Kafka connector create theirs) takes
/// the SDK's rows on its default pipe at once, and they come back through SQL.
#[tokio::test]
async fn a_table_created_through_the_sql_api_takes_streamed_rows() {
    let emulator = emu::start().await;
    let sql = sql_client(&emulator);
    for (statement, status) in [
        (
            "CREATE TABLE IF NOT EXISTS NEW_T (ID NUMBER, NAME VARCHAR)",
            "Table NEW_T successfully created.",
        ),
        (
            "CREATE TABLE IF NOT EXISTS NEW_T (ID NUMBER, NAME VARCHAR)",
            "NEW_T already exists, statement succeeded.",
        ),
    ] {
        let result = sql.query(statement).await.unwrap();
        assert_eq!(result.columns[0].name, "status");
        assert_eq!(result.rows, vec![vec![Some(status.to_owned())]]);
    }
    let client = emu::client(&emulator).await;
    let channel = emu::open_on(&client, "NEW_T-STREAMING", "ddl").await;
    let rows = (1..=3u64).map(|id| {
        let name = Some(format!("n{id}"));
        Row { id, name }
    });
    let positions = Positions::numbered(1..=3).unwrap();
    channel.append(Rows::serde(rows), positions).await.unwrap();
    let sql = sql_after_commit(channel, client, 3, &emulator).await;
    let result = sql
        .query("SELECT ID, NAME FROM NEW_T ORDER BY ID")
        .await
        .unwrap();
    assert_eq!(
        result.rows,
        (1..=3)
            .map(|id| vec![Some(id.to_string()), Some(format!("n{id}"))])
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn missing_tables_and_writes_are_typed_errors_and_a_wrong_key_is_refused() {
    let emulator = emu::start().await;
    let sql = sql_client(&emulator);
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
    let channel = emu::open_on(&client, "W-STREAMING", "exact").await;
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
            .append(
                Rows::serde([row]),
                Positions::at(OffsetToken::from(i as u64 + 1)),
            )
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
                // An epoch lands as its wall clock in the session zone
                // (America/Los_Angeles by default): 1700000000.123 less eight hours.
                "1699971200.123",
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
    sql_client(emulator)
}

/// A SQL API client of `emulator` in the test's database and schema.
fn sql_client(emulator: &snowpipe_emulator::Emulator) -> snowpipe_streaming::sql::SqlClient {
    emu::builder(emulator)
        .build_sql()
        .unwrap()
        .database(DB)
        .schema(SCHEMA)
}

/// An emulator with [`emu::config`], results cut into partitions of `rows` rows and
/// statements answered HTTP 202 after `async_after`.
async fn partitioned(rows: usize, async_after: Option<Duration>) -> snowpipe_emulator::Emulator {
    let mut config = emu::config();
    config.sql_partition_rows = rows;
    config.sql_async_after = async_after;
    snowpipe_emulator::Emulator::start(config).await.unwrap()
}

/// The emulator's SQL API counters (`GET /`, `sql_api`).
async fn sql_counters(emulator: &snowpipe_emulator::Emulator) -> serde_json::Value {
    let status: serde_json::Value = reqwest::get(format!("{}/", emulator.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    status["sql_api"].clone()
}

/// `SELECT i FROM 1..=n` (a recursive common table expression, no table needed), with a
/// text column `PAD` of `pad` characters from row `from` on.
fn numbers(n: u32, pad: u32, from: u32) -> String {
    format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) \
         SELECT i, CASE WHEN i >= {from} THEN substr(hex(zeroblob({pad})), 1, {pad}) ELSE 'x' END AS PAD \
         FROM n ORDER BY i"
    )
}

/// A result in several partitions comes back whole and in order; the later partitions
/// travel gzip-encoded (the SDK asks for gzip, the emulator answers so).
#[tokio::test]
async fn a_result_in_several_gzip_partitions_comes_back_in_order() {
    let emulator = partitioned(4, None).await;
    let sql = emu::builder(&emulator).build_sql().unwrap();
    let result = sql.query(&numbers(10, 1, 100)).await.unwrap();
    let ids: Vec<String> = result.rows.iter().map(|r| r[0].clone().unwrap()).collect();
    let expected: Vec<String> = (1..=10).map(|i| i.to_string()).collect();
    assert_eq!(ids, expected);
    let counters = sql_counters(&emulator).await;
    assert_eq!(counters["partitions_served"], 2, "{counters}");
    assert_eq!(counters["gzip_answers"], 2, "{counters}");
    assert_eq!(
        counters["results_held"], 1,
        "held for fetching again until it expires: {counters}"
    );
}

/// A statement answered HTTP 202 is polled on its `statementStatusUrl` to its result.
#[tokio::test]
async fn an_asynchronous_statement_is_polled_to_its_result() {
    let emulator = partitioned(2, Some(Duration::ZERO)).await;
    let sql = emu::builder(&emulator).build_sql().unwrap();
    let result = sql.query(&numbers(5, 1, 100)).await.unwrap();
    assert_eq!(result.rows.len(), 5);
    assert_eq!(result.rows[4][0].as_deref(), Some("5"));
    let counters = sql_counters(&emulator).await;
    assert_eq!(counters["async_answers"], 1, "{counters}");
    let requests = emulator.requests();
    let submit = requests
        .iter()
        .find(|r| r.method == "POST" && r.path == "/api/v2/statements")
        .unwrap();
    assert_eq!(submit.status, 202);
    let status_path = format!("/api/v2/statements/{}", result.statement_handle);
    assert!(
        requests
            .iter()
            .any(|r| r.method == "GET" && r.path == status_path && r.status == 200),
        "the status URL answered the result"
    );
}

/// A partition larger (decoded) than `max_partition_bytes` fails the query cleanly, though
/// it is far smaller gzip-encoded on the wire.
#[tokio::test]
async fn a_partition_over_max_partition_bytes_fails_cleanly() {
    let emulator = partitioned(2, None).await;
    let sql = emu::builder(&emulator)
        .build_sql()
        .unwrap()
        .max_partition_bytes(3000);
    let err = sql.query(&numbers(4, 2000, 3)).await.unwrap_err();
    assert!(err.to_string().contains("larger than 3000 bytes"), "{err}");
    assert_eq!(sql_counters(&emulator).await["gzip_answers"], 1);
}

/// `DROP PIPE` under an open channel (the fix `table_replay follow` prints): the channel's
/// next rows are refused with the service's 404 for a dropped pipe, which the SDK reports
/// (not a hang, not rows reported committed); the pipe made again, a channel opened under
/// the same name starts with no committed token and its rows land.
#[tokio::test]
async fn a_dropped_pipe_fails_the_open_channel_and_a_new_one_starts_with_no_token() {
    let emulator = emu::start().await;
    let sql = sql_client(&emulator);
    let client = emu::client(&emulator).await;
    let channel = emu::open_on(&client, PIPE, "dropped").await;
    let row = |id| Rows::serde([Row { id, name: None }]);
    channel
        .append(row(1), Positions::numbered(1..=1).unwrap())
        .await
        .unwrap();
    channel
        .wait_for_commit(&OffsetToken::from(1u64), Duration::from_secs(10))
        .await
        .unwrap();
    let dropped = sql.query("DROP PIPE P").await.unwrap();
    assert_eq!(
        dropped.rows,
        vec![vec![Some("P successfully dropped.".into())]]
    );
    // A hang guard, not a timing assertion: the SDK must answer, with the service's error.
    let outcome = tokio::time::timeout(Duration::from_secs(60), async {
        channel
            .append(row(2), Positions::numbered(2..=2).unwrap())
            .await?;
        channel
            .wait_for_commit(&OffsetToken::from(2u64), Duration::from_secs(20))
            .await
    })
    .await
    .expect("the SDK hung on a dropped pipe");
    let err = outcome.expect_err("rows sent to a dropped pipe were reported committed");
    let mut chain = format!("{err}");
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        chain.push_str(&format!(" / {s}"));
        source = s.source();
    }
    assert!(
        chain.contains("ERR_PIPE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED"),
        "the SDK's error does not name the dropped pipe: {chain}"
    );
    let again = "CREATE PIPE P AS COPY INTO T FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING'))";
    sql.query(again).await.unwrap();
    // The failed handle is closed (its close reports the same failure, already checked).
    let _ = channel.close().await;
    let channel = emu::open_on(&client, PIPE, "dropped").await;
    assert_eq!(channel.latest_committed_offset_token(), None);
    channel
        .append(row(3), Positions::numbered(3..=3).unwrap())
        .await
        .unwrap();
    let sql = sql_after_commit(channel, client, 3, &emulator).await;
    let ids = sql.query("SELECT ID FROM T ORDER BY ID").await.unwrap();
    assert_eq!(
        ids.rows,
        vec![vec![Some("1".into())], vec![Some("3".into())]]
    );
}
