//! Crash test of the sensor_stream application against a real broker: a private `nats-server -js`,
//! `sensor_stream publish` writing, and `sensor_stream consume` SIGKILLed at seeded random
//! moments and restarted; the broker is restarted once in the middle. In the end, for every
//! shard, the table's STREAM_SEQ values must equal the stream's sequences exactly (each once).
//!
//! Needs `nats-server` (`apt-get install nats-server`): skipped with a note when it is
//! missing, a failure under `CI=true`. `SENSOR_CRASH_LONG=1` runs longer (more events, more
//! kills); `SENSOR_CRASH_SEED=N` changes the kill schedule.
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use snowpipe_emulator::{Emulator, EmulatorConfig};

use crate::common;
use snowpipe_apps::sensor_stream::{broker, nats_server};

const STREAM: &str = "SENSORS";
use snowpipe_apps::sensor_stream::pipeline::SETUP_SQL;
const TABLE: &str = "\"STREAMING_INGEST.SENSORS.SENSOR_READINGS\"";

/// Kills the process when dropped, so a failing test leaves nothing running.
use crate::common::bin::Guard;

/// Waits for a child to exit within `limit`, returning its last stdout line.
fn finish(mut child: Guard, limit: Duration, what: &str) -> String {
    let stdout = child.0.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let last = BufReader::new(stdout).lines().map_while(Result::ok).last();
        let _ = tx.send(last.unwrap_or_default());
    });
    let status = child.wait_within(limit, what);
    assert!(status.success(), "{what} exited with {status}");
    rx.recv_timeout(Duration::from_secs(10)).expect("stdout")
}

