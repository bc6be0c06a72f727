//! The SQL API runs the catalog's DDL (`CREATE TABLE`, `CREATE PIPE`, `ALTER TABLE … ADD
//! COLUMN`) in the request's database and schema, as users (and the Kafka connector) create
//! their tables through it: the table takes rows at once, survives a restart, is readable by
//! the role that created it and by no role without a grant on its database; everything else
//! that is not a read-only `SELECT` stays refused (`DROP` and `CREATE OR REPLACE`:
//! `sql_drop.rs`).

use crate::common::*;
use serde_json::{json, Value};
use snowpipe_emulator::{Emulator, EmulatorConfig};

/// Runs `statement` in `DB.SCH` as the key-pair user, with `role` in the request when given.
async fn sql(emu: &Emulator, statement: &str, role: Option<&str>) -> Resp {
    sql_statement(emu, statement, role, "").await
}

/// The `data` of a successful answer.
fn ok(r: &Resp) -> Value {
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["data"].clone()
}

/// The one-row `status` answer of a DDL statement.
fn status(r: &Resp) -> String {
    assert_eq!(r.status, 200, "{}", r.text);
    let row_type = &r.body["resultSetMetaData"]["rowType"];
    assert_eq!(row_type.as_array().map(Vec::len), Some(1), "{}", r.text);
    assert_eq!(row_type[0]["name"], "status", "{}", r.text);
    assert_eq!(row_type[0]["type"], "text", "{}", r.text);
    assert_eq!(r.body["resultSetMetaData"]["numRows"], 1, "{}", r.text);
    r.body["data"][0][0].as_str().unwrap_or_default().to_owned()
}

/// The Kafka connector's statement (`snowpipe_kafka::create_table_statement`, from
/// `createTableWithOnlyMetadataColumn`), for table `ORDERS`.
const CONNECTOR_STATEMENT: &str = "create table if not exists ORDERS (record_metadata variant \
     comment 'created by automatic table creation from Snowflake Kafka Connector High \
     Performance') enable_schema_evolution = true error_logging = true";

#[tokio::test]
async fn a_table_created_through_the_sql_api_takes_rows_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (emu, c) = connected(config().with_data_dir(dir.path())).await;
    let cases = [
        (
            "CREATE TABLE ORDERS (ID NUMBER, NAME VARCHAR(100))",
            "Table ORDERS successfully created.",
        ),
        (
            "create table if not exists orders (X INT)",
            "ORDERS already exists, statement succeeded.",
        ),
        (
            "CREATE TRANSIENT TABLE IF NOT EXISTS \"Mixed Case\" (ID NUMBER);",
            "Table Mixed Case successfully created.",
        ),
        // A qualified name needs no current schema.
        (
            "CREATE TABLE DB.SCH.NAMED (ID NUMBER, NAME VARCHAR)",
            "Table NAMED successfully created.",
        ),
        (
            "CREATE PIPE ORDERS_PIPE AS COPY INTO ORDERS FROM (SELECT $1:id, $1:name \
             FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING')))",
            "Pipe ORDERS_PIPE successfully created.",
        ),
        (
            "ALTER TABLE ORDERS ADD COLUMN NOTE VARCHAR",
            "Statement executed successfully.",
        ),
    ];
    // NOTE ends NOT NULL, set by a statement sent for the second time: the restart must
    // replay it in its turn.
    let cases = cases.into_iter().chain(
        [
            "ALTER TABLE ORDERS ALTER COLUMN NOTE SET NOT NULL",
            "ALTER TABLE ORDERS ALTER COLUMN NOTE DROP NOT NULL",
        ]
        .map(|s| (s, "Statement executed successfully.")),
    );
    for (statement, expected) in cases {
        assert_eq!(
            status(&sql(&emu, statement, None).await),
            expected,
            "{statement}"
        );
    }
    // The default pipe and the declared pipe both write into the new table, the added
    // column included.
    let ct = c.open_on("ORDERS-STREAMING", "a").await;
    c.append_on(
        "ORDERS-STREAMING",
        "a",
        &ct,
        "1",
        "{\"ID\":1,\"NAME\":\"one\",\"NOTE\":\"n\"}\n",
    )
    .await;
    let ct = c.open_on("ORDERS_PIPE", "b").await;
    c.append_on(
        "ORDERS_PIPE",
        "b",
        &ct,
        "1",
        "{\"id\":2,\"name\":\"two\"}\n",
    )
    .await;
    let read = "SELECT ID, NAME, NOTE FROM ORDERS ORDER BY ID";
    let expected = json!([["1", "one", "n"], ["2", "two", null]]);
    assert_eq!(ok(&sql(&emu, read, None).await), expected);
    emu.shutdown().await;

    // The stored script replays the statements: the tables, pipe and rows are there after a
    // restart without DDL.
    let cfg = EmulatorConfig::for_tests()
        .with_public_key(keys(0).1)
        .with_data_dir(dir.path());
    let emu = Emulator::start(cfg).await.unwrap();
    assert_eq!(ok(&sql(&emu, read, None).await), expected);
    let r = sql(
        &emu,
        "SELECT COUNT(*) FROM \"Mixed Case\" JOIN NAMED ON 1 = 1",
        None,
    )
    .await;
    assert_eq!(ok(&r), json!([["0"]]));
    let c = Client::connect(&emu).await;
    c.open_on("ORDERS_PIPE", "b").await;
    let set = "ALTER TABLE ORDERS ALTER COLUMN NOTE SET NOT NULL";
    assert_eq!(
        status(&sql(&emu, set, None).await),
        "Statement executed successfully."
    );
    emu.shutdown().await;
    let cfg = EmulatorConfig::for_tests()
        .with_public_key(keys(0).1)
        .with_data_dir(dir.path());
    let emu = Emulator::start(cfg).await.unwrap();
    let c = Client::connect(&emu).await;
    let ct = c.open_on("ORDERS-STREAMING", "c").await;
    let s = c
        .append_on("ORDERS-STREAMING", "c", &ct, "1", "{\"ID\":3}\n")
        .await;
    assert_eq!(s["rows_error_count"], 1, "NOTE is NOT NULL again: {s}");
    emu.shutdown().await;
}

