//! The hostile-input suite (issue 81, item 21) on the sink's Schema Registry: the schemas a
//! registry serves ([`schemas`]: Avro, Protobuf, JSON Schema) and the registry's answers
//! themselves ([`answers`]), through the real `snowpipe-kafka` under an address-space cap,
//! with a registry double that answers as each case says ([`double`]); and, beside them,
//! `--kafka-config` files ([`kafka_config`]), whose `sasl.password` may be the registry's too.
//!
//! Every case's hostile message sits between good ones (a schema id the registry serves
//! well); one sink run (`--until-idle`) takes them all. Asserted: no crash or hang, peak RSS
//! within `--memory-budget` + 64 MiB, every good message landed once, a hostile one landed
//! once or is a dead letter naming its schema id, and the registry's password never printed.
//! `HOSTILE_SEED` / `HOSTILE_CASES` / `HOSTILE_ONLY`: see `hostile/README.md`.
#![cfg(unix)]

mod answers;
mod double;
mod gen;
mod kafka_config;
mod metrics;
mod schemas;

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use rdkafka::producer::FutureRecord;
use serde_json::Value;
use snowpipe_hostile::{attempt, check, Case, Input, Limits, Outcome, MIB};
use snowpipe_kafka::{REASON_HEADER, SOURCE_HEADERS};
use snowpipe_kafka_lab::demo::Lab;

use crate::common::registry::{wire, CREDENTIALS};
use crate::common::{connector_rows, connector_rows_instance, deliver};

/// The dead-letter topic of every run here.
const DLQ: &str = "hostile.registry.dlq";
/// The sink's memory budget in these runs (`--memory-budget`).
const BUDGET: u64 = 256 * MIB;
/// The schema id every format's good messages name.
const GOOD_ID: u32 = 1;
/// The part of [`CREDENTIALS`] that must never be printed.
const PASSWORD: &str = "sr-s3cret";

/// A value format the registry serves, with a good schema and its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Avro,
    Protobuf,
    Json,
}

impl Format {
    /// `--value-format`.
    fn flag(self) -> &'static str {
        match self {
            Self::Avro => "avro",
            Self::Protobuf => "protobuf",
            Self::Json => "json-schema",
        }
    }

    /// The registry's `schemaType`.
    fn kind(self) -> &'static str {
        match self {
            Self::Avro => "AVRO",
            Self::Protobuf => "PROTOBUF",
            Self::Json => "JSON",
        }
    }

    /// The schema of the good messages: one field `id`, a long.
    fn good_schema(self) -> &'static str {
        match self {
            Self::Avro => r#"{"type":"record","name":"G","fields":[{"name":"id","type":"long"}]}"#,
            Self::Protobuf => "syntax = \"proto3\"; message G { int64 id = 1; }",
            Self::Json => r#"{"type":"object","properties":{"id":{"type":"integer"}}}"#,
        }
    }

    /// A value `{id: n}` under schema `id` as a producer of the format writes it (for a
    /// hostile schema, the same bytes: what the schema makes of them is the case).
    fn value(self, schema_id: u32, n: u64) -> Vec<u8> {
        let body = match self {
            Self::Avro => {
                let mut b = Vec::new();
                snowpipe_hostile::gen::avro_long(&mut b, n as i64);
                b
            }
            Self::Protobuf => {
                // The message indexes [0], then field 1 (varint) = n.
                let mut b = vec![0u8, 0x08];
                let mut v = n;
                while v >= 0x80 {
                    b.push((v as u8 & 0x7f) | 0x80);
                    v >>= 7;
                }
                b.push(v as u8);
                b
            }
            Self::Json => format!(r#"{{"id":{n}}}"#).into_bytes(),
        };
        wire(schema_id, &body)
    }
}

/// One message to send: its value, and the schema id if it is a hostile one.
struct Msg {
    value: Vec<u8>,
    hostile: Option<u32>,
}

/// Where a message went: (partition, offset, the hostile schema id if any).
type At = (i32, i64, Option<u32>);

/// Sends `msgs` to `topic` partition `partition`, in order; where each landed.
async fn produce(lab: &Lab, topic: &str, partition: i32, msgs: Vec<Msg>) -> Vec<At> {
    let producer = lab.producer().expect("producer");
    let mut at = Vec::new();
    for m in msgs {
        let record = FutureRecord::to(topic)
            .partition(partition)
            .key("k")
            .payload(&m.value);
        let d = deliver(&producer, record).await;
        at.push((d.partition, d.offset, m.hostile));
    }
    at
}

