//! Schema Registry values in both layouts, with tombstones: a producer we did not write sends
//! Avro and JSON Schema values in the Confluent wire format (a record, a string, a number, a
//! decimal, an array, a value that decodes to null) and messages without a value; with
//! `--layout record-content` the rows are the connector's (`RECORD_CONTENT` holds the decoded
//! value), written out literally below; with `--layout columns` a tombstone is a metadata row,
//! nothing or a dead letter as `--on-null-value` says.
#![cfg(unix)]

use std::collections::HashMap;
use std::time::Duration;

use apache_avro::types::Value as Avro;
use apache_avro::{Decimal, Schema};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value;
use snowpipe_kafka_lab::demo::Lab;

use crate::common::registry::{registry, wire, Schemas, CREDENTIALS};
use crate::common::{
    bin, connector_rows, deliver, lab_with_tables, run, variant, CONNECTOR_ROWS,
    CONNECTOR_ROWS_PIPE,
};

/// The producer's CreateTime of every message.
const TIME: i64 = 1_700_000_000_000;

const RECORD: &str = r#"{"type": "record", "name": "R", "fields": [
  {"name": "ID", "type": "long"},
  {"name": "TAGS", "type": {"type": "array", "items": "string"}}
]}"#;
const NULLABLE: &str = r#"["null", "string"]"#;
const LONG: &str = r#""long""#;
const DECIMAL: &str =
    r#"{"type": "bytes", "logicalType": "decimal", "precision": 38, "scale": 10}"#;

/// Schema ids → (type, schema) in the test registry.
fn schemas() -> Schemas {
    HashMap::from([
        (1, ("AVRO", RECORD.to_owned())),
        (2, ("AVRO", NULLABLE.to_owned())),
        (3, ("AVRO", LONG.to_owned())),
        (4, ("AVRO", DECIMAL.to_owned())),
        (
            5,
            (
                "JSON",
                r#"{"type": "array", "items": {"type": "integer"}}"#.to_owned(),
            ),
        ),
        (6, ("JSON", r#"{"type": ["string", "null"]}"#.to_owned())),
        (
            7,
            (
                "JSON",
                r#"{"type": "object", "properties": {"a": {"type": "object",
                    "properties": {"b": {"type": "array", "items": {"type": "boolean"}}}}}}"#
                    .to_owned(),
            ),
        ),
    ])
}

/// `value` encoded as a Confluent Avro serializer would, under schema `id` (of [`schemas`]).
fn avro(id: u32, value: Avro) -> Vec<u8> {
    let text = &schemas()[&id].1;
    let schema = Schema::parse_str(text).expect("schema");
    wire(
        id,
        &apache_avro::to_avro_datum(&schema, value).expect("encode"),
    )
}

fn record(id: i64, tags: &[&str]) -> Vec<u8> {
    avro(
        1,
        Avro::Record(vec![
            ("ID".into(), Avro::Long(id)),
            (
                "TAGS".into(),
                Avro::Array(tags.iter().map(|t| Avro::String((*t).into())).collect()),
            ),
        ]),
    )
}

async fn send(producer: &FutureProducer, topic: &str, key: &str, value: Option<&[u8]>) {
    let mut record = FutureRecord::<str, [u8]>::to(topic)
        .partition(0)
        .key(key)
        .timestamp(TIME);
    if let Some(v) = value {
        record = record.payload(v);
    }
    deliver(producer, record).await;
}

/// The sink over `topic` into `pipe` until idle, with the registry at `url`; its stdout (the
/// final report).
fn run_sink(lab: &Lab, topic: &str, pipe: &str, url: &str, args: &[&str]) -> String {
    let mut cmd = lab.instance_of(&bin(), &format!("group-{topic}"));
    cmd.args([
        "--topic",
        topic,
        "--pipe",
        pipe,
        "--metadata",
        "--no-push-time",
    ])
    .args(["--until-idle", "3s", "--schema-registry-url", url])
    .args(["--schema-registry-basic-auth", "env:TEST_SR_AUTH"])
    .args(args)
    .env("TEST_SR_AUTH", CREDENTIALS);
    run(&mut cmd).ok().stdout
}

