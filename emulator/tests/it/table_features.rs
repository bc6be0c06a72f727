//! Table features users rely on (docs/protocol-types-and-sql.md "Table features"):
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
    c.commit_rows("c", "1", &rows(0..2)).await;
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

/// The error table has Snowflake's five columns, and the documented recovery queries
/// (`docs/user-guide/snowpipe-streaming/snowpipe-streaming-error-tables`) run unchanged
/// through the SQL API: a code per kind of row error, the message and column in
/// `ERROR_METADATA`, the pipe and channel in its `details`, the line as sent in
/// `ERROR_DATA:"$1"`.
#[tokio::test]
async fn rejected_rows_go_to_the_error_table_in_snowflakes_shape() {
    let ddl = "USE SCHEMA DB.SCH; \
               CREATE TABLE L (ID NUMBER(38,0) NOT NULL, N NUMBER(3,0), B BOOLEAN, D DATE) \
               ERROR_LOGGING = TRUE;";
    let (emu, c) = connected(crate::common::config().with_ddl(ddl)).await;
    let ct = c.open_on("L-STREAMING", "c").await;
    // Each bad line with the code, column and content type its error table row must show.
    let cases: [(&str, u32, Option<&str>, &str); 7] = [
        (r#"{"ID":2,"N":"abc"}"#, 100_038, Some("N"), "json"),
        (r#"{"ID":3,"N":1000}"#, 100_039, Some("N"), "json"),
        (r#"{"N":3}"#, 100_072, Some("ID"), "json"),
        (r#"{"ID":4, "B":"maybe"}"#, 100_037, Some("B"), "json"),
        (r#"{"ID":5,"D":"yesterday"}"#, 100_040, Some("D"), "json"),
        (r#"{"ID":6,"#, 100_069, None, "json-invalid"),
        ("[7]", 100_069, None, "json-invalid"),
    ];
    let mut body = String::from("{\"ID\":1,\"N\":2}\n");
    for (line, ..) in &cases {
        body.push_str(line);
        body.push('\n');
    }
    c.append_on("L-STREAMING", "c", &ct, "1", &body).await;
    assert_eq!(
        query(&emu, "SELECT COUNT(*) FROM \"DB.SCH.L\"")[0][0],
        json!(1)
    );
    let sql = |statement: &str| {
        let statement = statement.to_owned();
        let emu = &emu;
        async move {
            let (status, body) = sql_api(
                emu,
                &jwt(0),
                json!({"statement": statement, "database": "DB", "schema": "SCH"}),
            )
            .await;
            assert_eq!(status, 200, "{statement}: {body}");
            body
        }
    };

    // The fixed columns, in order, with their types.
    let all = sql("SELECT * FROM ERROR_TABLE(l)").await;
    let columns: Vec<(String, String)> = all["resultSetMetaData"]["rowType"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("TIMESTAMP", "timestamp_ltz"),
        ("QUERY_ID", "text"),
        ("ERROR_CODE", "fixed"),
        ("ERROR_METADATA", "object"),
        ("ERROR_DATA", "object"),
    ];
    assert_eq!(
        columns,
        expected.map(|(n, t)| (n.to_owned(), t.to_owned())),
        "{all}"
    );
    assert_eq!(all["data"].as_array().unwrap().len(), cases.len());

    // "Query recent errors", less its time filter.
    let recent = sql("SELECT error_code, \
           error_metadata:error_message::STRING AS error_message, \
           error_metadata:error_source::STRING AS error_source, \
           error_metadata:details:channel_name::STRING AS channel, \
           error_metadata:details:pipe_name::STRING AS pipe, \
           error_metadata:details:error_data_content_type::STRING AS content_type, \
           error_metadata:details.offset_token_upper_bound::STRING AS upper, \
           error_data:\"$1\"::STRING AS raw_payload \
         FROM ERROR_TABLE(l) \
         WHERE error_metadata:service = 'snowpipe_streaming' \
         ORDER BY raw_payload")
    .await;
    let mut expected: Vec<Value> = cases
        .iter()
        .map(|(line, code, column, content_type)| {
            json!([
                code.to_string(),
                null,
                column,
                "c",
                "L-STREAMING",
                content_type,
                "1",
                line
            ])
        })
        .collect();
    expected.sort_by(|a, b| a[7].as_str().cmp(&b[7].as_str()));
    let mut got = recent["data"].as_array().unwrap().clone();
    for row in &mut got {
        let message = row[1].take();
        assert!(
            !message.as_str().unwrap_or("").is_empty(),
            "every row has its message: {recent}"
        );
    }
    assert_eq!(got, expected, "{recent}");

    // The brief form: a quoted key, no cast; and "Analyze error distribution".
    let one = sql(
        "SELECT ERROR_CODE, ERROR_METADATA:\"error_message\" FROM ERROR_TABLE(l) \
         WHERE error_code = 100038",
    )
    .await;
    assert_eq!(one["data"][0][0], "100038", "{one}");
    assert_eq!(
        one["data"][0][1], "Numeric value 'abc' is not recognized",
        "{one}"
    );
    let distribution = sql(
        "SELECT error_code, error_metadata:error_message::STRING AS error_message, \
           COUNT(*) AS error_count \
         FROM ERROR_TABLE(l) WHERE error_metadata:service = 'snowpipe_streaming' \
         GROUP BY 1, 2 ORDER BY error_count DESC, error_code",
    )
    .await;
    assert_eq!(
        distribution["data"].as_array().unwrap().len(),
        cases.len(),
        "{distribution}"
    );
    // Casts the emulator cannot make like Snowflake are refused, naming the fix.
    let (status, refused) = sql_api(
        &emu,
        &jwt(0),
        json!({"statement": "SELECT error_metadata:error_code::NUMBER FROM ERROR_TABLE(l)",
               "database": "DB", "schema": "SCH"}),
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("CAST("),
        "{refused}"
    );
    emu.shutdown().await;
}
