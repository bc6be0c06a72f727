//! The hostile-input suite (issue 81, item 21) on the sink's non-JSON values: Avro, Protobuf
//! and JSON Schema in the Confluent Schema Registry wire format, and `StringConverter` text
//! (with `ByteArrayConverter` keys), through the real `snowpipe-kafka` under an address-space
//! cap, with the tests' registry double serving the schemas.
//!
//! Each surface's producer is written here ([`wire`]: zigzag varints, lengths, tags — not the
//! sink's code). Every case sends a good value, the hostile values of its class (every variant
//! of the class, each with lengths and sizes drawn from the case's seed), and a good value, on
//! one partition; one sink run (`--until-idle`) takes at most [`RUN_BYTES`] of cases, and the
//! checks are `hostile_suite`'s: the run exits 0 within `--memory-budget` + 64 MiB, every good
//! value lands once, every hostile one lands once or is a dead letter naming its topic,
//! partition and offset, and no row claims a place no case sent (a forged `RECORD_METADATA`).
//! Besides, a value no decoder of its format takes ([`Msg::dead`]: Confluent's deserializer
//! throws on it too — a length or count past the body, an unknown schema id or message index,
//! a truncated body, no header) must be a dead letter, not a row. The class where size matters
//! is also run at two sizes for CPU linearity, beside the cases' runs.
//! `HOSTILE_SEED` / `HOSTILE_CASES` / `HOSTILE_ONLY`: see `hostile/README.md`.
#![cfg(unix)]

mod avro;
mod json_schema;
mod protobuf;
mod string_bytes;
mod wire;

use std::time::Duration;

use rdkafka::producer::FutureRecord;
use snowpipe_hostile::gen::Class;
use snowpipe_hostile::{attempt, check, Case, Input, Outcome, Rng, Suite};
use snowpipe_kafka_lab::demo::Lab;

use crate::common::registry::{registry, wire, Schemas, CREDENTIALS};
use crate::common::{bin, deliver_all, lab_with_tables, CONNECTOR_ROWS};
use crate::hostile_suite::{check_run, dead_letters, limits, Sent};

/// The table of the `columns` runs: the schemas' fields, `VARIANT` where a hostile value may
/// put anything.
const TABLES: &str = "CREATE TABLE DEMO.KAFKA.HOSTILE_F (RECORD_METADATA VARIANT, ID NUMBER, \
     A VARIANT, B VARIANT, C VARIANT, D VARIANT, E VARIANT, F VARIANT, N VARIANT);";

/// At most this many bytes of messages go to one topic in one sink run: librdkafka's mock
/// cluster keeps 5 MiB a partition and deletes the oldest beyond (`kafka/tests/it/retention.rs`),
/// and dead letters copy their values to their own topic.
const RUN_BYTES: usize = 3 << 20;

/// What librdkafka's producer sends at most by default (`message.max.bytes`), with room.
const MAX_MESSAGE: usize = 900_000;

/// One message a case sends: its key and value (`None`: none, a tombstone), whether it is a
/// hostile one, and whether it must be a dead letter (no decoder of its format takes it:
/// Confluent's deserializer throws on it too).
pub(crate) struct Msg {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    hostile: bool,
    dead: bool,
}

impl Msg {
    /// A good message.
    fn good(value: Vec<u8>) -> Self {
        Self {
            key: Some(b"k".to_vec()),
            value: Some(value),
            hostile: false,
            dead: false,
        }
    }

    /// A hostile value: a row or a dead letter.
    fn bad(value: Vec<u8>) -> Self {
        Self {
            key: Some(b"k".to_vec()),
            value: Some(value),
            hostile: true,
            dead: false,
        }
    }

    /// A hostile value that must be a dead letter.
    fn dead(value: Vec<u8>) -> Self {
        Self {
            dead: true,
            ..Self::bad(value)
        }
    }

    /// This message with `key` (`None`: no key).
    fn with_key(mut self, key: Option<Vec<u8>>) -> Self {
        self.key = key;
        self
    }

    /// A tombstone (no value).
    fn tombstone() -> Self {
        Self {
            key: Some(b"k".to_vec()),
            value: None,
            hostile: true,
            dead: false,
        }
    }
}

/// One surface: its suite's name, topic, table, the registry's schemas and the sink's flags.
pub(crate) struct Surface {
    name: &'static str,
    topic: &'static str,
    table: &'static str,
    schemas: Schemas,
    args: &'static [&'static str],
}

/// The CPU linearity check of a surface: `sizes` units (entries, bytes) in all, as values of
/// `per_message` units each, at two sizes.
pub(crate) struct Linear {
    sizes: [usize; 2],
    per_message: usize,
    value: fn(usize) -> Vec<u8>,
}

