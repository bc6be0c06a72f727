//! `hostile_lambda_events`: the real `sensor_stream lambda` process (the binary Lambda's
//! `provided.al2023` runtime starts), polling the Lambda runtime API that
//! `common::lambda_esm::Instance` serves, under the suite's memory cap, given event bodies as
//! an event source mapping delivers them — and as one never would: huge, deep, many records,
//! data that is not base64, fields missing or of the wrong type, forged, out-of-order and
//! duplicate sequence numbers, another source's event. No Kinesis server is needed: the
//! events are written here, sequence numbers included (20 digits, which the layout rules
//! leave to their length), one stream per case.
//!
//! Asserted per case: the instance never dies or panics, its peak RSS is within the budget +
//! 64 MB, every good event is answered with success and its records land once; a hostile
//! record in an accepted event lands once as `super::Expect` says (dead letters naming shard
//! and sequence number); a refused event is answered with an error or with
//! `batchItemFailures` naming one of its records (what the mapping retries from), never with
//! success, and none of its records lands twice. CPU is linear in the records of an event.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use snowpipe_hostile::gen::Class;
use snowpipe_hostile::{check, Case, Limits, Rng, Suite, MIB};

use super::{good, long_status, payload, Expect, Hostile, Landed};
use crate::common;
use crate::common::lambda_esm::{self, Instance};

/// The handler's memory: one event (at most 6 MB, Lambda's payload limit), its records
/// decoded, the rows, and the SDK's buffers.
const BUDGET: u64 = 128 * MIB;

const SHARD: &str = "shardId-000000000000";

/// How an event must be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// Success: every record handled.
    Success,
    /// An error, or `batchItemFailures` naming one of its records.
    Refused,
    /// Either of the two (what the contract leaves to the handler).
    Any,
}

/// One event of a case: its body, its records (sequence number, expectation), the answer.
struct Event {
    what: String,
    body: String,
    records: Vec<(String, Expect)>,
    answer: Answer,
}

/// Writes events of one stream with increasing sequence numbers.
struct Writer {
    stream: String,
    next: u64,
}

impl Writer {
    fn new(index: usize) -> Self {
        Writer {
            stream: format!("hl-{index}"),
            next: 10_000_000_000_000_000_000 + index as u64 * 1_000_000,
        }
    }

    fn seq(&mut self) -> String {
        self.next += 1;
        self.next.to_string()
    }

    /// One record as the mapping writes it.
    fn record(&self, seq: &str, key: &str, data: &[u8]) -> String {
        let record = serde_json::json!({
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": key,
                "sequenceNumber": seq,
                "data": base64::engine::general_purpose::STANDARD.encode(data),
                "approximateArrivalTimestamp": 1_795_685_180.61,
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": format!("{SHARD}:{seq}"),
            "eventName": "aws:kinesis:record",
            "awsRegion": "us-east-1",
            "invokeIdentityArn": "arn:aws:iam::123456789012:role/sensor-stream",
            "eventSourceARN": format!("arn:aws:kinesis:us-east-1:123456789012:stream/{}", self.stream),
        });
        record.to_string()
    }

