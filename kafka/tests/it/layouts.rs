//! `--layout record-content` writes the rows Snowflake's Kafka connector writes with
//! `snowflake.enable.schematization=false`: a producer we did not write sends an object, an
//! array, a string, a number, a tombstone and a message with headers and a key (JSON values),
//! then text that is not JSON (`--value-format string`); the rows in the table are compared
//! with the connector's shapes, written out literally below.
#![cfg(unix)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value;
use snowpipe_emulator::EmulatorConfig;
use snowpipe_kafka::demo::Lab;

const JSON_TOPIC: &str = "json";
const TEXT_TOPIC: &str = "text";
const PIPE: &str = "CONNECTOR_ROWS-STREAMING";
/// The connector's table with schematization off: two VARIANT columns.
const DDL: &str = "
CREATE DATABASE IF NOT EXISTS DEMO;
CREATE SCHEMA IF NOT EXISTS DEMO.KAFKA;
CREATE OR REPLACE TABLE DEMO.KAFKA.CONNECTOR_ROWS (RECORD_CONTENT VARIANT, RECORD_METADATA VARIANT);
";
/// The producer's CreateTime of every message.
const TIME: i64 = 1_700_000_000_000;

/// The rows, as the connector writes them (`SnowflakeConnectorPushTime` varies: `"<push>"`).
const EXPECTED: &[&str] = &[
    r#"{"RECORD_CONTENT":{"a":1,"b":[true,null]},"RECORD_METADATA":{"topic":"json","offset":0,"partition":0,"CreateTime":1700000000000,"SnowflakeConnectorPushTime":"<push>","key":"k-object"}}"#,
    r#"{"RECORD_CONTENT":[1,"two",3.5],"RECORD_METADATA":{"topic":"json","offset":1,"partition":0,"CreateTime":1700000000000,"SnowflakeConnectorPushTime":"<push>","key":"k-array"}}"#,
    r#"{"RECORD_CONTENT":"hello","RECORD_METADATA":{"topic":"json","offset":2,"partition":0,"CreateTime":1700000000000,"SnowflakeConnectorPushTime":"<push>","key":"k-string"}}"#,
    r#"{"RECORD_CONTENT":42,"RECORD_METADATA":{"topic":"json","offset":3,"partition":0,"CreateTime":1700000000000,"SnowflakeConnectorPushTime":"<push>","key":"k-number"}}"#,
    r#"{"RECORD_METADATA":{"topic":"json","offset":4,"partition":0,"CreateTime":1700000000000,"SnowflakeConnectorPushTime":"<push>","key":"k-tombstone"}}"#,
    r#"{"RECORD_CONTENT":{"id":7},"RECORD_METADATA":{"topic":"json","offset":5,"partition":0,"CreateTime":1700000000000,"SnowflakeConnectorPushTime":"<push>","key":"user-7","headers":{"trace":"t-1","attempt":"2","json":"{\"x\":1}"}}}"#,
    r#"{"RECORD_CONTENT":"not JSON, \"quoted\"\nsecond line","RECORD_METADATA":{"topic":"text","offset":0,"partition":0,"CreateTime":1700000000000,"SnowflakeConnectorPushTime":"<push>","key":"k-text"}}"#,
    r#"{"RECORD_CONTENT":"{\"a\":1}","RECORD_METADATA":{"topic":"text","offset":1,"partition":0,"CreateTime":1700000000000,"SnowflakeConnectorPushTime":"<push>","key":"k-json-text"}}"#,
];

async fn send(
    producer: &FutureProducer,
    topic: &str,
    key: &str,
    value: Option<&str>,
    headers: Option<OwnedHeaders>,
) {
    let mut record = FutureRecord::<str, str>::to(topic)
        .partition(0)
        .key(key)
        .timestamp(TIME);
    if let Some(v) = value {
        record = record.payload(v);
    }
    if let Some(h) = headers {
        record = record.headers(h);
    }
    producer
        .send_result(record)
        .map_err(|(e, _)| e)
        .expect("queue")
        .await
        .expect("producer alive")
        .map_err(|(e, _)| e)
        .expect("delivered");
}

