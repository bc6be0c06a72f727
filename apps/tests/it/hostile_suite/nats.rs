//! `hostile_nats_messages`: a publisher written here (async-nats, not the application's
//! `publish`) puts the hostile classes' payloads (`super::payload`) between good readings into
//! the JetStream stream `SENSORS` of a private `nats-server -js`, with odd headers (the
//! partition key of the Kinesis cases as a header value: 256 two-byte characters, controls)
//! and a huge one (64 KiB); the real `sensor_stream consume --until-idle` reads them under the
//! suite's memory cap into the emulator. Asserted: no crash, exit 0, peak RSS within the
//! budget + 64 MB, every message exactly once as its expectation says (a dead letter in
//! `SENSORS_DLQ` naming its stream sequence, its payload unchanged — or, for a payload within
//! 2 KiB of the max payload, left out and its size named — the consumer's log naming the
//! sequence; or a row of `SENSOR_READINGS` with its sequence), every good reading once, a
//! message past the server's max payload refused to the producer; CPU linear in the size;
//! 120 messages of ~1000 KiB held at most `--batch-max-bytes` at once (peak RSS within the
//! budget), every one landed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream;
use async_nats::HeaderMap;
use bytes::Bytes;
use snowpipe_apps::sensor_stream::nats_server;
use snowpipe_emulator::Emulator;
use snowpipe_hostile::gen::Class;
use snowpipe_hostile::{check, run, Case, Input, Limits, Outcome, Suite, MIB};
use snowpipe_streaming::sql::SqlClient;

use super::{good, long_status, payload, wide_reading, Expect, Hostile, Landed};
use crate::common;

/// The consumer's memory: a broker batch of up to `--batch-max` messages of up to the
/// server's max payload (1 MiB), decoded, and the client's buffers.
const BUDGET: u64 = 192 * MIB;

/// `nats-server`'s default max payload (headers and payload together).
const MAX_PAYLOAD: usize = 1 << 20;

/// JetStream's largest header block (`header size exceeds maximum allowed of 64k`).
const MAX_HEADERS: usize = 64 * 1024;

/// The bytes of a header block besides the values of [`headers_for`]: `NATS/1.0`, names,
/// separators.
const HEADER_FRAME: usize = 128;

/// Good readings before and after the hostile ones.
const GOOD: usize = 3;

const STREAM: &str = "SENSORS";
const DLQ: &str = "SENSORS_DLQ";
const SUBJECT: &str = "sensors.0";

/// A private broker, the emulator and the SQL API on it, shared by every case (one shard: a
/// case's messages follow the previous case's, and each run resumes at the committed token).
struct Env {
    rt: tokio::runtime::Runtime,
    nats: nats_server::NatsServer,
    js: jetstream::Context,
    emulator: Emulator,
    key: PathBuf,
    sql: SqlClient,
    _dir: tempfile::TempDir,
}

impl Env {
    /// `None` (with a note) when `nats-server` is missing and `CI` is not `true`.
    fn start() -> Option<Env> {
        if !common::sensor_stream::nats_available("hostile_nats_messages") {
            return None;
        }
        let rt = common::sensor_stream::runtime();
        let dir = tempfile::tempdir().unwrap();
        let nats = nats_server::NatsServer::start(Some(&dir.path().join("nats")))
            .expect("start nats-server");
        let (emulator, key) = common::sensor_stream::start_emulator(&rt, dir.path());
        let js = rt.block_on(common::sensor_stream::provision_stream(&nats.url(), STREAM));
        let sql = common::sensor_stream::sql_client(&emulator.url(), &key);
        Some(Env {
            rt,
            nats,
            js,
            emulator,
            key,
            sql,
            _dir: dir,
        })
    }

    /// Publishes each message (with its headers, if any) and waits for its ack: its stream
    /// sequence, or the refusal.
    fn publish(&self, msgs: &[(Option<HeaderMap>, Vec<u8>)]) -> Vec<Result<u64, String>> {
        self.rt.block_on(async {
            let mut out = Vec::new();
            for (headers, data) in msgs {
                let data = Bytes::from(data.clone());
                let sent = match headers {
                    Some(h) => self.js.publish_with_headers(SUBJECT, h.clone(), data).await,
                    None => self.js.publish(SUBJECT, data).await,
                };
                out.push(match sent {
                    Ok(ack) => ack.await.map(|a| a.sequence).map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                });
            }
            out
        })
    }

    /// The real consumer of the shard, until it is idle, under `limits`.
    fn consume(&self, limits: &Limits) -> Outcome {
        self.consume_with(limits, &["--batch-max", "100"])
    }

    /// [`consume`](Self::consume) with `args` instead of `--batch-max 100`.
    fn consume_with(&self, limits: &Limits, args: &[&str]) -> Outcome {
        let mut cmd = common::sensor_stream::consume_cmd(
            &common::bin::sensor_stream_bin(),
            &self.nats.url(),
            STREAM,
            1,
            &self.emulator.url(),
            &self.key,
        );
        cmd.args(["--until-idle", "2s"])
            .args(args)
            .env("RUST_LOG", "warn");
        run(cmd, Input::Null, limits).expect("run sensor_stream consume")
    }

