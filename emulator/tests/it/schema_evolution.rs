//! Schema evolution (docs/protocol-types-and-sql.md "Table features"): on a table with
//! `ENABLE_SCHEMA_EVOLUTION = TRUE`, an append's new fields become columns (typed from their
//! values) and `NOT NULL` is dropped from columns rows leave empty; other tables drop unknown
//! fields as before.

use crate::common::*;
use serde_json::{json, Value};
use snowpipe_emulator::{Emulator, EmulatorConfig};

const EVOLUTION_DDL: &str = "
USE SCHEMA DB.SCH;
CREATE OR REPLACE TABLE EV (ID NUMBER, REQ VARCHAR NOT NULL) ENABLE_SCHEMA_EVOLUTION = TRUE;
CREATE OR REPLACE TABLE FIXED (ID NUMBER, REQ VARCHAR NOT NULL);
";

fn cfg() -> EmulatorConfig {
    config().with_ddl(EVOLUTION_DDL)
}

/// `table`'s default pipe.
fn default_pipe(table: &str) -> String {
    format!("{table}-STREAMING")
}

/// Opens channel `c1` on `table`'s default pipe and appends `ndjson` up to end token `end`;
/// returns the channel's status once `end` is committed.
async fn append_to(c: &Client, table: &str, end: &str, ndjson: &str) -> Value {
    let pipe = default_pipe(table);
    let ct = c.open_on(&pipe, "c1").await;
    c.append_on(&pipe, "c1", &ct, end, ndjson).await
}

/// The SQLite table's columns and declared types, in table order.
fn columns(emu: &Emulator, table: &str) -> Vec<(String, String)> {
    emu.query(&format!(
        "SELECT name, type FROM pragma_table_info('DB.SCH.{table}') ORDER BY cid"
    ))
    .unwrap()
    .into_iter()
    .map(|r| {
        (
            r[0].as_str().unwrap().to_owned(),
            r[1].as_str().unwrap().to_owned(),
        )
    })
    .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect()
}

const NEW_FIELDS: &str = concat!(
    r#"{"ID":1,"REQ":"a","color":"red","Size":3,"ratio":0.5,"ok":true,"#,
    r#""tags":["x","y"],"meta":{"k":1},"nothing":null}"#,
    "\n",
    r#"{"ID":2,"REQ":"b","COLOR":"blue","size":4,"ratio":2}"#,
    "\n",
);

