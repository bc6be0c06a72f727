//! The Kinesis path against a real local Kinesis server (kinesalite) and the emulator: the
//! Lambda handler under a faithful event source mapping (`common::lambda_esm`: retries,
//! bisection, batchItemFailures, ParallelizationFactor, killed instances, resharding), and the
//! `consume --source kinesis` process SIGKILLed through a split. Records come from a
//! test-side producer (the seed's format written here, garbage included), not our publisher.
//!
//! Needs `kinesalite` (`npm install -g kinesalite@3.3.3`): skipped with a note when missing,
//! a failure under `CI=true`.
#![cfg(unix)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use snowpipe_apps::sensor_stream::kinesis::{
    aws, report, sequence::SequenceNumber, server, shards, stream,
};
use snowpipe_emulator::Emulator;
use snowpipe_streaming::sql::SqlClient;

use crate::common;
use crate::common::bin::Guard;
use crate::common::lambda_esm::{self, Mapping, Pool, Tally};

struct Setup {
    rt: tokio::runtime::Runtime,
    server: server::KinesisServer,
    kinesis: aws_sdk_kinesis::Client,
    emulator: Emulator,
    key: PathBuf,
    /// The SQL API on the emulator: what the tests read the tables through.
    sql: SqlClient,
    _dir: tempfile::TempDir,
}

fn setup(test: &str, stream_name: &str, shard_count: u32) -> Option<Setup> {
    if server::binary().is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{} (CI=true: a missing Kinesis server is a failure; .ci/run installs it)",
            server::INSTALL_HINT
        );
        eprintln!(
            "skipping sensor_stream kinesis {test} test: {}",
            server::INSTALL_HINT
        );
        return None;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let srv = server::KinesisServer::start().expect("start kinesalite");
    let kinesis = aws::local_client(&srv.url());
    rt.block_on(stream::ensure(&kinesis, stream_name, shard_count))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = common::sensor_stream::start_emulator(&rt, dir.path());
    let sql = snowpipe_streaming::StreamingIngestClient::builder()
        .account("SENSORS")
        .user("STREAMING_INGEST")
        .url(emulator.url())
        .private_key_file(&key)
        .build_sql()
        .unwrap()
        .database("STREAMING_INGEST")
        .schema("SENSORS");
    Some(Setup {
        rt,
        server: srv,
        kinesis,
        emulator,
        key,
        sql,
        _dir: dir,
    })
}

