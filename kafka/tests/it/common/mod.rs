//! What the tests share: the sink's binary, the lab they run it in (cluster, emulator, tables),
//! producing messages and awaiting their delivery, reading rows back, running the sink to its
//! end (and as JSON), a client of the lab's emulator, (in [`registry`]) a Schema Registry and the values a registry's producer writes, and
//! (in [`typed_tables`]) golden cases' own typed tables, (in [`hostile_file`]) what the hostile
//! suite's file surfaces share.

pub(crate) mod hostile_file;
pub(crate) mod registry;
pub(crate) mod typed_tables;

pub(crate) use snowpipe_cli_support::process::Signal;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::message::ToBytes;
use rdkafka::producer::future_producer::Delivery;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value;
use snowpipe_emulator::EmulatorConfig;
use snowpipe_kafka_lab::demo::Lab;
use snowpipe_streaming::{ClientBuilder, StreamingIngestClient};

/// The `snowpipe-kafka` binary.
pub(crate) fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_snowpipe-kafka"))
}

/// How long the emulator of the tests takes to commit an append.
const COMMIT_DELAY: Duration = Duration::from_millis(100);

/// The emulator of the tests: it commits [`COMMIT_DELAY`] after an append.
pub(crate) fn emulator() -> EmulatorConfig {
    EmulatorConfig::for_tests().with_commit_delay(COMMIT_DELAY)
}

/// A lab with `topics` (name, partitions) and the tests' [`emulator`].
pub(crate) async fn lab(topics: &[(&str, i32)]) -> Lab {
    lab_with(topics, emulator()).await
}

/// A lab with `topics` and the emulator `config`.
pub(crate) async fn lab_with(topics: &[(&str, i32)], config: EmulatorConfig) -> Lab {
    Lab::start_with(topics, config).await.expect("lab")
}

/// A lab whose emulator has `tables` besides the lab's own: SQL run in a database `DEMO` with a
/// schema `KAFKA`, which exist.
pub(crate) async fn lab_with_tables(topics: &[(&str, i32)], tables: &str) -> Lab {
    let ddl = format!(
        "CREATE DATABASE IF NOT EXISTS DEMO;\nCREATE SCHEMA IF NOT EXISTS DEMO.KAFKA;\n{tables}"
    );
    lab_with(topics, emulator().with_ddl(ddl)).await
}

/// The table Snowflake's Kafka connector writes with `snowflake.enable.schematization=false`:
/// two VARIANT columns (for [`lab_with_tables`]; [`connector_rows`] reads it).
pub(crate) const CONNECTOR_ROWS: &str =
    "CREATE OR REPLACE TABLE DEMO.KAFKA.CONNECTOR_ROWS (RECORD_CONTENT VARIANT, RECORD_METADATA VARIANT);";
/// [`CONNECTOR_ROWS`]' default pipe.
pub(crate) const CONNECTOR_ROWS_PIPE: &str = "CONNECTOR_ROWS-STREAMING";

/// Sends `record` and waits until the broker has it: where it landed.
pub(crate) async fn deliver<K, P>(
    producer: &FutureProducer,
    record: FutureRecord<'_, K, P>,
) -> Delivery
where
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
{
    deliver_all(producer, [record]).await.remove(0)
}

/// Queues every record, then waits until the broker has each: where each landed, in order.
pub(crate) async fn deliver_all<'a, K, P>(
    producer: &FutureProducer,
    records: impl IntoIterator<Item = FutureRecord<'a, K, P>>,
) -> Vec<Delivery>
where
    K: ToBytes + ?Sized + 'a,
    P: ToBytes + ?Sized + 'a,
{
    let pending: Vec<_> = records
        .into_iter()
        .map(|r| producer.send_result(r).map_err(|(e, _)| e).expect("queue"))
        .collect();
    let mut out = Vec::with_capacity(pending.len());
    for d in pending {
        out.push(
            d.await
                .expect("producer alive")
                .map_err(|(e, _)| e)
                .expect("delivered"),
        );
    }
    out
}

