//! The rebalance matrix: the real `snowpipe-kafka` binary as separate processes in one consumer
//! group on librdkafka's mock cluster, against the emulator. Instances join, leave cleanly
//! (SIGTERM), are SIGKILLed mid-batch, and are SIGSTOPped until their partitions move and then
//! resumed; every (partition, offset) of a row lands exactly once, every time, and every message
//! that is not a row is dead-lettered.
//!
//! The messages come from a producer written here, not from the demo's generator: JSON objects
//! with and without optional fields, nested values, unicode, pretty-printed JSON, and garbage.
//!
//! CI runs fixed seeds; `KAFKA_REBALANCE_SEED=N` replays one, `=random` explores.
#![cfg(unix)]

use std::collections::{BTreeMap, HashSet};
use std::process::Child;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rdkafka::producer::{FutureProducer, FutureRecord};
use snowpipe_kafka_lab::demo::Lab;

use crate::common::{bin, deliver_all, lab, signal, wait_landed};
use snowpipe_cli_support::process::Signal;

const TOPIC: &str = "clicks";
const DLQ: &str = "clicks.dlq";
const PARTITIONS: i32 = 6;

fn seeds() -> Vec<u64> {
    match std::env::var("KAFKA_REBALANCE_SEED").ok().as_deref() {
        Some("random") => vec![rand::random()],
        Some(s) => vec![s
            .parse()
            .expect("KAFKA_REBALANCE_SEED: a number or `random`")],
        None => vec![7],
    }
}

/// What the test's producer wrote: rows by id (with their partition and offset) and the
/// (partition, offset) of every message that is not a row.
#[derive(Default)]
struct Written {
    rows: BTreeMap<i64, (i32, i64)>,
    poison: Vec<(i32, i64)>,
}

