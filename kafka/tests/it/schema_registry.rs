//! A topic of Avro values in the Confluent Schema Registry wire format (`--value-format avro`):
//! a producer we did not write encodes each record with its registry's schema id; the sink
//! fetches the schema from the registry (basic auth, once per id) and lands each record with
//! exact values. A message whose id the registry does not know, one with garbage after the
//! header and one that is plain JSON are dead letters with reasons, and the partition goes on.
//! A registry that cannot answer for a while (HTTP 503, a dropped connection) delays the rows
//! and loses none, a stop during the wait does not hang, and a registry that refuses the
//! credentials stops the sink naming the fix.
#![cfg(unix)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apache_avro::types::{Record, Value};
use apache_avro::{Decimal, Schema};
use base64::Engine as _;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers as _, Message};
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};
use snowpipe_emulator::EmulatorConfig;
use snowpipe_kafka::demo::Lab;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOPIC: &str = "orders";
const DLQ: &str = "orders.dlq";
const SCHEMA_ID: u32 = 7;
pub(crate) const CREDENTIALS: &str = "sr-user:sr-s3cret";

const DDL: &str = "
CREATE DATABASE IF NOT EXISTS DEMO;
CREATE SCHEMA IF NOT EXISTS DEMO.KAFKA;
CREATE OR REPLACE TABLE DEMO.KAFKA.ORDERS (ID NUMBER, PRICE NUMBER(38,10), AT NUMBER,
  CUSTOMER VARIANT, NOTE VARCHAR, BLOB VARCHAR, RECORD_METADATA VARIANT);
";

const AVRO_SCHEMA: &str = r#"{
  "type": "record", "name": "Order", "namespace": "shop",
  "fields": [
    {"name": "ID", "type": "long"},
    {"name": "PRICE", "type": {"type": "bytes", "logicalType": "decimal", "precision": 38, "scale": 10}},
    {"name": "AT", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "CUSTOMER", "type": {"type": "record", "name": "Customer", "fields": [
      {"name": "name", "type": "string"},
      {"name": "tier", "type": {"type": "enum", "name": "Tier", "symbols": ["GOLD", "SILVER"]}}
    ]}},
    {"name": "NOTE", "type": ["null", "string"]},
    {"name": "BLOB", "type": "bytes"}
  ]
}"#;

/// The lab of these tests: the topic and its dead-letter topic, one partition each, and the
/// emulator with the tests' table.
async fn lab() -> Lab {
    let config = EmulatorConfig::for_tests()
        .with_commit_delay(Duration::from_millis(100))
        .with_ddl(DDL);
    Lab::start_with(&[(TOPIC, 1), (DLQ, 1)], config)
        .await
        .expect("lab")
}

/// The registry's one Avro schema, by its id.
fn avro_schemas() -> HashMap<u32, (&'static str, String)> {
    HashMap::from([(SCHEMA_ID, ("AVRO", AVRO_SCHEMA.to_owned()))])
}

/// A Schema Registry answering `GET /schemas/ids/{id}` as the real REST API does, for
/// `CREDENTIALS` only; it counts the requests per path.
/// `schemas` maps an id to its `schemaType` and schema text.
pub(crate) async fn registry(
    schemas: HashMap<u32, (&'static str, String)>,
) -> (String, Arc<Mutex<HashMap<String, usize>>>) {
    registry_failing(schemas, Arc::default()).await
}

/// [`registry`], answering its next `failures` requests (counted down, whatever they ask) with
/// HTTP 503, as a registry does in a rolling restart.
pub(crate) async fn registry_failing(
    schemas: HashMap<u32, (&'static str, String)>,
    failures: Arc<AtomicUsize>,
) -> (String, Arc<Mutex<HashMap<String, usize>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let asked: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let counts = Arc::clone(&asked);
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(CREDENTIALS)
    );
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&request).to_string();
            let path = text.split_whitespace().nth(1).unwrap_or("").to_owned();
            *counts.lock().unwrap().entry(path.clone()).or_default() += 1;
            let authorized = text.lines().any(|l| {
                l.split_once(':').is_some_and(|(name, value)| {
                    name.eq_ignore_ascii_case("authorization") && value.trim() == expected
                })
            });
            let schema = path
                .strip_prefix("/schemas/ids/")
                .and_then(|id| id.parse::<u32>().ok())
                .and_then(|id| schemas.get(&id));
            let unavailable = failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            let (status, body) = match (authorized, schema) {
                _ if unavailable => (
                    "503 Service Unavailable",
                    r#"{"error_code":50302,"message":"Service Unavailable"}"#.to_owned(),
                ),
                (false, _) => (
                    "401 Unauthorized",
                    r#"{"error_code":401,"message":"Unauthorized"}"#.to_owned(),
                ),
                (true, Some((kind, s))) => (
                    "200 OK",
                    serde_json::json!({"schema": s, "schemaType": kind}).to_string(),
                ),
                (true, None) => (
                    "404 Not Found",
                    r#"{"error_code":40403,"message":"Schema 99 not found"}"#.to_owned(),
                ),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/vnd.schemaregistry.v1+json\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    });
    (url, asked)
}