    /// An event of `records` (key, data, expectation), each with the next sequence number.
    fn event(&mut self, what: &str, records: &[Hostile], answer: Answer) -> Event {
        let mut seqs = Vec::new();
        let texts: Vec<String> = records
            .iter()
            .map(|h| {
                let seq = self.seq();
                let text = self.record(&seq, &h.key, &h.data);
                seqs.push((seq, h.expect));
                text
            })
            .collect();
        Event {
            what: what.into(),
            body: format!(r#"{{"Records": [{}]}}"#, texts.join(",")),
            records: seqs,
            answer,
        }
    }

    /// `n` good readings in one event.
    fn good(&mut self, what: &str, n: usize) -> Event {
        let records: Vec<Hostile> = (0..n)
            .map(|i| Hostile {
                key: format!("g{}", i % 50),
                data: good(i),
                expect: Expect::Reading,
            })
            .collect();
        self.event(what, &records, Answer::Success)
    }

    /// A one-record event whose record's text is changed by `edit` (a field dropped, a type
    /// changed): refused or not, never success with the record lost.
    fn edited(&mut self, what: &str, edit: impl FnOnce(&mut serde_json::Value)) -> Event {
        let seq = self.seq();
        let mut record: serde_json::Value =
            serde_json::from_str(&self.record(&seq, "e", &good(1))).unwrap();
        edit(&mut record);
        Event {
            what: what.into(),
            body: format!(r#"{{"Records": [{record}]}}"#),
            records: vec![(seq, Expect::Reading)],
            answer: Answer::Refused,
        }
    }
}

/// The hostile events of one case (the record classes of `super::payload` in an accepted
/// event, and the event-level attacks of the class).
fn events(class: Class, w: &mut Writer, rng: &mut Rng) -> Vec<Event> {
    let mut out = vec![w.event("the class's records", &payload(class, rng), Answer::Success)];
    match class {
        // Near Lambda's 6 MB payload: four records at Kinesis' 1 MiB (base64: 5.6 MB).
        Class::Size => {
            let big: Vec<Hostile> = (0..4)
                .map(|_| Hostile {
                    key: "big".into(),
                    data: long_status(super::MAX_RECORD - 3, rng),
                    expect: Expect::DeadLetter,
                })
                .collect();
            out.push(w.event("a 5.6 MB event", &big, Answer::Success));
        }
        // The event's own JSON nested deep (in a field the handler does not read).
        Class::Depth => {
            let seq = w.seq();
            let mut deep = Vec::new();
            snowpipe_hostile::gen::nested_json(&mut deep, rng.range(200, 100_000) as usize, rng);
            let record = w.record(&seq, "d", &good(2));
            let body = format!(
                r#"{{"Records": [{}, "x": {}}}]}}"#,
                &record[..record.len() - 1],
                String::from_utf8(deep).unwrap()
            );
            out.push(Event {
                what: "an event nested deep".into(),
                body,
                records: vec![(seq, Expect::Reading)],
                answer: Answer::Any,
            });
        }
        // The most records a mapping gives one batch (BatchSize 10,000).
        Class::Count => out.push(w.good("10,000 records", 10_000)),
        Class::Number => {
            let n = snowpipe_hostile::gen::edge_number(rng);
            out.push(w.edited("an arrival time at the edges", |r| {
                r["kinesis"]["approximateArrivalTimestamp"] =
                    serde_json::Value::String(format!("@@{n}@@"));
            }));
            // The text `"@@…@@"` becomes the number itself.
            if let Some(e) = out.last_mut() {
                e.body = e.body.replace(&format!("\"@@{n}@@\""), &n);
                e.answer = Answer::Any;
            }
            // Forged: 57 digits (Kinesis gives 56), well-formed otherwise: refused by the layout
            // rules, named in batchItemFailures (what the mapping retries from).
            let forged = format!("1{:056}", rng.below(1_000));
            let record = w.record(&forged, "f", &good(4));
            out.push(Event {
                what: "a forged sequence number of 57 digits".into(),
                body: format!(r#"{{"Records": [{record}]}}"#),
                records: vec![(forged, Expect::Reading)],
                answer: Answer::Refused,
            });
            out.push(w.edited("a sequence number of 130 digits", |r| {
                r["kinesis"]["sequenceNumber"] = "9".repeat(130).into();
            }));
            out.push(w.edited("a sequence number with a leading zero", |r| {
                let s = format!("0{}", r["kinesis"]["sequenceNumber"].as_str().unwrap());
                r["kinesis"]["sequenceNumber"] = s.into();
            }));
        }
        Class::Encoding => {
            out.push(w.edited("data that is not base64", |r| {
                r["kinesis"]["data"] = "!!not base64 at all!!".into();
            }));
        }
        Class::Claim => claims(w, &mut out),
        // A field of the mapping's twice in one record.
        Class::Reserved => {
            let seq = w.seq();
            let record = w.record(&seq, "r", &good(3));
            let twice = record.replacen(
                "\"sequenceNumber\":",
                &format!("\"sequenceNumber\":\"{}\",\"sequenceNumber\":", w.seq()),
                1,
            );
            out.push(Event {
                what: "sequenceNumber twice".into(),
                body: format!(r#"{{"Records": [{twice}]}}"#),
                records: vec![(seq, Expect::Reading)],
                answer: Answer::Any,
            });
        }
    }
    out
}

/// Records that are not what a mapping sends: fields missing, of the wrong type, numbers out
/// of order or twice, another source's event.
fn claims(w: &mut Writer, out: &mut Vec<Event>) {
    out.push(w.edited("no sequenceNumber", |r| {
        r["kinesis"]
            .as_object_mut()
            .unwrap()
            .remove("sequenceNumber");
    }));
    out.push(w.edited("a numeric sequenceNumber", |r| {
        r["kinesis"]["sequenceNumber"] = 12345.into();
    }));
    out.push(w.edited("no eventID", |r| {
        r.as_object_mut().unwrap().remove("eventID");
    }));
    out.push(w.edited("no eventSourceARN", |r| {
        r.as_object_mut().unwrap().remove("eventSourceARN");
    }));
    out.push(w.edited("data of the wrong type", |r| {
        r["kinesis"]["data"] = serde_json::json!({"a": 1});
    }));
    let records: Vec<Hostile> = (0..3)
        .map(|i| Hostile {
            key: "o".into(),
            data: good(i),
            expect: Expect::Reading,
        })
        .collect();
    let mut disorder = w.event("out of order", &records, Answer::Refused);
    let (a, b) = (disorder.records[1].0.clone(), disorder.records[2].0.clone());
    disorder.body = disorder
        .body
        .replace(&a, "@A@")
        .replace(&b, &a)
        .replace("@A@", &b);
    out.push(disorder);
    let mut twice = w.event("a record twice", &records[..2], Answer::Refused);
    let (a, b) = (twice.records[0].0.clone(), twice.records[1].0.clone());
    twice.body = twice.body.replace(&b, &a);
    twice.records.pop();
    out.push(twice);
    out.push(Event {
        what: "an SQS event".into(),
        body: r#"{"Records": [{"messageId": "1", "receiptHandle": "r", "body": "{\"sensorId\": 1}", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"}]}"#.into(),
        records: Vec::new(),
        answer: Answer::Refused,
    });
}

/// The environment of the handler (`FAILURE_MODE=report`).
fn handler_env(emulator: &str, key: &std::path::Path) -> Vec<(String, String)> {
    let mut env = common::sensor_stream::kinesis_handler_env(emulator, key, "report");
    env.push(("RUST_LOG".into(), "warn".into()));
    env
}

/// Whether `outcome` is the answer `want`; the refusal's text (error or item identifier).
fn answered<C: std::fmt::Debug>(case: &Case<C>, e: &Event, outcome: &lambda_esm::Outcome) -> bool {
    let failures: Vec<String> = match outcome {
        lambda_esm::Outcome::Died => case.fail(format!("the instance died on {}", e.what)),
        lambda_esm::Outcome::Error(msg) => {
            let shown: String = msg.chars().take(300).collect();
            eprintln!("hostile lambda_events: {} refused: {shown}", e.what);
            if e.answer == Answer::Success {
                case.fail(format!("{} was refused: {msg}", e.what));
            }
            if msg.trim().is_empty() {
                case.fail(format!("{} was refused with no message", e.what));
            }
            return false;
        }
        lambda_esm::Outcome::Response(r) => r["batchItemFailures"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|f| f["itemIdentifier"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default(),
    };
    if failures.is_empty() {
        if e.answer == Answer::Refused {
            case.fail(format!("{} was answered with success", e.what));
        }
        return true;
    }
    if e.answer == Answer::Success {
        case.fail(format!(
            "{} was refused: batchItemFailures {failures:?}",
            e.what
        ));
    }
    if !failures
        .iter()
        .all(|f| e.records.iter().any(|(s, _)| s == f))
    {
        case.fail(format!(
            "{}: batchItemFailures {failures:?} names no record of the event",
            e.what
        ));
    }
    false
}

/// Runs one case's events on one capped instance; checks the answers, then the tables.
fn one_case(
    local: &Local,
    case: &Case<Class>,
    events: &[Event],
    limits: &Limits,
) -> snowpipe_hostile::Outcome {
    let (accepted, outcome) = local.rt.block_on(async {
        let mut instance = Instance::start_capped(
            &common::bin::sensor_stream_bin(),
            &handler_env(&local.emulator.url(), &local.key),
            limits,
        )
        .await;
        let mut accepted = Vec::new();
        for e in events {
            let o = instance.invoke_raw(e.body.clone(), None).await;
            accepted.push(answered(case, e, &o));
        }
        (accepted, instance.finish().expect("a capped instance"))
    });
    // A SIGTERM at the end is ours; anything else that ended it is a crash.
    let mut ours = outcome.clone();
    if ours.signal == Some(libc::SIGTERM) {
        ours.signal = None;
    }
    check::no_crash(case, &ours);
    check::rss_within(case, &outcome, limits);
    let landed = local.rt.block_on(Landed::read(&local.sql));
    for (e, accepted) in events.iter().zip(accepted) {
        for (seq, expect) in &e.records {
            if accepted {
                landed.check(case, SHARD, seq, *expect);
            } else {
                let n = landed.readings.get(seq).map_or(0, Vec::len)
                    + landed.dead.get(seq).map_or(0, Vec::len);
                if n > 1 {
                    case.fail(format!("{}: record {seq} landed {n} times", e.what));
                }
            }
        }
    }
    outcome
}

/// The emulator and the SQL API on it.
struct Local {
    rt: tokio::runtime::Runtime,
    emulator: snowpipe_emulator::Emulator,
    key: std::path::PathBuf,
    sql: snowpipe_streaming::sql::SqlClient,
    _dir: tempfile::TempDir,
}

fn local() -> Local {
    let rt = common::sensor_stream::runtime();
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = common::sensor_stream::start_emulator(&rt, dir.path());
    let sql = common::sensor_stream::sql_client(&emulator.url(), &key);
    Local {
        rt,
        emulator,
        key,
        sql,
        _dir: dir,
    }
}

#[test]
fn hostile_lambda_events() {
    let local = local();
    let suite = Suite::from_env("lambda_events", Class::ALL.len());
    let limits = Limits::with_budget(BUDGET);
    let mut failures = suite.failures(&Class::ALL, |mut case| {
        let mut w = Writer::new(case.index);
        let mut all = vec![w.good("good records before", 3)];
        all.extend(events(case.class, &mut w, &mut case.rng));
        all.push(w.good("good records after", 3));
        let o = one_case(&local, &case, &all, &limits);
        eprintln!(
            "hostile lambda_events case {} ({:?}): {} events, CPU {:.2?}, peak RSS {} MiB",
            case.index,
            case.class,
            all.len(),
            o.cpu,
            o.peak_rss_bytes >> 20
        );
    });
    failures.extend(snowpipe_hostile::attempt(|| linear(&local, &suite, &limits)).err());
    suite.finish(failures);
}

/// CPU at two sizes of an event: 2,500 records against 5,000 (one instance each).
fn linear(local: &Local, suite: &Suite, limits: &Limits) {
    // `HOSTILE_ONLY` without `Count` leaves no case: skipped (the harness says so).
    let Some(case) = suite.cases(&[Class::Count]).into_iter().next() else {
        return;
    };
    let mut runs: BTreeMap<usize, snowpipe_hostile::Outcome> = BTreeMap::new();
    for (i, n) in [2_500usize, 5_000].into_iter().enumerate() {
        let mut w = Writer::new(1_000 + i);
        let events = [w.good("the records", n)];
        runs.insert(n, one_case(local, &case, &events, limits));
    }
    check::assert_linear(
        &case,
        (2_500, &runs[&2_500]),
        (5_000, &runs[&5_000]),
        2.5,
        Duration::from_millis(1_500),
    );
}