#[test]
fn consumer_killed_repeatedly_and_broker_restarted_lands_every_sequence_once() {
    if !common::sensor_stream::nats_available("crash") {
        return;
    }
    let long = std::env::var_os("SENSOR_CRASH_LONG").is_some();
    let seed: u64 = std::env::var("SENSOR_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2026);
    let (count, rate, kills, shards) = if long {
        (60_000, 2_000, 12, 4)
    } else {
        (6_000, 1_000, 5, 3)
    };
    let bin = &common::bin::sensor_stream_bin();
    let dir = tempfile::tempdir().unwrap();
    let mut nats =
        nats_server::NatsServer::start(Some(&dir.path().join("nats"))).expect("start nats-server");
    let nats_url = nats.url();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut config = EmulatorConfig::default();
    config.ddl = vec![SETUP_SQL.to_string()];
    config.public_keys = vec![common::TEST_PUBLIC_KEY.to_string()];
    config.commit_delay = Duration::from_millis(300);
    config.data_dir = Some(dir.path().join("emulator"));
    config.strict_offsets = true;
    let emulator: Emulator = rt
        .block_on(Emulator::start(config))
        .expect("start the emulator");
    let key = dir.path().join("key.p8");
    std::fs::write(&key, common::TEST_KEY).unwrap();

    let publisher = Command::new(bin)
        .args([
            "publish", "--nats", &nats_url, "--stream", STREAM, "--shards",
        ])
        .arg(shards.to_string())
        .args([
            "--count",
            &count.to_string(),
            "--rate",
            &rate.to_string(),
            "--seed",
            "11",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn publish");
    let mut publisher = Guard(publisher);

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let restart_at = rng.gen_range(1..kills - 1);
    let mut killed_while_publishing = 0;
    for round in 0..kills {
        let mut consumer = Guard(
            common::sensor_stream::consume_cmd(
                bin,
                &nats_url,
                STREAM,
                shards,
                &emulator.url(),
                &key,
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn consume"),
        );
        std::thread::sleep(Duration::from_millis(rng.gen_range(300..1_200)));
        if round == restart_at {
            eprintln!("restarting the broker under a running consumer and publisher");
            nats.restart().expect("restart nats-server");
            // The same consumer process carries on: rows keep landing after the restart.
            let before = landed_rows(&emulator);
            let deadline = Instant::now() + Duration::from_secs(20);
            while landed_rows(&emulator) == before {
                assert!(
                    Instant::now() < deadline,
                    "nothing landed for 20 s after the broker restart"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            std::thread::sleep(Duration::from_millis(rng.gen_range(300..1_000)));
        }
        assert!(
            consumer.0.try_wait().unwrap().is_none(),
            "the consumer exited by itself"
        );
        consumer.0.kill().unwrap(); // SIGKILL
        let _ = consumer.0.wait();
        let landed: i64 = emulator
            .query(&format!("SELECT COUNT(*) FROM {TABLE}"))
            .unwrap()[0][0]
            .as_i64()
            .unwrap();
        let publishing = publisher.0.try_wait().unwrap().is_none();
        killed_while_publishing += u32::from(publishing);
        eprintln!(
            "kill {}: {landed} rows landed so far{}",
            round + 1,
            if publishing {
                ", publisher still running"
            } else {
                ""
            }
        );
    }
    assert!(
        killed_while_publishing >= 3,
        "only {killed_while_publishing} kills happened while publishing"
    );

    let published = finish(publisher, Duration::from_secs(120), "publish");
    let published: serde_json::Value =
        serde_json::from_str(&published).expect("publish's JSON line");
    let final_consumer =
        common::sensor_stream::consume_cmd(bin, &nats_url, STREAM, shards, &emulator.url(), &key)
            .arg("--until-idle")
            .arg("2s")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit()) // its closing table: throughput and latency p50/p99
            .spawn()
            .expect("spawn the last consume");
    let consumed = finish(
        Guard(final_consumer),
        Duration::from_secs(120),
        "consume --until-idle",
    );
    let consumed: serde_json::Value = serde_json::from_str(&consumed).expect("consume's JSON line");

    // The broker's view: every sequence of every shard.
    let stream_seqs: Vec<Vec<u64>> = rt.block_on(async {
        let js = broker::connect(&nats_url).await.unwrap();
        let stream = broker::attach_stream(&js, STREAM).await.unwrap();
        let mut all = Vec::new();
        for shard in 0..shards {
            let last = broker::last_seq(&stream, shard).await.unwrap();
            all.push(broker::shard_sequences(&stream, shard, last).await.unwrap());
        }
        all
    });
    let rows = emulator
        .query(&format!("SELECT SHARD, STREAM_SEQ FROM {TABLE}"))
        .unwrap();
    let mut landed = vec![Vec::new(); shards as usize];
    for row in rows {
        landed[row[0].as_u64().unwrap() as usize].push(row[1].as_u64().unwrap());
    }
    let mut total = 0;
    for shard in 0..shards as usize {
        let (want, got) = (&stream_seqs[shard], &mut landed[shard]);
        got.sort_unstable();
        let (n_got, n_want) = (got.len(), want.len());
        got.dedup();
        assert_eq!(
            n_got,
            got.len(),
            "shard {shard}: {} duplicated rows",
            n_got - got.len()
        );
        assert!(got == want, "shard {shard}: STREAM_SEQ values differ from the stream's ({n_got} rows, {n_want} in the stream)");
        assert_eq!(
            published["published"][shard.to_string()].as_u64(),
            Some(n_want as u64),
            "shard {shard}: published vs stored"
        );
        assert_eq!(
            consumed["consumed"][shard.to_string()]["committed"].as_str(),
            want.last().map(u64::to_string).as_deref(),
            "shard {shard}: the committed token is the shard's last sequence"
        );
        total += n_want;
    }
    assert_eq!(
        total, count,
        "every published event is in the stream once (Nats-Msg-Id deduplication)"
    );
    eprintln!("{total} readings over {shards} shards landed exactly once across {kills} consumer kills and a broker restart");
    nats.stop();
}

fn landed_rows(emulator: &Emulator) -> u64 {
    emulator
        .query(&format!("SELECT COUNT(*) FROM {TABLE}"))
        .unwrap()[0][0]
        .as_u64()
        .unwrap()
}

#[test]
fn consume_attaches_to_a_stream_provisioned_elsewhere_and_leaves_it_as_it_was() {
    if !common::sensor_stream::nats_available("crash") {
        return;
    }
    let bin = &common::bin::sensor_stream_bin();
    let nats = nats_server::NatsServer::start(None).expect("start nats-server");
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Someone else's stream: other name, wider subjects, memory storage, a size limit.
    let config = async_nats::jetstream::stream::Config {
        name: "PLANT_7".into(),
        subjects: vec!["sensors.>".into()],
        storage: async_nats::jetstream::stream::StorageType::Memory,
        max_messages: 100_000,
        ..Default::default()
    };
    let js = rt.block_on(broker::connect(&nats.url())).unwrap();
    rt.block_on(js.create_stream(config.clone()))
        .expect("provision the stream");
    let mut emu_config = EmulatorConfig::default();
    emu_config.ddl = vec![SETUP_SQL.to_string()];
    emu_config.public_keys = vec![common::TEST_PUBLIC_KEY.to_string()];
    emu_config.commit_delay = Duration::from_millis(100);
    emu_config.strict_offsets = true;
    let emulator = rt.block_on(Emulator::start(emu_config)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.p8");
    std::fs::write(&key, common::TEST_KEY).unwrap();

    let publish = Command::new(bin)
        .args([
            "publish",
            "--nats",
            &nats.url(),
            "--stream",
            "PLANT_7",
            "--shards",
            "2",
        ])
        .args(["--count", "300", "--rate", "10000", "--seed", "5"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    finish(Guard(publish), Duration::from_secs(60), "publish");
    let mut consume =
        common::sensor_stream::consume_cmd(bin, &nats.url(), "PLANT_7", 2, &emulator.url(), &key);
    consume.args(["--until-idle", "1s"]);
    let consume = consume
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let consumed = finish(Guard(consume), Duration::from_secs(60), "consume");
    let consumed: serde_json::Value = serde_json::from_str(&consumed).unwrap();

    let rows = emulator
        .query(&format!(
            "SELECT SHARD, STREAM_SEQ FROM {TABLE} ORDER BY STREAM_SEQ"
        ))
        .unwrap();
    let landed: Vec<u64> = rows.iter().map(|r| r[1].as_u64().unwrap()).collect();
    assert_eq!(
        landed,
        (1..=300).collect::<Vec<u64>>(),
        "every sequence once"
    );
    let rows_by_shard: u64 = (0..2)
        .map(|s| {
            consumed["consumed"][s.to_string()]["rows"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(rows_by_shard, 300);
    let info = common::sensor_stream::stream_config(&rt, &js, "PLANT_7");
    assert_eq!(
        (info.subjects, info.storage, info.max_messages),
        (config.subjects, config.storage, config.max_messages),
        "the consumer changed the stream's settings"
    );
    assert!(
        rt.block_on(js.get_stream("SENSORS")).is_err(),
        "no stream of ours was created"
    );
}
