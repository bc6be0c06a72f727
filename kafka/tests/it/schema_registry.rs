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
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use apache_avro::types::{Record, Value};
use apache_avro::{Decimal, Schema};
use base64::Engine as _;
use rdkafka::producer::FutureRecord;
use snowpipe_kafka::{REASON_HEADER, SOURCE_HEADERS};
use snowpipe_kafka_lab::demo::Lab;

use crate::common::registry::{
    compile_proto, registry, registry_failing, wire, Asked, Schemas, CREDENTIALS,
};
use crate::common::{bin, deliver_all, lab_with_tables, run, signal, variant};
use snowpipe_cli_support::process::Signal;

const TOPIC: &str = "orders";
const DLQ: &str = "orders.dlq";
const SCHEMA_ID: u32 = 7;

const TABLE: &str = "
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
    lab_with_tables(&[(TOPIC, 1), (DLQ, 1)], TABLE).await
}

/// The registry's one Avro schema, by its id.
fn avro_schemas() -> Schemas {
    HashMap::from([(SCHEMA_ID, ("AVRO", AVRO_SCHEMA.to_owned()))])
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
    let stderr =
        run(sink_command(lab, url, format, group, CREDENTIALS).args(["--until-idle", "3s"]))
            .ok()
            .stderr;
    assert!(
        !stderr.contains("s3cret"),
        "the secret is never printed: {stderr}"
    );
    stderr
}

/// The sink's command over `TOPIC` (dead letters to `DLQ`), with the registry at `url` and
/// `credentials` for it, warnings on stderr.
fn sink_command(lab: &Lab, url: &str, format: &str, group: &str, credentials: &str) -> Command {
    let mut cmd = lab.instance_of(&bin(), group);
    cmd.args(["--topic", TOPIC, "--pipe", "ORDERS-STREAMING", "--metadata"])
        .args(["--dead-letter-topic", DLQ])
        .args(["--value-format", format, "--schema-registry-url", url])
        .args(["--schema-registry-basic-auth", "env:TEST_SR_AUTH"])
        .env("TEST_SR_AUTH", credentials)
        .env("RUST_LOG", "warn");
    cmd
}

/// Sends `values` to `TOPIC` in order; their offsets.
async fn produce(lab: &Lab, values: &[Vec<u8>]) -> Vec<i64> {
    let producer = lab.producer().expect("producer");
    let records = values
        .iter()
        .map(|v| FutureRecord::to(TOPIC).key("k").payload(v));
    deliver_all(&producer, records)
        .await
        .into_iter()
        .map(|d| d.offset)
        .collect()
}

/// A value that is no order: what it is, its bytes, and what its dead letter's reason says.
type Poison = (&'static str, Vec<u8>, &'static str);

/// Sends `orders` with the `poison` values between them (poison `k` right after order `k`); the
/// offsets of the orders, and of the poison values.
async fn produce_between(
    lab: &Lab,
    orders: Vec<Vec<u8>>,
    poison: &[Poison],
) -> (Vec<i64>, Vec<i64>) {
    assert!(poison.len() <= orders.len(), "poison between orders");
    let mut values = Vec::new();
    for (k, order) in orders.into_iter().enumerate() {
        values.push(order);
        values.extend(poison.get(k).map(|(_, v, _)| v.clone()));
    }
    let (mut order_offsets, mut poison_offsets) = (Vec::new(), Vec::new());
    for (i, offset) in produce(lab, &values).await.into_iter().enumerate() {
        // Order k is at 2k while there is poison after it, poison k at 2k + 1.
        if i % 2 == 1 && i < 2 * poison.len() {
            poison_offsets.push(offset);
        } else {
            order_offsets.push(offset);
        }
    }
    (order_offsets, poison_offsets)
}

/// The table's `columns` by ID, asserting it has `n` rows; and the dead letters.
fn outcome(
    lab: &Lab,
    columns: &str,
    n: usize,
) -> (Vec<Vec<serde_json::Value>>, HashMap<i64, String>) {
    let letters = dead_letters(lab);
    let rows = lab
        .emulator()
        .query(&format!(
            r#"SELECT {columns} FROM "DEMO.KAFKA.ORDERS" ORDER BY ID"#
        ))
        .expect("table");
    assert_eq!(rows.len(), n, "{rows:?}; dead letters: {letters:?}");
    (rows, letters)
}

/// The dead letters are the `poison` values, produced at `offsets`, each with its reason.
fn assert_dead_letters(letters: &HashMap<i64, String>, poison: &[Poison], offsets: &[i64]) {
    assert_eq!(letters.len(), poison.len(), "{letters:?}");
    for ((what, _, why), offset) in poison.iter().zip(offsets) {
        let reason = letters.get(offset).expect("dead-lettered");
        assert!(reason.contains(why), "{what}: {reason}");
    }
}