/// A case's messages: a good value, every hostile value of its class (`values`), a good
/// value; ids from the case's index.
pub(crate) fn between(
    case: &mut Case<Class>,
    good: fn(i64) -> Vec<u8>,
    values: fn(Class, &mut Rng, i64) -> Vec<Msg>,
) -> Vec<Msg> {
    let base = 1_000 * (case.index as i64 + 1);
    let mut msgs = vec![Msg::good(good(base + 1))];
    msgs.extend(values(case.class, &mut case.rng, base + 500));
    msgs.push(Msg::good(good(base + 2)));
    msgs
}

/// What the `reserved` class of a registry format holds after its forged column, from `good`
/// (a framed good value): its body under an unknown schema id, it with the wrong magic byte, a
/// frame with no body, a frame shorter than its header, no bytes, bare JSON (each a dead
/// letter), no value.
pub(crate) fn framing_faults(good: Vec<u8>) -> Vec<Msg> {
    let mut magic = good.clone();
    magic[0] = 1;
    vec![
        Msg::dead(wire(99, &good[5..])),
        Msg::dead(magic),
        Msg::dead(wire(1, b"")),
        Msg::dead(vec![0, 0, 1]),
        Msg::dead(Vec::new()),
        Msg::dead(br#"{"ID":1}"#.to_vec()),
        Msg::tombstone(),
    ]
}

/// Runs a registry format's `surface`: each case's `values` between `good` ones, and the linear
/// check on maps of `many_entries(n)` (150,000 then 300,000 entries, 50,000 a message).
pub(crate) async fn run_registry_format(
    surface: Surface,
    good: fn(i64) -> Vec<u8>,
    values: fn(Class, &mut Rng, i64) -> Vec<Msg>,
    many_entries: fn(usize) -> Vec<u8>,
) {
    let linear = Linear {
        sizes: [150_000, 300_000],
        per_message: 50_000,
        value: many_entries,
    };
    let messages = |case: &mut Case<Class>| between(case, good, values);
    run_surface(surface, messages, linear).await;
}

/// Sends every case's messages to `topic` (partition 0): each case's (partition, offset,
/// hostile) per message.
async fn produce(lab: &Lab, topic: &str, cases: Vec<(Case<Class>, Vec<Msg>)>) -> Vec<Sent> {
    let producer = lab.producer().expect("producer");
    let mut sent = Vec::new();
    for (case, msgs) in cases {
        let records = msgs.iter().map(|m| {
            let mut r = FutureRecord::<[u8], [u8]>::to(topic).partition(0);
            if let Some(k) = &m.key {
                r = r.key(k.as_slice());
            }
            if let Some(v) = &m.value {
                r = r.payload(v.as_slice());
            }
            r
        });
        let at = deliver_all(&producer, records)
            .await
            .into_iter()
            .zip(&msgs)
            .map(|(d, m)| (d.partition, d.offset, m.hostile))
            .collect();
        sent.push((case, at));
    }
    sent
}

/// Runs the sink once over `topic` until it is idle (dead letters to `dlq`), as `surface`
/// says, with the registry at `url`.
async fn run_sink(lab: &Lab, surface: &Surface, (topic, dlq): (&str, &str), url: &str) -> Outcome {
    let mut cmd = lab.instance_of(&bin(), &format!("{topic}-group"));
    cmd.args([
        "--topic",
        topic,
        "--pipe",
        &format!("{}-STREAMING", surface.table),
    ])
    .args(["--metadata", "--dead-letter-topic", dlq])
    .args(["--until-idle", "1s", "--memory-budget", "256MiB"])
    .args(surface.args)
    .env("RUST_LOG", "warn");
    if !surface.schemas.is_empty() {
        cmd.args(["--schema-registry-url", url])
            .args(["--schema-registry-basic-auth", "env:TEST_SR_AUTH"])
            .env("TEST_SR_AUTH", CREDENTIALS);
    }
    tokio::task::spawn_blocking(move || {
        snowpipe_hostile::run(cmd, Input::Null, &limits()).expect("start the sink")
    })
    .await
    .unwrap()
}

/// Sends every case's messages to `topic` and runs the sink over it, dead letters to `dlq`:
/// the run, and what each case sent.
async fn produce_and_run(
    lab: &Lab,
    surface: &Surface,
    (topic, dlq): (&str, &str),
    url: &str,
    cases: Vec<(Case<Class>, Vec<Msg>)>,
) -> (Outcome, Vec<Sent>) {
    for t in [topic, dlq] {
        lab.create_topic(t, 1).expect("topic");
    }
    let sent = produce(lab, topic, cases).await;
    (run_sink(lab, surface, (topic, dlq), url).await, sent)
}

/// The cases in runs of at most [`RUN_BYTES`] of messages each (a case larger alone).
fn runs_of(cases: Vec<(Case<Class>, Vec<Msg>)>) -> Vec<Vec<(Case<Class>, Vec<Msg>)>> {
    let size = |msgs: &[Msg]| -> usize {
        msgs.iter()
            .map(|m| m.key.as_ref().map_or(0, Vec::len) + m.value.as_ref().map_or(0, Vec::len))
            .sum()
    };
    let mut runs: Vec<Vec<_>> = Vec::new();
    let mut bytes = 0;
    for (case, msgs) in cases {
        let n = size(&msgs);
        match runs.last_mut() {
            Some(run) if bytes + n <= RUN_BYTES => {
                bytes += n;
                run.push((case, msgs));
            }
            _ => {
                bytes = n;
                runs.push(vec![(case, msgs)]);
            }
        }
    }
    runs
}

/// Every message of `sent` that `must` be a dead letter is one on `dlq` ([`Msg::dead`]): its
/// failures. Prints the run `o`'s figures.
fn check_dead(
    lab: &Lab,
    (topic, dlq): (&str, &str),
    (o, sent): (&Outcome, &[Sent]),
    must: &[Vec<bool>],
) -> Vec<String> {
    let dead = dead_letters(lab, topic, dlq);
    let n: usize = sent.iter().map(|(_, at)| at.len()).sum();
    eprintln!(
        "hostile {topic}: {n} message(s), {} dead letter(s); peak RSS {} MiB, CPU {:.2?}",
        dead.len(),
        o.peak_rss_bytes >> 20,
        o.cpu
    );
    sent.iter()
        .zip(must)
        .filter_map(|((case, at), must)| {
            attempt(|| {
                for (&(p, off, _), &must) in at.iter().zip(must) {
                    if must && !dead.contains(&(p, off)) {
                        case.fail(format!(
                            "the message at {topic}/{p}/{off} is no dead letter, but no decoder \
                             of its format takes it"
                        ));
                    }
                }
            })
            .err()
        })
        .collect()
}

/// The linear check's two runs, one after the other: (units, run) of each; none when
/// `HOSTILE_ONLY` leaves `Count` out.
async fn linear_runs(
    lab: &Lab,
    surface: &Surface,
    url: &str,
    linear: &Linear,
    case: Option<&Case<Class>>,
) -> Vec<(u64, Outcome)> {
    let mut runs = Vec::new();
    let Some(case) = case else { return runs };
    for (i, n) in linear.sizes.into_iter().enumerate() {
        let topic = format!("{}.linear{i}", surface.topic);
        let msgs = (0..n.div_ceil(linear.per_message))
            .map(|_| Msg::bad((linear.value)(linear.per_message)))
            .collect();
        let dlq = format!("{topic}.dlq");
        let (o, _) = produce_and_run(
            lab,
            surface,
            (&topic, &dlq),
            url,
            vec![(case.clone(), msgs)],
        )
        .await;
        runs.push((n as u64, o));
    }
    runs
}

/// Runs `surface`: the cases' messages (from `messages`) in runs of at most [`RUN_BYTES`],
/// each on its own topic, the linear check's two runs beside them; then `hostile_suite`'s
/// checks of each run, failing with every failure.
pub(crate) async fn run_surface(
    surface: Surface,
    mut messages: impl FnMut(&mut Case<Class>) -> Vec<Msg>,
    linear: Linear,
) {
    let lab = lab_with_tables(&[], &format!("{TABLES}\n{CONNECTOR_ROWS}")).await;
    let (url, _) = registry(surface.schemas.clone()).await;
    let suite = Suite::from_env(surface.name, Class::ALL.len());
    let cases = suite
        .cases(&Class::ALL)
        .into_iter()
        .map(|mut case| {
            let msgs = messages(&mut case);
            (case, msgs)
        })
        .collect();
    // `HOSTILE_ONLY` without `Count` leaves the linear check out.
    let linear_case = Suite::from_env("formats_linear", 1)
        .cases(&[Class::Count])
        .pop();
    let case_runs = async {
        let mut done = Vec::new();
        for (i, run) in runs_of(cases).into_iter().enumerate() {
            let topic = format!("{}.{i}", surface.topic);
            let dlq = format!("{topic}.dlq");
            let must: Vec<Vec<bool>> = run
                .iter()
                .map(|(_, msgs)| msgs.iter().map(|m| m.dead).collect())
                .collect();
            let (o, sent) = produce_and_run(&lab, &surface, (&topic, &dlq), &url, run).await;
            done.push((topic, dlq, o, sent, must));
        }
        done
    };
    let (done, runs) = tokio::join!(
        case_runs,
        linear_runs(&lab, &surface, &url, &linear, linear_case.as_ref())
    );
    let mut failures: Vec<String> = Vec::new();
    for (topic, dlq, o, sent, must) in &done {
        failures.extend(
            attempt(|| check_run(&lab, &suite, (topic, surface.table, dlq), o, sent)).err(),
        );
        failures.extend(check_dead(&lab, (topic, dlq), (o, sent), must));
    }
    if let (Some(case), [small, large]) = (&linear_case, &runs[..]) {
        failures.extend(
            attempt(|| {
                check::no_crash(case, &small.1);
                check::no_crash(case, &large.1);
                check::assert_linear(
                    case,
                    (small.0, &small.1),
                    (large.0, &large.1),
                    2.6,
                    Duration::from_millis(800),
                );
            })
            .err(),
        );
    }
    suite.finish(failures);
}
