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
#![cfg(unix)]

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use serde_json::Value;
use snowpipe_hostile::gen::{self, Class};
use snowpipe_hostile::{attempt, check, Case, Input, Limits, Outcome, Rng, Suite, MIB};
use snowpipe_kafka::demo::{Lab, DATABASE, PIPE, SCHEMA};
use snowpipe_kafka::SOURCE_HEADERS;

use crate::common::{bin, deliver, hostile_file, lab_with_tables, variant};

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

/// The connector file of these runs: v4's shape with client-side validation, schema evolution
/// and a dead-letter topic.
fn connector_file(lab: &Lab, topic: &str) -> std::path::PathBuf {
    let file = lab.dir().join(format!("{topic}.properties"));
    std::fs::write(
        &file,
        format!(
            "name=hostile\ntopics={topic}\nsnowflake.topic2table.map={topic}:HOSTILE_V\n\
             key.converter=org.apache.kafka.connect.storage.StringConverter\n\
             value.converter=org.apache.kafka.connect.json.JsonConverter\n\
             value.converter.schemas.enable=false\n\
             snowflake.validation=client_side\n\
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

/// Sends every case's messages to `topic` (partition 0), runs the sink once, and returns the
/// run and each case's (partition, offset, hostile) of what it sent.
async fn produce_and_run(
    lab: &Lab,
    topic: &str,
    cases: Vec<(Case<Class>, Vec<Msg>)>,
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
    let file = connector_file(lab, topic);
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

/// One hostile JSON value of `class`.
fn json_value(class: Class, rng: &mut Rng, id: u64) -> Vec<u8> {
    let mut v = Vec::new();
    match class {
        // Past the column's length (VARCHAR(100)), within the producer's limit.
        Class::Size => {
            v.extend_from_slice(format!(r#"{{"id":{id},"a":"#).as_bytes());
            gen::long_json_string(&mut v, rng.range(101, MAX_MESSAGE - 100) as usize, rng);
            v.push(b'}');
        }
        Class::Depth => {
            v.extend_from_slice(format!(r#"{{"id":{id},"a":"#).as_bytes());
            gen::nested_json(&mut v, rng.range(1_000, 100_000) as usize, rng);
            v.push(b'}');
        }
        // A map into a text column (item 3), or many new keys for schema evolution (item 4).
        Class::Count => {
            v.extend_from_slice(format!(r#"{{"id":{id},"a":"#).as_bytes());
            if rng.one_in(2) {
                gen::many_keys_object(&mut v, rng.range(1_000, 60_000) as usize);
                v.push(b'}');
            } else {
                v.clear();
                gen::many_keys_object(&mut v, rng.range(300, 3_000) as usize);
            }
        }
        // Numbers at the edges into the text column (item 1) and the number column.
        Class::Number => {
            let col = if rng.one_in(2) { "a" } else { "id" };
            let n = gen::edge_number(rng);
            v.extend_from_slice(format!(r#"{{"id":{id},"{col}":{n}}}"#).as_bytes());
            if col == "id" {
                v = format!(r#"{{"id":{n},"a":"x"}}"#).into_bytes();
            }
        }
        Class::Encoding => match rng.below(3) {
            0 => {
                v.extend_from_slice(gen::BOM);
                v.extend_from_slice(format!(r#"{{"id":{id},"a":"bom"}}"#).as_bytes());
            }
            1 => {
                v.extend_from_slice(format!(r#"{{"id":{id},"a":"x"#).as_bytes());
                v.extend_from_slice(gen::invalid_utf8(rng));
                v.extend_from_slice(b"\"}");
            }
            _ => {
                v.extend_from_slice(
                    format!(r#"{{"id":{id},"a":"x{}"}}"#, gen::bad_json_escape(rng)).as_bytes(),
                );
            }
        },
        Class::Claim => {
            v.extend_from_slice(format!(r#"{{"id":{id},"a":"never closed"#).as_bytes());
        }
        // The sink's own column in a value (item 2), a key twice, a key differing in case.
        Class::Reserved => {
            let forged = r#"{"topic":"forged","partition":0,"offset":0,"CreateTime":0}"#;
            v = match rng.below(3) {
                0 => gen::reserved_json_object("RECORD_METADATA", forged, &format!(r#""id":{id}"#)),
                1 => format!(r#"{{"id":{id},"a":"one","a":"two"}}"#),
                _ => format!(r#"{{"id":{id},"a":"upper","\"a\"":"quoted lower"}}"#),
            }
            .into_bytes();
        }
    }
    v
}

/// A case's messages: a good one, the hostile one(s), a good one. Numbers send every one of
/// [`gen::EDGE_NUMBERS`] into the text column and into the number column, and one drawn.
fn json_case(case: &mut Case<Class>) -> Vec<Msg> {
    let base = 1_000 * (case.index as u64 + 1);
    let hostile = |value: Vec<u8>| Msg {
        value,
        headers: None,
        hostile: true,
    };
    let mut msgs = vec![good(base + 1)];
    if case.class == Class::Number {
        for (i, n) in gen::EDGE_NUMBERS.iter().enumerate() {
            let id = base + 100 + i as u64;
            msgs.push(hostile(format!(r#"{{"id":{id},"a":{n}}}"#).into_bytes()));
            msgs.push(hostile(format!(r#"{{"id":{n},"a":"x"}}"#).into_bytes()));
        }
    }
    msgs.push(hostile(json_value(case.class, &mut case.rng, base + 500)));
    msgs.push(good(base + 2));
    msgs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_json_values() {
    let topic = "hostile.json";
    let linear = ["hostile.linear1", "hostile.linear2"];
    let lab = lab_with_tables(
        &[(topic, 1), (DLQ, 1), (linear[0], 1), (linear[1], 1)],
        TABLE_DDL,
    )
    .await;
    let suite = Suite::from_env("json_values", Class::ALL.len());
    let cases = suite
        .cases(&Class::ALL)
        .into_iter()
        .map(|mut case| {
            let msgs = json_case(&mut case);
            (case, msgs)
        })
        .collect();
    // Linear: a map of n and 2n keys into the text column (item 3: 100,000 keys, 13.9 s),
    // one run after the other, beside the cases' run (CPU is measured per process); none when
    // `HOSTILE_ONLY` leaves out `Count` (the harness prints that it skipped).
    let linear_case = Suite::from_env("json_values_linear", 1)
        .cases(&[Class::Count])
        .pop();
    let linear_runs = async {
        let mut runs = Vec::new();
        let Some(case) = &linear_case else {
            return runs;
        };
        for (t, n) in linear.iter().zip([15_000usize, 30_000]) {
            let mut value = br#"{"id":1,"a":"#.to_vec();
            gen::many_keys_object(&mut value, n);
            value.push(b'}');
            let msg = Msg {
                value,
                headers: None,
                hostile: true,
            };
            let (o, _) = produce_and_run(&lab, t, vec![(case.clone(), vec![msg])]).await;
            runs.push((n as u64, o));
        }
        runs
    };
    let ((o, sent), runs) = tokio::join!(produce_and_run(&lab, topic, cases), linear_runs);
    let mut failures = attempt(|| check_run(&lab, &suite, (topic, "HOSTILE_V", DLQ), &o, &sent))
        .err()
        .into_iter()
        .collect::<Vec<_>>();
    if let Some(case) = &linear_case {
        failures.extend(
            attempt(|| {
                check::no_crash(case, &runs[0].1);
                check::no_crash(case, &runs[1].1);
                check::assert_linear(
                    case,
                    (runs[0].0, &runs[0].1),
                    (runs[1].0, &runs[1].1),
                    2.6,
                    Duration::from_millis(800),
                );
            })
            .err(),
        );
    }
    suite.finish(failures);
}

/// Hostile headers of `class` on a good value.
fn headers(class: Class, rng: &mut Rng) -> OwnedHeaders {
    let mut h = OwnedHeaders::new();
    let long = |n: usize| "h".repeat(n);
    match class {
        Class::Size => {
            let v = long(rng.range(1_000, MAX_MESSAGE / 2) as usize);
            h = h.insert(Header {
                key: "big",
                value: Some(&v),
            });
        }
        Class::Count => {
            for i in 0..rng.range(1_000, 20_000) {
                let k = format!("h{i}");
                h = h.insert(Header {
                    key: &k,
                    value: Some("v"),
                });
            }
        }
        Class::Reserved => {
            for k in ["topic", "offset", "partition", "headers", "trace", "trace"] {
                h = h.insert(Header {
                    key: k,
                    value: Some("forged"),
                });
            }
        }
        Class::Encoding => {
            let v = [
                b"a".as_slice(),
                gen::invalid_utf8(rng),
                gen::control_chars(rng),
            ]
            .concat();
            h = h.insert(Header {
                key: "enc",
                value: Some(&v),
            });
        }
        Class::Number => {
            let n = gen::edge_number(rng);
            h = h.insert(Header {
                key: "n",
                value: Some(&n),
            });
        }
        Class::Depth | Class::Claim => {
            let mut v = Vec::new();
            gen::nested_json(&mut v, rng.range(1_000, 50_000) as usize, rng);
            h = h.insert(Header {
                key: "json",
                value: Some(&v),
            });
            h = h.insert(Header::<&str> {
                key: "none",
                value: None,
            });
        }
    }
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_headers() {
    let topic = "hostile.headers";
    let lab = lab_with_tables(&[(topic, 1), (DLQ, 1)], TABLE_DDL).await;
    let suite = Suite::from_env("headers", Class::ALL.len());
    let cases = suite
        .cases(&Class::ALL)
        .into_iter()
        .map(|mut case| {
            let base = 1_000 * (case.index as u64 + 1);
            let mut bad = good(base + 500);
            bad.headers = Some(headers(case.class, &mut case.rng));
            bad.hostile = true;
            (case, vec![good(base + 1), bad, good(base + 2)])
        })
        .collect();
    let (o, sent) = produce_and_run(&lab, topic, cases).await;
    check_run(&lab, &suite, (topic, "HOSTILE_V", DLQ), &o, &sent);
}

/// A secret of `class` for `SNOWPIPE_KAFKA_PROPERTIES`: random pieces (each unique, 8+
/// characters, so finding one in the output is no accident) joined by what a splitter might
/// cut at. Returns (the variable's value, the pieces that must never be printed).
fn secret(class: Class, rng: &mut Rng) -> (std::ffi::OsString, Vec<String>) {
    use std::os::unix::ffi::OsStringExt as _;
    let piece = |rng: &mut Rng| -> String {
        (0..12)
            .map(|_| char::from(b'a' + rng.below(26) as u8))
            .collect()
    };
    let n = match class {
        Class::Count => rng.range(100, 2_000),
        Class::Size => rng.range(5_000, 20_000),
        _ => rng.range(2, 6),
    };
    let pieces: Vec<String> = (0..n).map(|_| piece(rng)).collect();
    if class == Class::Claim {
        // Pieces that look like properties themselves: `…=abcdefgh=ijklmnop,qrstuvwx=yzabcdef`;
        // neither half may be printed.
        let halves: Vec<String> = pieces
            .iter()
            .flat_map(|p| [p[..6].to_owned(), p[6..].to_owned()])
            .collect();
        let value = pieces
            .iter()
            .map(|p| format!("{}={}", &p[..6], &p[6..]))
            .collect::<Vec<_>>();
        let text = format!("sasl.password={}", value.join(","));
        return (std::ffi::OsString::from(text), halves);
    }
    let sep: &str = match class {
        Class::Reserved => ",bootstrap.servers=",
        Class::Depth => ",[{",
        Class::Number => ",1e400,",
        Class::Encoding => "\\,",
        _ => ",",
    };
    let mut value = format!("sasl.password={}", pieces.join(sep)).into_bytes();
    if class == Class::Encoding {
        value.extend_from_slice(gen::invalid_utf8(rng));
        value.extend_from_slice(b",");
        value.extend_from_slice(piece(rng).as_bytes());
    }
    (std::ffi::OsString::from_vec(value), pieces)
}

/// `SNOWPIPE_KAFKA_PROPERTIES` holding a password with commas, `=`, escapes, property-like
/// pieces (item 19): the sink runs or refuses, and no piece of the value is ever printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_environment() {
    let topic = "hostile.env";
    let lab = lab_with_tables(&[(topic, 1)], TABLE_DDL).await;
    let suite = Suite::from_env("environment", Class::ALL.len());
    let mut failures = Vec::new();
    for mut case in suite.cases(&Class::ALL) {
        let (value, pieces) = secret(case.class, &mut case.rng);
        // No `-X` on the command line: a flag there would win over the variable.
        let mut cmd = std::process::Command::new(bin());
        lab.connect(&mut cmd)
            .args([
                "--brokers",
                &lab.brokers(),
                "--topic",
                topic,
                "--pipe",
                PIPE,
            ])
            .args([
                "--group",
                &format!("env{}", case.index),
                "--database",
                DATABASE,
            ])
            .args(["--schema", SCHEMA, "--until-idle", "2s"])
            .env("SNOWPIPE_KAFKA_PROPERTIES", &value);
        // A run takes 5 s (2 s idle); 20 s means it is stuck.
        let mut l = limits();
        l.wall = Duration::from_secs(20);
        let o = tokio::task::spawn_blocking(move || {
            snowpipe_hostile::run(cmd, Input::Null, &l).unwrap()
        })
        .await
        .unwrap();
        eprintln!(
            "hostile environment case {} ({:?}): {}",
            case.index,
            case.class,
            o.summary()
        );
        failures.extend(
            attempt(|| {
                check::no_crash(&case, &o);
                let printed = format!("{}{}", o.stdout_text(), o.stderr_text());
                if let Some(p) = pieces.iter().find(|p| printed.contains(p.as_str())) {
                    case.fail(format!(
                        "a piece of the password ({} characters) is printed: {}",
                        p.len(),
                        o.summary()
                    ));
                }
            })
            .err(),
        );
    }
    suite.finish(failures);
}

/// A connector file of `class` (`.properties`, or JSON for depth), around a valid base that
/// holds a passphrase which must never be printed. Returns the file's bytes.
fn connector_text(class: Class, rng: &mut Rng, topic: &str, secret: &str) -> Vec<u8> {
    let base = format!(
        "name=hostile\ntopics={topic}\nsnowflake.topic2table.map={topic}:HOSTILE_V\n\
         snowflake.private.key.passphrase={secret}\n"
    );
    let mut v = base.clone().into_bytes();
    match class {
        // Past the 4 MiB the file may hold.
        Class::Size => {
            v.extend_from_slice(b"comment=");
            gen::long_run(&mut v, (4 << 20) + rng.range(1, 1 << 20) as usize, b'x');
            v.push(b'\n');
        }
        Class::Depth => {
            v.clear();
            v.extend_from_slice(
                format!(
                    r#"{{"name":"hostile","config":{{"topics":"{topic}","snowflake.private.key.passphrase":"{secret}","x":"#
                )
                .as_bytes(),
            );
            gen::nested_json(&mut v, rng.range(1_000, 100_000) as usize, rng);
            v.extend_from_slice(b"}}");
        }
        Class::Count => {
            for i in 0..rng.range(10_000, 100_000) {
                v.extend_from_slice(format!("k{i}=v{i}\n").as_bytes());
            }
        }
        Class::Number => {
            let n = gen::edge_number(rng);
            for key in ["tasks.max", "buffer.count.records", "buffer.flush.time"] {
                v.extend_from_slice(format!("{key}={n}\n").as_bytes());
            }
        }
        Class::Encoding => {
            v.splice(0..0, gen::BOM.iter().copied());
            v.extend_from_slice(b"comment=a");
            v.extend_from_slice(gen::control_chars(rng));
            v.push(b'\n');
            if rng.one_in(2) {
                v.extend_from_slice(b"other=");
                v.extend_from_slice(gen::invalid_utf8(rng));
                v.push(b'\n');
            }
        }
        // Claims that disagree: a map naming a topic the file does not list, a continuation
        // line that never ends.
        Class::Claim => {
            v.extend_from_slice(b"snowflake.topic2table.map=other:OTHER\nlast=a\\\n");
        }
        // Keys the sink reserves, given twice: the name, the passphrase, the topics.
        Class::Reserved => {
            v.extend_from_slice(
                format!("name=other\nsnowflake.private.key.passphrase={secret}x\ntopics=\n")
                    .as_bytes(),
            );
        }
    }
    v
}

/// The connector file (`--connector-config`, `.properties` or JSON) through `snowpipe-kafka
/// check` (issue 81, item 21): sizes past its limit, depth, many keys, edge numbers,
/// encodings, disagreeing claims, reserved keys twice. Each run exits 0 or refuses naming
/// the file, within the memory budget, and never prints the passphrase.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_connector_file() {
    let topic = "hostile.file";
    let lab = lab_with_tables(&[(topic, 1)], TABLE_DDL).await;
    let suite = Suite::from_env("connector_file", Class::ALL.len());
    let mut failures = Vec::new();
    for mut case in suite.cases(&Class::ALL) {
        let secret = hostile_file::secret(&mut case.rng);
        let file = lab.dir().join(format!("hostile-{}.properties", case.index));
        let text = connector_text(case.class, &mut case.rng, topic, &secret);
        hostile_file::write_private(&file, &text);
        let mut cmd = std::process::Command::new(bin());
        cmd.arg("check")
            .args(["--brokers", &lab.brokers(), "--group", "file"])
            .args(["--database", DATABASE, "--schema", SCHEMA])
            .arg("--connector-config")
            .arg(&file);
        lab.connect(&mut cmd);
        let mut l = limits();
        l.wall = Duration::from_secs(30);
        let limits_here = l;
        let o = hostile_file::run_case(cmd, l, "connector file", &case).await;
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        failures.extend(
            attempt(|| {
                check::no_crash(&case, &o);
                check::rss_within(&case, &o, &limits_here);
                if o.code != Some(0) {
                    check::names(&case, "stderr", &o.stderr_text(), &name);
                }
                let printed = format!("{}{}", o.stdout_text(), o.stderr_text());
                if printed.contains(&secret) {
                    case.fail(format!("the passphrase is printed: {}", o.summary()));
                }
            })
            .err(),
        );
    }
    suite.finish(failures);
}