/// The wire format: magic byte 0, the schema id (big-endian), the body.
pub(crate) fn wire(id: u32, body: &[u8]) -> Vec<u8> {
    let mut v = vec![0];
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// Order `id` encoded as a Confluent Avro serializer would.
fn order(schema: &Schema, id: i64) -> Vec<u8> {
    let mut r = Record::new(schema).expect("a record schema");
    r.put("ID", Value::Long(id));
    // 12345678901234567890.1234567890 + id, at scale 10 (38 digits fit an i128).
    let unscaled: i128 = 123_456_789_012_345_678_901_234_567_890 + i128::from(id);
    r.put(
        "PRICE",
        Value::Decimal(Decimal::from(unscaled.to_be_bytes().to_vec())),
    );
    r.put("AT", Value::TimestampMicros(1_700_000_000_123_456 + id));
    r.put(
        "CUSTOMER",
        Value::Record(vec![
            ("name".into(), Value::String(format!("c-{id}"))),
            ("tier".into(), Value::Enum(1, "SILVER".into())),
        ]),
    );
    r.put(
        "NOTE",
        if id % 2 == 0 {
            Value::Union(1, Box::new(Value::String(format!("n{id}"))))
        } else {
            Value::Union(0, Box::new(Value::Null))
        },
    );
    r.put(
        "BLOB",
        Value::Bytes(vec![0xff, 0x00, u8::try_from(id).unwrap()]),
    );
    wire(
        SCHEMA_ID,
        &apache_avro::to_avro_datum(schema, r).expect("encode"),
    )
}

/// A registry that is down mid-restart: it accepts every connection and closes it unanswered.
async fn dropping_registry() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    });
    url
}

/// Runs the sink binary over `TOPIC` until it is idle, with `--value-format format` and the
/// registry at `url` (with `CREDENTIALS`, which it must never print); its stderr.
fn run_sink(lab: &Lab, url: &str, format: &str, group: &str) -> String {
    let mut cmd = sink_command(lab, url, format, group, CREDENTIALS);
    cmd.args(["--until-idle", "3s"]);
    let out = cmd.output().expect("run the sink");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains("s3cret"),
        "the secret is never printed: {stderr}"
    );
    stderr
}

/// The sink's command over `TOPIC` (dead letters to `DLQ`), with the registry at `url` and
/// `credentials` for it, warnings on stderr.
fn sink_command(lab: &Lab, url: &str, format: &str, group: &str, credentials: &str) -> Command {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_snowpipe-kafka"));
    let mut cmd = Command::new(bin);
    cmd.args([
        "--brokers",
        &lab.brokers(),
        "--topic",
        TOPIC,
        "--group",
        group,
    ])
    .args([
        "--database",
        "DEMO",
        "--schema",
        "KAFKA",
        "--pipe",
        "ORDERS-STREAMING",
    ])
    .args(["--metadata", "--quiet"])
    .args(["--dead-letter-topic", DLQ])
    .args(["--value-format", format, "--schema-registry-url", url])
    .args(["--schema-registry-basic-auth", "env:TEST_SR_AUTH"])
    .args(["-X", "session.timeout.ms=6000"])
    .env("TEST_SR_AUTH", credentials)
    .env("RUST_LOG", "warn")
    .env("SNOWFLAKE_URL", lab.emulator().url())
    .env("SNOWFLAKE_ACCOUNT", "DEMO")
    .env("SNOWFLAKE_USER", "KAFKA")
    .env("SNOWFLAKE_PRIVATE_KEY_FILE", lab.key_path())
    .env_remove("SNOWFLAKE_PRIVATE_KEY")
    .stdin(Stdio::null());
    cmd
}

