//! SQL API client against wiremock: submit, poll, partitions, typed errors, auth headers.

use serde_json::json;
use wiremock::matchers::{body_partial_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::test_support::{answer_once, answering, fast_retry, TEST_KEY};

fn client(server: &MockServer) -> SqlClient {
    ClientBuilder::new()
        .account("myorg-myacct")
        .user("tester")
        .role("ANALYST")
        .url(server.uri())
        .private_key_pem(TEST_KEY)
        .retry(fast_retry())
        .build_sql()
        .unwrap()
        .database("DB")
        .schema("PUBLIC")
        .warehouse("WH")
}

fn meta(partitions: usize) -> serde_json::Value {
    json!({
        "numRows": 3,
        "format": "jsonv2",
        "partitionInfo": (0..partitions).map(|_| json!({"rowCount": 1})).collect::<Vec<_>>(),
        "rowType": [
            {"name": "ID", "type": "fixed", "scale": 0, "precision": 38, "nullable": false},
            {"name": "NOTE", "type": "text", "nullable": true}
        ]
    })
}

#[tokio::test]
async fn a_synchronous_answer_with_partitions_returns_every_row() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/statements"))
        .and(header(
            "X-Snowflake-Authorization-Token-Type",
            "KEYPAIR_JWT",
        ))
        .and(body_partial_json(json!({
            "statement": "SELECT ID, NOTE FROM T ORDER BY ID",
            "database": "DB", "schema": "PUBLIC", "warehouse": "WH", "role": "ANALYST"
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "code": "090001", "statementHandle": "h-1", "sqlState": "00000",
            "resultSetMetaData": meta(3),
            "data": [["1", "a"]]
        })))
        .expect(1)
        .mount(&server)
        .await;
    for (p, row) in [("1", json!([["2", null]])), ("2", json!([["3", "c"]]))] {
        Mock::given(method("GET"))
            .and(path("/api/v2/statements/h-1"))
            .and(query_param("partition", p))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": row})))
            .expect(1)
            .mount(&server)
            .await;
    }
    let result = client(&server)
        .query("SELECT ID, NOTE FROM T ORDER BY ID")
        .await
        .unwrap();
    assert_eq!(result.statement_handle, "h-1");
    assert_eq!(result.columns[0].type_name, "fixed");
    assert_eq!(result.column_index("note"), Some(1));
    assert_eq!(
        result.rows,
        vec![
            vec![Some("1".into()), Some("a".into())],
            vec![Some("2".into()), None],
            vec![Some("3".into()), Some("c".into())],
        ]
    );
    let submit = &server.received_requests().await.unwrap()[0];
    let auth = submit
        .headers
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(auth.starts_with("Bearer ey"), "a key-pair JWT: {auth:.12}");
}

#[tokio::test]
async fn a_running_statement_is_polled_until_done() {
    let server = MockServer::start().await;
    answering(
        "POST",
        "/api/v2/statements",
        ResponseTemplate::new(202).set_body_json(json!({
            "code": "333334", "statementHandle": "h-2",
            "statementStatusUrl": "/api/v2/statements/h-2",
            "message": "Asynchronous execution in progress."
        })),
    )
    .mount(&server)
    .await;
    answering(
        "GET",
        "/api/v2/statements/h-2",
        ResponseTemplate::new(202).set_body_json(json!({
            "code": "333334", "statementHandle": "h-2"
        })),
    )
    .up_to_n_times(2)
    .with_priority(1)
    .mount(&server)
    .await;
    answering(
        "GET",
        "/api/v2/statements/h-2",
        ResponseTemplate::new(200).set_body_json(json!({
            "statementHandle": "h-2", "resultSetMetaData": meta(1), "data": [["7", "x"]]
        })),
    )
    .with_priority(2)
    .mount(&server)
    .await;
    let result = client(&server).query("SELECT 7, 'x'").await.unwrap();
    assert_eq!(result.rows, vec![vec![Some("7".into()), Some("x".into())]]);
    let polls = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "GET")
        .count();
    assert_eq!(polls, 3, "two 202 answers, then the result");
}

