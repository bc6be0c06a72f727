//! Table features users rely on (docs/protocol.md "Table features"):
//! DEFAULT / AUTOINCREMENT / IDENTITY columns, the default pipe created on first use, the SQL
//! API's `database`/`schema` fields, the user's default role, error tables.

use crate::common::*;
use serde_json::{json, Value};
use snowpipe_emulator::Emulator;

const FEATURES_DDL: &str = "
USE SCHEMA DB.SCH;
CREATE OR REPLACE TABLE E (
    ID NUMBER(38,0) AUTOINCREMENT START 100 INCREMENT 10,
    NAME VARCHAR NOT NULL DEFAULT 'anonymous',
    QTY NUMBER(10,0) DEFAULT 1,
    NOTE VARCHAR
);
CREATE OR REPLACE PIPE EP AS COPY INTO E FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING'))
    MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE;
";

fn query(emu: &Emulator, sql: &str) -> Vec<Vec<Value>> {
    emu.query(sql).unwrap()
}

#[tokio::test]
async fn defaults_and_autoincrement_fill_omitted_columns_on_the_default_pipe() {
    let (emu, c) = connected(crate::common::config().with_ddl(FEATURES_DDL)).await;
    let ct = c.open_on("E-STREAMING", "c").await;
    c.append_on("E-STREAMING",
        "c",
        &ct,
        "1",
        "{\"NOTE\":\"a\"}\n{\"NAME\":\"bob\",\"QTY\":5,\"NOTE\":\"b\"}\n{\"ID\":7,\"NOTE\":\"c\"}\n{\"NOTE\":\"d\"}\n",
    )
    .await;
    assert_eq!(
        query(
            &emu,
            "SELECT ID, NAME, QTY, NOTE FROM \"DB.SCH.E\" ORDER BY NOTE"
        ),
        [
            json!([100, "anonymous", 1, "a"]),
            json!([110, "bob", 5, "b"]),
            json!([7, "anonymous", 1, "c"]),
            json!([120, "anonymous", 1, "d"]),
        ]
        .map(|r| r.as_array().unwrap().clone())
    );
    // A user pipe with MATCH_BY_COLUMN_NAME leaves omitted columns NULL, as COPY INTO does:
    // the NOT NULL NAME rejects the row that omits it.
    let ct = c.open_on("EP", "m").await;
    c.append_on(
        "EP",
        "m",
        &ct,
        "1",
        "{\"NAME\":\"x\",\"NOTE\":\"e\"}\n{\"NOTE\":\"f\"}\n",
    )
    .await;
    assert_eq!(
        query(
            &emu,
            "SELECT ID, NAME, QTY FROM \"DB.SCH.E\" WHERE NOTE IN ('e', 'f')"
        ),
        [json!([null, "x", null]).as_array().unwrap().clone()]
    );
    emu.shutdown().await;
}

