//! Sink mode (`--sink`: rows counted, not stored) answers what a client asks before and beside
//! its appends, as normal mode does: DDL (a table created, a column added), `SHOW TABLES`,
//! `DESCRIBE`, and `SELECT … LIMIT 0` with the table's columns and types; appends to the new
//! table are counted. A query that would read rows is refused naming sink mode and the fix,
//! never answered "0 rows"; so is `INSERT OVERWRITE`.

use crate::common::*;
use serde_json::Value;
use snowpipe_emulator::Emulator;

/// The result columns of an answer: (name, type).
fn columns(r: &Resp) -> Vec<(String, String)> {
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["resultSetMetaData"]["rowType"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn sink_mode_answers_ddl_show_describe_and_limit_0_and_refuses_row_queries() {
    let (mut stored_cfg, mut sink_cfg) = (config(), config());
    sink_cfg.sink = true;
    stored_cfg.sink = false;
    let sink = Emulator::start(sink_cfg).await.unwrap();
    let stored = Emulator::start(stored_cfg).await.unwrap();
    for emu in [&sink, &stored] {
        for ddl in [
            "CREATE TABLE IF NOT EXISTS EVENTS (ID NUMBER(20,0), NOTE VARCHAR, AT TIMESTAMP_NTZ)",
            "ALTER TABLE EVENTS ADD COLUMN DOC VARIANT",
        ] {
            let r = sql_statement(emu, ddl, None, "").await;
            assert_eq!(r.status, 200, "{ddl}: {}", r.text);
        }
    }
    // The columns of a LIMIT 0, as the storing emulator answers them.
    for q in [
        "SELECT * FROM EVENTS LIMIT 0",
        "select ID, DOC from DB.SCH.EVENTS where ID > 3 order by ID limit 0",
    ] {
        let (a, b) = (
            sql_statement(&sink, q, None, "").await,
            sql_statement(&stored, q, None, "").await,
        );
        assert_eq!(columns(&a), columns(&b), "{q}");
        assert_eq!(a.body["data"], Value::Array(vec![]), "{q}: {}", a.text);
    }
    assert_eq!(
        columns(&sql_statement(&sink, "SELECT * FROM EVENTS LIMIT 0", None, "").await).len(),
        4
    );
    let show = sql_statement(&sink, "SHOW TABLES LIKE 'EVENTS'", None, "").await;
    assert_eq!(show.status, 200, "{}", show.text);
    assert!(show.text.contains("EVENTS"), "{}", show.text);
    let desc = sql_statement(&sink, "DESCRIBE TABLE EVENTS", None, "").await;
    assert_eq!(desc.status, 200, "{}", desc.text);
    assert!(desc.text.contains("DOC"), "{}", desc.text);

    // Rows appended to the table made through the SQL API are counted.
    let c = Client::connect(&sink).await;
    let ct = c.open_on("EVENTS-STREAMING", "c").await;
    c.append_on(
        "EVENTS-STREAMING",
        "c",
        &ct,
        "3",
        "{\"ID\":1}\n{\"ID\":2}\n{\"ID\":3}\n",
    )
    .await;
    assert_eq!(sink.status()["sink"]["rows"], 3);
    // The channel is listed as in normal mode, with its pipe.
    let r = sql_statement(&sink, "SHOW CHANNELS", None, "").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("EVENTS-STREAMING"), "{}", r.text);

    // What would read rows is refused, naming why and the fix.
    for q in [
        "SELECT COUNT(*) FROM EVENTS",
        "SELECT * FROM EVENTS LIMIT 10",
        "SELECT * FROM (SELECT * FROM EVENTS LIMIT 0) x",
        "INSERT OVERWRITE INTO EVENTS SELECT * FROM EVENTS QUALIFY ROW_NUMBER() OVER (PARTITION BY ID ORDER BY ID) = 1",
    ] {
        let r = sql_statement(&sink, q, None, "").await;
        assert_eq!(r.status, 422, "{q}: {}", r.text);
        assert!(
            r.text.contains("sink mode") && r.text.contains("without --sink"),
            "{q}: {}",
            r.text
        );
    }
    sink.shutdown().await;
    stored.shutdown().await;
}

/// A dropped table and a table never made are absent alike in both modes: a `SELECT … LIMIT 0`
/// on them is refused with the storing emulator's status and code (the "does not exist" a
/// client such as `table_replay` tests for), not with sink mode's refusal, and a table created
/// again after its drop answers its new columns, through the SQL API and the library's
/// `Emulator::query` alike.
#[tokio::test]
async fn sink_mode_answers_drop_and_missing_tables_as_normal_mode_does() {
    let (mut stored_cfg, mut sink_cfg) = (config(), config());
    sink_cfg.sink = true;
    stored_cfg.sink = false;
    let sink = Emulator::start(sink_cfg).await.unwrap();
    let stored = Emulator::start(stored_cfg).await.unwrap();
    let code = |r: &Resp| (r.status, r.body["code"].as_str().unwrap_or("").to_owned());
    for emu in [&sink, &stored] {
        for ddl in [
            "CREATE TABLE GONE (A NUMBER(10,0))",
            "DROP TABLE GONE",
            "DROP TABLE IF EXISTS NEVER_MADE",
        ] {
            let r = sql_statement(emu, ddl, None, "").await;
            assert_eq!(r.status, 200, "{ddl}: {}", r.text);
        }
    }
    for q in [
        "SELECT * FROM GONE LIMIT 0",
        "SELECT * FROM NEVER_MADE LIMIT 0",
    ] {
        let (a, b) = (
            sql_statement(&sink, q, None, "").await,
            sql_statement(&stored, q, None, "").await,
        );
        assert_ne!(b.status, 200, "{q}: {}", b.text);
        assert_eq!(
            code(&a),
            code(&b),
            "{q}: sink {} / stored {}",
            a.text,
            b.text
        );
        assert!(
            a.text.to_lowercase().contains("does not exist"),
            "{q}: {}",
            a.text
        );
        assert!(!a.text.contains("--sink"), "{q}: {}", a.text);
    }
    for emu in [&sink, &stored] {
        for ddl in [
            "CREATE TABLE GONE (B VARCHAR, C BOOLEAN)",
            "CREATE TABLE OTHER (D NUMBER(5,0))",
        ] {
            let r = sql_statement(emu, ddl, None, "").await;
            assert_eq!(r.status, 200, "{ddl}: {}", r.text);
        }
    }
    // Each table a LIMIT 0 names is there, whatever it joins.
    let q = "SELECT g.C, o.D FROM GONE g JOIN DB.SCH.OTHER o ON TRUE LIMIT 0";
    let (a, b) = (
        sql_statement(&sink, q, None, "").await,
        sql_statement(&stored, q, None, "").await,
    );
    assert_eq!(columns(&a), columns(&b), "{q}");
    let q = "SELECT * FROM GONE LIMIT 0";
    let (a, b) = (
        sql_statement(&sink, q, None, "").await,
        sql_statement(&stored, q, None, "").await,
    );
    assert_eq!(columns(&a), columns(&b));
    let names: Vec<String> = columns(&a).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["B", "C"]);

    // The library's query answers a LIMIT 0 as the storing emulator does, and refuses rows.
    let q = "SELECT * FROM \"DB.SCH.GONE\" LIMIT 0";
    let (a, b) = (
        sink.query_with_columns(q).unwrap(),
        stored.query_with_columns(q).unwrap(),
    );
    assert_eq!(a, b);
    assert_eq!(a.0, ["B", "C"]);
    // SQLite's names ignore ASCII case: so does sink mode's choice of tables.
    let lower = sink
        .query_with_columns("select * from \"db.sch.gone\" limit 0")
        .unwrap();
    assert_eq!(lower, b);
    let e = sink
        .query("SELECT COUNT(*) FROM \"DB.SCH.GONE\"")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("sink mode") && e.contains("without --sink"),
        "{e}"
    );
    sink.shutdown().await;
    stored.shutdown().await;
}