/// Sends `values` to `TOPIC` in order; their offsets.
async fn produce(lab: &Lab, values: &[Vec<u8>]) -> Vec<i64> {
    let producer = lab.producer().expect("producer");
    let mut offsets = Vec::new();
    for value in values {
        let offset = producer
            .send(
                FutureRecord::to(TOPIC).key("k").payload(value),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("delivered")
            .offset;
        offsets.push(offset);
    }
    offsets
}

/// A JSON text column or `VARIANT` cell, parsed.
fn parsed(cell: &serde_json::Value) -> serde_json::Value {
    match cell {
        serde_json::Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| cell.clone()),
        v => v.clone(),
    }
}

/// `offset → reason` of the dead letters on `DLQ`.
fn dead_letters(brokers: &str) -> HashMap<i64, String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "dlq-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut all = TopicPartitionList::new();
    all.add_partition_offset(DLQ, 0, Offset::Beginning)
        .expect("partition");
    consumer.assign(&all).expect("assign");
    let mut out = HashMap::new();
    let mut last = Instant::now();
    while last.elapsed() < Duration::from_secs(3) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            last = Instant::now();
            let header = |name: &str| {
                m.headers().and_then(|h| {
                    h.iter()
                        .find(|h| h.key == name)
                        .and_then(|h| h.value)
                        .map(|v| String::from_utf8_lossy(v).to_string())
                })
            };
            let offset = header("snowpipe.offset").expect("offset header");
            out.insert(
                offset.parse().expect("an offset"),
                header("snowpipe.error").expect("reason header"),
            );
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avro_values_land_with_exact_values_and_undecodable_ones_are_dead_letters() {
    let lab = lab().await;
    let schema = Schema::parse_str(AVRO_SCHEMA).expect("schema");
    let (url, asked) = registry(avro_schemas()).await;
    let producer = lab.producer().expect("producer");
    // Six orders, and between them: an id the registry does not know, garbage after a good
    // header, and a plain JSON value.
    let poison: [(&str, Vec<u8>); 3] = [
        ("unknown id", wire(99, &order(&schema, 100)[5..])),
        ("garbage", wire(SCHEMA_ID, &[0xff; 12])),
        ("plain JSON", br#"{"ID":1}"#.to_vec()),
    ];
    let mut ids = HashMap::new();
    let mut bad = HashMap::new();
    let mut poison = poison.into_iter();
    for id in 0..6i64 {
        let mut send = vec![(None, order(&schema, id))];
        if id % 2 == 1 {
            if let Some((what, value)) = poison.next() {
                send.push((Some(what), value));
            }
        }
        for (what, value) in send {
            let offset = producer
                .send(
                    FutureRecord::to(TOPIC).key("k").payload(&value),
                    Duration::from_secs(10),
                )
                .await
                .map_err(|(e, _)| e)
                .expect("delivered")
                .offset;
            match what {
                Some(what) => bad.insert(offset, what),
                None => ids.insert(id, offset).map(|_| ""),
            };
        }
    }
    run_sink(&lab, &url, "avro", "avro");

    let letters = dead_letters(&lab.brokers());
    let rows = lab
        .emulator()
        .query(
            r#"SELECT ID, PRICE, AT, CUSTOMER, NOTE, BLOB, RECORD_METADATA
               FROM "DEMO.KAFKA.ORDERS" ORDER BY ID"#,
        )
        .expect("table");
    assert_eq!(rows.len(), 6, "{rows:?}; dead letters: {letters:?}");
    for (id, row) in (0..6i64).zip(&rows) {
        assert_eq!(row[0], serde_json::json!(id), "{row:?}");
        assert_eq!(
            row[1].to_string().trim_matches('"'),
            format!("12345678901234567890.123456789{id}"),
            "the decimal, exact: {row:?}"
        );
        assert_eq!(
            row[2].to_string().trim_matches('"'),
            (1_700_000_000_123_456 + id).to_string(),
            "{row:?}"
        );
        let customer: serde_json::Value = match &row[3] {
            serde_json::Value::String(s) => serde_json::from_str(s).expect("JSON"),
            v => v.clone(),
        };
        assert_eq!(
            customer,
            serde_json::json!({"name": format!("c-{id}"), "tier": "SILVER"})
        );
        let note = if id % 2 == 0 {
            serde_json::json!(format!("n{id}"))
        } else {
            serde_json::Value::Null
        };
        assert_eq!(row[4], note, "{row:?}");
        let blob =
            base64::engine::general_purpose::STANDARD.encode([0xff, 0, u8::try_from(id).unwrap()]);
        assert_eq!(row[5], serde_json::json!(blob), "bytes as base64: {row:?}");
        let meta: serde_json::Value = match &row[6] {
            serde_json::Value::String(s) => serde_json::from_str(s).expect("JSON"),
            v => v.clone(),
        };
        assert_eq!(meta["offset"], serde_json::json!(ids[&id]), "{meta}");
    }

    assert_eq!(letters.len(), 3, "{letters:?}");
    let expect = [
        (
            "unknown id",
            "schema id 99: the Schema Registry answered HTTP 404",
        ),
        ("garbage", "schema id 7: the Avro body does not decode"),
        (
            "plain JSON",
            "does not start with the Schema Registry magic byte 0",
        ),
    ];
    for (offset, what) in &bad {
        let reason = letters.get(offset).expect("dead-lettered");
        let want = expect.iter().find(|(w, _)| w == what).unwrap().1;
        assert!(reason.contains(want), "{what}: {reason}");
    }
    let asked = asked.lock().unwrap().clone();
    assert_eq!(
        asked.get("/schemas/ids/7"),
        Some(&1),
        "one request per id: {asked:?}"
    );
}

const JSON_SCHEMA: &str = r#"{
  "type": "object", "title": "Order",
  "properties": {
    "ID": {"type": "integer"}, "NOTE": {"type": ["string", "null"]},
    "CUSTOMER": {"type": "object", "properties": {"name": {"type": "string"}}},
    "PRICE": {"type": "number"}
  },
  "required": ["ID"]
}"#;