fn listed_pipes(emu: &Emulator) -> Vec<String> {
    emu.status()["pipes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_default_pipe_exists_from_its_first_use_not_from_the_table() {
    let emu = Emulator::start(crate::common::config().with_ddl(FEATURES_DDL))
        .await
        .unwrap();
    // Declared pipes exist from their DDL; no table's default pipe was used yet.
    assert_eq!(listed_pipes(&emu), ["EP", "P"]);
    let c = Client::connect(&emu).await;
    // A pipe-info call creates it (in the case the table was created in).
    let r = c
        .send(
            reqwest::Method::POST,
            &format!("{}:pipe-info", pipe_path("e-streaming")),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(listed_pipes(&emu), ["EP", "P", "E-STREAMING"]);
    // So does an open on another table's default pipe.
    c.open_on("T-STREAMING", "c").await;
    assert_eq!(
        listed_pipes(&emu),
        ["EP", "P", "E-STREAMING", "T-STREAMING"]
    );
    // A failed call creates nothing.
    let r = c
        .send(
            reqwest::Method::POST,
            &format!("{}:pipe-info", pipe_path("NOPE-STREAMING")),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(listed_pipes(&emu).len(), 4);
    emu.shutdown().await;
}

/// Posts `body` to the SQL API with the key-pair JWT `token`; returns (status, body).
async fn sql_api(emu: &Emulator, token: &str, body: Value) -> (u16, Value) {
    let r = sql_request(emu, token, body, "").await;
    (r.status, r.body)
}

#[tokio::test]
async fn the_sql_api_matches_database_and_schema_case_sensitively() {
    let emu = Emulator::start(crate::common::config()).await.unwrap();
    let statement = "select count(*) from t";
    let (status, body) = sql_api(
        &emu,
        &jwt(0),
        json!({"statement": statement, "database": "DB", "schema": "SCH"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"], json!([["0"]]));
    for (database, schema, code) in [("db", "SCH", "090105"), ("DB", "sch", "090106")] {
        let (status, body) = sql_api(
            &emu,
            &jwt(0),
            json!({"statement": statement, "database": database, "schema": schema}),
        )
        .await;
        assert_eq!((status, body["code"].as_str()), (422, Some(code)), "{body}");
    }
    // A qualified name in the statement stays case-insensitive (unquoted).
    let (status, body) = sql_api(
        &emu,
        &jwt(0),
        json!({"statement": "select count(*) from db.sch.t", "database": "db"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    emu.shutdown().await;
}

#[tokio::test]
async fn a_token_without_a_role_gets_the_users_default_role() {
    // LOADER may use DB; PUBLIC (the role of a token without one) may not.
    let config = crate::common::config()
        .with_ddl("ALTER USER bob SET DEFAULT_ROLE = loader;")
        .with_role_grant("LOADER", "DB");
    let emu = Emulator::start(config).await.unwrap();
    // BOB's token names no role: the data plane uses LOADER.
    let c = Client::connect(&emu).await;
    let ct = c.open_ok("c").await;
    c.append_ok("c", &ct, "1", &rows(0..2)).await;
    c.wait_committed("c", "1").await;
    // So does the SQL API, for a request without `role`.
    let (status, body) = sql_api(
        &emu,
        &jwt(0),
        json!({"statement": "select count(*) from t", "database": "DB", "schema": "SCH"}),
    )
    .await;
    assert_eq!((status, &body["data"]), (200, &json!([["2"]])), "{body}");
    // A request's own role still wins.
    let (status, body) = sql_api(
        &emu,
        &jwt(0),
        json!({"statement": "select count(*) from t", "database": "DB", "schema": "SCH",
               "role": "OTHER"}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    // Another user without a default role is PUBLIC, which has no grant.
    let (status, body) = sql_api(
        &emu,
        &jwt_for(0, "ANN"),
        json!({"statement": "select count(*) from t", "database": "DB", "schema": "SCH"}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    emu.shutdown().await;
}

#[tokio::test]
async fn rejected_rows_go_to_the_error_table_with_their_payload() {
    let ddl = "USE SCHEMA DB.SCH; \
               CREATE TABLE L (ID NUMBER(38,0) NOT NULL, N NUMBER(3,0)) ERROR_LOGGING = TRUE;";
    let (emu, c) = connected(crate::common::config().with_ddl(ddl)).await;
    let ct = c.open_on("L-STREAMING", "c").await;
    c.append_on(
        "L-STREAMING",
        "c",
        &ct,
        "1",
        "{\"ID\":1,\"N\":2}\n{\"ID\":2,\"N\":\"abc\"}\n{\"N\":3}\n",
    )
    .await;
    assert_eq!(
        query(&emu, "SELECT COUNT(*) FROM \"DB.SCH.L\"")[0][0],
        json!(1)
    );
    let (status, body) = sql_api(
        &emu,
        &jwt(0),
        json!({"statement": "SELECT ERROR_MESSAGE, ERROR_DATA, ERROR_METADATA FROM ERROR_TABLE(l) ORDER BY ERROR_DATA",
               "database": "DB", "schema": "SCH"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let rows = body["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{body}");
    assert!(rows[0][0].as_str().unwrap().contains("abc"), "{body}");
    assert_eq!(rows[0][1], json!("{\"ID\":2,\"N\":\"abc\"}"));
    assert!(rows[1][0].as_str().unwrap().contains("NULL"), "{body}");
    assert_eq!(rows[1][1], json!("{\"N\":3}"));
    let metadata: Value = serde_json::from_str(rows[0][2].as_str().unwrap()).unwrap();
    assert_eq!(metadata["service"], "snowpipe_streaming");
    assert_eq!(metadata["channel"], "c");
    assert_eq!(metadata["pipe"], "L-STREAMING");
    emu.shutdown().await;
}
