//! `hostile_registry_schemas`: the registry serves hostile schemas ([`super::gen`]) for the
//! ids the test's messages name — Avro, Protobuf and JSON Schema, one sink run per format, every
//! class per run. A message of a bad schema is a dead letter naming the schema id (or, where
//! the schema is valid after all, lands once); the good messages around it land once. A huge
//! Avro enum is parsed at two sizes for CPU linearity.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use snowpipe_hostile::gen::Class;
use snowpipe_hostile::{attempt, check, Case, Outcome, Suite};
use snowpipe_kafka_lab::demo::Lab;

use super::double::{raw, serve, Answers, Reply, Seen};
use super::gen::{schema, Hostile};
use super::{
    check_whole_run, dead_letters, fate, landed, limits, produce, run, sink, At, Format, Msg, DLQ,
    GOOD_ID,
};
use crate::common::{lab_with_tables, CONNECTOR_ROWS};

const FORMATS: [Format; 3] = [Format::Avro, Format::Protobuf, Format::Json];

/// What one case sent to one format's topic.
type Sent = (Case<Class>, u32, Vec<At>);

/// The schema id of case `index`'s hostile schema.
fn hostile_id(index: usize) -> u32 {
    100 + u32::try_from(index).expect("a case index")
}

/// A registry serving `format`'s good schema as [`GOOD_ID`] and `hostile` by their ids; any
/// other id is unknown (40403).
async fn registry(format: Format, hostile: HashMap<u32, Hostile>) -> (String, Arc<Mutex<Seen>>) {
    let answers: Answers = Arc::new(move |id, _| {
        let (schema, references) = match hostile.get(&id) {
            _ if id == GOOD_ID => (format.good_schema().to_owned(), None),
            Some((s, r)) => (s.clone(), r.clone()),
            None => {
                return raw(
                    "404 Not Found",
                    r#"{"error_code":40403,"message":"not found"}"#,
                )
            }
        };
        Reply::Schema {
            kind: format.kind(),
            schema,
            references,
        }
    });
    serve(answers).await
}

/// One format's run: each case's good message, two messages of its hostile schema, a good
/// one, on `topic`; the sink once.
async fn format_run(
    lab: &Lab,
    topic: &str,
    format: Format,
    cases: Vec<(Case<Class>, Hostile)>,
) -> (Outcome, Vec<Sent>) {
    let schemas = cases
        .iter()
        .map(|(c, h)| (hostile_id(c.index), h.clone()))
        .collect();
    let (url, _) = registry(format, schemas).await;
    let mut sent = Vec::new();
    for (case, _) in cases {
        let id = hostile_id(case.index);
        let base = 1_000 * (case.index as u64 + 1);
        let msgs = vec![
            Msg {
                value: format.value(GOOD_ID, base + 1),
                hostile: None,
            },
            Msg {
                value: format.value(id, base + 500),
                hostile: Some(id),
            },
            Msg {
                value: format.value(id, base + 501),
                hostile: Some(id),
            },
            Msg {
                value: format.value(GOOD_ID, base + 2),
                hostile: None,
            },
        ];
        let at = produce(lab, topic, 0, msgs).await;
        sent.push((case, id, at));
    }
    let o = run(
        sink(lab, topic, format, &url, "2s"),
        limits(Duration::from_secs(120)),
    )
    .await;
    (o, sent)
}