/// A server that answers 202 forever: the client stops polling at the statement timeout plus
/// the grace (as long again, here 1 s), with an error naming the handle.
#[tokio::test]
async fn a_statement_running_forever_is_given_up_after_its_timeout() {
    let server = MockServer::start().await;
    let running = ResponseTemplate::new(202).set_body_json(json!({
        "code": "333334", "statementHandle": "h-forever"
    }));
    answering("POST", "/api/v2/statements", running.clone())
        .mount(&server)
        .await;
    answering("GET", "/api/v2/statements/h-forever", running)
        .mount(&server)
        .await;
    let e = client(&server)
        .timeout(Duration::from_secs(1))
        .query("SELECT SYSTEM$WAIT(1000000)")
        .await
        .expect_err("given up");
    let msg = e.to_string();
    assert!(msg.contains("still running 2s after"), "{msg}");
    let Error::Sql(sql) = &e else { panic!("{e:?}") };
    assert_eq!(sql.statement_handle.as_deref(), Some("h-forever"));
}

/// A result claiming more partitions than allowed fails before fetching any of them; a
/// partition larger than allowed fails the query.
#[tokio::test]
async fn results_beyond_the_partition_limits_fail_without_fetching() {
    let server = MockServer::start().await;
    answering(
        "POST",
        "/api/v2/statements",
        ResponseTemplate::new(200).set_body_json(json!({
            "statementHandle": "h-big", "resultSetMetaData": meta(50_000), "data": [["1", "a"]]
        })),
    )
    .mount(&server)
    .await;
    answering(
        "GET",
        "/api/v2/statements/h-big",
        ResponseTemplate::new(200).set_body_json(json!({"data": [["2", "x".repeat(4096)]]})),
    )
    .mount(&server)
    .await;
    let e = client(&server)
        .query("SELECT * FROM HUGE")
        .await
        .expect_err("too many partitions");
    assert!(
        e.to_string()
            .contains("the result has more than 1000 partitions (max_partitions)"),
        "{e}"
    );
    let fetched = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "GET")
        .count();
    assert_eq!(fetched, 0);

    let e = client(&server)
        .max_partitions(100_000)
        .max_partition_bytes(1024)
        .query("SELECT * FROM HUGE")
        .await
        .expect_err("a partition too large");
    assert!(e.to_string().contains("larger than 1024 bytes"), "{e}");
}

async fn gets(server: &MockServer) -> usize {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "GET")
        .count()
}

/// The answers of one query are capped together (`max_result_bytes`): a result that
/// declares more (`uncompressedSize`) fails before any partition is fetched, and one that
/// does not declare its size fails as soon as the fetched answers pass the cap.
#[tokio::test]
async fn results_beyond_max_result_bytes_fail() {
    let server = MockServer::start().await;
    let mut declared = meta(3);
    for p in declared["partitionInfo"].as_array_mut().unwrap() {
        p["uncompressedSize"] = json!(4_200);
    }
    answering(
        "POST",
        "/api/v2/statements",
        ResponseTemplate::new(200).set_body_json(json!({
            "statementHandle": "h-declared", "resultSetMetaData": declared, "data": [["1", "a"]]
        })),
    )
    .mount(&server)
    .await;
    let e = client(&server)
        .max_result_bytes(10_000)
        .query("SELECT * FROM DECLARED")
        .await
        .expect_err("declared over the cap");
    assert!(
        e.to_string()
            .contains("12600 bytes or more (decompressed), more than max_result_bytes (10000)"),
        "{e}"
    );
    assert_eq!(gets(&server).await, 0, "nothing fetched");

    let server = MockServer::start().await;
    answering(
        "POST",
        "/api/v2/statements",
        ResponseTemplate::new(200).set_body_json(json!({
            "statementHandle": "h-silent", "resultSetMetaData": meta(5), "data": [["1", "a"]]
        })),
    )
    .mount(&server)
    .await;
    answering(
        "GET",
        "/api/v2/statements/h-silent",
        ResponseTemplate::new(200).set_body_json(json!({"data": [["2", "x".repeat(4096)]]})),
    )
    .mount(&server)
    .await;
    let e = client(&server)
        .max_result_bytes(10_000)
        .query("SELECT * FROM SILENT")
        .await
        .expect_err("fetched over the cap");
    assert!(
        e.to_string().contains("more than max_result_bytes (10000)"),
        "{e}"
    );
    assert_eq!(
        gets(&server).await,
        3,
        "stopped at the partition that passed the cap"
    );
    let result = client(&server)
        .max_result_bytes(1 << 20)
        .query("SELECT * FROM SILENT")
        .await
        .expect("under the cap");
    assert_eq!(result.rows.len(), 5);
}