/// The registry was asked `n` times for schema [`SCHEMA_ID`] (once: the sink keeps each
/// schema it fetched).
fn assert_asked(asked: &Asked, n: usize) {
    let asked = asked.lock().unwrap().clone();
    assert_eq!(
        asked.get(&format!("/schemas/ids/{SCHEMA_ID}")),
        Some(&n),
        "{asked:?}"
    );
}

/// Order `id`'s `AT`, `CUSTOMER` and `NOTE` (the columns after `ID` and `PRICE`), as the
/// tests' Avro and Protobuf producers write them: a timestamp, a customer with an enum, a note
/// on even ids only.
fn assert_at_customer_and_note(id: i64, row: &[serde_json::Value]) {
    assert_eq!(
        text(&row[2]),
        (1_700_000_000_123_456 + id).to_string(),
        "{row:?}"
    );
    assert_eq!(
        variant(&row[3]),
        serde_json::json!({"name": format!("c-{id}"), "tier": "SILVER"})
    );
    let note = if id % 2 == 0 {
        serde_json::json!(format!("n{id}"))
    } else {
        serde_json::Value::Null
    };
    assert_eq!(row[4], note, "{row:?}");
}

/// A number cell as its text, whether the emulator reads it back as a number or as text.
fn text(cell: &serde_json::Value) -> String {
    cell.to_string().trim_matches('"').to_owned()
}