/// The n-th message a third-party producer might send: mostly rows in several shapes, some
/// garbage. Returns the payload and whether it is a row.
fn message(n: i64, rng: &mut ChaCha8Rng) -> (Vec<u8>, bool) {
    match rng.gen_range(0..100) {
        0..=59 => (format!(r#"{{"id":{n},"kind":"view","amount":{}}}"#, n % 97).into_bytes(), true),
        // Optional fields missing, extra fields the table does not have.
        60..=74 => (format!(r#"{{"id":{n},"browser":"firefox","tags":["a","b"]}}"#).into_bytes(), true),
        // Pretty-printed, unicode, nested.
        75..=84 => (
            format!("{{\n  \"id\": {n},\n  \"kind\": \"caf\u{e9} \u{2615}\",\n  \"ctx\": {{\"x\": [1, {{\"y\": null}}]}}\n}}")
                .into_bytes(),
            true,
        ),
        85..=88 => (b"<html>502 Bad Gateway</html>".to_vec(), false),
        89..=91 => (format!("[{n}, 2, 3]").into_bytes(), false),
        92..=93 => (vec![0xff, 0xfe, 0x00, 0x01], false),
        // (An empty value is no poison: the JsonConverter reads it as a tombstone.)
        94 => (b"nul".to_vec(), false),
        95 => (format!(r#"{{"id":{n},"truncated":"#).into_bytes(), false),
        _ => (format!(r#"{{"id":{n},"amount":-{n}}}"#).into_bytes(), true),
    }
}

/// Produces messages `first..first + count` ([`message`]) 200 at a time, recording where
/// each went in `w`.
async fn produce(producer: &FutureProducer, first: i64, count: i64, seed: u64, w: &mut Written) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ first as u64);
    let messages: Vec<(i64, String, Vec<u8>, bool)> = (first..first + count)
        .map(|n| {
            let (payload, row) = message(n, &mut rng);
            (n, format!("k{}", n % 31), payload, row)
        })
        .collect();
    for batch in messages.chunks(200) {
        let records = batch
            .iter()
            .map(|(_, key, payload, _)| FutureRecord::to(TOPIC).key(key).payload(payload));
        for ((n, _, _, row), d) in batch.iter().zip(deliver_all(producer, records).await) {
            if *row {
                w.rows.insert(*n, (d.partition, d.offset));
            } else {
                w.poison.push((d.partition, d.offset));
            }
        }
        if batch.len() == 200 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Waits until the table holds `n` rows (the group has formed and is streaming).
async fn wait_rows(lab: &Lab, n: usize) {
    wait_landed(lab, n, Duration::from_secs(60)).await;
}

async fn wait_exit(child: &mut Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let until = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(
            Instant::now() < until,
            "{what} did not finish within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every row's (partition, offset) once; every poison message dead-lettered.
fn assert_exactly_once(lab: &Lab, w: &Written, what: &str) {
    let landed = lab.landed_offsets().unwrap();
    let mut seen = HashSet::new();
    let dups: Vec<_> = landed.iter().filter(|po| !seen.insert(**po)).collect();
    assert!(
        dups.is_empty(),
        "{what}: {} rows landed twice: {:?}",
        dups.len(),
        &dups[..dups.len().min(10)]
    );
    let want: HashSet<(i32, i64)> = w.rows.values().copied().collect();
    let lost: Vec<_> = want.difference(&seen).collect();
    let extra: Vec<_> = seen.difference(&want).collect();
    assert!(
        lost.is_empty(),
        "{what}: {} rows lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    assert!(
        extra.is_empty(),
        "{what}: {} unexpected rows: {:?}",
        extra.len(),
        &extra[..extra.len().min(10)]
    );
    let dead: HashSet<(i32, i64)> = lab
        .dead_letters(DLQ, Duration::from_secs(2))
        .unwrap()
        .into_iter()
        .collect();
    let missing: Vec<_> = w.poison.iter().filter(|p| !dead.contains(p)).collect();
    assert!(
        missing.is_empty(),
        "{what}: poison messages not dead-lettered: {missing:?}"
    );
    eprintln!(
        "{what}: {} rows once each, {} poison messages dead-lettered",
        want.len(),
        w.poison.len()
    );
}

fn instance(lab: &Lab, extra: &[&str]) -> Child {
    lab.instance(&bin(), TOPIC, "matrix")
        .args(["--dead-letter-topic", DLQ])
        .args(extra)
        .spawn()
        .expect("spawn snowpipe-kafka")
}

/// Instances join, one leaves cleanly (SIGTERM: hand-over, exit 0, closing line), one is
/// SIGKILLed mid-batch, and the last ones drain: every offset once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_leaving_and_killed_instances_land_every_offset_once() {
    for seed in seeds() {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let lab = lab(&[(TOPIC, PARTITIONS), (DLQ, 1)]).await;
        let producer = lab.producer().unwrap();
        let mut w = Written::default();
        let mut a = instance(&lab, &[]);
        let mut b = instance(&lab, &[]);
        produce(&producer, 1, 3_000, seed, &mut w).await;
        wait_rows(&lab, 1_000).await;
        let mut c = instance(&lab, &[]);
        tokio::time::sleep(Duration::from_millis(rng.gen_range(500..2_500))).await;
        produce(&producer, 3_001, 3_000, seed, &mut w).await;
        wait_rows(&lab, 3_500).await;
        // A kill mid-batch while messages flow and every instance streams.
        {
            let produce_more = produce(&producer, 6_001, 3_000, seed, &mut w);
            tokio::pin!(produce_more);
            tokio::select! {
                () = &mut produce_more => {}
                () = tokio::time::sleep(Duration::from_millis(rng.gen_range(200..1_500))) => {
                    signal(&b, Signal::Kill);
                    produce_more.await;
                }
            }
        }
        signal(&b, Signal::Kill);
        let _ = b.wait();
        // A clean leave: SIGTERM hands its partitions over and exits 0 with its report.
        signal(&a, Signal::Term);
        let status = wait_exit(&mut a, Duration::from_secs(60), "the SIGTERMed instance").await;
        assert!(status.success(), "seed {seed}: SIGTERM exit {status}");
        let mut out = String::new();
        std::io::Read::read_to_string(a.stdout.as_mut().unwrap(), &mut out).unwrap();
        let report: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
        assert!(report["consumed"].is_object(), "{report}");
        // The rest drain and stop once idle (after the group noticed the kill).
        let mut d = instance(&lab, &["--until-idle", "10s"]);
        tokio::time::sleep(Duration::from_secs(4)).await;
        signal(&c, Signal::Term);
        let status = wait_exit(&mut c, Duration::from_secs(60), "instance c").await;
        assert!(status.success(), "seed {seed}: instance c {status}");
        let status = wait_exit(&mut d, Duration::from_secs(120), "instance d").await;
        assert!(status.success(), "seed {seed}: instance d {status}");
        lab.emulator().commit_now().await;
        assert_exactly_once(&lab, &w, &format!("seed {seed}"));
    }
}

/// A zombie: an instance is SIGSTOPped mid-stream (rows buffered or in flight), stays stopped
/// until the group has moved its partitions and the other instance has landed everything
/// produced meanwhile, then is resumed. It must not write anything twice; every offset lands
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigstopped_zombie_resumed_after_its_partitions_moved_duplicates_nothing() {
    let lab = lab(&[(TOPIC, PARTITIONS), (DLQ, 1)]).await;
    let producer = lab.producer().unwrap();
    let mut w = Written::default();
    let mut zombie = instance(&lab, &[]);
    let mut survivor = instance(&lab, &[]);
    produce(&producer, 1, 2_000, 11, &mut w).await;
    wait_rows(&lab, 1_000).await;
    produce(&producer, 2_001, 1_500, 11, &mut w).await;
    signal(&zombie, Signal::Stop);
    // While it is stopped: its session times out (6 s), the group moves its partitions, and
    // the survivor lands everything, its former partitions included.
    produce(&producer, 3_501, 2_000, 11, &mut w).await;
    wait_landed(&lab, w.rows.len(), Duration::from_secs(90)).await;
    signal(&zombie, Signal::Cont);
    tokio::time::sleep(Duration::from_secs(3)).await;
    produce(&producer, 5_501, 1_000, 11, &mut w).await;
    signal(&zombie, Signal::Term);
    let status = wait_exit(&mut zombie, Duration::from_secs(60), "the zombie").await;
    eprintln!("zombie exited: {status}");
    let mut last = instance(&lab, &["--until-idle", "10s"]);
    signal(&survivor, Signal::Term);
    let status = wait_exit(&mut survivor, Duration::from_secs(60), "the survivor").await;
    assert!(status.success(), "survivor: {status}");
    let status = wait_exit(&mut last, Duration::from_secs(120), "the last instance").await;
    assert!(status.success(), "last: {status}");
    lab.emulator().commit_now().await;
    assert_exactly_once(&lab, &w, "zombie");
}