/// The rows of `topic` in the `CONNECTOR_ROWS` table (as [`connector_rows`] gives them), in
/// offset order.
fn content_rows(lab: &Lab, topic: &str) -> Vec<Value> {
    connector_rows(lab)
        .into_iter()
        .filter(|r| r["RECORD_METADATA"]["topic"] == topic)
        .collect()
}

fn expected(rows: &[&str]) -> Vec<Value> {
    rows.iter()
        .map(|r| serde_json::from_str(r).expect("expected JSON"))
        .collect()
}

/// `--layout record-content` with `--value-format avro` and `json-schema`: `RECORD_CONTENT` is
/// the decoded value whatever its type (a record, a string, a long, an exact decimal, an
/// array; a JSON Schema object as its schema declares it); a value that decodes to null (of a
/// schema that admits null) and a message without a value are tombstones: metadata rows with
/// `--on-null-value write`, nothing with `skip`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_content_holds_the_decoded_value_and_tombstones_follow_on_null_value() {
    let lab = lab_with_tables(&[("avro", 1), ("jsonschema", 1)], CONNECTOR_ROWS).await;
    let (url, _) = registry(schemas()).await;
    let p = &lab.producer().expect("producer");
    let unscaled: i128 = 12_345_678_901_234_567_890;
    let avro_values: [(&str, Option<Vec<u8>>); 7] = [
        ("k-record", Some(record(1, &["a", "b"]))),
        (
            "k-string",
            Some(avro(2, Avro::Union(1, Box::new(Avro::String("hi".into()))))),
        ),
        ("k-long", Some(avro(3, Avro::Long(42)))),
        (
            "k-decimal",
            Some(avro(
                4,
                Avro::Decimal(Decimal::from(unscaled.to_be_bytes().to_vec())),
            )),
        ),
        (
            "k-null",
            Some(avro(2, Avro::Union(0, Box::new(Avro::Null)))),
        ),
        ("k-tombstone", None),
        ("k-last", Some(record(2, &[]))),
    ];
    for (key, value) in &avro_values {
        send(p, "avro", key, value.as_deref()).await;
    }
    let json_values: [(&str, Option<Vec<u8>>); 5] = [
        ("k-array", Some(wire(5, br#"[1, 2, 3]"#))),
        ("k-string", Some(wire(6, br#""text""#))),
        ("k-null", Some(wire(6, b"null"))),
        ("k-tombstone", None),
        // `c` is not in the schema: connector v4 drops it.
        (
            "k-object",
            Some(wire(7, br#"{"a": {"b": [true], "c": 1}}"#)),
        ),
    ];
    for (key, value) in &json_values {
        send(p, "jsonschema", key, value.as_deref()).await;
    }

    let layout = ["--layout", "record-content"];
    let report = run_sink(
        &lab,
        "avro",
        CONNECTOR_ROWS_PIPE,
        &url,
        &[&layout[..], &["--value-format", "avro"]].concat(),
    );
    assert!(report.contains(r#""dead_letters":0"#), "{report}");
    let report = run_sink(
        &lab,
        "jsonschema",
        CONNECTOR_ROWS_PIPE,
        &url,
        &[
            &layout[..],
            &["--value-format", "json-schema", "--on-null-value", "skip"],
        ]
        .concat(),
    );
    assert!(report.contains(r#""dead_letters":0"#), "{report}");

    // A decimal of up to 38 digits is a number, as connector v4 writes it (the emulator's
    // VARIANT keeps a JSON number as a double, so the digits past 17 are not compared here).
    let meta = r#""partition":0,"CreateTime":1700000000000"#;
    assert_eq!(
        content_rows(&lab, "avro"),
        expected(&[
            &format!(
                r#"{{"RECORD_CONTENT":{{"ID":1,"TAGS":["a","b"]}},"RECORD_METADATA":{{"topic":"avro","offset":0,{meta},"key":"k-record"}}}}"#
            ),
            &format!(
                r#"{{"RECORD_CONTENT":"hi","RECORD_METADATA":{{"topic":"avro","offset":1,{meta},"key":"k-string"}}}}"#
            ),
            &format!(
                r#"{{"RECORD_CONTENT":42,"RECORD_METADATA":{{"topic":"avro","offset":2,{meta},"key":"k-long"}}}}"#
            ),
            &format!(
                r#"{{"RECORD_CONTENT":1234567890.1234567890,"RECORD_METADATA":{{"topic":"avro","offset":3,{meta},"key":"k-decimal"}}}}"#
            ),
            &format!(
                r#"{{"RECORD_METADATA":{{"topic":"avro","offset":4,{meta},"key":"k-null"}}}}"#
            ),
            &format!(
                r#"{{"RECORD_METADATA":{{"topic":"avro","offset":5,{meta},"key":"k-tombstone"}}}}"#
            ),
            &format!(
                r#"{{"RECORD_CONTENT":{{"ID":2,"TAGS":[]}},"RECORD_METADATA":{{"topic":"avro","offset":6,{meta},"key":"k-last"}}}}"#
            ),
        ])
    );
    assert_eq!(
        content_rows(&lab, "jsonschema"),
        expected(&[
            &format!(
                r#"{{"RECORD_CONTENT":[1,2,3],"RECORD_METADATA":{{"topic":"jsonschema","offset":0,{meta},"key":"k-array"}}}}"#
            ),
            &format!(
                r#"{{"RECORD_CONTENT":"text","RECORD_METADATA":{{"topic":"jsonschema","offset":1,{meta},"key":"k-string"}}}}"#
            ),
            &format!(
                r#"{{"RECORD_CONTENT":{{"a":{{"b":[true]}}}},"RECORD_METADATA":{{"topic":"jsonschema","offset":4,{meta},"key":"k-object"}}}}"#
            ),
        ])
    );
}

/// `--layout columns` with Avro values: a message without a value and one that decodes to
/// null are, by `--on-null-value`, a row of `RECORD_METADATA` alone (`write`, the default),
/// nothing (`skip`) or dead letters (`dead-letter`); the records around them land either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avro_tombstones_in_columns_follow_on_null_value() {
    const ORDERS: &str =
        "CREATE OR REPLACE TABLE DEMO.KAFKA.ORDERS (ID NUMBER, TAGS VARIANT, RECORD_METADATA VARIANT);";
    let modes = ["write", "skip", "dead-letter"];
    let topics: Vec<(String, i32)> = modes
        .iter()
        .map(|m| (format!("cols-{m}"), 1))
        .chain([("dlq".to_owned(), 1)])
        .collect();
    let topic_refs: Vec<(&str, i32)> = topics.iter().map(|(t, n)| (t.as_str(), *n)).collect();
    let lab = lab_with_tables(&topic_refs, ORDERS).await;
    let (url, _) = registry(schemas()).await;
    let p = &lab.producer().expect("producer");
    for mode in modes {
        let topic = format!("cols-{mode}");
        send(p, &topic, "k1", Some(&record(1, &["x"]))).await;
        send(p, &topic, "k-tombstone", None).await;
        let null = avro(2, Avro::Union(0, Box::new(Avro::Null)));
        send(p, &topic, "k-null", Some(&null)).await;
        send(p, &topic, "k2", Some(&record(2, &[]))).await;
        let args = [
            "--value-format",
            "avro",
            "--on-null-value",
            mode,
            "--dead-letter-topic",
            "dlq",
        ];
        run_sink(&lab, &topic, "ORDERS-STREAMING", &url, &args);
    }

    let stored = lab
        .emulator()
        .query(r#"SELECT ID, TAGS, RECORD_METADATA FROM "DEMO.KAFKA.ORDERS""#)
        .expect("query");
    let mut landed: Vec<(String, i64, Value, Value)> = stored
        .iter()
        .map(|r| {
            let meta = variant(&r[2]);
            (
                meta["topic"].as_str().expect("topic").to_owned(),
                meta["offset"].as_i64().expect("offset"),
                r[0].clone(),
                meta["key"].clone(),
            )
        })
        .collect();
    landed.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    let row = |topic: &str, offset: i64, id: Value, key: &str| {
        (topic.to_owned(), offset, id, Value::from(key))
    };
    let mut want = Vec::new();
    for mode in ["dead-letter", "skip", "write"] {
        let t = format!("cols-{mode}");
        want.push(row(&t, 0, 1.into(), "k1"));
        if mode == "write" {
            want.push(row(&t, 1, Value::Null, "k-tombstone"));
            want.push(row(&t, 2, Value::Null, "k-null"));
        }
        want.push(row(&t, 3, 2.into(), "k2"));
    }
    assert_eq!(landed, want);
    let letters = lab
        .dead_letters("dlq", Duration::from_secs(2))
        .expect("dead letters");
    assert_eq!(letters, [(0, 1), (0, 2)], "only dead-letter's tombstones");
}

/// The same through the connector's own JSON file: its Avro converter, registry URL and basic
/// auth (handed to the sink parsed, never printed), `snowflake.enable.schematization=false`,
/// `behavior.on.null.values=IGNORE` and `snowflake.metadata.createtime=false` give the rows
/// the connector writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_file_with_an_avro_converter_and_registry_auth_lands_record_content() {
    let lab = lab_with_tables(&[("cc", 1)], CONNECTOR_ROWS).await;
    let (url, asked) = registry(schemas()).await;
    let p = &lab.producer().expect("producer");
    send(p, "cc", "k-record", Some(&record(1, &["a"]))).await;
    send(p, "cc", "k-tombstone", None).await;
    let hi = avro(2, Avro::Union(1, Box::new(Avro::String("hi".into()))));
    send(p, "cc", "k-string", Some(&hi)).await;

    let file = lab.dir().join("snowflake-sink.json");
    let connector = serde_json::json!({"name": "snowflake-sink", "config": {
        "connector.class": "com.snowflake.kafka.connector.SnowflakeStreamingSinkConnector",
        "topics": "cc",
        "snowflake.topic2table.map": "cc:CONNECTOR_ROWS",
        "snowflake.database.name": "DEMO",
        "snowflake.schema.name": "KAFKA",
        "snowflake.enable.schematization": "false",
        "snowflake.streaming.metadata.connectorPushTime": "false",
        "snowflake.metadata.createtime": "false",
        "behavior.on.null.values": "IGNORE",
        "value.converter": "io.confluent.connect.avro.AvroConverter",
        "value.converter.schema.registry.url": url,
        "value.converter.basic.auth.user.info": CREDENTIALS,
    }});
    std::fs::write(&file, connector.to_string()).expect("write the file");
    let out = run(lab
        .instance_of(&bin(), "from-file")
        .arg("--connector-config")
        .arg(&file)
        .args(["--until-idle", "3s"])
        .env("RUST_LOG", "snowpipe_kafka=debug"))
    .ok();
    let stderr = &out.stderr;
    let secret = CREDENTIALS.split_once(':').expect("USER:PASSWORD").1;
    assert!(
        !stderr.contains(secret),
        "the secret is never printed: {stderr}"
    );
    assert!(out.stdout.contains(r#""dead_letters":0"#), "{}", out.stdout);

    let meta = r#""topic":"cc","partition":0"#;
    assert_eq!(
        content_rows(&lab, "cc"),
        expected(&[
            &format!(
                r#"{{"RECORD_CONTENT":{{"ID":1,"TAGS":["a"]}},"RECORD_METADATA":{{{meta},"offset":0,"key":"k-record"}}}}"#
            ),
            &format!(
                r#"{{"RECORD_CONTENT":"hi","RECORD_METADATA":{{{meta},"offset":2,"key":"k-string"}}}}"#
            ),
        ])
    );
    assert!(
        asked
            .lock()
            .unwrap()
            .keys()
            .all(|k| k.starts_with("/schemas/ids/")),
        "{asked:?}"
    );
}