/// The sink over `topic` with `--value-format format` and the registry at `url` (with
/// [`CREDENTIALS`]), `--layout record-content` into the `CONNECTOR_ROWS` table, dead letters
/// to [`DLQ`], until idle for `idle`.
fn sink(lab: &Lab, topic: &str, format: Format, url: &str, idle: &str) -> Command {
    let mut cmd = connector_rows_instance(lab, topic, &format!("{topic}-group"));
    cmd.args(["--layout", "record-content", "--dead-letter-topic", DLQ])
        .args([
            "--value-format",
            format.flag(),
            "--schema-registry-url",
            url,
        ])
        .args(["--schema-registry-basic-auth", "env:TEST_SR_AUTH"])
        .args(["--until-idle", idle, "--memory-budget", "256MiB"])
        .env("TEST_SR_AUTH", CREDENTIALS)
        .env("RUST_LOG", "info");
    cmd
}

/// The harness's limits: [`BUDGET`], killed after `wall`.
fn limits(wall: Duration) -> Limits {
    let mut l = Limits::with_budget(BUDGET);
    l.wall = wall;
    l
}

/// Runs `cmd` under `limits` off the async workers (the registry double runs on them).
async fn run(cmd: Command, limits: Limits) -> Outcome {
    tokio::task::spawn_blocking(move || {
        snowpipe_hostile::run(cmd, Input::Null, &limits).expect("start the sink")
    })
    .await
    .unwrap()
}

/// What landed from `topic`: (partition, offset) → the rows' `RECORD_CONTENT`.
fn landed(lab: &Lab, topic: &str) -> HashMap<(i64, i64), Vec<Value>> {
    let mut out: HashMap<(i64, i64), Vec<Value>> = HashMap::new();
    for row in connector_rows(lab) {
        let m = &row["RECORD_METADATA"];
        if m["topic"] == topic {
            let at = (
                m["partition"].as_i64().unwrap_or(-1),
                m["offset"].as_i64().unwrap_or(-1),
            );
            out.entry(at)
                .or_default()
                .push(row.get("RECORD_CONTENT").cloned().unwrap_or(Value::Null));
        }
    }
    out
}

/// `topic`'s dead letters: (partition, offset) → their reasons.
fn dead_letters(lab: &Lab, topic: &str) -> HashMap<(i64, i64), Vec<String>> {
    let mut out: HashMap<(i64, i64), Vec<String>> = HashMap::new();
    for h in lab
        .headers_on(DLQ, Duration::from_secs(2))
        .expect("dead letters")
    {
        if h.get(SOURCE_HEADERS[0]).map(String::as_str) != Some(topic) {
            continue;
        }
        let number = |name: &str| h.get(name).and_then(|v| v.parse::<i64>().ok());
        if let (Some(p), Some(o)) = (number(SOURCE_HEADERS[1]), number(SOURCE_HEADERS[2])) {
            out.entry((p, o))
                .or_default()
                .push(h.get(REASON_HEADER).cloned().unwrap_or_default());
        }
    }
    out
}

/// The fate of one message: `Ok(None)` landed once, `Ok(Some(reason))` a dead letter once,
/// `Err` anything else (described).
fn fate(
    landed: &HashMap<(i64, i64), Vec<Value>>,
    dead: &HashMap<(i64, i64), Vec<String>>,
    (p, o): (i32, i64),
) -> Result<Option<String>, String> {
    let key = (i64::from(p), o);
    let rows = landed.get(&key).map_or(0, Vec::len);
    let letters = dead.get(&key).cloned().unwrap_or_default();
    match (rows, letters.as_slice()) {
        (1, []) => Ok(None),
        (0, [one]) => Ok(Some(one.clone())),
        _ => Err(format!(
            "the message at {p}/{o}: {rows} row(s), dead letters {letters:?}"
        )),
    }
}

/// The password must not be in the run's output.
fn assert_no_secret(o: &Outcome) -> Result<(), String> {
    let printed = format!("{}{}", o.stdout_text(), o.stderr_text());
    if printed.contains(PASSWORD) {
        return Err(format!(
            "the registry's password is printed: {}",
            o.summary()
        ));
    }
    Ok(())
}

/// The checks of a whole run, on its `first` case (its seed names the run): no crash, exit 0,
/// within the budget, no credential printed.
///
/// # Errors
/// The first check that failed, as its message.
fn check_whole_run<C: std::fmt::Debug>(first: &Case<C>, o: &Outcome) -> Result<(), String> {
    attempt(|| {
        check::no_crash(first, o);
        check::exited_ok(first, o);
        check::rss_within(first, o, &limits(Duration::ZERO));
        assert_no_secret(o).unwrap_or_else(|e| first.fail(e));
    })
}