#[tokio::test]
async fn the_kafka_connectors_statement_makes_a_table_that_evolves_on_the_first_append() {
    let (emu, c) = connected(config()).await;
    let r = sql(&emu, CONNECTOR_STATEMENT, None).await;
    assert_eq!(status(&r), "Table ORDERS successfully created.");
    // Sent again (each run of the connector sends it): the table stays.
    let r = sql(&emu, CONNECTOR_STATEMENT, None).await;
    assert_eq!(status(&r), "ORDERS already exists, statement succeeded.");
    let ct = c.open_on("ORDERS-STREAMING", "k").await;
    let row = "{\"RECORD_METADATA\":{\"offset\":7},\"ID\":1,\"NAME\":\"n1\"}\n";
    c.append_on("ORDERS-STREAMING", "k", &ct, "7", row).await;
    let r = sql(
        &emu,
        "SELECT ID, NAME, RECORD_METADATA:offset FROM ORDERS",
        None,
    )
    .await;
    assert_eq!(ok(&r), json!([["1", "n1", "7"]]));
    // Error logging is on: the table has an error table.
    let r = sql(&emu, "SELECT COUNT(*) FROM ERROR_TABLE(ORDERS)", None).await;
    assert_eq!(ok(&r), json!([["0"]]));
    // A table made without evolution gets it as the connector turns it on.
    for (statement, expected) in [
        (
            "CREATE TABLE PLAIN (RECORD_METADATA VARIANT)",
            "Table PLAIN successfully created.",
        ),
        (
            "alter table PLAIN set ENABLE_SCHEMA_EVOLUTION = true",
            "Statement executed successfully.",
        ),
    ] {
        assert_eq!(status(&sql(&emu, statement, None).await), expected);
    }
    let ct = c.open_on("PLAIN-STREAMING", "k").await;
    c.append_on("PLAIN-STREAMING", "k", &ct, "7", row).await;
    let r = sql(&emu, "SELECT ID, NAME FROM PLAIN", None).await;
    assert_eq!(ok(&r), json!([["1", "n1"]]));
    emu.shutdown().await;
}

