//! `hostile_kinesis_records`: a producer written here puts the hostile classes' records
//! (`super::payload`) between good readings into kinesalite, one stream per case; the real
//! `sensor_stream consume --source kinesis --until-idle` reads them under the suite's memory cap
//! into the emulator. Asserted: no crash, exit 0, peak RSS within the budget + 64 MB, every
//! hostile record exactly once as its expectation says (a dead letter naming its shard and
//! sequence number, and the consumer's log naming both), every good reading once, a record
//! past Kinesis' 1 MiB refused by the service (not by us); CPU linear in the records' size.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use aws_sdk_kinesis::error::ProvideErrorMetadata as _;
use aws_sdk_kinesis::primitives::Blob;
use snowpipe_apps::sensor_stream::kinesis::{aws, server, stream};
use snowpipe_emulator::Emulator;
use snowpipe_hostile::gen::Class;
use snowpipe_hostile::{check, run, Case, Input, Limits, Outcome, Suite, MIB};
use snowpipe_streaming::sql::SqlClient;

use super::{good, long_status, payload, wide_reading, Expect, Hostile, Landed, MAX_RECORD};
use crate::common;

/// The consumer's memory: a GetRecords answer (at most 10 MB on AWS; kinesalite's of
/// `--batch-max` 1 MiB records, base64 in JSON), the records decoded, and the SDK's buffers.
const BUDGET: u64 = 192 * MIB;

/// Good readings before and after the hostile ones.
const GOOD: usize = 3;

/// kinesalite, the emulator and the SQL API on it: one of each for every case.
struct Env {
    rt: tokio::runtime::Runtime,
    server: server::KinesisServer,
    kinesis: aws_sdk_kinesis::Client,
    emulator: Emulator,
    key: PathBuf,
    sql: SqlClient,
    _dir: tempfile::TempDir,
}

impl Env {
    /// `None` (with a note) when kinesalite is missing and `CI` is not `true`.
    fn start() -> Option<Env> {
        if !common::sensor_stream::kinesis_server_available("hostile_kinesis_records") {
            return None;
        }
        let rt = common::sensor_stream::runtime();
        let server = server::KinesisServer::start().expect("start kinesalite");
        let kinesis = aws::local_client(&server.url());
        let dir = tempfile::tempdir().unwrap();
        let (emulator, key) = common::sensor_stream::start_emulator(&rt, dir.path());
        let sql = common::sensor_stream::sql_client(&emulator.url(), &key);
        Some(Env {
            rt,
            server,
            kinesis,
            emulator,
            key,
            sql,
            _dir: dir,
        })
    }

    /// Puts `records` one by one (PutRecord: each its own request, as large as Kinesis
    /// takes), in order: each one's shard and sequence number, or the service's refusal.
    fn put(
        &self,
        name: &str,
        records: &[(String, Vec<u8>)],
    ) -> Vec<Result<(String, String), String>> {
        self.rt.block_on(async {
            let mut out = Vec::new();
            for (key, data) in records {
                let put = self
                    .kinesis
                    .put_record()
                    .stream_name(name)
                    .partition_key(key)
                    .data(Blob::new(data.clone()))
                    .send()
                    .await;
                out.push(match put {
                    Ok(r) => Ok((r.shard_id().to_owned(), r.sequence_number().to_owned())),
                    Err(e) => Err(e.message().map_or_else(|| e.to_string(), str::to_owned)),
                });
            }
            out
        })
    }

    /// The real consumer of stream `name`, until it is idle, under `limits`.
    fn consume(&self, name: &str, limits: &Limits) -> Outcome {
        let mut cmd = Command::new(common::bin::sensor_stream_bin());
        cmd.args(["consume", "--source", "kinesis", "--kinesis-endpoint"])
            .arg(self.server.url())
            .args([
                "--stream",
                name,
                "--region",
                "us-east-1",
                "--until-idle",
                "2s",
            ])
            .args(["--database", "STREAMING_INGEST", "--schema", "SENSORS"])
            .args(["--pipe", "KINESIS_READINGS_PIPE", "--batch-max", "100"])
            .env("AWS_ACCESS_KEY_ID", "local")
            .env("AWS_SECRET_ACCESS_KEY", "local")
            .env("SNOWFLAKE_URL", self.emulator.url())
            .env("SNOWFLAKE_ACCOUNT", "SENSORS")
            .env("SNOWFLAKE_USER", "STREAMING_INGEST")
            .env("SNOWFLAKE_PRIVATE_KEY_FILE", &self.key)
            .env_remove("SNOWFLAKE_PRIVATE_KEY")
            .env("RUST_LOG", "warn");
        run(cmd, Input::Null, limits).expect("run sensor_stream consume")
    }
}

