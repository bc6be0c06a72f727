//! Golden cases with a table of their own (`kafka/tests/golden/cases.json`, §17 of
//! `kafka/docs/connector-compatibility.md`): the v3-compatible shape's cases
//! (`snowflake.validation=client_side`) need typed columns, made before the sink runs, and say
//! what the table then holds.
//!
//! * `table`: `{"columns": [[name, type], …], "enable_schema_evolution": bool}`: the table
//!   `GOLDEN_<n>` is created with `RECORD_METADATA VARIANT` and these columns.
//! * `expected_stored`: per column, the value the table holds for v4's appended value (v4
//!   hands the SDK `"2024-01-15T10:00"`; a TIMESTAMP_NTZ holds `2024-01-15
//!   00:00:00.000000000`, as the emulator reads it back). It replaces `expected_row`'s value
//!   in the comparison.
//! * `expected_types`: per column, the type the table has after the run (a column schema
//!   evolution added), its name without length or precision (`NUMBER` for `NUMBER(38,0)`), as
//!   the connector's `TestUtils.checkTableSchema` compares it.
//! * `expected_dead_letter`: text the dead letter's `snowpipe.error` header holds.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;
use snowpipe_kafka::demo::Lab;

/// The DDL of the cases' own tables (`n`: the case's table number).
pub(crate) fn ddl<'a>(cases: impl Iterator<Item = (usize, &'a Value)>) -> String {
    let mut out = String::new();
    for (n, case) in cases {
        let Some(table) = case.get("table") else {
            continue;
        };
        let mut columns = vec!["RECORD_METADATA VARIANT".to_owned()];
        for c in table["columns"].as_array().into_iter().flatten() {
            columns.push(format!(
                "{} {}",
                c[0].as_str().unwrap(),
                c[1].as_str().unwrap()
            ));
        }
        let evolves = if table["enable_schema_evolution"] == true {
            " ENABLE_SCHEMA_EVOLUTION = TRUE"
        } else {
            ""
        };
        out.push_str(&format!(
            "CREATE TABLE DEMO.KAFKA.GOLDEN_{n} ({}){evolves};\n",
            columns.join(", ")
        ));
    }
    out
}

/// `expected` (v4's row, by upper-case column) with the case's `expected_stored` values in
/// place of v4's appended ones.
pub(crate) fn stored(case: &Value, expected: &mut BTreeMap<String, Value>) {
    for (k, v) in case["expected_stored"].as_object().into_iter().flatten() {
        expected.insert(k.to_uppercase(), v.clone());
    }
}

/// Whether table `GOLDEN_<n>` has the case's `expected_types`.
pub(crate) fn types(lab: &Lab, case: &Value, n: usize) -> Result<(), String> {
    let Some(want) = case["expected_types"].as_object() else {
        return Ok(());
    };
    let rows = lab
        .emulator()
        .query(&format!(
            "SELECT name, type FROM pragma_table_info('DEMO.KAFKA.GOLDEN_{n}')"
        ))
        .map_err(|e| e.to_string())?;
    let have: HashMap<String, String> = rows
        .iter()
        .map(|r| {
            (
                r[0].as_str().unwrap_or("").to_owned(),
                r[1].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    for (column, ty) in want {
        // As the connector's test compares: the type's name, without its length or precision.
        let base = have.get(column).map(|t| t.split('(').next().unwrap_or(t));
        if base != ty.as_str() {
            return Err(format!(
                "{}: column {column} should be {ty}; the table has {have:?}",
                case["name"]
            ));
        }
    }
    Ok(())
}

/// `snowpipe.topic` → `snowpipe.error` of every dead letter on `topic`.
pub(crate) fn dead_letter_reasons(lab: &Lab, topic: &str) -> HashMap<String, String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", lab.brokers())
        .set("group.id", "golden-dlq-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut out = HashMap::new();
    let Ok(metadata) = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)) else {
        return out;
    };
    let mut all = TopicPartitionList::new();
    for t in metadata.topics() {
        for p in t.partitions() {
            all.add_partition_offset(topic, p.id(), Offset::Beginning)
                .expect("partition");
        }
    }
    consumer.assign(&all).expect("assign");
    let mut last = Instant::now();
    while last.elapsed() < Duration::from_secs(2) {
        let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        last = Instant::now();
        let header = |name: &str| {
            m.headers().and_then(|h| {
                h.iter()
                    .find(|h| h.key == name)
                    .and_then(|h| h.value)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
            })
        };
        if let (Some(t), Some(why)) = (header("snowpipe.topic"), header("snowpipe.error")) {
            out.insert(t, why);
        }
    }
    out
}