#[tokio::test]
async fn new_fields_become_typed_columns_whose_values_land() {
    let (emu, c) = connected(cfg()).await;
    let status = append_to(&c, "EV", "1", NEW_FIELDS).await;
    assert_eq!(status["rows_error_count"], json!(0), "{status}");
    // Upper-cased names, types from the first non-null value (docs/protocol-types-and-sql.md "Table
    // features"), and no column for a field that was only ever null. The new columns follow
    // the declared ones, in the order the rows' fields came.
    let mut cols = columns(&emu, "EV");
    assert_eq!(
        cols[..2],
        pairs(&[("ID", "NUMBER(38,0)"), ("REQ", "VARCHAR")])
    );
    cols.sort();
    assert_eq!(
        cols,
        pairs(&[
            ("COLOR", "VARCHAR"),
            ("ID", "NUMBER(38,0)"),
            ("META", "VARIANT"),
            ("OK", "BOOLEAN"),
            ("RATIO", "FLOAT"),
            ("REQ", "VARCHAR"),
            ("SIZE", "NUMBER(38,0)"),
            ("TAGS", "VARIANT"),
        ])
    );
    assert_eq!(
        emu.query("SELECT ID, COLOR, SIZE, RATIO, OK, TAGS, META FROM \"DB.SCH.EV\" ORDER BY ID")
            .unwrap(),
        vec![
            vec![
                json!(1),
                json!("red"),
                json!(3),
                json!(0.5),
                json!(1),
                json!(r#"["x","y"]"#),
                json!(r#"{"k":1}"#),
            ],
            vec![
                json!(2),
                json!("blue"),
                json!(4),
                json!(2.0),
                Value::Null,
                Value::Null,
                Value::Null,
            ],
        ]
    );
    // The SQL API reads the new columns with their types.
    let r = sql_statement(
        &emu,
        "SELECT ID, COLOR, SIZE, OK FROM EV ORDER BY ID",
        None,
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["data"],
        json!([["1", "red", "3", "true"], ["2", "blue", "4", null]])
    );
    let types: Vec<&str> = r.body["resultSetMetaData"]["rowType"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["fixed", "text", "fixed", "boolean"]);
    emu.shutdown().await;
}

#[tokio::test]
async fn without_schema_evolution_unknown_fields_are_dropped() {
    let (emu, c) = connected(cfg()).await;
    let status = append_to(&c, "FIXED", "1", NEW_FIELDS).await;
    assert_eq!(status["rows_error_count"], json!(0), "{status}");
    assert_eq!(
        columns(&emu, "FIXED"),
        pairs(&[("ID", "NUMBER(38,0)"), ("REQ", "VARCHAR")])
    );
    assert_eq!(
        emu.query("SELECT ID, REQ FROM \"DB.SCH.FIXED\" ORDER BY ID")
            .unwrap(),
        vec![vec![json!(1), json!("a")], vec![json!(2), json!("b")]]
    );
    // A row without its NOT NULL column is still an error there.
    let status = append_to(&c, "FIXED", "2", "{\"ID\":3}\n").await;
    assert_eq!(status["rows_error_count"], json!(1), "{status}");
    emu.shutdown().await;
}

#[tokio::test]
async fn a_row_leaving_a_not_null_column_empty_drops_not_null() {
    let (emu, c) = connected(cfg()).await;
    let rows = "{\"ID\":1}\n{\"ID\":2,\"REQ\":null}\n{\"ID\":3,\"REQ\":\"x\"}\n";
    let status = append_to(&c, "EV", "1", rows).await;
    assert_eq!(status["rows_error_count"], json!(0), "{status}");
    assert_eq!(
        emu.query("SELECT ID, REQ FROM \"DB.SCH.EV\" ORDER BY ID")
            .unwrap(),
        vec![
            vec![json!(1), Value::Null],
            vec![json!(2), Value::Null],
            vec![json!(3), json!("x")],
        ]
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn evolved_columns_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (emu, c) = connected(cfg().with_data_dir(dir.path())).await;
    append_to(&c, "EV", "1", "{\"ID\":1,\"color\":\"red\"}\n").await;
    emu.shutdown().await;

    let emu = Emulator::start(cfg().with_data_dir(dir.path()))
        .await
        .unwrap();
    assert_eq!(
        columns(&emu, "EV"),
        pairs(&[
            ("ID", "NUMBER(38,0)"),
            ("REQ", "VARCHAR"),
            ("COLOR", "VARCHAR"),
        ])
    );
    // The catalog knows the column again: values land in it without another evolution, and
    // NOT NULL stays dropped.
    let c = Client::connect(&emu).await;
    let status = append_to(&c, "EV", "2", "{\"ID\":2,\"COLOR\":\"blue\"}\n").await;
    assert_eq!(status["rows_error_count"], json!(0), "{status}");
    assert_eq!(
        emu.query("SELECT ID, COLOR FROM \"DB.SCH.EV\" ORDER BY ID")
            .unwrap(),
        vec![vec![json!(1), json!("red")], vec![json!(2), json!("blue")]]
    );
    let r = sql_statement(&emu, "SELECT COLOR FROM EV ORDER BY ID", None, "").await;
    assert_eq!(r.body["data"], json!([["red"], ["blue"]]), "{}", r.text);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_channels_bringing_the_same_field_add_one_column() {
    let (emu, c) = connected(cfg()).await;
    const ROUNDS: u32 = 5;
    let channel = |name: &'static str, base: u32| {
        let c = &c;
        async move {
            let mut ct = c.open_on(&default_pipe("EV"), name).await;
            for round in 0..ROUNDS {
                let id = base + round;
                // Each round brings a field neither channel has sent before.
                let line = format!("{{\"ID\":{id},\"REQ\":\"r\",\"f{round}\":{id}}}\n");
                c.append_on(&default_pipe("EV"), name, &ct, &round.to_string(), &line)
                    .await;
                ct = c.open_on(&default_pipe("EV"), name).await;
            }
        }
    };
    tokio::join!(channel("a", 100), channel("b", 200));
    let mut cols: Vec<String> = columns(&emu, "EV").into_iter().map(|(n, _)| n).collect();
    cols.sort();
    assert_eq!(cols, ["F0", "F1", "F2", "F3", "F4", "ID", "REQ"]);
    for round in 0..ROUNDS {
        let landed = emu
            .query(&format!(
                "SELECT ID, F{round} FROM \"DB.SCH.EV\" WHERE F{round} IS NOT NULL ORDER BY ID"
            ))
            .unwrap();
        let (a, b) = (100 + round, 200 + round);
        assert_eq!(
            landed,
            vec![vec![json!(a), json!(a)], vec![json!(b), json!(b)]],
            "round {round}"
        );
    }
    emu.shutdown().await;
}