    /// The rows of `SENSOR_READINGS` and the dead letters of `SENSORS_DLQ`, by stream
    /// sequence (the shard as `0`), and each dead letter's payload.
    fn landed(&self) -> (Landed, BTreeMap<String, Letter>) {
        self.rt.block_on(async {
            let mut out = Landed::default();
            let rows = self
                .sql
                .query("SELECT STREAM_SEQ, SHARD FROM SENSOR_READINGS")
                .await
                .expect("read SENSOR_READINGS")
                .rows;
            for r in rows {
                let text = |i: usize| r[i].clone().unwrap_or_default();
                out.readings.entry(text(0)).or_default().push(text(1));
            }
            let mut payloads = BTreeMap::new();
            let Ok(mut dlq) = self.js.get_stream(DLQ).await else {
                return (out, payloads);
            };
            let last = dlq.info().await.expect("DLQ info").state.last_sequence;
            for seq in 1..=last {
                let m = dlq.get_raw_message(seq).await.expect("a dead letter");
                let header = |name: &str| {
                    m.headers
                        .get(name)
                        .map(|v| v.as_str().to_owned())
                        .unwrap_or_default()
                };
                let source = header("Snowpipe-Source-Sequence");
                let error = header("Snowpipe-Error");
                let shard = m.subject.rsplit('.').next().unwrap_or_default().to_owned();
                out.dead
                    .entry(source.clone())
                    .or_default()
                    .push((shard, error));
                let omitted = m
                    .headers
                    .get("Snowpipe-Payload-Omitted")
                    .map(|v| v.as_str().to_owned());
                payloads.insert(
                    source,
                    Letter {
                        payload: m.payload.clone(),
                        omitted,
                    },
                );
            }
            (out, payloads)
        })
    }
}

/// A dead letter's payload, and its `Snowpipe-Payload-Omitted` header.
struct Letter {
    payload: Bytes,
    omitted: Option<String>,
}

/// The dead letter of a message of `data` holds it unchanged; or, when it is too large to
/// sit beside the dead letter's headers within the max payload, names its size instead.
fn check_letter(case: &Case<Class>, seq: &str, letter: &Letter, data: &[u8]) {
    let near_the_limit = data.len() + 2 * 1024 > MAX_PAYLOAD;
    match &letter.omitted {
        Some(o) if near_the_limit && letter.payload.is_empty() => {
            check::names(
                case,
                "Snowpipe-Payload-Omitted",
                o,
                &format!("{} bytes", data.len()),
            );
            check::names(
                case,
                "Snowpipe-Payload-Omitted",
                o,
                &format!("sequence {seq}"),
            );
        }
        None if letter.payload.as_ref() == data => {}
        _ => case.fail(format!(
            "the dead letter of {seq} is not its message: {} bytes (omitted: {:?}), sent {}",
            letter.payload.len(),
            letter.omitted,
            data.len()
        )),
    }
}

/// The headers of a hostile message: an odd value (`key`), a forged header of ours, and
/// sometimes a huge one that takes the headers to JetStream's limit (`MAX_HEADERS`), when they
/// fit beside `data` within the max payload.
fn headers_for(key: &str, data: &[u8], index: usize) -> Option<HeaderMap> {
    if data.len() + MAX_HEADERS > MAX_PAYLOAD {
        return None;
    }
    let mut h = HeaderMap::new();
    h.insert("Sensor-Key", key);
    h.insert("Snowpipe-Error", "forged by the producer");
    if index % 2 == 0 {
        let huge = MAX_HEADERS - key.len() - HEADER_FRAME;
        h.insert("X-Huge", "h".repeat(huge).as_str());
    }
    Some(h)
}

/// `GOOD` readings, `hostile`, `GOOD` readings, consumed; every message checked.
fn one_case(env: &Env, case: &Case<Class>, hostile: &[Hostile], limits: &Limits) {
    let mut feed: Vec<(Option<HeaderMap>, Vec<u8>, Expect)> = (0..GOOD)
        .map(|i| (None, good(i), Expect::Reading))
        .collect();
    for (i, h) in hostile.iter().enumerate() {
        feed.push((headers_for(&h.key, &h.data, i), h.data.clone(), h.expect));
    }
    feed.extend((GOOD..2 * GOOD).map(|i| (None, good(i), Expect::Reading)));
    let sent: Vec<_> = feed
        .iter()
        .map(|(h, d, _)| (h.clone(), d.clone()))
        .collect();
    let seqs = env.publish(&sent);
    let o = env.consume(limits);
    eprintln!(
        "hostile nats_messages case {} ({:?}): {} messages, CPU {:.2?}, peak RSS {} MiB",
        case.index,
        case.class,
        feed.len(),
        o.cpu,
        o.peak_rss_bytes >> 20
    );
    check::exited_ok(case, &o);
    check::rss_within(case, &o, limits);
    let (landed, payloads) = env.landed();
    let log = o.stderr_text();
    for ((_, data, expect), seq) in feed.iter().zip(&seqs) {
        let seq = match seq {
            Ok(s) => s.to_string(),
            Err(e) => case.fail(format!(
                "the broker refused a message of {} bytes within its max payload: {e}",
                data.len()
            )),
        };
        landed.check(case, "0", &seq, *expect);
        if let Some(letter) = payloads.get(&seq) {
            check::names(
                case,
                "the consumer's log",
                &log,
                &format!("stream sequence {seq}"),
            );
            check_letter(case, &seq, letter, data);
        }
    }
}