/// The checks of one format's run.
fn check_format(lab: &Lab, topic: &str, format: Format, o: &Outcome, sent: &[Sent]) -> Vec<String> {
    let mut failures = Vec::new();
    eprintln!("hostile registry schemas, {format:?}: {}", o.summary());
    if let Some((first, _, _)) = sent.first() {
        failures.extend(
            check_whole_run(first, o)
                .err()
                .map(|e| format!("{format:?}, the run of every case (the first case's seed): {e}")),
        );
    }
    let (rows, dead) = (landed(lab, topic), dead_letters(lab, topic));
    for (case, id, at) in sent {
        failures.extend(
            attempt(|| {
                for &(p, off, hostile) in at {
                    let got = fate(&rows, &dead, (p, off));
                    eprintln!(
                        "  {format:?} case {} ({:?}) {p}/{off}: {got:?}",
                        case.index, case.class
                    );
                    match (hostile, got) {
                        (None, Ok(None)) | (Some(_), Ok(None)) => {}
                        (Some(_), Ok(Some(why))) if why.contains(&format!("schema id {id}")) => {}
                        (_, got) => case.fail(format!(
                            "{format:?}: the {} message at {topic}/{p}/{off} (schema id {}): \
                             {got:?}; want {} (stderr: {})",
                            if hostile.is_some() { "hostile" } else { "good" },
                            hostile.unwrap_or(GOOD_ID),
                            if hostile.is_some() {
                                "one row, or one dead letter naming the schema id"
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
    failures
}

/// A huge Avro enum at `n` symbols, on `topic`: one run.
async fn enum_run(lab: &Lab, topic: &str, n: usize, case: &Case<Class>) -> Outcome {
    let symbols: Vec<String> = (0..n).map(|i| format!("\"S{i}\"")).collect();
    let text = format!(
        r#"{{"type":"enum","name":"E","symbols":[{}]}}"#,
        symbols.join(",")
    );
    let (o, _) = format_run(lab, topic, Format::Avro, vec![(case.clone(), (text, None))]).await;
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_registry_schemas() {
    let topics = [
        "hostile.reg.avro",
        "hostile.reg.protobuf",
        "hostile.reg.json",
    ];
    let linear = ["hostile.reg.linear1", "hostile.reg.linear2"];
    let all: Vec<(&str, i32)> = topics
        .iter()
        .chain(&linear)
        .map(|t| (*t, 1))
        .chain([(DLQ, 1)])
        .collect();
    let lab = lab_with_tables(&all, CONNECTOR_ROWS).await;
    let suite = Suite::from_env("registry_schemas", Class::ALL.len());
    let mut per_format: Vec<Vec<(Case<Class>, Hostile)>> = vec![Vec::new(); FORMATS.len()];
    for mut case in suite.cases(&Class::ALL) {
        for (k, f) in FORMATS.iter().enumerate() {
            let h = schema(*f, case.class, &mut case.rng);
            per_format[k].push((case.clone(), h));
        }
    }
    let mut per_format = per_format.into_iter();
    let mut next = || per_format.next().unwrap();
    let (avro, proto, json) = (next(), next(), next());
    // The linear check's case (none when `HOSTILE_ONLY` leaves out `Count`).
    let lin = Suite::from_env("registry_schemas_linear", 1)
        .cases(&[Class::Count])
        .pop();
    let linear_runs = async {
        let Some(lin) = &lin else { return None };
        let small = enum_run(&lab, linear[0], 20_000, lin).await;
        let large = enum_run(&lab, linear[1], 40_000, lin).await;
        Some((lin.clone(), small, large))
    };
    let (a, p, j, linear_runs) = tokio::join!(
        format_run(&lab, topics[0], Format::Avro, avro),
        format_run(&lab, topics[1], Format::Protobuf, proto),
        format_run(&lab, topics[2], Format::Json, json),
        linear_runs
    );
    let mut failures = Vec::new();
    for ((topic, format), (o, sent)) in topics.iter().zip(FORMATS).zip([a, p, j]) {
        failures.extend(check_format(&lab, topic, format, &o, &sent));
    }
    if let Some((lin, small, large)) = linear_runs {
        failures.extend(
            attempt(|| {
                check::no_crash(&lin, &small);
                check::no_crash(&lin, &large);
                check::assert_linear(
                    &lin,
                    (20_000, &small),
                    (40_000, &large),
                    2.6,
                    Duration::from_millis(800),
                );
            })
            .err(),
        );
    }
    suite.finish(failures);
}
