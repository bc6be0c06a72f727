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