/// `per` events on each of `partitions` partitions of `topic` (`{"id", "kind", "amount"}`, the
/// lab's table's columns; ids unique across the topic): (partition, offset) → id.
pub(crate) async fn produce_per_partition(
    lab: &Lab,
    topic: &str,
    partitions: i32,
    per: i64,
) -> BTreeMap<(i32, i64), i64> {
    let events: Vec<(i32, i64, String)> = (0..partitions)
        .flat_map(|p| {
            (0..per).map(move |n| {
                let id = i64::from(p) * 1_000 + n;
                (p, id, format!(r#"{{"id":{id},"kind":"k","amount":{n}}}"#))
            })
        })
        .collect();
    let records = events
        .iter()
        .map(|(p, _, v)| FutureRecord::to(topic).partition(*p).key("k").payload(v));
    let producer = lab.producer().expect("producer");
    deliver_all(&producer, records)
        .await
        .into_iter()
        .zip(&events)
        .map(|(d, (_, id, _))| ((d.partition, d.offset), *id))
        .collect()
}

/// Events `ids` on `topic` (`{"id", "kind", "amount"}`), keyed so they spread over the
/// partitions: (topic, partition, offset) of each.
pub(crate) async fn produce_events(
    producer: &FutureProducer,
    topic: &str,
    ids: std::ops::Range<i64>,
) -> Vec<(String, i32, i64)> {
    let events: Vec<(String, String)> = ids
        .map(|id| {
            let value = format!(r#"{{"id":{id},"kind":"{topic}","amount":{}}}"#, id % 13);
            (format!("k{}", id % 17), value)
        })
        .collect();
    let records = events
        .iter()
        .map(|(key, value)| FutureRecord::to(topic).key(key).payload(value));
    deliver_all(producer, records)
        .await
        .into_iter()
        .map(|d| (topic.to_owned(), d.partition, d.offset))
        .collect()
}

/// Waits until the lab's table holds `n` rows, at most `limit`.
pub(crate) async fn wait_landed(lab: &Lab, n: usize, limit: Duration) {
    let until = Instant::now() + limit;
    while lab.landed_offsets().expect("table").len() < n {
        assert!(
            Instant::now() < until,
            "fewer than {n} rows after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A VARIANT as the emulator returns it (JSON text), parsed; SQL NULL stays `Null`.
pub(crate) fn variant(v: &Value) -> Value {
    match v {
        Value::String(s) => serde_json::from_str(s).expect("a VARIANT is JSON text"),
        v => v.clone(),
    }
}

/// The rows of [`CONNECTOR_ROWS`] as `{"RECORD_CONTENT", "RECORD_METADATA"}` objects (no
/// `RECORD_CONTENT` key when it is NULL), by topic and offset.
pub(crate) fn connector_rows(lab: &Lab) -> Vec<Value> {
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
            row.insert("RECORD_METADATA".into(), variant(&r[1]));
            Value::Object(row)
        })
        .collect();
    rows.sort_by_key(|r| {
        let m = &r["RECORD_METADATA"];
        (m["topic"].as_str().map(str::to_owned), m["offset"].as_i64())
    });
    rows
}

/// How a sink run ended.
pub(crate) struct Run {
    pub(crate) success: bool,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    /// This run, asserting it succeeded.
    pub(crate) fn ok(self) -> Self {
        assert!(self.success, "the sink failed: {}", self.stderr);
        self
    }

    /// The closing line (the last on stdout), parsed.
    pub(crate) fn report(&self) -> Value {
        let last = self.stdout.lines().last().expect("a closing line");
        serde_json::from_str(last).expect("the closing line is JSON")
    }
}

/// Runs the sink `cmd` to its end, its stdout and stderr captured.
pub(crate) fn run(cmd: &mut Command) -> Run {
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run the sink");
    Run {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `cmd` with `--format json` to its end: how it ended, and the JSON document on its
/// stdout.
pub(crate) fn run_json(cmd: &mut Command) -> (Run, Value) {
    let out = run(cmd.args(["--format", "json"]));
    let document = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is one JSON document ({e}): {}", out.stdout));
    (out, document)
}

/// A client builder with the lab's Snowflake connection: its account, user, emulator and key.
pub(crate) fn client_builder(lab: &Lab) -> ClientBuilder {
    ClientBuilder::new()
        .account("DEMO")
        .user("KAFKA")
        .url(lab.emulator().url())
        .private_key_file(lab.key_path())
}

/// A client of the lab's emulator (the lab's key, as the connector holds it).
pub(crate) async fn client(lab: &Lab) -> StreamingIngestClient {
    client_builder(lab).build().await.expect("client")
}

/// Sends `sig` to `child`.
#[cfg(unix)]
pub(crate) fn signal(child: &std::process::Child, sig: Signal) {
    // Not reaped yet: the id is still this child's; an error (it has ended) is the test's
    // next wait to see.
    let _ = snowpipe_cli_support::process::signal(child.id(), sig);
}

/// Sets on `cmd` the variables of a whole command line (`brokers`, `topic`, the demo's pipe,
/// group `g`, database and schema) but one bad value: `SNOWPIPE_KAFKA_UNTIL_IDLE=3`, a
/// duration with no unit.
pub(crate) fn env_with_unitless_idle(cmd: &mut Command, brokers: &str, topic: &str) {
    cmd.env("SNOWPIPE_KAFKA_BROKERS", brokers)
        .env("SNOWPIPE_KAFKA_TOPIC", topic)
        .env("SNOWPIPE_KAFKA_PIPE", snowpipe_kafka_lab::demo::PIPE)
        .env("SNOWPIPE_KAFKA_GROUP", "g")
        .env(
            "SNOWPIPE_KAFKA_DATABASE",
            snowpipe_kafka_lab::demo::DATABASE,
        )
        .env("SNOWPIPE_KAFKA_SCHEMA", snowpipe_kafka_lab::demo::SCHEMA)
        .env("SNOWPIPE_KAFKA_UNTIL_IDLE", "3");
}

/// The lab's instance command (group `group`) on `topic`, writing through
/// [`CONNECTOR_ROWS_PIPE`] with `--metadata`.
pub(crate) fn connector_rows_instance(lab: &Lab, topic: &str, group: &str) -> Command {
    let mut cmd = lab.instance_of(&bin(), group);
    cmd.args([
        "--topic",
        topic,
        "--pipe",
        CONNECTOR_ROWS_PIPE,
        "--metadata",
    ]);
    cmd
}