#[tokio::test]
async fn a_failed_statement_is_a_typed_sql_error() {
    let server = MockServer::start().await;
    answering(
        "POST",
        "/api/v2/statements",
        ResponseTemplate::new(422).set_body_json(json!({
            "code": "002003", "sqlState": "42S02", "statementHandle": "h-3",
            "message": "SQL compilation error:\nObject 'NOPE' does not exist or not authorized."
        })),
    )
    .expect(1)
    .mount(&server)
    .await;
    let err = client(&server)
        .query("SELECT * FROM NOPE")
        .await
        .unwrap_err();
    let Error::Sql(sql) = &err else {
        panic!("expected Error::Sql, got {err:?}")
    };
    assert_eq!(sql.kind, SqlErrorKind::Failed);
    assert_eq!(sql.code.as_deref(), Some("002003"));
    assert_eq!(sql.sql_state.as_deref(), Some("42S02"));
    assert_eq!(sql.statement_handle.as_deref(), Some("h-3"));
    assert!(
        err.to_string()
            .starts_with("SQL statement failed (002003, SQLSTATE 42S02): SQL compilation error"),
        "{err}"
    );
    assert!(!err.is_retryable());
}

/// A statement resubmitted after a 5xx keeps its `requestId` and says `retry=true` (the SQL
/// API's rule: the server then runs it at most once), so DML never runs twice.
#[tokio::test]
async fn a_resubmitted_statement_keeps_its_request_id_and_says_retry() {
    let server = MockServer::start().await;
    answer_once(
        &server,
        1,
        "POST",
        "/api/v2/statements",
        ResponseTemplate::new(503),
    )
    .await;
    answering(
        "POST",
        "/api/v2/statements",
        ResponseTemplate::new(200).set_body_json(json!({
            "statementHandle": "h-dml", "resultSetMetaData": meta(1), "data": [["1", "x"]]
        })),
    )
    .with_priority(2)
    .mount(&server)
    .await;
    client(&server)
        .query("INSERT INTO T VALUES (1, 'x')")
        .await
        .unwrap();
    let posts: Vec<_> = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "POST")
        .collect();
    assert_eq!(posts.len(), 2);
    let param = |r: &wiremock::Request, k: &str| {
        r.url
            .query_pairs()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(param(&posts[0], "requestId"), param(&posts[1], "requestId"));
    assert!(param(&posts[0], "requestId").is_some());
    assert_eq!(param(&posts[0], "retry"), None);
    assert_eq!(param(&posts[1], "retry").as_deref(), Some("true"));
}

#[tokio::test]
async fn a_timeout_is_typed_and_a_rejected_key_is_an_auth_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/statements"))
        .and(body_partial_json(json!({"statement": "SELECT SYSTEM$WAIT(100)"})))
        .respond_with(ResponseTemplate::new(408).set_body_json(json!({
            "code": "000630", "sqlState": "57014", "message": "Statement reached its statement or warehouse timeout of 1 second(s) and was canceled."
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v2/statements"))
        .and(body_partial_json(json!({"statement": "SELECT 1"})))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "code": "390144", "message": "JWT token is invalid."
        })))
        .mount(&server)
        .await;
    let sql = client(&server).timeout(Duration::from_secs(1));
    let err = sql.query("SELECT SYSTEM$WAIT(100)").await.unwrap_err();
    assert!(
        matches!(&err, Error::Sql(e) if e.kind == SqlErrorKind::Timeout),
        "{err:?}"
    );
    let err = sql.query("SELECT 1").await.unwrap_err();
    assert!(matches!(err, Error::Auth { .. }), "{err:?}");
    assert!(!format!("{err:?}").contains("BEGIN PRIVATE KEY"));
}

#[test]
fn read_only_statements_are_recognised() {
    assert!(is_read_only("  select 1"));
    assert!(is_read_only("WITH x AS (SELECT 1) SELECT * FROM x"));
    assert!(is_read_only("SELECT(1)"));
    assert!(!is_read_only("INSERT INTO T VALUES (1)"));
    assert!(!is_read_only("DELETE FROM T"));
}

fn gzip(raw: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(raw).unwrap();
    enc.finish().unwrap()
}