/// One stream of `GOOD` readings, `hostile`, `GOOD` readings, consumed; every record checked.
fn one_case(env: &Env, case: &Case<Class>, name: &str, hostile: &[Hostile], limits: &Limits) {
    env.rt
        .block_on(stream::ensure(&env.kinesis, name, 1))
        .unwrap();
    let mut feed: Vec<(String, Vec<u8>, Expect)> = (0..GOOD)
        .map(|i| (format!("g{i}"), good(i), Expect::Reading))
        .collect();
    feed.extend(
        hostile
            .iter()
            .map(|h| (h.key.clone(), h.data.clone(), h.expect)),
    );
    feed.extend((GOOD..2 * GOOD).map(|i| (format!("g{i}"), good(i), Expect::Reading)));
    let sent: Vec<(String, Vec<u8>)> = feed
        .iter()
        .map(|(k, d, _)| (k.clone(), d.clone()))
        .collect();
    let put = env.put(name, &sent);
    let o = env.consume(name, limits);
    eprintln!(
        "hostile kinesis_records case {} ({:?}): {} records, CPU {:.2?}, peak RSS {} MiB",
        case.index,
        case.class,
        feed.len(),
        o.cpu,
        o.peak_rss_bytes >> 20
    );
    check::exited_ok(case, &o);
    check::rss_within(case, &o, limits);
    let landed = env.rt.block_on(Landed::read(&env.sql));
    let log = o.stderr_text();
    for ((_, data, expect), put) in feed.iter().zip(&put) {
        let (shard, seq) = match put {
            Ok(p) => p,
            Err(e) => case.fail(format!(
                "kinesalite refused a record of {} bytes Kinesis takes: {e}",
                data.len()
            )),
        };
        landed.check(case, shard, seq, *expect);
        if landed.dead.contains_key(seq) {
            check::names(case, "the consumer's log", &log, &format!("{shard} {seq}"));
        }
    }
}

#[test]
fn hostile_kinesis_records() {
    let Some(env) = Env::start() else {
        return;
    };
    let suite = Suite::from_env("kinesis_records", Class::ALL.len());
    let limits = Limits::with_budget(BUDGET);
    let mut failures = suite.failures(&Class::ALL, |mut case| {
        let name = format!("hk-{}-{:x}", case.index, case.seed & 0xffff);
        let hostile = payload(case.class, &mut case.rng);
        one_case(&env, &case, &name, &hostile, &limits);
    });
    failures.extend(snowpipe_hostile::attempt(|| past_the_limit(&env)).err());
    failures.extend(snowpipe_hostile::attempt(|| linear(&env, &suite, &limits)).err());
    suite.finish(failures);
}

/// A record past Kinesis' 1 MiB is the service's to refuse: the producer hears it, and
/// nothing of it reaches the consumer.
fn past_the_limit(env: &Env) {
    let name = "hk-past";
    env.rt
        .block_on(stream::ensure(&env.kinesis, name, 1))
        .unwrap();
    let mut rng = snowpipe_hostile::Rng::new(1);
    let put = env.put(name, &[("k".into(), long_status(MAX_RECORD + 1, &mut rng))]);
    let err = put[0]
        .as_ref()
        .expect_err("kinesalite took a record past 1 MiB");
    assert!(
        err.contains("1048576"),
        "the refusal names the limit: {err}"
    );
}

/// CPU at two sizes of the wide readings (the class whose cost grows with a record's size):
/// 8 records of 512 KiB against 8 of 1 MiB.
fn linear(env: &Env, suite: &Suite, limits: &Limits) {
    // `HOSTILE_ONLY` naming other classes leaves none of Count: skipped (the harness says so).
    let Some(case) = suite.cases(&[Class::Count]).into_iter().next() else {
        return;
    };
    let mut runs: BTreeMap<usize, Outcome> = BTreeMap::new();
    for (i, kib) in [512usize, 1_000].into_iter().enumerate() {
        let n = super::keys_within(kib * 1024);
        let name = format!("hk-linear-{i}");
        let hostile: Vec<Hostile> = (0..8)
            .map(|_| Hostile {
                key: "w".into(),
                data: wide_reading(n),
                expect: Expect::Reading,
            })
            .collect();
        let before = std::time::Instant::now();
        env.rt
            .block_on(stream::ensure(&env.kinesis, &name, 1))
            .unwrap();
        let sent: Vec<(String, Vec<u8>)> = hostile
            .iter()
            .map(|h| (h.key.clone(), h.data.clone()))
            .collect();
        let put = env.put(&name, &sent);
        assert!(put.iter().all(Result::is_ok), "{put:?}");
        let o = env.consume(&name, limits);
        check::exited_ok(&case, &o);
        check::rss_within(&case, &o, limits);
        eprintln!(
            "hostile kinesis_records: 8 records of {kib} KiB: CPU {:.2?}, peak RSS {} MiB ({:.1?} wall)",
            o.cpu,
            o.peak_rss_bytes >> 20,
            before.elapsed()
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
