//! Pipe transforms (docs/protocol-types-and-sql.md "Pipe transforms (emulator)"): the SELECT list of
//! `COPY INTO t (cols) FROM (SELECT … FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING')) [WHERE …])`
//! evaluated per row, casts that convert, `WHERE` filters, `METADATA$START_SCAN_TIME`, and
//! the DDL that is refused (unsupported expressions, missing or mismatched column lists).

use crate::common::*;
use serde_json::{json, Map, Value};
use snowpipe_emulator::catalog::{Catalog, CatalogError, StatementError};
use snowpipe_emulator::convert::{convert_row_for_pipe, ConvertOptions, RowError, SqlValue};

use SqlValue::{Integer, Null, Real};

/// A fixed ingestion time, so time-valued expressions are deterministic.
fn scan_time() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-03-04T05:06:07.123456789Z")
        .unwrap()
        .to_utc()
}

fn row(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

/// Loads `input` through a pipe that fills the one column `C <ty>` with `expr`.
fn load(expr: &str, ty: &str, input: Value) -> Result<Option<SqlValue>, RowError> {
    let mut catalog = Catalog::new();
    catalog
        .apply_sql(&format!(
            "CREATE DATABASE D; CREATE TABLE T (C {ty}); \
             CREATE PIPE P AS COPY INTO T (C) FROM (SELECT {expr} \
             FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING')))"
        ))
        .unwrap_or_else(|e| panic!("{expr}: {e}"));
    let options = ConvertOptions {
        scan_time: Some(scan_time()),
        ..ConvertOptions::default()
    };
    convert_row_for_pipe(
        catalog.table("D", "PUBLIC", "T").unwrap(),
        catalog.pipe_definition("D", "PUBLIC", "P").unwrap(),
        &row(input),
        &options,
    )
    .map(|values| values.map(|mut v| v.remove(0)))
}

fn text(s: &str) -> SqlValue {
    SqlValue::Text(s.into())
}

/// The refusal of `sql` (after a prelude declaring `D.PUBLIC.T (A INT, B VARCHAR)`).
fn refusal(sql: &str) -> (StatementError, String) {
    let mut catalog = Catalog::new();
    match catalog.apply_sql(&format!(
        "CREATE DATABASE D; CREATE TABLE T (A INT, B VARCHAR); {sql}"
    )) {
        Err(e @ CatalogError::Statement { .. }) => {
            let message = e.to_string();
            let CatalogError::Statement { kind, .. } = e else {
                unreachable!()
            };
            (kind, message)
        }
        other => panic!("{sql}: expected a statement error, got {other:?}"),
    }
}

const SOURCE: &str = "FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING'))";

#[test]
fn each_function_evaluates_on_a_table_of_inputs() {
    let cases: &[(&str, &str, Value, SqlValue)] = &[
        ("UPPER($1:s)", "VARCHAR", json!({"s": "abé"}), text("ABÉ")),
        ("LOWER($1:s)", "VARCHAR", json!({"s": "AbC"}), text("abc")),
        (
            "TRIM($1:s)",
            "VARCHAR",
            json!({"s": "  a b  "}),
            text("a b"),
        ),
        ("LTRIM($1:s)", "VARCHAR", json!({"s": "  a  "}), text("a  ")),
        ("RTRIM($1:s)", "VARCHAR", json!({"s": "  a  "}), text("  a")),
        (
            "TRIM($1:s, 'x-')",
            "VARCHAR",
            json!({"s": "x-ax-"}),
            text("a"),
        ),
        ("LENGTH($1:s)", "NUMBER", json!({"s": "héllo"}), Integer(5)),
        ("LEN($1:n)", "NUMBER", json!({"n": 1234}), Integer(4)),
        (
            "SUBSTR($1:s, 2, 3)",
            "VARCHAR",
            json!({"s": "abcdef"}),
            text("bcd"),
        ),
        (
            "SUBSTR($1:s, -3, 2)",
            "VARCHAR",
            json!({"s": "abcdef"}),
            text("de"),
        ),
        (
            "SUBSTRING($1:s, 3)",
            "VARCHAR",
            json!({"s": "abcdef"}),
            text("cdef"),
        ),
        (
            "CONCAT($1:a, '-', $1:b)",
            "VARCHAR",
            json!({"a": "x", "b": 2}),
            text("x-2"),
        ),
        (
            "CONCAT($1:a, $1:missing)",
            "VARCHAR",
            json!({"a": "x"}),
            Null,
        ),
        (
            "$1:a || '/' || $1:b",
            "VARCHAR",
            json!({"a": "x", "b": true}),
            text("x/true"),
        ),
        (
            "REPLACE($1:s, 'a', 'o')",
            "VARCHAR",
            json!({"s": "banana"}),
            text("bonono"),
        ),
        (
            "REPLACE($1:s, 'b')",
            "VARCHAR",
            json!({"s": "abc"}),
            text("ac"),
        ),
        (
            "COALESCE($1:missing, $1:b, 'z')",
            "VARCHAR",
            json!({"b": "y"}),
            text("y"),
        ),
        ("NVL($1:missing, 'd')", "VARCHAR", json!({}), text("d")),
        (
            "IFF($1:n > 10, 'big', 'small')",
            "VARCHAR",
            json!({"n": 11}),
            text("big"),
        ),
        (
            "IFF($1:n > 10, 'big', 'small')",
            "VARCHAR",
            json!({"n": "9"}),
            text("small"),
        ),
        (
            "CASE WHEN $1:n < 0 THEN 'neg' WHEN $1:n = 0 THEN 'zero' ELSE 'pos' END",
            "VARCHAR",
            json!({"n": 0}),
            text("zero"),
        ),
        (
            "CASE $1:s WHEN 'a' THEN 1 ELSE 2 END",
            "NUMBER",
            json!({"s": "a"}),
            Integer(1),
        ),
        (
            "CASE $1:s WHEN 'a' THEN 1 END",
            "NUMBER",
            json!({"s": "b"}),
            Null,
        ),
        (
            "NULLIF($1:s, 'none')",
            "VARCHAR",
            json!({"s": "none"}),
            Null,
        ),
        (
            "NULLIF($1:s, 'none')",
            "VARCHAR",
            json!({"s": "x"}),
            text("x"),
        ),
        (
            "TRY_CAST($1:s AS NUMBER)",
            "NUMBER",
            json!({"s": "abc"}),
            Null,
        ),
        (
            "TRY_CAST($1:s AS INT)",
            "NUMBER",
            json!({"s": "12"}),
            Integer(12),
        ),
        (
            "TO_VARCHAR($1:n)",
            "VARCHAR",
            json!({"n": 12.5}),
            text("12.5"),
        ),
        (
            "TO_CHAR($1:b)",
            "VARCHAR",
            json!({"b": false}),
            text("false"),
        ),
        (
            "TO_NUMBER($1:s, 10, 2)",
            "VARCHAR",
            json!({"s": "3.14159"}),
            text("3.14"),
        ),
        ("TRY_TO_NUMBER($1:s)", "NUMBER", json!({"s": "x"}), Null),
        ("TO_DOUBLE($1:s)", "FLOAT", json!({"s": "1.5"}), Real(1.5)),
        (
            "TO_BOOLEAN($1:s)",
            "BOOLEAN",
            json!({"s": "yes"}),
            Integer(1),
        ),
        (
            "TO_DATE($1:s)",
            "VARCHAR",
            json!({"s": "2024-03-05T10:00:00"}),
            text("2024-03-05"),
        ),
        (
            "TO_TIMESTAMP($1:s)",
            "VARCHAR",
            json!({"s": "2024-03-05T10:00:00.5"}),
            text("2024-03-05 10:00:00.500000000"),
        ),
        (
            "TO_TIMESTAMP_LTZ($1:s)",
            "TIMESTAMP_LTZ",
            json!({"s": "2024-03-05T10:00:00+02:00"}),
            text("2024-03-05 08:00:00.000000000Z"),
        ),
        (
            "TRY_TO_DATE($1:s)",
            "DATE",
            json!({"s": "not a date"}),
            Null,
        ),
        (
            "PARSE_JSON($1:s)",
            "VARIANT",
            json!({"s": "{\"a\": [1, 2]}"}),
            text(r#"{"a":[1,2]}"#),
        ),
        ("PARSE_JSON($1:s):a", "VARIANT", json!({"s": "{}"}), Null),
        ("TRY_PARSE_JSON($1:s)", "VARIANT", json!({"s": "{"}), Null),
        ("ABS(-$1:n)", "NUMBER(10,2)", json!({"n": 2.5}), Real(2.5)),
        ("ROUND($1:n, 1)", "VARCHAR", json!({"n": 2.45}), text("2.5")),
        ("ROUND($1:n)", "VARCHAR", json!({"n": -2.5}), text("-3")),
        (
            "ROUND($1:n, -2)",
            "NUMBER",
            json!({"n": 1250}),
            Integer(1300),
        ),
        (
            "$1:price * $1:qty",
            "VARCHAR",
            json!({"price": 1.1, "qty": 3}),
            text("3.3"),
        ),
        (
            "$1:price * $1:qty",
            "VARCHAR",
            json!({"price": "1.10", "qty": 3}),
            text("3.30"),
        ),
        (
            "$1:a / $1:b",
            "VARCHAR",
            json!({"a": 1, "b": 3}),
            text("0.333333"),
        ),
        (
            "$1:a - $1:b + 1",
            "NUMBER",
            json!({"a": 10, "b": 3}),
            Integer(8),
        ),
        (
            "$1:a % $1:b",
            "NUMBER",
            json!({"a": 10, "b": 3}),
            Integer(1),
        ),
        ("$1:x * 0.5", "FLOAT", json!({"x": 1e3}), Real(500.0)),
        (
            "$1:n BETWEEN 1 AND 5",
            "BOOLEAN",
            json!({"n": 5}),
            Integer(1),
        ),
        (
            "$1:n NOT BETWEEN 1 AND 5",
            "BOOLEAN",
            json!({"n": 5}),
            Integer(0),
        ),
        (
            "$1:s IN ('a', 'b')",
            "BOOLEAN",
            json!({"s": "b"}),
            Integer(1),
        ),
        ("$1:n IN (1, 2)", "BOOLEAN", json!({"n": "2"}), Integer(1)),
        (
            "$1:s LIKE 'a%c'",
            "BOOLEAN",
            json!({"s": "abbc"}),
            Integer(1),
        ),
        (
            "$1:s LIKE 'a_c'",
            "BOOLEAN",
            json!({"s": "abbc"}),
            Integer(0),
        ),
        (
            "$1:s ILIKE 'A_C'",
            "BOOLEAN",
            json!({"s": "abc"}),
            Integer(1),
        ),
        (
            "NOT $1:b AND $1:n >= 2",
            "BOOLEAN",
            json!({"b": false, "n": 2}),
            Integer(1),
        ),
        ("$1:b OR $1:missing", "BOOLEAN", json!({"b": false}), Null),
        ("$1:missing IS NULL", "BOOLEAN", json!({}), Integer(1)),
        // A JSON null is a VARIANT null, which IS NULL does not match (as in Snowflake).
        ("$1:n IS NULL", "BOOLEAN", json!({"n": null}), Integer(0)),
        ("$1:s <> 'x'", "BOOLEAN", json!({"s": "y"}), Integer(1)),
        ("$1:n > '9'", "BOOLEAN", json!({"n": 10}), Integer(1)),
        (
            "$1:ts::TIMESTAMP_NTZ > '2024-01-01'",
            "BOOLEAN",
            json!({"ts": "2024-01-02 00:00:00"}),
            Integer(1),
        ),
        (
            "$1:\"Odd Key\".list[1]",
            "NUMBER",
            json!({"Odd Key": {"list": [5, 6]}}),
            Integer(6),
        ),
        ("$1['k'].v", "VARCHAR", json!({"k": {"v": "x"}}), text("x")),
        (
            "s.$1:k",
            "VARCHAR",
            json!({"k": "aliased"}),
            text("aliased"),
        ),
        ("'lit'", "VARCHAR", json!({}), text("lit")),
        ("42", "NUMBER", json!({}), Integer(42)),
        ("NULL", "NUMBER", json!({}), Null),
        (
            "CURRENT_TIMESTAMP()",
            "TIMESTAMP_LTZ",
            json!({}),
            text("2026-03-04 05:06:07.123456789Z"),
        ),
        ("CURRENT_DATE", "DATE", json!({}), text("2026-03-04")),
    ];
    for (expr, ty, input, expected) in cases {
        let got = load(expr, ty, input.clone());
        assert_eq!(
            got,
            Ok(Some(expected.clone())),
            "{expr} on {input} into {ty}"
        );
    }
}

#[test]
fn expressions_that_cannot_be_computed_are_row_errors_naming_the_column() {
    for (expr, input, message) in [
        (
            "$1:s + 1",
            json!({"s": "abc"}),
            "Numeric value 'abc' is not recognized",
        ),
        ("$1:a / $1:b", json!({"a": 1, "b": 0}), "Division by zero"),
        ("PARSE_JSON($1:s)", json!({"s": "{"}), "Error parsing JSON"),
        ("$1:s::NUMBER(3,1)", json!({"s": "123.4"}), "out of range"),
        (
            "IFF($1:s, 1, 2)",
            json!({"s": "maybe"}),
            "Boolean value 'maybe' is not recognized",
        ),
    ] {
        let error = load(expr, "VARCHAR", input.clone()).unwrap_err();
        assert_eq!(error.column.as_deref(), Some("C"), "{expr}");
        assert!(error.message.contains(message), "{expr}: {}", error.message);
    }
}

#[test]
fn casts_convert_and_round_like_a_column_of_that_type() {
    let cases: &[(&str, &str, Value, SqlValue)] = &[
        // Rounded half away from zero to the cast's scale, then stored at the column's.
        (
            "$1:a::NUMBER(10,2)",
            "VARCHAR",
            json!({"a": 1.005}),
            text("1.01"),
        ),
        (
            "$1:a::NUMBER(10,2)",
            "VARCHAR",
            json!({"a": "-2.345"}),
            text("-2.35"),
        ),
        (
            "$1:a::NUMBER(10,2)",
            "NUMBER(10,4)",
            json!({"a": "1.23456"}),
            Real(1.23),
        ),
        ("CAST($1:a AS INT)", "VARCHAR", json!({"a": 2.5}), text("3")),
        (
            "$1:a::NUMBER",
            "NUMBER(10,2)",
            json!({"a": "7.6"}),
            Real(8.0),
        ),
        ("$1:a::FLOAT", "VARCHAR", json!({"a": "0.25"}), text("0.25")),
        (
            "$1:ts::DATE",
            "VARCHAR",
            json!({"ts": "2024-01-02 23:59:59"}),
            text("2024-01-02"),
        ),
        (
            "$1:ts::TIMESTAMP_NTZ(3)",
            "VARCHAR",
            json!({"ts": "2024-01-02T03:04:05.123456"}),
            text("2024-01-02 03:04:05.123000000"),
        ),
        (
            "$1:s::BOOLEAN",
            "VARCHAR",
            json!({"s": "yes"}),
            text("true"),
        ),
        (
            "$1:o::VARIANT",
            "VARCHAR",
            json!({"o": {"k": 1}}),
            text(r#"{"k":1}"#),
        ),
        (
            "$1:n::VARCHAR || 'x'",
            "VARCHAR",
            json!({"n": 10}),
            text("10x"),
        ),
    ];
    for (expr, ty, input, expected) in cases {
        assert_eq!(
            load(expr, ty, input.clone()),
            Ok(Some(expected.clone())),
            "{expr} on {input} into {ty}"
        );
    }
    // A cast the value does not fit is a row error, as the column would refuse it.
    let error = load("$1:a::NUMBER(3,1)", "VARCHAR", json!({"a": 123.45})).unwrap_err();
    assert_eq!(error.column.as_deref(), Some("C"));
}

#[test]
fn metadata_start_scan_time_is_the_ingestion_time() {
    assert_eq!(
        load("METADATA$START_SCAN_TIME", "TIMESTAMP_LTZ(3)", json!({})),
        Ok(Some(text("2026-03-04 05:06:07.123000000Z")))
    );
    assert_eq!(
        load("metadata$start_scan_time::DATE", "VARCHAR", json!({})),
        Ok(Some(text("2026-03-04")))
    );
}

#[test]
fn a_where_clause_drops_rows_that_do_not_match() {
    let mut catalog = Catalog::new();
    catalog
        .apply_sql(&format!(
            "CREATE DATABASE D; CREATE TABLE T (ID INT, LEVEL VARCHAR);
             CREATE PIPE P AS COPY INTO T (ID, LEVEL) FROM (
                 SELECT $1:id, UPPER($1:level) AS LVL {SOURCE} s
                 WHERE LVL IN ('WARN', 'ERROR') AND s.$1:id > 1);"
        ))
        .unwrap();
    let table = catalog.table("D", "PUBLIC", "T").unwrap();
    let pipe = catalog.pipe_definition("D", "PUBLIC", "P").unwrap();
    let options = ConvertOptions::default();
    for (input, kept) in [
        (json!({"id": 2, "level": "warn"}), true),
        (json!({"id": 2, "level": "info"}), false),
        (json!({"id": 1, "level": "error"}), false),
        // NULL is not TRUE: the row is dropped.
        (json!({"level": "error"}), false),
    ] {
        let result = convert_row_for_pipe(table, pipe, &row(input.clone()), &options).unwrap();
        assert_eq!(result.is_some(), kept, "{input}");
    }
    // A predicate that cannot be computed is a row error without a column.
    let error = convert_row_for_pipe(
        table,
        pipe,
        &row(json!({"id": "x", "level": "warn"})),
        &options,
    )
    .unwrap_err();
    assert_eq!(error.column, None);
    assert!(
        error.message.starts_with("WHERE: Numeric value 'x'"),
        "{error}"
    );
}

#[test]
fn unsupported_expressions_are_refused_when_the_pipe_is_created() {
    for (select, named) in [
        ("CURRENT_USER()", "CURRENT_USER()"),
        ("UUID_STRING()", "UUID_STRING()"),
        ("$2", "$2"),
        ("METADATA$FILENAME", "METADATA$FILENAME"),
        ("a", "a"),
        ("$1:a::BINARY", "BINARY"),
        ("TO_DATE($1:a, 'YYYY-MM-DD')", "TO_DATE"),
        ("ROW_NUMBER() OVER (ORDER BY 1)", "ROW_NUMBER"),
        ("$1:a LIKE ANY ('x%')", "LIKE ANY"),
        ("*", "*"),
    ] {
        let (kind, message) = refusal(&format!(
            "CREATE PIPE P AS COPY INTO T (A) FROM (SELECT {select} {SOURCE})"
        ));
        assert!(
            matches!(kind, StatementError::Compilation(_)),
            "{select}: {kind:?}"
        );
        assert!(message.contains(named), "{select}: {message}");
        assert!(
            message.contains("SQL compilation error") && message.contains("$1"),
            "{select}: {message}"
        );
    }
    // In the WHERE clause too.
    let (kind, message) = refusal(&format!(
        "CREATE PIPE P AS COPY INTO T (A) FROM (SELECT $1:a {SOURCE} WHERE RANDOM() > 0)"
    ));
    assert!(matches!(kind, StatementError::Compilation(_)), "{kind:?}");
    assert!(message.contains("RANDOM"), "{message}");
}

#[test]
fn transforms_need_the_column_lists_snowflake_requires() {
    // A WHERE or a computed item needs COPY INTO t (cols).
    for select in [
        format!("SELECT $1:a, $1:b {SOURCE} WHERE $1:a > 1"),
        format!("SELECT $1:a, UPPER($1:b) {SOURCE}"),
    ] {
        let (kind, message) = refusal(&format!("CREATE PIPE P AS COPY INTO T FROM ({select})"));
        assert!(
            matches!(&kind, StatementError::Compilation(m) if m.contains("explicit column list")),
            "{select}: {kind:?}"
        );
        assert!(
            message.contains("COPY INTO D.PUBLIC.T (c1, c2, ...)"),
            "{message}"
        );
    }
    // As many columns as SELECT items, with Snowflake's message.
    let (kind, _) = refusal(&format!(
        "CREATE PIPE P AS COPY INTO T (A, B) FROM (SELECT UPPER($1:b) {SOURCE})"
    ));
    assert_eq!(
        kind,
        StatementError::Compilation(
            "Insert value list does not match column list expecting 2 but got 1".into()
        )
    );
    // A plain projection of $1 paths may fill the table's columns in order (Snowflake's
    // CREATE PIPE example), with or without casts.
    let mut catalog = Catalog::new();
    catalog
        .apply_sql(&format!(
            "CREATE DATABASE D; CREATE TABLE T (A INT, B VARCHAR);
             CREATE PIPE P AS COPY INTO T FROM (SELECT $1:a::INT, $1:b {SOURCE});"
        ))
        .unwrap();
}

/// Over the REST API: a WHERE pipe stores only the rows it keeps, and the channel counts the
/// dropped rows as parsed, neither inserted nor errors.
#[tokio::test]
async fn a_filtering_pipe_stores_and_counts_only_the_rows_it_keeps() {
    let ddl = format!(
        "USE SCHEMA DB.SCH;
         CREATE OR REPLACE TABLE L (ID NUMBER, MSG VARCHAR, AT TIMESTAMP_LTZ);
         CREATE OR REPLACE PIPE WARNINGS AS COPY INTO L (ID, MSG, AT) FROM (
             SELECT $1:id, UPPER(TRIM($1:msg)), METADATA$START_SCAN_TIME
             {SOURCE} WHERE $1:level IN ('warn', 'error'));"
    );
    let (emu, c) = connected(crate::common::config().with_ddl(&ddl)).await;
    let before = chrono::Utc::now();
    let ct = c.open_on("WARNINGS", "w").await;
    let status = c
        .append_on(
            "WARNINGS",
            "w",
            &ct,
            "4",
            "{\"id\":1,\"level\":\"info\",\"msg\":\"a\"}\n\
             {\"id\":2,\"level\":\"warn\",\"msg\":\" disk \"}\n\
             {\"id\":\"x\",\"level\":\"error\",\"msg\":\"bad id\"}\n\
             {\"id\":4,\"level\":\"error\",\"msg\":\"down\"}\n",
        )
        .await;
    let after = chrono::Utc::now();
    assert_eq!(status["rows_parsed"], json!(4), "{status}");
    assert_eq!(status["rows_inserted"], json!(2), "{status}");
    assert_eq!(status["rows_error_count"], json!(1), "{status}");
    let rows = emu
        .query("SELECT ID, MSG, AT FROM \"DB.SCH.L\" ORDER BY ID")
        .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!((&rows[0][0], &rows[0][1]), (&json!(2), &json!("DISK")));
    assert_eq!((&rows[1][0], &rows[1][1]), (&json!(4), &json!("DOWN")));
    let at = rows[0][2].as_str().unwrap();
    let at =
        chrono::NaiveDateTime::parse_from_str(at.trim_end_matches('Z'), "%Y-%m-%d %H:%M:%S%.f")
            .unwrap_or_else(|e| panic!("{at}: {e}"))
            .and_utc();
    assert!(before <= at && at <= after, "{before} <= {at} <= {after}");
    emu.shutdown().await;
}