#[test]
fn hostile_nats_messages() {
    let Some(env) = Env::start() else {
        return;
    };
    let suite = Suite::from_env("nats_messages", Class::ALL.len());
    let limits = Limits::with_budget(BUDGET);
    let mut failures = suite.failures(&Class::ALL, |mut case| {
        let hostile = payload(case.class, &mut case.rng);
        one_case(&env, &case, &hostile, &limits);
    });
    failures.extend(snowpipe_hostile::attempt(|| past_the_limit(&env)).err());
    failures.extend(snowpipe_hostile::attempt(|| linear(&env, &suite, &limits)).err());
    failures.extend(snowpipe_hostile::attempt(|| batch_bytes(&env, &suite, &limits)).err());
    suite.finish(failures);
}

/// Messages of nearly the max payload held at once: 120 of ~1000 KiB ready in the stream,
/// read with `--batch-max 500`, are held at most `--batch-max-bytes` (24 MiB) at a time: peak
/// RSS within the budget, and every one of them lands (a row or a dead letter).
fn batch_bytes(env: &Env, suite: &Suite, limits: &Limits) {
    // `HOSTILE_ONLY` naming other classes leaves none of Size: skipped (the harness says so).
    let Some(case) = suite.cases(&[Class::Size]).into_iter().next() else {
        return;
    };
    let n = super::keys_within(1_000 * 1024);
    let count = |env: &Env| {
        let (landed, _) = env.landed();
        landed.readings.values().map(Vec::len).sum::<usize>()
            + landed.dead.values().map(Vec::len).sum::<usize>()
    };
    let before = count(env);
    let msgs: Vec<_> = (0..120).map(|_| (None, wide_reading(n))).collect();
    let sent = env.publish(&msgs);
    assert!(sent.iter().all(Result::is_ok), "{sent:?}");
    let o = env.consume_with(
        limits,
        &["--batch-max", "500", "--batch-max-bytes", "25165824"],
    );
    check::exited_ok(&case, &o);
    eprintln!(
        "hostile nats_messages: 120 messages of 1000 KiB, --batch-max-bytes 24 MiB: CPU {:.2?}, \
         peak RSS {} MiB",
        o.cpu,
        o.peak_rss_bytes >> 20
    );
    check::rss_within(&case, &o, limits);
    let after = count(env);
    if after != before + 120 {
        case.fail(format!(
            "120 messages published, {} landed (rows and dead letters): {}",
            after - before,
            o.summary()
        ));
    }
}

/// A message past the server's max payload is refused to the producer; nothing is stored.
fn past_the_limit(env: &Env) {
    let last = || {
        env.rt.block_on(async {
            let mut s = env.js.get_stream(STREAM).await.expect("SENSORS");
            s.info().await.expect("stream info").state.last_sequence
        })
    };
    let before = last();
    let mut rng = snowpipe_hostile::Rng::new(1);
    let sent = env.publish(&[(None, long_status(MAX_PAYLOAD + 1, &mut rng))]);
    let err = sent[0]
        .as_ref()
        .expect_err("the broker took a message past its max payload");
    assert!(
        err.to_lowercase().contains("payload"),
        "the refusal names the limit: {err}"
    );
    assert_eq!(last(), before, "a refused message was stored");
}

/// CPU at two sizes of the wide readings: 8 messages of 512 KiB against 8 of 1000 KiB.
fn linear(env: &Env, suite: &Suite, limits: &Limits) {
    // `HOSTILE_ONLY` naming other classes leaves none of Count: skipped (the harness says so).
    let Some(case) = suite.cases(&[Class::Count]).into_iter().next() else {
        return;
    };
    let mut runs: BTreeMap<u64, Outcome> = BTreeMap::new();
    for kib in [512u64, 1_000] {
        let n = super::keys_within(kib as usize * 1024);
        let msgs: Vec<_> = (0..8).map(|_| (None, wide_reading(n))).collect();
        let sent = env.publish(&msgs);
        assert!(sent.iter().all(Result::is_ok), "{sent:?}");
        let o = env.consume(limits);
        check::exited_ok(&case, &o);
        check::rss_within(&case, &o, limits);
        eprintln!(
            "hostile nats_messages: 8 messages of {kib} KiB: CPU {:.2?}, peak RSS {} MiB",
            o.cpu,
            o.peak_rss_bytes >> 20
        );
        runs.insert(kib, o);
    }
    check::assert_linear(
        &case,
        (512, &runs[&512]),
        (1_000, &runs[&1_000]),
        2.5,
        Duration::from_millis(1_500),
    );
}
