//! Every output prints NUMBER(p,s) exactly at its column's scale and BINARY as upper-case hex
//!: `Emulator::query`, `snowpipe-emulator query`, the console's table previews and
//! the SQL API. Before, the first three printed a NUMBER stored as a double in shortest form
//! (`3194301642615.2778` in a DECIMAL(18,4) came out as `3194301642615.278`).

use crate::common::*;
use serde_json::{json, Value};
use snowpipe_emulator::{Emulator, EmulatorConfig};

/// `T` and `P` as the common client expects, with the issue's column types.
const DDL: &str = "
CREATE DATABASE IF NOT EXISTS DB;
CREATE SCHEMA IF NOT EXISTS SCH;
CREATE OR REPLACE TABLE T (ID NUMBER, D DECIMAL(18,4), U NUMBER(20,0), B BINARY, F FLOAT);
CREATE OR REPLACE PIPE P AS COPY INTO T FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING')) MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE;
";

/// The issue's two values, an ordinary row and a NULL row.
const ROWS: &str = r#"{"ID":1,"D":"3194301642615.2778","U":"18446744073709551615","B":"00ff10","F":0.1}
{"ID":2,"D":"12.5","U":"7","B":"","F":2}
{"ID":3}
"#;

fn cfg() -> EmulatorConfig {
    EmulatorConfig::for_tests()
        .with_ddl(DDL)
        .with_public_key(keys(0).1)
}

async fn with_rows(config: EmulatorConfig, ndjson: &str, last: &str) -> Emulator {
    let (emu, c) = connected(config).await;
    c.commit_rows("c", last, ndjson).await;
    emu
}

/// Runs `statement` through the SQL API in `DB.SCH` and returns the answer (HTTP 200).
async fn sql(emu: &Emulator, statement: &str) -> Value {
    let r = sql_statement(emu, statement, None, "").await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

#[tokio::test]
async fn emulator_query_gives_numbers_at_their_scale_and_binary_as_hex() {
    let emu = with_rows(cfg(), ROWS, "3").await;
    assert_query(
        &emu,
        r#"SELECT ID, D, U, B, F FROM "DB.SCH.T" ORDER BY ID"#,
        vec![
            vec![
                json!(1),
                json!("3194301642615.2778"),
                json!(18_446_744_073_709_551_615_u64),
                json!("00FF10"),
                json!(0.1),
            ],
            vec![json!(2), json!("12.5000"), json!(7), json!(""), json!(2.0)],
            vec![json!(3), Value::Null, Value::Null, Value::Null, Value::Null],
        ],
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn the_sql_api_prints_the_same_text() {
    let emu = with_rows(cfg(), ROWS, "3").await;
    let answer = sql(&emu, "SELECT D, U, B FROM T ORDER BY ID").await;
    assert_eq!(
        answer["data"],
        json!([
            ["3194301642615.2778", "18446744073709551615", "00FF10"],
            ["12.5000", "7", ""],
            [null, null, null]
        ])
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn the_console_previews_show_exact_text() {
    let emu = with_rows(cfg(), ROWS, "3").await;
    let state: Value = get_json(&format!("{}/console/state", emu.url())).await;
    let preview = &state["previews"]["DB.SCH.T"];
    assert_eq!(preview["columns"], json!(["ID", "D", "U", "B", "F"]));
    assert_eq!(preview["numeric"], json!([true, true, true, false, true]));
    // Latest rows first; numbers as text, so the page cannot round them.
    assert_eq!(
        preview["rows"],
        json!([
            ["3", null, null, null, null],
            ["2", "12.5000", "7", "", "2.0"],
            [
                "1",
                "3194301642615.2778",
                "18446744073709551615",
                "00FF10",
                "0.1"
            ]
        ])
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn the_query_command_prints_exact_text_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let emu = with_rows(cfg().with_data_dir(dir.path()), ROWS, "3").await;
    emu.shutdown().await;
    let run = |format: &str| {
        let dir = dir.path().to_str().unwrap();
        run_bin(&[
            "query",
            "--data-dir",
            dir,
            "--format",
            format,
            r#"SELECT ID, D, U, B FROM "DB.SCH.T" ORDER BY ID"#,
        ])
    };
    assert_eq!(
        run("table"),
        "ID\tD\tU\tB\n\
         1\t3194301642615.2778\t18446744073709551615\t00FF10\n\
         2\t12.5000\t7\t\n\
         3\tNULL\tNULL\tNULL\n"
    );
    assert_eq!(
        run("csv"),
        "ID,D,U,B\n\
         1,3194301642615.2778,18446744073709551615,00FF10\n\
         2,12.5000,7,\n\
         3,NULL,NULL,NULL\n"
    );
    assert_eq!(
        run("json"),
        "[1,\"3194301642615.2778\",18446744073709551615,\"00FF10\"]\n\
         [2,\"12.5000\",7,\"\"]\n\
         [3,null,null,null]\n"
    );
}

/// Comparisons, `ORDER BY` and `SUM` over a DECIMAL(18,4) column still work as numbers:
/// values a double holds exactly at the scale are stored as numbers (see `convert/`).
#[tokio::test]
async fn decimals_still_compare_sort_and_sum_as_numbers_in_the_sql_api() {
    let values = [
        "12.5",
        "-0.0001",
        "3194301642615.2778",
        "9",
        "100000",
        "-250.75",
        "0.5",
        "12.4999",
    ];
    let ndjson: String = values
        .iter()
        .enumerate()
        .map(|(i, d)| format!("{{\"ID\":{i},\"D\":\"{d}\"}}\n"))
        .collect();
    let emu = with_rows(cfg(), &ndjson, "7").await;
    let ordered = sql(&emu, "SELECT D FROM T ORDER BY D").await;
    assert_eq!(
        ordered["data"],
        json!([
            ["-250.7500"],
            ["-0.0001"],
            ["0.5000"],
            ["9.0000"],
            ["12.4999"],
            ["12.5000"],
            ["100000.0000"],
            ["3194301642615.2778"]
        ])
    );
    let equal = sql(&emu, "SELECT ID, D FROM T WHERE D = 12.5").await;
    assert_eq!(equal["data"], json!([["0", "12.5000"]]));
    let greater = sql(&emu, "SELECT COUNT(*) FROM T WHERE D > 9 AND D < 100000").await;
    assert_eq!(greater["data"], json!([["2"]]));
    let sum = sql(&emu, "SELECT SUM(D) FROM T WHERE ABS(D) < 1000").await;
    let total: f64 = sum["data"][0][0].as_str().unwrap().parse().unwrap();
    assert!((total - (12.5 - 0.0001 + 9.0 - 250.75 + 0.5 + 12.4999)).abs() < 1e-9);
    let ids = emu
        .query(r#"SELECT ID FROM "DB.SCH.T" WHERE D = 3194301642615.2778"#)
        .unwrap();
    assert_eq!(ids, vec![vec![json!(2)]]);
    emu.shutdown().await;
}