/// A JSON Schema topic: values written as Confluent's JSON Schema serializer writes them (the
/// header, then the JSON text) land as connector v4 reads them through their schema — a nested
/// object's undeclared `big` (a `u64::MAX`) dropped, decimals, unicode, a nullable NOTE;
/// an array, bad JSON, text that is not UTF-8 and a value whose id is an Avro schema are dead
/// letters with reasons.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_schema_values_land_as_connector_v4_reads_them_and_what_is_no_object_is_a_dead_letter()
{
    let lab = lab().await;
    const AVRO_ID: u32 = 8;
    let (url, asked) = registry(HashMap::from([
        (SCHEMA_ID, ("JSON", JSON_SCHEMA.to_owned())),
        (AVRO_ID, ("AVRO", AVRO_SCHEMA.to_owned())),
    ]))
    .await;
    let good = |id: i64| {
        let note = if id % 2 == 0 {
            format!(r#""n{id} ünïcødé ☃""#)
        } else {
            "null".to_owned()
        };
        wire(
            SCHEMA_ID,
            format!(
                r#"{{"ID":{id},"PRICE":1234567.890123{id},"NOTE":{note},"CUSTOMER":{{"name":"c-{id}","big":18446744073709551615}}}}"#
            )
            .as_bytes(),
        )
    };
    let poison: [(&str, Vec<u8>, &str); 4] = [
        (
            "an array",
            wire(SCHEMA_ID, b"[1,2]"),
            "schema id 7: the value: a JSON ARRAY where the schema has STRUCT",
        ),
        (
            "bad JSON",
            wire(SCHEMA_ID, br#"{"ID": 1,"#),
            "schema id 7: the payload is not JSON: the text ends inside the value",
        ),
        (
            "not UTF-8",
            wire(SCHEMA_ID, b"{\"ID\": \"\xff\"}"),
            "schema id 7: the JSON Schema payload is not UTF-8",
        ),
        (
            "an Avro id",
            wire(AVRO_ID, br#"{"ID":1}"#),
            "schema id 8 is a AVRO schema, not JSON: check --value-format",
        ),
    ];
    let mut values = Vec::new();
    for id in 0..4i64 {
        values.push(good(id));
        values.push(poison[usize::try_from(id).unwrap()].1.clone());
    }
    let offsets = produce(&lab, &values).await;
    run_sink(&lab, &url, "json-schema", "json-schema");

    let letters = dead_letters(&lab.brokers());
    let rows = lab
        .emulator()
        .query(
            r#"SELECT ID, PRICE, CUSTOMER, NOTE, RECORD_METADATA
               FROM "DEMO.KAFKA.ORDERS" ORDER BY ID"#,
        )
        .expect("table");
    assert_eq!(rows.len(), 4, "{rows:?}; dead letters: {letters:?}");
    for (id, row) in (0..4i64).zip(&rows) {
        assert_eq!(row[0], serde_json::json!(id), "{row:?}");
        assert_eq!(
            row[1].to_string().trim_matches('"'),
            format!("1234567.890123{id}000"),
            "the decimal (as a plain JSON value reads it): {row:?}"
        );
        assert_eq!(
            parsed(&row[2]).to_string(),
            format!(r#"{{"name":"c-{id}"}}"#),
            "CUSTOMER keeps what its schema declares (connector v4 drops `big`): {row:?}"
        );
        let note = if id % 2 == 0 {
            serde_json::json!(format!("n{id} ünïcødé ☃"))
        } else {
            serde_json::Value::Null
        };
        assert_eq!(row[3], note, "{row:?}");
        let meta = parsed(&row[4]);
        let at = usize::try_from(id).unwrap() * 2;
        assert_eq!(meta["offset"], serde_json::json!(offsets[at]), "{meta}");
    }
    assert_eq!(letters.len(), 4, "{letters:?}");
    for (i, (what, _, why)) in poison.iter().enumerate() {
        let reason = letters.get(&offsets[i * 2 + 1]).expect("dead-lettered");
        assert!(reason.contains(why), "{what}: {reason}");
    }
    let asked = asked.lock().unwrap().clone();
    assert_eq!(asked.get("/schemas/ids/7"), Some(&1), "{asked:?}");
}

const PROTO_SCHEMA: &str = r#"
syntax = "proto3";
package shop;
message Order {
  int64 ID = 1;
  double PRICE = 2;
  int64 AT = 3;
  Customer CUSTOMER = 4;
  optional string NOTE = 5;
  bytes BLOB = 6;
}
message Customer { string name = 1; Tier tier = 2; }
enum Tier { GOLD = 0; SILVER = 1; }
"#;

/// A Protobuf topic: values a test-side producer encodes with prost-reflect in Confluent's
/// wire format (header, message indexes `[0]`, payload) land with exact values — int64 past
/// 2^53, a nested message with an enum name, an unset `optional` as null, bytes as base64; a
/// message index the schema does not have and a payload that does not decode are dead letters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_values_land_with_exact_values_and_undecodable_ones_are_dead_letters() {
    use prost::Message as _;
    let lab = lab().await;
    let (url, asked) = registry(HashMap::from([(
        SCHEMA_ID,
        ("PROTOBUF", PROTO_SCHEMA.to_owned()),
    )]))
    .await;
    let file = protox::file::File::from_source("t.proto", PROTO_SCHEMA).expect("parse");
    let mut compiler = protox::Compiler::with_file_resolver(OneProto(file));
    compiler.open_file("t.proto").expect("compile");
    let order = compiler
        .descriptor_pool()
        .get_message_by_name("shop.Order")
        .expect("Order");
    let good = |id: i64| {
        let note = if id % 2 == 0 {
            format!(r#","NOTE":"n{id}""#)
        } else {
            String::new()
        };
        let json = format!(
            r#"{{"ID":"{}","PRICE":{id}.25,"AT":"{}","CUSTOMER":{{"name":"c-{id}","tier":"SILVER"}},"BLOB":"/wA{id}"{note}}}"#,
            9_007_199_254_740_993_i64 + id,
            1_700_000_000_123_456 + id
        );
        let mut de = serde_json::Deserializer::from_str(&json);
        let m = prost_reflect::DynamicMessage::deserialize(order.clone(), &mut de).expect("msg");
        let mut body = vec![0u8]; // the message indexes [0]
        body.extend(m.encode_to_vec());
        wire(SCHEMA_ID, &body)
    };
    let poison: [(&str, Vec<u8>, &str); 2] = [
        (
            "index 5",
            wire(SCHEMA_ID, b"\x02\x0a\x08\x01"),
            "schema id 7: the message indexes [5] name no message",
        ),
        (
            "garbage",
            wire(SCHEMA_ID, b"\x00\xff\xff\xff"),
            "schema id 7: the Protobuf payload does not decode as shop.Order",
        ),
    ];
    let values = vec![
        good(0),
        poison[0].1.clone(),
        good(1),
        poison[1].1.clone(),
        good(2),
    ];
    let offsets = produce(&lab, &values).await;
    run_sink(&lab, &url, "protobuf", "protobuf");

    let letters = dead_letters(&lab.brokers());
    let rows = lab
        .emulator()
        .query(
            r#"SELECT ID, PRICE, AT, CUSTOMER, NOTE, BLOB, RECORD_METADATA
               FROM "DEMO.KAFKA.ORDERS" ORDER BY ID"#,
        )
        .expect("table");
    assert_eq!(rows.len(), 3, "{rows:?}; dead letters: {letters:?}");
    for ((id, row), at) in (0..3i64).zip(&rows).zip([0, 2, 4]) {
        assert_eq!(
            row[0].to_string().trim_matches('"'),
            (9_007_199_254_740_993_i64 + id).to_string(),
            "int64 exact: {row:?}"
        );
        assert_eq!(
            row[1].to_string().trim_matches('"'),
            format!("{id}.2500000000"),
            "{row:?}"
        );
        assert_eq!(
            row[2].to_string().trim_matches('"'),
            (1_700_000_000_123_456 + id).to_string(),
            "{row:?}"
        );
        assert_eq!(
            parsed(&row[3]),
            serde_json::json!({"name": format!("c-{id}"), "tier": "SILVER"})
        );
        let note = if id % 2 == 0 {
            serde_json::json!(format!("n{id}"))
        } else {
            serde_json::Value::Null
        };
        assert_eq!(row[4], note, "{row:?}");
        assert_eq!(row[5], serde_json::json!(format!("/wA{id}")), "{row:?}");
        assert_eq!(parsed(&row[6])["offset"], serde_json::json!(offsets[at]));
    }
    assert_eq!(letters.len(), 2, "{letters:?}");
    for ((what, _, why), at) in poison.iter().zip([1, 3]) {
        let reason = letters.get(&offsets[at]).expect("dead-lettered");
        assert!(reason.contains(why), "{what}: {reason}");
    }
    let asked = asked.lock().unwrap().clone();
    assert_eq!(asked.get("/schemas/ids/7"), Some(&1), "{asked:?}");
}

/// The test's one `.proto` file.
struct OneProto(protox::file::File);

impl protox::file::FileResolver for OneProto {
    fn open_file(&self, name: &str) -> Result<protox::file::File, protox::Error> {
        if name == "t.proto" {
            Ok(self.0.clone())
        } else {
            Err(protox::Error::file_not_found(name))
        }
    }
}

/// The table's `ID`s, in order.
fn landed_ids(lab: &Lab) -> Vec<serde_json::Value> {
    lab.emulator()
        .query(r#"SELECT ID FROM "DEMO.KAFKA.ORDERS" ORDER BY ID"#)
        .expect("table")
        .into_iter()
        .map(|row| row[0].clone())
        .collect()
}

/// A registry in a rolling restart: the first of the two URLs drops every connection, the
/// second answers HTTP 503 four times. Every order lands (none is a dead letter: the outage is
/// not the messages' fault), the warning names the registries and the failure, and an id the
/// registry does not know is still a dead letter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_outage_delays_the_rows_and_loses_none() {
    let lab = lab().await;
    let schema = Schema::parse_str(AVRO_SCHEMA).expect("schema");
    let failures = Arc::new(AtomicUsize::new(4));
    let (url, asked) = registry_failing(avro_schemas(), Arc::clone(&failures)).await;
    let down = dropping_registry().await;
    let mut values: Vec<Vec<u8>> = (0..6).map(|id| order(&schema, id)).collect();
    values.push(wire(99, &order(&schema, 100)[5..]));
    let offsets = produce(&lab, &values).await;

    let stderr = run_sink(&lab, &format!("{down}, {url}"), "avro", "outage");

    let ids: Vec<_> = (0..6).map(|id| serde_json::json!(id)).collect();
    let letters = dead_letters(&lab.brokers());
    assert_eq!(landed_ids(&lab), ids, "{letters:?}\n{stderr}");
    assert_eq!(letters.len(), 1, "{letters:?}");
    let reason = &letters[&offsets[6]];
    assert!(
        reason.contains("schema id 99: the Schema Registry answered HTTP 404"),
        "{reason}"
    );
    assert_eq!(failures.load(Ordering::SeqCst), 0, "the outage was met");
    assert!(
        stderr.contains("cannot give schema id 7")
            && stderr.contains(&down)
            && stderr.contains(&format!("{url} answered HTTP 503")),
        "{stderr}"
    );
    assert!(stderr.contains("answers again"), "{stderr}");
    let asked = asked.lock().unwrap().clone();
    assert_eq!(asked.get("/schemas/ids/7"), Some(&5), "{asked:?}");
}

/// A registry down for good: the sink waits (nothing is dead-lettered, no offset moves), a
/// SIGTERM during the wait hands the partition over at once, and the next run, with the
/// registry back, lands every order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_ends_the_wait_on_the_registry_and_the_next_run_lands_everything() {
    let lab = lab().await;
    let schema = Schema::parse_str(AVRO_SCHEMA).expect("schema");
    let failures = Arc::new(AtomicUsize::new(usize::MAX));
    let (url, asked) = registry_failing(avro_schemas(), Arc::clone(&failures)).await;
    let values: Vec<Vec<u8>> = (0..4).map(|id| order(&schema, id)).collect();
    produce(&lab, &values).await;

    let mut child = sink_command(&lab, &url, "avro", "stopped", CREDENTIALS)
        .stderr(Stdio::piped())
        .spawn()
        .expect("sink");
    let asked_for = |n: usize| asked.lock().unwrap().get("/schemas/ids/7").copied() >= Some(n);
    let until = Instant::now() + Duration::from_secs(60);
    while !asked_for(3) {
        assert!(Instant::now() < until, "the sink never asked the registry");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // SAFETY: signalling a child we spawned and have not reaped.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(i32::try_from(child.id()).expect("pid"), libc::SIGTERM)
    };
    let until = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < until, "the stop hung on the registry");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let out = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(status.success(), "{stderr}");
    assert!(landed_ids(&lab).is_empty());
    assert!(dead_letters(&lab.brokers()).is_empty(), "{stderr}");

    failures.store(0, Ordering::SeqCst);
    run_sink(&lab, &url, "avro", "stopped");
    let ids: Vec<_> = (0..4).map(|id| serde_json::json!(id)).collect();
    assert_eq!(landed_ids(&lab), ids);
    assert!(dead_letters(&lab.brokers()).is_empty());
}

/// Credentials the registry refuses stop the sink, non-zero, naming the fix; nothing is
/// dead-lettered or skipped, and the secret is never printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_registry_credentials_stop_the_sink_naming_the_fix() {
    let lab = lab().await;
    let schema = Schema::parse_str(AVRO_SCHEMA).expect("schema");
    let (url, _) = registry(avro_schemas()).await;
    produce(&lab, &[order(&schema, 1)]).await;
    let out = sink_command(&lab, &url, "avro", "refused", "sr-user:wrong-s3cret")
        .args(["--until-idle", "3s"])
        .output()
        .expect("run the sink");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("refuses the sink's credentials (HTTP 401")
            && stderr.contains("--schema-registry-basic-auth"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
    assert!(landed_ids(&lab).is_empty());
    assert!(dead_letters(&lab.brokers()).is_empty());
}