/// `offset → reason` of the dead letters on `DLQ`.
fn dead_letters(lab: &Lab) -> HashMap<i64, String> {
    let letters = lab
        .headers_on(DLQ, Duration::from_secs(3))
        .expect("the dead letters");
    let mut out = HashMap::new();
    for mut headers in letters {
        let offset = headers.remove(SOURCE_HEADERS[2]).expect("offset header");
        out.insert(
            offset.parse().expect("an offset"),
            headers.remove(REASON_HEADER).expect("reason header"),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avro_values_land_with_exact_values_and_undecodable_ones_are_dead_letters() {
    let lab = lab().await;
    let schema = Schema::parse_str(AVRO_SCHEMA).expect("schema");
    let (url, asked) = registry(avro_schemas()).await;
    // Six orders, and between them: an id the registry does not know, garbage after a good
    // header, and a plain JSON value.
    let poison: [Poison; 3] = [
        (
            "unknown id",
            wire(99, &order(&schema, 100)[5..]),
            "schema id 99: the Schema Registry answered HTTP 404",
        ),
        (
            "garbage",
            wire(SCHEMA_ID, &[0xff; 12]),
            "schema id 7: the Avro body does not decode",
        ),
        (
            "plain JSON",
            br#"{"ID":1}"#.to_vec(),
            "does not start with the Schema Registry magic byte 0",
        ),
    ];
    let orders = (0..6).map(|id| order(&schema, id)).collect();
    let (offsets, poison_offsets) = produce_between(&lab, orders, &poison).await;
    run_sink(&lab, &url, "avro", "avro");

    let (rows, letters) = outcome(
        &lab,
        "ID, PRICE, AT, CUSTOMER, NOTE, BLOB, RECORD_METADATA",
        6,
    );
    for ((id, row), offset) in (0..6i64).zip(&rows).zip(offsets) {
        assert_eq!(row[0], serde_json::json!(id), "{row:?}");
        assert_eq!(
            text(&row[1]),
            format!("12345678901234567890.123456789{id}"),
            "the decimal, exact: {row:?}"
        );
        assert_at_customer_and_note(id, row);
        let blob =
            base64::engine::general_purpose::STANDARD.encode([0xff, 0, u8::try_from(id).unwrap()]);
        assert_eq!(row[5], serde_json::json!(blob), "bytes as base64: {row:?}");
        let meta = variant(&row[6]);
        assert_eq!(meta["offset"], serde_json::json!(offset), "{meta}");
    }
    assert_dead_letters(&letters, &poison, &poison_offsets);
    assert_asked(&asked, 1);
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
    let poison: [Poison; 4] = [
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
    let orders = (0..4).map(good).collect();
    let (offsets, poison_offsets) = produce_between(&lab, orders, &poison).await;
    run_sink(&lab, &url, "json-schema", "json-schema");

    let (rows, letters) = outcome(&lab, "ID, PRICE, CUSTOMER, NOTE, RECORD_METADATA", 4);
    for ((id, row), offset) in (0..4i64).zip(&rows).zip(offsets) {
        assert_eq!(row[0], serde_json::json!(id), "{row:?}");
        assert_eq!(
            text(&row[1]),
            format!("1234567.890123{id}000"),
            "the decimal (as a plain JSON value reads it): {row:?}"
        );
        assert_eq!(
            variant(&row[2]).to_string(),
            format!(r#"{{"name":"c-{id}"}}"#),
            "CUSTOMER keeps what its schema declares (connector v4 drops `big`): {row:?}"
        );
        let note = if id % 2 == 0 {
            serde_json::json!(format!("n{id} ünïcødé ☃"))
        } else {
            serde_json::Value::Null
        };
        assert_eq!(row[3], note, "{row:?}");
        let meta = variant(&row[4]);
        assert_eq!(meta["offset"], serde_json::json!(offset), "{meta}");
    }
    assert_dead_letters(&letters, &poison, &poison_offsets);
    assert_asked(&asked, 1);
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
/// So is a value of a schema whose full names would multiply its package (issue 72: refused
/// before compiling, naming its id), and the values after it land.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_values_land_with_exact_values_and_undecodable_ones_are_dead_letters() {
    use prost::Message as _;
    let lab = lab().await;
    // 300 fields, each naming and resolving to a 20 KB package (26 KB of text).
    let fields: String = (1..=300).map(|i| format!("A f{i} = {i}; ")).collect();
    let names = format!(
        "syntax = \"proto3\"; package {}; message A {{}} message B {{ {fields}}}",
        "p".repeat(20_000)
    );
    let (url, asked) = registry(HashMap::from([
        (SCHEMA_ID, ("PROTOBUF", PROTO_SCHEMA.to_owned())),
        (8, ("PROTOBUF", names)),
    ]))
    .await;
    let order = compile_proto(PROTO_SCHEMA)
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
    let poison: [Poison; 3] = [
        (
            "names",
            wire(8, b"\x00"),
            "schema id 8: the Protobuf schema's full names would take",
        ),
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
    let orders = (0..3).map(good).collect();
    let (offsets, poison_offsets) = produce_between(&lab, orders, &poison).await;
    run_sink(&lab, &url, "protobuf", "protobuf");

    let (rows, letters) = outcome(
        &lab,
        "ID, PRICE, AT, CUSTOMER, NOTE, BLOB, RECORD_METADATA",
        3,
    );
    for ((id, row), offset) in (0..3i64).zip(&rows).zip(offsets) {
        assert_eq!(
            text(&row[0]),
            (9_007_199_254_740_993_i64 + id).to_string(),
            "int64 exact: {row:?}"
        );
        assert_eq!(text(&row[1]), format!("{id}.2500000000"), "{row:?}");
        assert_at_customer_and_note(id, row);
        assert_eq!(row[5], serde_json::json!(format!("/wA{id}")), "{row:?}");
        assert_eq!(variant(&row[6])["offset"], serde_json::json!(offset));
    }
    assert_dead_letters(&letters, &poison, &poison_offsets);
    assert_asked(&asked, 1);
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
    let poison: [Poison; 1] = [(
        "unknown id",
        wire(99, &order(&schema, 100)[5..]),
        "schema id 99: the Schema Registry answered HTTP 404",
    )];
    let mut values: Vec<Vec<u8>> = (0..6).map(|id| order(&schema, id)).collect();
    values.push(poison[0].1.clone());
    let offsets = produce(&lab, &values).await;

    let stderr = run_sink(&lab, &format!("{down}, {url}"), "avro", "outage");

    let ids: Vec<_> = (0..6).map(|id| serde_json::json!(id)).collect();
    let letters = dead_letters(&lab);
    assert_eq!(landed_ids(&lab), ids, "{letters:?}\n{stderr}");
    assert_dead_letters(&letters, &poison, &offsets[6..]);
    assert_eq!(failures.load(Ordering::SeqCst), 0, "the outage was met");
    assert!(
        stderr.contains("cannot give schema id 7")
            && stderr.contains(&down)
            && stderr.contains(&format!("{url} answered HTTP 503")),
        "{stderr}"
    );
    assert!(stderr.contains("answers again"), "{stderr}");
    assert_asked(&asked, 5);
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
    signal(&child, Signal::Term);
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
    assert!(dead_letters(&lab).is_empty(), "{stderr}");

    failures.store(0, Ordering::SeqCst);
    run_sink(&lab, &url, "avro", "stopped");
    let ids: Vec<_> = (0..4).map(|id| serde_json::json!(id)).collect();
    assert_eq!(landed_ids(&lab), ids);
    assert!(dead_letters(&lab).is_empty());
}

/// Credentials the registry refuses stop the sink, non-zero, naming the fix; nothing is
/// dead-lettered or skipped, and the secret is never printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_registry_credentials_stop_the_sink_naming_the_fix() {
    let lab = lab().await;
    let schema = Schema::parse_str(AVRO_SCHEMA).expect("schema");
    let (url, _) = registry(avro_schemas()).await;
    produce(&lab, &[order(&schema, 1)]).await;
    let out = run(
        sink_command(&lab, &url, "avro", "refused", "sr-user:wrong-s3cret")
            .args(["--until-idle", "3s"]),
    );
    let stderr = out.stderr;
    assert!(!out.success, "{stderr}");
    assert!(
        stderr.contains("refuses the sink's credentials (HTTP 401")
            && stderr.contains("--schema-registry-basic-auth"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
    assert!(landed_ids(&lab).is_empty());
    assert!(dead_letters(&lab).is_empty());
}
