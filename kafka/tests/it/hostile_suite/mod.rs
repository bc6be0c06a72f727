//! The hostile-input suite (issue 81, item 21) on the sink's inputs: message values (JSON,
//! under `snowflake.validation=client_side` with schema evolution: the path round five found
//! broken), and headers, through the real `snowpipe-kafka` under an address-space cap.
//!
//! Every case's hostile message sits between two good ones on one partition; one sink run
//! (`--until-idle`) takes them all. Asserted per case: the good messages landed once, the
//! hostile one landed once with the sink's own `RECORD_METADATA` (its real partition and
//! offset) or is a dead letter naming its partition and offset — and for the run: no crash
//! or hang, peak RSS within `--memory-budget` + 64 MiB. The map-into-text class is also run
//! at two sizes for CPU linearity (item 3), beside the cases' run (each run counts only its
//! own topic's dead letters). `HOSTILE_SEED` / `HOSTILE_CASES`: see `hostile/README.md`.
//!
//! Here the runs' shared set-up and checks; a surface a file: message values
//! (`json_values.rs`), headers (`headers.rs`), `SNOWPIPE_KAFKA_PROPERTIES`
//! (`environment.rs`), connector files (`config_file.rs`).
#![cfg(unix)]

mod config_file;
mod environment;
mod headers;
mod json_values;

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::message::OwnedHeaders;
use rdkafka::producer::FutureRecord;
use serde_json::Value;
use snowpipe_hostile::gen::Class;
use snowpipe_hostile::{attempt, check, Case, Input, Limits, Outcome, Suite, MIB};
use snowpipe_kafka::SOURCE_HEADERS;
use snowpipe_kafka_lab::demo::Lab;

use crate::common::{bin, deliver, variant};

const DLQ: &str = "hostile.dlq";
/// The sink's memory budget in these runs (`--memory-budget`).
const BUDGET: u64 = 256 * MIB;
/// What librdkafka's producer sends at most by default (`message.max.bytes`), with room for
/// the headers.
const MAX_MESSAGE: u64 = 900_000;

const TABLE_DDL: &str = "CREATE TABLE DEMO.KAFKA.HOSTILE_V (RECORD_METADATA VARIANT, ID NUMBER, \
     A VARCHAR(100), B BOOLEAN) ENABLE_SCHEMA_EVOLUTION = TRUE;";

/// One message a case sends: its value, its headers, whether it is the hostile one.
struct Msg {
    value: Vec<u8>,
    headers: Option<OwnedHeaders>,
    hostile: bool,
}

/// What a case sent: its (partition, offset, hostile) per message.
pub(crate) type Sent = (Case<Class>, Vec<(i32, i64, bool)>);