/// The lab's instance command, writing through `PIPE` instead of the lab's pipe.
fn instance(lab: &Lab, topic: &str, group: &str) -> Command {
    let base = lab.instance(
        &PathBuf::from(env!("CARGO_BIN_EXE_snowpipe-kafka")),
        topic,
        group,
    );
    let mut cmd = Command::new(base.get_program());
    let mut pipe_next = false;
    for arg in base.get_args() {
        cmd.arg(if pipe_next { PIPE.as_ref() } else { arg });
        pipe_next = arg == "--pipe";
    }
    for (k, v) in base.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn run(mut cmd: Command) {
    let out = cmd.output().expect("run the sink");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(r#""dead_letters":0"#) || !stdout.contains("dead_letters"),
        "{stdout}"
    );
}

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// A VARIANT as the emulator returns it (JSON text), parsed; SQL NULL stays `Null`.
fn variant(v: &Value) -> Value {
    match v {
        Value::String(s) => serde_json::from_str(s).expect("JSON"),
        v => v.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_content_rows_are_the_connectors_for_every_kind_of_value() {
    let lab = Lab::start_with(
        &[(JSON_TOPIC, 1), (TEXT_TOPIC, 1)],
        EmulatorConfig::for_tests()
            .with_commit_delay(Duration::from_millis(100))
            .with_ddl(DDL),
    )
    .await
    .expect("lab");
    let producer = lab.producer().expect("producer");
    let p = &producer;
    send(
        p,
        JSON_TOPIC,
        "k-object",
        Some(r#"{"a": 1, "b": [true, null]}"#),
        None,
    )
    .await;
    send(p, JSON_TOPIC, "k-array", Some(r#"[1, "two", 3.5]"#), None).await;
    send(p, JSON_TOPIC, "k-string", Some(r#""hello""#), None).await;
    send(p, JSON_TOPIC, "k-number", Some("42"), None).await;
    send(p, JSON_TOPIC, "k-tombstone", None, None).await;
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "trace",
            value: Some("t-1"),
        })
        .insert(Header {
            key: "attempt",
            value: Some("2"),
        })
        .insert(Header {
            key: "json",
            value: Some(r#"{"x":1}"#),
        });
    send(p, JSON_TOPIC, "user-7", Some(r#"{"id":7}"#), Some(headers)).await;
    send(
        p,
        TEXT_TOPIC,
        "k-text",
        Some("not JSON, \"quoted\"\nsecond line"),
        None,
    )
    .await;
    send(p, TEXT_TOPIC, "k-json-text", Some(r#"{"a":1}"#), None).await;

    let before = now_ms();
    let mut json = instance(&lab, JSON_TOPIC, "layouts-json");
    json.args(["--until-idle", "3s", "--layout", "record-content"]);
    run(json);
    let mut text = instance(&lab, TEXT_TOPIC, "layouts-text");
    text.args([
        "--until-idle",
        "3s",
        "--layout",
        "record-content",
        "--value-format",
        "string",
    ]);
    run(text);
    let after = now_ms();

    let stored = lab
        .emulator()
        .query(r#"SELECT RECORD_CONTENT, RECORD_METADATA FROM "DEMO.KAFKA.CONNECTOR_ROWS""#)
        .expect("query");
    let mut rows: Vec<Value> = stored
        .iter()
        .map(|r| {
            let mut row = serde_json::Map::new();
            let content = variant(&r[0]);
            if !content.is_null() {
                row.insert("RECORD_CONTENT".into(), content);
            }
            let mut meta = variant(&r[1]);
            let push = meta["SnowflakeConnectorPushTime"]
                .as_i64()
                .unwrap_or_else(|| panic!("a push time: {meta}"));
            assert!(
                (before..=after).contains(&push),
                "{push} in {before}..={after}"
            );
            meta["SnowflakeConnectorPushTime"] = "<push>".into();
            row.insert("RECORD_METADATA".into(), meta);
            Value::Object(row)
        })
        .collect();
    rows.sort_by_key(|r| {
        let m = &r["RECORD_METADATA"];
        (m["topic"].to_string(), m["offset"].as_i64())
    });
    let expected: Vec<Value> = EXPECTED
        .iter()
        .map(|e| serde_json::from_str(e).expect("expected JSON"))
        .collect();
    assert_eq!(rows.len(), expected.len(), "{rows:#?}");
    for (row, want) in rows.iter().zip(&expected) {
        assert_eq!(row, want);
    }
}

/// The connector's per-field `snowflake.metadata.*` flags as options: each run drops exactly
/// its `RECORD_METADATA` keys (`topic`; `offset` and `partition`; `CreateTime`), and `key` and
/// `headers`, which have no flag, stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_fields_are_left_out_as_the_connectors_flags_say() {
    let cases: [(&str, &[&str], &str); 4] = [
        (
            "fields-all",
            &[],
            r#"{"topic":"fields-all","offset":0,"partition":0,"CreateTime":1700000000000,"key":"k","headers":{"h":"v"}}"#,
        ),
        (
            "fields-no-topic",
            &["--no-metadata-topic"],
            r#"{"offset":0,"partition":0,"CreateTime":1700000000000,"key":"k","headers":{"h":"v"}}"#,
        ),
        (
            "fields-no-offset",
            &[
                "--no-metadata-offset-and-partition",
                "--no-metadata-createtime",
            ],
            r#"{"topic":"fields-no-offset","key":"k","headers":{"h":"v"}}"#,
        ),
        (
            "fields-none",
            &[
                "--no-metadata-topic",
                "--no-metadata-offset-and-partition",
                "--no-metadata-createtime",
            ],
            r#"{"key":"k","headers":{"h":"v"}}"#,
        ),
    ];
    let topics: Vec<(&str, i32)> = cases.iter().map(|(t, _, _)| (*t, 1)).collect();
    let lab = Lab::start_with(
        &topics,
        EmulatorConfig::for_tests()
            .with_commit_delay(Duration::from_millis(100))
            .with_ddl(DDL),
    )
    .await
    .expect("lab");
    let producer = lab.producer().expect("producer");
    for (topic, flags, _) in &cases {
        let headers = OwnedHeaders::new().insert(Header {
            key: "h",
            value: Some("v"),
        });
        send(
            &producer,
            topic,
            "k",
            Some(&format!("\"{topic}\"")),
            Some(headers),
        )
        .await;
        let mut cmd = instance(&lab, topic, &format!("g-{topic}"));
        cmd.args([
            "--until-idle",
            "3s",
            "--layout",
            "record-content",
            "--no-push-time",
        ])
        .args(*flags);
        run(cmd);
    }
    let stored = lab
        .emulator()
        .query(r#"SELECT RECORD_CONTENT, RECORD_METADATA FROM "DEMO.KAFKA.CONNECTOR_ROWS""#)
        .expect("query");
    let mut got: Vec<(Value, Value)> = stored
        .iter()
        .map(|r| (variant(&r[0]), variant(&r[1])))
        .collect();
    got.sort_by_key(|(content, _)| content.to_string());
    let mut want: Vec<(Value, Value)> = cases
        .iter()
        .map(|(topic, _, meta)| {
            (
                Value::from(*topic),
                serde_json::from_str(meta).expect("expected JSON"),
            )
        })
        .collect();
    want.sort_by_key(|(content, _)| content.to_string());
    assert_eq!(got, want);
}
