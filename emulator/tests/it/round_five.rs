//! Issue 81 ("Hostile input, fifth round"), the emulator's items, through its HTTP API: a
//! NUL in an identifier is a permanent error (422, not a retryable 500); quoted column names
//! that differ only in case are two columns, as in Snowflake; a row that names a
//! column twice is a row error, not its last copy; two overlapping `INSERT OVERWRITE …
//! QUALIFY` never delete rows appended meanwhile.

use crate::common::*;
use serde_json::{json, Value};

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

/// `"name"` beside `NAME` and `"id"` beside `ID` (added) are two columns each, as in Snowflake: an append's keys fill each by its exact name, each is
/// selected, filtered and listed (`SELECT *`) under its own name, and both stay apart after a
/// restart on the same data directory. (Stored as one SQLite column before, their values
/// crossed; then refused, 422.)
#[tokio::test]
async fn quoted_columns_that_differ_only_in_case_are_two_columns() {
    let dir = tempfile::tempdir().unwrap();
    let (emu, c) = connected(config().with_data_dir(dir.path())).await;
    for statement in [
        "ALTER TABLE T ADD COLUMN \"name\" VARCHAR",
        "ALTER TABLE T ADD COLUMN \"id\" NUMBER",
    ] {
        let r = sql_statement(&emu, statement, None, "").await;
        assert_eq!(r.status, 200, "{statement}: {}", r.text);
    }
    let rows = "{\"ID\":1,\"NAME\":\"upper\",\"name\":\"lower\",\"id\":10}\n\
                {\"ID\":2,\"name\":\"only lower\"}\n\
                {\"ID\":3,\"NAME\":\"only upper\"}\n";
    let status = c.commit_rows("c", "3", rows).await;
    assert_eq!(status["rows_error_count"], 0, "{status}");
    twins_stay_apart(&emu).await;
    emu.shutdown().await;
    let (emu, _c) = connected(config().with_data_dir(dir.path())).await;
    twins_stay_apart(&emu).await;
    emu.shutdown().await;
}

/// Three columns whose names fold to one (`"a"`, `A`, and `"A~1"`, the name the emulator
/// would give the second in SQLite) each take their own key and answer under their own name;
/// an unquoted `a` is `A`.
#[tokio::test]
async fn three_twins_keep_their_values_and_names() {
    let (emu, c) = connected(config()).await;
    let create = "CREATE TABLE C2 (\"a\" NUMBER, A NUMBER, \"A~1\" NUMBER)";
    let r = sql_statement(&emu, create, None, "").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let ct = c.open_on("C2-STREAMING", "c").await;
    let row = "{\"a\":1,\"A\":2,\"A~1\":3}\n";
    let status = c.append_on("C2-STREAMING", "c", &ct, "1", row).await;
    assert_eq!(status["rows_error_count"], 0, "{status}");
    let r = sql_statement(&emu, "SELECT \"a\", A, \"A~1\", a FROM C2", None, "").await;
    assert_eq!(r.body["data"], json!([["1", "2", "3", "2"]]), "{}", r.text);
    let r = sql_statement(&emu, "SELECT * FROM C2", None, "").await;
    let names = column_names(&r.body);
    assert_eq!(
        names,
        vec![json!("a"), json!("A"), json!("A~1")],
        "{}",
        r.text
    );
    assert_eq!(r.body["data"], json!([["1", "2", "3"]]), "{}", r.text);
    // The console's preview lists them under their own names.
    let state: Value = get_json(&format!("{}/console/state", emu.url())).await;
    let preview = &state["previews"]["DB.SCH.C2"];
    assert_eq!(preview["columns"], json!(["a", "A", "A~1"]), "{preview}");
    emu.shutdown().await;
}

/// Schema evolution under a case-sensitive pipe adds `"a"` beside `A` for a row's key `a`:
/// each key lands in its own column.
#[tokio::test]
async fn schema_evolution_adds_a_twin_that_keeps_its_values() {
    let (emu, c) = connected(config()).await;
    for statement in [
        "CREATE TABLE E (ID NUMBER, A NUMBER) ENABLE_SCHEMA_EVOLUTION = TRUE",
        "CREATE PIPE EP AS COPY INTO E FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING')) \
         MATCH_BY_COLUMN_NAME = CASE_SENSITIVE",
    ] {
        let r = sql_statement(&emu, statement, None, "").await;
        assert_eq!(r.status, 200, "{statement}: {}", r.text);
    }
    let ct = c.open_on("EP", "c").await;
    let rows = "{\"ID\":1,\"A\":10,\"a\":20}\n{\"ID\":2,\"a\":30}\n";
    let status = c.append_on("EP", "c", &ct, "2", rows).await;
    assert_eq!(status["rows_error_count"], 0, "{status}");
    let r = sql_statement(&emu, "SELECT ID, A, \"a\" FROM E ORDER BY ID", None, "").await;
    assert_eq!(
        r.body["data"],
        json!([["1", "10", "20"], ["2", null, "30"]]),
        "{}",
        r.text
    );
    emu.shutdown().await;
}