fn good(id: u64) -> Msg {
    Msg {
        value: format!(r#"{{"id":{id},"a":"good","b":true}}"#).into_bytes(),
        headers: None,
        hostile: false,
    }
}

/// The connector file of these runs: v4's shape with client-side validation (or, without
/// `client_side`, the server's), schema evolution and a dead-letter topic.
fn connector_file(lab: &Lab, topic: &str, client_side: bool) -> std::path::PathBuf {
    let validation = if client_side {
        "client_side"
    } else {
        "server_side"
    };
    let file = lab.dir().join(format!("{topic}.properties"));
    std::fs::write(
        &file,
        format!(
            "name=hostile\ntopics={topic}\nsnowflake.topic2table.map={topic}:HOSTILE_V\n\
             key.converter=org.apache.kafka.connect.storage.StringConverter\n\
             value.converter=org.apache.kafka.connect.json.JsonConverter\n\
             value.converter.schemas.enable=false\n\
             snowflake.validation={validation}\n\
             snowflake.compatibility.enable.column.identifier.normalization=true\n\
             snowflake.enable.schematization=true\n\
             errors.tolerance=all\nerrors.deadletterqueue.topic.name={DLQ}\n"
        ),
    )
    .unwrap();
    file
}

pub(crate) fn limits() -> Limits {
    let mut l = Limits::with_budget(BUDGET);
    l.wall = Duration::from_secs(60);
    l
}

/// Sends every case's messages to `topic` (partition 0), runs the sink once (validating on the
/// client when `client_side`), and returns the run and each case's (partition, offset,
/// hostile) of what it sent.
async fn produce_and_run(
    lab: &Lab,
    topic: &str,
    cases: Vec<(Case<Class>, Vec<Msg>)>,
    client_side: bool,
) -> (Outcome, Vec<Sent>) {
    let producer = lab.producer().expect("producer");
    let mut sent = Vec::new();
    for (case, msgs) in cases {
        let mut at = Vec::new();
        for m in msgs {
            let mut record = FutureRecord::to(topic)
                .partition(0)
                .key("k")
                .payload(&m.value);
            if let Some(h) = m.headers {
                record = record.headers(h);
            }
            let d = deliver(&producer, record).await;
            at.push((d.partition, d.offset, m.hostile));
        }
        sent.push((case, at));
    }
    let file = connector_file(lab, topic, client_side);
    let mut cmd = lab.instance_of(&bin(), &format!("{topic}-group"));
    cmd.arg("--connector-config").arg(&file).args([
        "--until-idle",
        "1s",
        "--memory-budget",
        "256MiB",
    ]);
    let o = tokio::task::spawn_blocking(move || {
        snowpipe_hostile::run(cmd, Input::Null, &limits()).expect("start the sink")
    })
    .await
    .unwrap();
    (o, sent)
}

/// The `RECORD_METADATA` of each row of `table` (in `DEMO.KAFKA`).
fn rows(lab: &Lab, table: &str) -> Vec<Value> {
    let sql = format!(r#"SELECT RECORD_METADATA FROM "DEMO.KAFKA.{table}""#);
    lab.emulator()
        .query(&sql)
        .expect(table)
        .iter()
        .map(|r| variant(&r[0]))
        .collect()
}

/// Where each dead letter on `dlq` of `topic`'s messages came from (runs may share `dlq`).
pub(crate) fn dead_letters(lab: &Lab, topic: &str, dlq: &str) -> Vec<(i32, i64)> {
    lab.headers_on(dlq, Duration::from_secs(2))
        .expect("dead letters")
        .iter()
        .filter(|h| h.get(SOURCE_HEADERS[0]).map(String::as_str) == Some(topic))
        .filter_map(|h| {
            let number = |name: &str| h.get(name).and_then(|v| v.parse::<i64>().ok());
            Some((
                i32::try_from(number(SOURCE_HEADERS[1])?).ok()?,
                number(SOURCE_HEADERS[2])?,
            ))
        })
        .collect()
}

/// The checks of one surface's run of `topic` into `table` (dead letters on `dlq`): the run
/// itself, then every case.
pub(crate) fn check_run(
    lab: &Lab,
    suite: &Suite,
    (topic, table, dlq): (&str, &str, &str),
    o: &Outcome,
    sent: &[Sent],
) {
    let mut failures = Vec::new();
    if let Some((first, _)) = sent.first() {
        failures.extend(
            attempt(|| {
                check::exited_ok(first, o);
                check::rss_within(first, o, &limits());
            })
            .err()
            .map(|e| format!("the run of every case (the first case's seed shown): {e}")),
        );
    }
    let metas = rows(lab, table);
    let mut landed: HashMap<(i64, i64), Vec<&Value>> = HashMap::new();
    for m in &metas {
        if m["topic"] == topic {
            let key = (
                m["partition"].as_i64().unwrap_or(-1),
                m["offset"].as_i64().unwrap_or(-1),
            );
            landed.entry(key).or_default().push(m);
        }
    }
    let dead = dead_letters(lab, topic, dlq);
    for (case, at) in sent {
        failures.extend(
            attempt(|| {
                for &(p, off, hostile) in at {
                    let here = landed.get(&(i64::from(p), off)).map_or(0, Vec::len);
                    let dead_here = dead.iter().filter(|d| **d == (p, off)).count();
                    match (hostile, here, dead_here) {
                        (false, 1, 0) | (true, 1, 0) | (true, 0, 1) => {}
                        _ => case.fail(format!(
                            "{} message at {topic}/{p}/{off}: {here} row(s), {dead_here} dead \
                             letter(s); want {} (stderr: {})",
                            if hostile { "the hostile" } else { "a good" },
                            if hostile {
                                "one row or one dead letter"
                            } else {
                                "one row"
                            },
                            o.stderr_text().chars().take(1500).collect::<String>()
                        )),
                    }
                }
            })
            .err(),
        );
    }
    // A row claiming another place than its own (a forged RECORD_METADATA, item 2).
    let own: Vec<(i64, i64)> = sent
        .iter()
        .flat_map(|(_, at)| at.iter().map(|&(p, o, _)| (i64::from(p), o)))
        .collect();
    if let Some(forged) = landed.keys().find(|k| !own.contains(k)) {
        failures.push(format!(
            "a row claims {topic}/{}/{}, which no case sent",
            forged.0, forged.1
        ));
    }
    // Every run of these tests reads a `hostile.` topic; another name is a forged one.
    let ours = |m: &Value| {
        m["topic"]
            .as_str()
            .is_some_and(|t| t.starts_with("hostile."))
    };
    if !metas.iter().all(ours) {
        failures.push(format!(
            "a row's RECORD_METADATA names a topic no run read: {metas:?}"
        ));
    }
    suite.finish(failures);
}