#[tokio::test]
async fn a_created_table_is_readable_by_its_role_and_by_no_role_without_a_grant() {
    let cfg = config()
        .with_ddl("CREATE DATABASE OTHER; CREATE SCHEMA OTHER.S;")
        .with_ddl("GRANT ROLE ANALYST TO USER BOB;")
        .with_role_grant("PUBLIC", "DB")
        .with_role_grant("ANALYST", "OTHER");
    let emu = Emulator::start(cfg).await.unwrap();
    let create = "CREATE TABLE NEW_T (ID NUMBER)";
    assert_eq!(
        status(&sql(&emu, create, None).await),
        "Table NEW_T successfully created."
    );
    assert_eq!(
        ok(&sql(&emu, "SELECT COUNT(*) FROM NEW_T", None).await),
        json!([["0"]])
    );
    let r = sql(&emu, "SELECT COUNT(*) FROM DB.SCH.NEW_T", Some("ANALYST")).await;
    r.assert_error(
        "002003",
        "Object 'DB.SCH.NEW_T' does not exist or not authorized.",
    );
    // A role creates tables only in databases it is granted: ANALYST in OTHER, not in DB.
    for (statement, granted) in [
        ("CREATE TABLE DB.SCH.BY_ANALYST (ID NUMBER)", false),
        ("CREATE TABLE OTHER.S.BY_ANALYST (ID NUMBER)", true),
    ] {
        let r = sql(&emu, statement, Some("ANALYST")).await;
        if granted {
            assert_eq!(status(&r), "Table BY_ANALYST successfully created.");
        } else {
            r.assert_error("003001", "--grant ANALYST=DB");
            assert_eq!(r.body["sqlState"], "42501", "{}", r.text);
        }
    }
    let r = sql(&emu, "SELECT COUNT(*) FROM DB.SCH.BY_ANALYST", None).await;
    assert_eq!(r.status, 422, "not created: {}", r.text);
    let r = sql(&emu, "SELECT COUNT(*) FROM OTHER.S.BY_ANALYST", None).await;
    assert!(
        r.text.contains("does not exist or not authorized"),
        "{}",
        r.text
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn writes_and_other_statements_stay_refused() {
    let (emu, c) = connected(config()).await;
    c.commit_rows("c", "3", &rows(0..4)).await;
    let accepted = "CREATE [OR REPLACE] [TRANSIENT] TABLE [IF NOT EXISTS]";
    for (statement, code, needle) in [
        ("INSERT INTO T (ID) VALUES (9)", "002003", accepted),
        ("DELETE FROM T", "002003", accepted),
        ("UPDATE T SET ID = 0", "002003", accepted),
        ("DROP VIEW T", "002003", accepted),
        ("GRANT SELECT ON TABLE T TO ROLE R", "002003", accepted),
        ("CREATE DATABASE D2", "002003", accepted),
        ("TRUNCATE TABLE T", "002003", accepted),
        // The catalog ignores it: refused rather than answered as if done.
        (
            "ALTER TABLE T SET DATA_RETENTION_TIME_IN_DAYS = 1",
            "002003",
            accepted,
        ),
        ("CREATE TABLE T (ID NUMBER)", "002002", "already exists"),
        ("CREATE TABLE A (X INT); DELETE FROM T", "000008", "count 2"),
        ("CREATE TABLE BAD (X GEOGRAPHY)", "001003", "GEOGRAPHY"),
        (
            "CREATE PIPE P2 AS COPY INTO NOPE FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING'))",
            "002003",
            "DB.SCH.NOPE does not exist",
        ),
    ] {
        let r = sql(&emu, statement, None).await;
        assert_eq!(r.status, 422, "{statement}: {}", r.text);
        assert_eq!(r.body["code"], code, "{statement}: {}", r.text);
        assert!(
            r.text.contains(needle),
            "{statement}: {needle:?} in {}",
            r.text
        );
    }
    assert_eq!(count(&emu), 4, "no statement changed T");
    let r = sql(&emu, "SELECT COUNT(*) FROM A", None).await;
    assert_eq!(r.status, 422, "A was not created: {}", r.text);
    // A name that needs a current schema the request does not give.
    let r = sql_request(
        &emu,
        &jwt(0),
        json!({"statement": "CREATE TABLE X (ID NUMBER)", "database": "DB"}),
        "",
    )
    .await;
    assert_eq!(r.body["code"], "090106", "{}", r.text);
    assert!(
        r.text.contains("Cannot perform CREATE TABLE."),
        "{}",
        r.text
    );
    emu.shutdown().await;
}