/// The connection of every child process.
fn snowflake_env(s: &Setup) -> Vec<(String, String)> {
    [
        ("SNOWFLAKE_URL", s.emulator.url()),
        ("SNOWFLAKE_ACCOUNT", "SENSORS".into()),
        ("SNOWFLAKE_USER", "STREAMING_INGEST".into()),
        ("SNOWFLAKE_PRIVATE_KEY_FILE", s.key.display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn lambda_env(s: &Setup, pf: u32, mode: &str) -> Vec<(String, String)> {
    let mut env = snowflake_env(s);
    for (k, v) in [
        ("SNOWPIPE_DATABASE", "STREAMING_INGEST"),
        ("SNOWPIPE_SCHEMA", "SENSORS"),
        ("SNOWPIPE_PIPE", "KINESIS_READINGS_PIPE"),
        ("SNOWPIPE_DEAD_LETTER_PIPE", "KINESIS_DEAD_LETTERS_PIPE"),
        ("FAILURE_MODE", mode),
    ] {
        env.push((k.into(), v.into()));
    }
    env.push(("PARALLELIZATION_FACTOR".into(), pf.to_string()));
    env
}

/// Seed-format readings written here (no eventTime: Kinesis' arrival time is the event time),
/// with garbage at `bad` positions.
fn records(n: usize, bad: &[usize], salt: usize) -> Vec<(String, Vec<u8>)> {
    let garbage: [&[u8]; 5] = [
        b"not json",
        b"",
        b"[1,2]",
        br#"{"currentTemperature": 3}"#,
        &[0xff, 0xfe, 0x00],
    ];
    (0..n)
        .map(|i| {
            let sensor = (i * 7 + salt) % 50;
            let body = if let Some(j) = bad.iter().position(|b| *b == i) {
                garbage[j % garbage.len()].to_vec()
            } else {
                let status = ["OK", "FAIL", "WARN"][i % 3];
                format!(
                    r#"{{"sensorId": {sensor}, "currentTemperature": {}, "status": "{status}"}}"#,
                    10 + i % 140
                )
                .into_bytes()
            };
            (sensor.to_string(), body)
        })
        .collect()
}

struct Landed {
    /// (partition key, sequence number, INGESTED_AT ms) of every reading.
    keys: Vec<(String, String, i64)>,
    dead: Vec<(String, String)>,
}

/// Every record of the stream exactly once in the tables; children after their parents.
fn assert_exactly_once(s: &Setup, name: &str, expect_dead: usize) -> Landed {
    let seqs =
        s.rt.block_on(stream::all_sequences(&s.kinesis, name))
            .unwrap();
    let parents: BTreeMap<String, Vec<String>> =
        s.rt.block_on(shards::list(&s.kinesis, name))
            .unwrap()
            .into_iter()
            .map(|(id, i)| (id, i.parents))
            .collect();
    let r =
        s.rt.block_on(report::against_tables(&s.sql, &seqs, &parents))
            .unwrap();
    eprint!("{}", report::format(&r.checks));
    for (shard, c) in &r.checks {
        assert!(
            c.exact(),
            "shard {shard}: lost {:?} duplicated {:?} extra {:?}",
            c.lost,
            c.duplicated,
            c.extra
        );
    }
    assert_eq!(r.dead.len(), expect_dead, "dead letters");
    let total: usize = seqs.values().map(Vec::len).sum();
    let rows: usize = r.checks.values().map(|c| c.rows).sum();
    assert_eq!(rows + r.dead.len(), total);
    assert!(
        r.violations.is_empty(),
        "child rows before their parent's last: {:?}",
        r.violations
    );
    let keys = query(
        s,
        "SELECT PARTITION_KEY, SEQUENCE_NUMBER, INGESTED_AT FROM KINESIS_READINGS",
    )
    .into_iter()
    .map(|r| {
        let t =
            report::time_ms(r[2].as_deref()).unwrap_or_else(|| panic!("INGESTED_AT {:?}", r[2]));
        let text = |i: usize| r[i].clone().unwrap_or_default();
        (text(0), text(1), t)
    })
    .collect();
    Landed { keys, dead: r.dead }
}

/// Every row of `statement`, through the SQL API.
fn query(s: &Setup, statement: &str) -> Vec<Vec<Option<String>>> {
    s.rt.block_on(s.sql.query(statement))
        .unwrap_or_else(|e| panic!("{statement}: {e}"))
        .rows
}

fn put(
    s: &Setup,
    name: &str,
    recs: Vec<(String, Vec<u8>)>,
) -> BTreeMap<String, Vec<SequenceNumber>> {
    s.rt.block_on(stream::put(&s.kinesis, name, recs)).unwrap()
}

fn mapping(name: &str) -> Mapping {
    Mapping {
        stream: name.into(),
        batch_size: 100,
        parallelization_factor: 1,
        bisect: false,
        max_retries: 10,
        redeliver_every: None,
        kill: BTreeMap::new(),
        poison: None,
    }
}

fn run_mapping(s: &Setup, m: &Mapping, env: Vec<(String, String)>, instances: usize) -> Arc<Tally> {
    let pool = Pool::new(common::bin::sensor_stream_bin(), env, instances);
    let tally = Arc::new(Tally::default());
    s.rt.block_on(lambda_esm::run(m, &s.kinesis, &pool, &tally, || true));
    eprintln!(
        "mapping: {} invocations, {} cold starts, {} retries, {} redeliveries, {} kills, {} bisections, {} discarded",
        tally.invocations.load(Ordering::Relaxed),
        tally.cold_starts.load(Ordering::Relaxed),
        tally.retries.load(Ordering::Relaxed),
        tally.redeliveries.load(Ordering::Relaxed),
        tally.kills.load(Ordering::Relaxed),
        tally.bisections.load(Ordering::Relaxed),
        tally.discarded.lock().unwrap().len(),
    );
    eprintln!("mapping: {}", tally.timings());
    tally
}

#[test]
fn lambda_redelivered_and_killed_batches_land_once() {
    let name = "redeliver";
    let Some(s) = setup("redeliver", name, 2) else {
        return;
    };
    put(&s, name, records(2_000, &[5, 777, 1_500], 0));
    let mut m = mapping(name);
    m.redeliver_every = Some(3);
    m.kill = [
        (2, Duration::from_millis(40)),
        (7, Duration::from_millis(250)),
        (12, Duration::ZERO),
    ]
    .into();
    let tally = run_mapping(&s, &m, lambda_env(&s, 1, "report"), 2);
    assert!(tally.redeliveries.load(Ordering::Relaxed) >= 3);
    assert_eq!(tally.kills.load(Ordering::Relaxed), 3);
    assert!(tally.discarded.lock().unwrap().is_empty());
    assert_exactly_once(&s, name, 3);
}

#[test]
fn lambda_bisects_to_a_poison_record_and_lands_the_rest_once() {
    let name = "bisect";
    let Some(s) = setup("bisect", name, 1) else {
        return;
    };
    let seqs = put(&s, name, records(400, &[150], 1));
    let poison = seqs["shardId-000000000000"][150].to_string();
    let mut m = mapping(name);
    m.bisect = true;
    m.poison = Some(poison.clone());
    let tally = run_mapping(&s, &m, lambda_env(&s, 1, "error"), 1);
    assert!(
        tally.bisections.load(Ordering::Relaxed) >= 6,
        "bisected down to one record"
    );
    assert!(tally.discarded.lock().unwrap().is_empty());
    let l = assert_exactly_once(&s, name, 1);
    assert_eq!(l.dead[0].1, poison, "the poison record is the dead letter");
}

#[test]
fn lambda_parallel_batches_of_two_instances_keep_every_key_in_order_once() {
    let name = "parallel";
    let Some(s) = setup("parallel", name, 2) else {
        return;
    };
    put(&s, name, records(3_000, &[100, 2_000], 2));
    let mut m = mapping(name);
    m.parallelization_factor = 4;
    m.batch_size = 50;
    m.kill = [(9, Duration::from_millis(100))].into();
    let tally = run_mapping(&s, &m, lambda_env(&s, 4, "report"), 2);
    assert!(tally.invocations.load(Ordering::Relaxed) >= 60);
    let l = assert_exactly_once(&s, name, 2);
    // Per key: rows ingested in sequence order.
    let mut by_key: BTreeMap<&str, Vec<(SequenceNumber, i64)>> = BTreeMap::new();
    for (key, seq, t) in &l.keys {
        by_key
            .entry(key)
            .or_default()
            .push((SequenceNumber::parse(seq).unwrap(), *t));
    }
    assert!(by_key.len() >= 40);
    for (key, mut rows) in by_key {
        rows.sort();
        for w in rows.windows(2) {
            assert!(
                w[0].1 <= w[1].1,
                "key {key}: {} ingested after {}",
                w[0].0,
                w[1].0
            );
        }
    }
}

#[test]
fn lambda_through_a_split_and_a_merge_while_records_flow() {
    let name = "reshard";
    let Some(s) = setup("reshard", name, 2) else {
        return;
    };
    let feed = records(3_000, &[10, 2_900], 3);
    let kinesis = s.kinesis.clone();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producer = {
        let done = done.clone();
        s.rt.spawn(async move {
            for (i, chunk) in feed.chunks(100).enumerate() {
                stream::put(&kinesis, name, chunk.to_vec()).await.unwrap();
                if i == 10 {
                    stream::split(&kinesis, name, "shardId-000000000000")
                        .await
                        .unwrap();
                }
                if i == 20 {
                    stream::merge(
                        &kinesis,
                        name,
                        "shardId-000000000002",
                        "shardId-000000000003",
                    )
                    .await
                    .unwrap();
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            done.store(true, Ordering::Relaxed);
        })
    };
    let pool = Pool::new(
        common::bin::sensor_stream_bin(),
        lambda_env(&s, 1, "report"),
        2,
    );
    let tally = Arc::new(Tally::default());
    let m = mapping(name);
    let d = done.clone();
    s.rt.block_on(lambda_esm::run(&m, &s.kinesis, &pool, &tally, move || {
        d.load(Ordering::Relaxed)
    }));
    s.rt.block_on(producer).unwrap();
    let listed = s.rt.block_on(shards::list(&s.kinesis, name)).unwrap();
    assert_eq!(listed.len(), 5, "2 + a split (2) + a merge (1): {listed:?}");
    assert_exactly_once(&s, name, 2);
}

#[test]
fn consumer_killed_twice_through_a_split_lands_every_reading_once() {
    let name = "consume";
    let Some(s) = setup("consume", name, 3) else {
        return;
    };
    let feed = records(20_000, &[17, 4_001, 9_999, 15_000, 19_998], 4);
    let kinesis = s.kinesis.clone();
    let producer = s.rt.spawn(async move {
        for (i, chunk) in feed.chunks(500).enumerate() {
            stream::put(&kinesis, name, chunk.to_vec()).await.unwrap();
            if i == 15 {
                stream::split(&kinesis, name, "shardId-000000000001")
                    .await
                    .unwrap();
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    });
    let consume = |until_idle: bool| {
        let mut cmd = Command::new(common::bin::sensor_stream_bin());
        cmd.args(["consume", "--source", "kinesis", "--kinesis-endpoint"])
            .arg(s.server.url())
            .args([
                "--stream",
                name,
                "--database",
                "STREAMING_INGEST",
                "--schema",
                "SENSORS",
            ])
            .args(["--pipe", "KINESIS_READINGS_PIPE", "--region", "us-east-1"])
            .env("AWS_ACCESS_KEY_ID", "local")
            .env("AWS_SECRET_ACCESS_KEY", "local")
            .envs(snowflake_env(&s))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if until_idle {
            cmd.args(["--until-idle", "3s"]).stderr(Stdio::inherit());
        }
        Guard(cmd.spawn().expect("spawn consume"))
    };
    for (kill, after) in [(1, 1_200), (2, 900)] {
        let mut c = consume(false);
        std::thread::sleep(Duration::from_millis(after));
        assert!(
            c.0.try_wait().unwrap().is_none(),
            "consume exited by itself"
        );
        c.0.kill().unwrap(); // SIGKILL
        let _ = c.0.wait();
        let n = query(&s, "SELECT COUNT(*) FROM KINESIS_READINGS")[0][0]
            .clone()
            .unwrap_or_default();
        eprintln!("kill {kill}: {n} rows landed so far");
    }
    s.rt.block_on(producer).unwrap();
    let mut last = consume(true);
    let status = last.wait_within(Duration::from_secs(180), "consume --until-idle");
    assert!(status.success(), "consume exited with {status}");
    let out = std::io::read_to_string(last.0.stdout.take().unwrap()).unwrap();
    let line: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert!(
        line["consumed"]["shardId-000000000001"]["finished"]
            .as_bool()
            .unwrap(),
        "{line}"
    );
    assert_exactly_once(&s, name, 5);
}
