//! `--layout record-content` writes the rows Snowflake's Kafka connector writes with
//! `snowflake.enable.schematization=false`: a producer we did not write sends an object, an
//! array, a string, a number, a tombstone and a message with headers and a key (JSON values),
//! then text that is not JSON (`--value-format string`); the rows in the table are compared
//! with the connector's shapes, written out literally below.
#![cfg(unix)]

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value;

use crate::common::{
    connector_rows, connector_rows_instance, deliver, lab_with_tables, run, CONNECTOR_ROWS,
};

const JSON_TOPIC: &str = "json";
const TEXT_TOPIC: &str = "text";
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
    deliver(producer, record).await;
}

/// Runs the sink `cmd` to its end: it succeeds, and dead-letters nothing.
fn run_clean(mut cmd: Command) {
    let stdout = run(&mut cmd).ok().stdout;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_content_rows_are_the_connectors_for_every_kind_of_value() {
    let lab = lab_with_tables(&[(JSON_TOPIC, 1), (TEXT_TOPIC, 1)], CONNECTOR_ROWS).await;
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
    let mut json = connector_rows_instance(&lab, JSON_TOPIC, "layouts-json");
    json.args(["--until-idle", "3s", "--layout", "record-content"]);
    run_clean(json);
    let mut text = connector_rows_instance(&lab, TEXT_TOPIC, "layouts-text");
    text.args([
        "--until-idle",
        "3s",
        "--layout",
        "record-content",
        "--value-format",
        "string",
    ]);
    run_clean(text);
    let after = now_ms();

    let mut rows = connector_rows(&lab);
    for row in &mut rows {
        let meta = &mut row["RECORD_METADATA"];
        let push = meta["SnowflakeConnectorPushTime"]
            .as_i64()
            .unwrap_or_else(|| panic!("a push time: {meta}"));
        assert!(
            (before..=after).contains(&push),
            "{push} in {before}..={after}"
        );
        meta["SnowflakeConnectorPushTime"] = "<push>".into();
    }
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
    let lab = lab_with_tables(&topics, CONNECTOR_ROWS).await;
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
        let mut cmd = connector_rows_instance(&lab, topic, &format!("g-{topic}"));
        cmd.args([
            "--until-idle",
            "3s",
            "--layout",
            "record-content",
            "--no-push-time",
        ])
        .args(*flags);
        run_clean(cmd);
    }
    let mut got: Vec<(Value, Value)> = connector_rows(&lab)
        .into_iter()
        .map(|r| (r["RECORD_CONTENT"].clone(), r["RECORD_METADATA"].clone()))
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