/// The client asks for gzip and decodes a gzip-encoded partition (the SQL API sends result
/// partitions so when asked, docs/protocol-types-and-sql.md "SQL API").
#[tokio::test]
async fn a_gzip_encoded_partition_is_decoded() {
    let server = MockServer::start().await;
    answering(
        "POST",
        "/api/v2/statements",
        ResponseTemplate::new(200).set_body_json(json!({
            "statementHandle": "h-gz", "resultSetMetaData": meta(2), "data": [["1", "a"]]
        })),
    )
    .mount(&server)
    .await;
    let body = gzip(json!({"data": [["2", "b"]]}).to_string().as_bytes());
    Mock::given(method("GET"))
        .and(path("/api/v2/statements/h-gz"))
        .and(query_param("partition", "1"))
        .and(header("accept-encoding", "gzip"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-encoding", "gzip")
                .set_body_raw(body, "application/json"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let result = client(&server).query("SELECT * FROM T").await.unwrap();
    assert_eq!(
        result.rows,
        vec![
            vec![Some("1".into()), Some("a".into())],
            vec![Some("2".into()), Some("b".into())],
        ]
    );
}

/// A gzip bomb (a few KiB on the wire, 64 MiB decoded) is refused by the partition cap,
/// which counts decoded bytes.
#[tokio::test]
async fn a_gzip_bomb_partition_is_refused_by_the_decoded_size_cap() {
    let server = MockServer::start().await;
    let mut raw = b"{\"data\": [[\"1\", \"a\"]]".to_vec();
    raw.resize(64 << 20, b' ');
    raw.push(b'}');
    let bomb = gzip(&raw);
    assert!(bomb.len() < 256 << 10, "compressed to {} bytes", bomb.len());
    answering(
        "POST",
        "/api/v2/statements",
        ResponseTemplate::new(200)
            .insert_header("content-encoding", "gzip")
            .set_body_raw(bomb, "application/json"),
    )
    .mount(&server)
    .await;
    let e = client(&server)
        .max_partition_bytes(1 << 20)
        .query("SELECT * FROM T")
        .await
        .expect_err("a bomb");
    assert!(e.to_string().contains("larger than 1048576 bytes"), "{e}");
}

/// `resultSetMetaData.format` other than the documented `jsonv2` is refused, naming it.
#[tokio::test]
async fn a_result_format_other_than_jsonv2_is_refused() {
    let server = MockServer::start().await;
    let mut arrow = meta(1);
    arrow["format"] = json!("arrowv1");
    answering(
        "POST",
        "/api/v2/statements",
        ResponseTemplate::new(200).set_body_json(json!({
            "statementHandle": "h-arrow", "resultSetMetaData": arrow, "rowsetBase64": "QUJD"
        })),
    )
    .mount(&server)
    .await;
    let err = client(&server).query("SELECT 1").await.unwrap_err();
    let Error::Sql(sql) = &err else {
        panic!("expected Error::Sql, got {err:?}")
    };
    assert_eq!(sql.kind, SqlErrorKind::Protocol);
    assert_eq!(sql.statement_handle.as_deref(), Some("h-arrow"));
    assert!(
        sql.message.contains("\"arrowv1\"") && sql.message.contains("\"jsonv2\""),
        "{err}"
    );
}

#[tokio::test]
async fn rows_of_another_width_than_the_columns_are_refused() {
    for (data, values) in [(json!([["1"]]), 1), (json!([["1", "a", "x"]]), 3)] {
        let server = MockServer::start().await;
        answering(
            "POST",
            "/api/v2/statements",
            ResponseTemplate::new(200).set_body_json(json!({
                "statementHandle": "h-width", "resultSetMetaData": meta(1), "data": data
            })),
        )
        .mount(&server)
        .await;
        let e = client(&server)
            .query("SELECT ID, NOTE FROM T")
            .await
            .expect_err("a row of another width");
        assert!(
            e.to_string().contains(&format!(
                "row 0 has {values} values where the result has 2 columns"
            )),
            "{e}"
        );
    }
}

#[tokio::test]
async fn many_small_rows_are_charged_what_they_hold_in_memory() {
    let server = MockServer::start().await;
    let rows: Vec<serde_json::Value> = (0..1_000).map(|_| json!(["1", null])).collect();
    let body = json!({"statementHandle": "h-small", "resultSetMetaData": meta(1), "data": rows});
    let text = body.to_string().len();
    answering(
        "POST",
        "/api/v2/statements",
        ResponseTemplate::new(200).set_body_json(body),
    )
    .mount(&server)
    .await;
    // The body is under the cap; the rows it decodes into are not.
    let cap = 20_000;
    assert!(text < cap, "{text}");
    let e = client(&server)
        .max_result_bytes(cap)
        .query("SELECT ID, NOTE FROM T")
        .await
        .expect_err("rows over the cap in memory");
    assert!(
        e.to_string().contains("more than max_result_bytes (20000)"),
        "{e}"
    );
    let result = client(&server)
        .max_result_bytes(1 << 20)
        .query("SELECT ID, NOTE FROM T")
        .await
        .expect("under the cap");
    assert_eq!(result.rows.len(), 1_000);
}
