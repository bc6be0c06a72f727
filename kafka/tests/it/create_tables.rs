//! `--create-tables`: the sink sends the Kafka connector's `CREATE TABLE IF NOT EXISTS` through
//! Snowflake's SQL API when a partition is assigned, before its channel opens. The emulator's
//! SQL API runs it: the table is created with `RECORD_METADATA` (and `RECORD_CONTENT` with
//! `--layout record-content`), schema evolution and error logging on, and the sink's rows land
//! in it. A pipe that is not a default pipe is refused at start.
#![cfg(unix)]

use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;

use crate::common::{bin, deliver, lab, lab_with_tables, run};

/// Produces `payload` to `topic` (key `k`) with the test's own producer.
async fn send(producer: &FutureProducer, topic: &str, payload: &str) {
    deliver(producer, FutureRecord::to(topic).key("k").payload(payload)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connectors_create_table_is_sent_before_the_channel_opens() {
    let lab = lab(&[("orders", 1)]).await;
    send(&lab.producer().expect("producer"), "orders", r#"{"ID":1}"#).await;
    let bin = bin();
    // Neither table is in the lab's DDL: the sink creates each, then its row lands.
    for (layout, table, columns, row) in [
        (
            "columns",
            "ORDERS_COLUMNS",
            "SELECT ID, json_extract(RECORD_METADATA, '$.offset')",
            json!([1, 0]),
        ),
        (
            "record-content",
            "ORDERS_CONTENT",
            "SELECT json_extract(RECORD_CONTENT, '$.ID'), json_extract(RECORD_METADATA, '$.offset')",
            json!([1, 0]),
        ),
    ] {
        let read = format!(r#"{columns} FROM "DEMO.KAFKA.{table}""#);
        assert!(lab.emulator().query(&read).is_err(), "{table} is not there yet");
        let out = run(lab
            .instance_of(&bin, &format!("create-{layout}"))
            .args(["--topic", "orders", "--pipe", &format!("{table}-STREAMING")])
            .args(["--metadata", "--create-tables", "--layout", layout])
            .args(["--until-idle", "3s"]));
        assert!(out.success, "{layout}: {}", out.stderr);
        let rows = lab.emulator().query(&read).expect("the sink created the table");
        assert_eq!(rows, vec![row.as_array().unwrap().clone()], "{layout}");
    }
    // The lab's own table is left as it is (`if not exists`): nothing more than the row.
    run(lab.instance(&bin, "orders", "create-existing").args([
        "--create-tables",
        "--until-idle",
        "3s",
    ]))
    .ok();
    assert_eq!(lab.landed().expect("table"), vec![(1, 0, 0)]);

    let out = run(lab.instance_of(&bin, "create-named").args([
        "--topic",
        "orders",
        "--pipe",
        "ORDERS_PIPE",
        "--create-tables",
    ]));
    let stderr = out.stderr;
    assert!(!out.success, "{stderr}");
    assert!(stderr.contains("--pipe ORDERS_PIPE is not one"), "{stderr}");
}

/// The same statement given to the emulator as setup DDL makes the table the
/// connector makes — `RECORD_METADATA` alone, schema evolution on — and the sink's rows land in
/// it, their columns added by evolution.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_statement_makes_a_table_that_evolves_to_the_rows() {
    use snowpipe_kafka::create_table_statement as statement;
    use snowpipe_kafka::LayoutKind;
    let table = format!(
        "USE SCHEMA DEMO.KAFKA; {};",
        statement("ORDERS", LayoutKind::Columns)
    );
    let lab = lab_with_tables(&[("orders", 1)], &table).await;
    let producer = lab.producer().expect("producer");
    for id in 0..3 {
        send(
            &producer,
            "orders",
            &format!(r#"{{"ID":{id},"NAME":"n{id}"}}"#),
        )
        .await;
    }
    run(lab
        .instance_of(&bin(), "evolve")
        .args([
            "--topic",
            "orders",
            "--pipe",
            "ORDERS-STREAMING",
            "--metadata",
        ])
        .args(["--until-idle", "3s"]))
    .ok();
    let rows = lab
        .emulator()
        .query(r#"SELECT ID, NAME, json_extract(RECORD_METADATA, '$.offset') FROM "DEMO.KAFKA.ORDERS" ORDER BY ID"#)
        .expect("evolved columns");
    assert_eq!(
        rows,
        (0..3)
            .map(|id| vec![
                serde_json::json!(id),
                serde_json::json!(format!("n{id}")),
                serde_json::json!(id)
            ])
            .collect::<Vec<_>>()
    );
}

/// Connector v4 writes a table through the pipe named exactly like it when one exists (its own
/// transform, `kafka/docs/connector-compatibility-tables.md` §15.5), else through the default pipe: a
/// sink run from a connector file chooses the same, asking `desc pipe` first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_file_writes_through_a_pipe_named_like_the_table() {
    let lab = lab_with_tables(
        &[("clicks", 1), ("views", 1)],
        "CREATE TABLE DEMO.KAFKA.CLICKS (ID NUMBER, VIA VARCHAR, RECORD_METADATA VARIANT); \
         CREATE PIPE DEMO.KAFKA.CLICKS AS COPY INTO DEMO.KAFKA.CLICKS (ID, VIA, RECORD_METADATA) \
         FROM (SELECT $1:ID, 'the CLICKS pipe', $1:RECORD_METADATA \
         FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING')))",
    )
    .await;
    let producer = lab.producer().expect("producer");
    for topic in ["clicks", "views"] {
        send(&producer, topic, r#"{"ID":1}"#).await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("sink.properties");
    std::fs::write(
        &file,
        "name=pipes\ntopics=clicks,views\nsnowflake.topic2table.map=clicks:CLICKS,views:VIEWS\n\
         key.converter=org.apache.kafka.connect.storage.StringConverter\n\
         value.converter=org.apache.kafka.connect.json.JsonConverter\n\
         value.converter.schemas.enable=false\n",
    )
    .unwrap();
    let stderr = run(lab
        .instance_of(&bin(), "pipes")
        .arg("--connector-config")
        .arg(&file)
        .args(["--until-idle", "3s"]))
    .ok()
    .stderr;
    let clicks = lab
        .emulator()
        .query(r#"SELECT ID, VIA FROM "DEMO.KAFKA.CLICKS""#)
        .expect("CLICKS");
    assert_eq!(
        clicks,
        vec![vec![json!(1), json!("the CLICKS pipe")]],
        "{stderr}"
    );
    // No pipe VIEWS: the default pipe, into the table the sink created.
    let views = lab
        .emulator()
        .query(r#"SELECT ID FROM "DEMO.KAFKA.VIEWS""#)
        .expect("VIEWS");
    assert_eq!(views, vec![vec![json!(1)]]);
}