/// The twins of [`quoted_columns_that_differ_only_in_case_are_two_columns`], each its own.
async fn twins_stay_apart(emu: &snowpipe_emulator::Emulator) {
    let r = sql_statement(
        emu,
        "SELECT ID, NAME, \"name\", \"id\" FROM T ORDER BY ID",
        None,
        "",
    )
    .await;
    assert_eq!(
        r.body["data"],
        json!([
            ["1", "upper", "lower", "10"],
            ["2", null, "only lower", null],
            ["3", "only upper", null, null]
        ]),
        "{}",
        r.text
    );
    let names = column_names(&r.body);
    assert_eq!(
        names,
        vec![json!("ID"), json!("NAME"), json!("name"), json!("id")]
    );
    let r = sql_statement(emu, "SELECT * FROM T WHERE \"name\" = 'lower'", None, "").await;
    let names = column_names(&r.body);
    assert!(
        names.contains(&json!("NAME")) && names.contains(&json!("name")),
        "{}",
        r.text
    );
    assert_eq!(
        r.body["data"].as_array().map(Vec::len),
        Some(1),
        "{}",
        r.text
    );
    let r = sql_statement(emu, "SELECT COUNT(*) FROM T WHERE name = 'lower'", None, "").await;
    assert_eq!(
        r.body["data"],
        json!([["0"]]),
        "unquoted is NAME: {}",
        r.text
    );
}

/// A row with `DOC` twice (the second a forgery) is rejected as a row error; the rows around
/// it land; so is a row whose nested object repeats a key (a VARIANT's content: Snowflake's
/// JSON is strict at every depth; a forged `RECORD_METADATA` offset, issue 81).
#[tokio::test]
async fn a_row_naming_a_column_twice_is_a_row_error_not_its_last_copy() {
    let (emu, c) = connected(config()).await;
    let ndjson = "{\"ID\":1,\"DOC\":{\"offset\":1}}\n\
                  {\"ID\":2,\"DOC\":{\"offset\":2},\"DOC\":{\"offset\":0,\"forged\":true}}\n\
                  {\"ID\":3,\"D\\u004fC\":{\"offset\":0},\"DOC\":{\"offset\":3}}\n\
                  {\"ID\":4,\"DOC\":{\"k\":1,\"k\":2}}\n";
    let status = c.commit_rows("c", "4", ndjson).await;
    assert_eq!(status["rows_error_count"], 3, "{status}");
    let r = sql_statement(&emu, "SELECT ID, DOC::STRING FROM T ORDER BY ID", None, "").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["data"],
        json!([["1", "{\"offset\":1}"]]),
        "{}",
        r.text
    );
    emu.shutdown().await;
}

/// Two `INSERT OVERWRITE … QUALIFY` that overlap, with rows appended in between: a slow one
/// (its condition costs ~1 ms a row) starts first; a fast one runs to its end meanwhile and
/// frees the `rowid`s of the duplicates (the table's last rows); then 50 rows are appended,
/// which SQLite numbers with those `rowid`s. Evaluated on a reader and deleted later, the slow
/// one then deleted the 50 new rows by its stale `rowid`s. Every appended row must stay, and
/// each duplicated offset be left once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_overwrites_never_delete_rows_appended_meanwhile() {
    const DUPS: u32 = 50;
    const BASE: u32 = 1_500;
    let (emu, c) = connected(config()).await;
    let copy = |k: u32, n: u32| {
        format!(
            "{{\"ID\":{},\"DOC\":{{\"o\":{k},\"c\":{n}}}}}\n",
            1_000_000 + k
        )
    };
    let first: String = (0..DUPS).map(|k| copy(k, 1)).collect();
    let base: String = (0..BASE).map(|i| format!("{{\"ID\":{i}}}\n")).collect();
    let second: String = (0..DUPS).map(|k| copy(k, 2)).collect();
    c.commit_rows("a", "1", &first).await;
    c.commit_rows("b", "1", &base).await;
    c.commit_rows("c", "1", &second).await;
    let keep = "CAST(DOC:o AS NUMBER) IS NULL OR ROW_NUMBER() OVER (PARTITION BY \
                CAST(DOC:o AS NUMBER) ORDER BY CAST(DOC:c AS NUMBER)) = 1";
    let slow = format!(
        "INSERT OVERWRITE INTO T SELECT * FROM T QUALIFY ({keep}) AND \
         length(hex(zeroblob(150000 + ID % 2))) > 0"
    );
    let fast = format!("INSERT OVERWRITE INTO T SELECT * FROM T QUALIFY {keep}");
    let emu = std::sync::Arc::new(emu);
    let e = std::sync::Arc::clone(&emu);
    let slow = tokio::spawn(async move { sql_statement(&e, &slow, None, "").await });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let e = std::sync::Arc::clone(&emu);
    let fast = tokio::spawn(async move { sql_statement(&e, &fast, None, "").await });
    let appended: String = (0..DUPS)
        .map(|i| format!("{{\"ID\":{}}}\n", 2_000_000 + i))
        .collect();
    c.commit_rows("w", "1", &appended).await;
    let (slow, fast) = (slow.await.unwrap(), fast.await.unwrap());
    assert_eq!(
        (slow.status, fast.status),
        (200, 200),
        "{} {}",
        slow.text,
        fast.text
    );
    let r = sql_statement(
        &emu,
        "SELECT COUNT(*), COUNT(DISTINCT CAST(DOC:o AS NUMBER)), \
         SUM(CASE WHEN ID >= 2000000 THEN 1 ELSE 0 END) FROM T",
        None,
        "",
    )
    .await;
    assert_eq!(
        r.body["data"],
        json!([[
            (BASE + 2 * DUPS).to_string(),
            DUPS.to_string(),
            DUPS.to_string()
        ]]),
        "every appended row kept, each offset once: {}",
        r.text
    );
    std::sync::Arc::try_unwrap(emu)
        .ok()
        .unwrap()
        .shutdown()
        .await;
}

/// The names of a SQL answer's columns, in order.
fn column_names(body: &Value) -> Vec<Value> {
    body["resultSetMetaData"]["rowType"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].clone())
        .collect()
}
