//! Issue 81 ("Hostile input, fifth round"), the emulator's items, through its HTTP API: a
//! NUL in an identifier is a permanent error (422, not a retryable 500); quoted column names
//! that differ only in case are refused rather than stored as one column; a row that names a
//! column twice is a row error, not its last copy; two overlapping `INSERT OVERWRITE …
//! QUALIFY` never delete rows appended meanwhile.

use crate::common::*;
use serde_json::json;

/// Names with a NUL, as table, column and added column, and as a row's key that schema
/// evolution would make a column: each DDL is refused with a 422 naming the NUL (it would
/// never succeed on retry); the row lands without a new column; the emulator keeps serving.
#[tokio::test]
async fn a_nul_in_an_identifier_is_a_permanent_error_not_a_retryable_500() {
    let (emu, c) = connected(config()).await;
    for statement in [
        "CREATE TABLE \"A\u{0}B\" (X NUMBER)",
        "CREATE TABLE N1 (\"X\u{0}\" NUMBER)",
        "ALTER TABLE T ADD COLUMN \"Y\u{0}Z\" NUMBER",
        "CREATE SCHEMA \"S\u{0}\"",
    ] {
        let r = sql_statement(&emu, statement, None, "").await;
        assert_eq!(r.status, 422, "{statement:?}: {}", r.text);
        assert!(r.text.contains("NUL"), "{statement:?}: {}", r.text);
    }
    let r = sql_statement(
        &emu,
        "CREATE TABLE E (ID NUMBER) ENABLE_SCHEMA_EVOLUTION = TRUE",
        None,
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let ok = sql_statement(&emu, "SELECT COUNT(*) FROM T", None, "").await;
    assert_eq!(ok.status, 200, "still serving: {}", ok.text);
    let ct = c.open_on("E-STREAMING", "c").await;
    let rows = "{\"ID\":1,\"A\\u0000\":2,\"B\":3}\n";
    let status = c.append_on("E-STREAMING", "c", &ct, "1", rows).await;
    assert_eq!(status["rows_error_count"], 0, "{status}");
    let r = sql_statement(&emu, "SELECT ID, B FROM E", None, "").await;
    assert_eq!(r.body["data"], json!([["1", "3"]]), "{}", r.text);
    emu.shutdown().await;
}

/// `"a"` beside `A` (added, or in one CREATE): refused naming both, so no value can cross
/// between them; a column of another name is still added.
#[tokio::test]
async fn quoted_columns_that_differ_only_in_case_are_refused_not_stored_as_one() {
    let (emu, _c) = connected(config()).await;
    for statement in [
        "ALTER TABLE T ADD COLUMN \"name\" VARCHAR",
        "ALTER TABLE T ADD COLUMN \"Doc\" VARIANT",
        "ALTER TABLE T ADD COLUMN \"id\" NUMBER",
        "CREATE TABLE C2 (\"a\" NUMBER, A NUMBER)",
    ] {
        let r = sql_statement(&emu, statement, None, "").await;
        assert_eq!(r.status, 422, "{statement}: {}", r.text);
        assert!(r.text.contains("only in case"), "{statement}: {}", r.text);
    }
    let r = sql_statement(&emu, "ALTER TABLE T ADD COLUMN \"b\" NUMBER", None, "").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = sql_statement(&emu, "ALTER TABLE T ADD COLUMN X NUMBER", None, "").await;
    assert_eq!(
        r.status, 200,
        "the refused statement added nothing: {}",
        r.text
    );
    emu.shutdown().await;
}
