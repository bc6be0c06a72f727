//! Two writers of one channel, from the users' side: a rolling deploy or an operator starts a
//! second copy while the first still runs, a partition moves to another instance, or a paused
//! process wakes up after its work moved. The
//! newer opener fences the older one, which must stop (`Error::OwnershipLost`, a non-zero
//! exit naming the channel and the committed token) and never take the channel back; every
//! id lands exactly once.
//!
//! * `cargo test -p snowpipe-streaming --test it ownership::`: the CI run, fixed seeds.
//! * `OWNERSHIP_SEED=N` replays one seed of the process test; `OWNERSHIP_SEED=random` explores.
//!
//! The in-process property test with random interleavings of two writers is
//! `src/channel/ownership_tests.rs`.
#![cfg(unix)]

use crate::common;

use std::collections::BTreeMap;
use std::io::Read as _;
use std::process::Stdio;
use std::time::Duration;

use crate::common::ecommerce::{assert_every_id_once, finish, Setup};
use crate::common::example::{start_emulator, Guard};
use crate::common::TEST_PUBLIC_KEY;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use snowpipe_emulator::{Emulator, EmulatorConfig};
use snowpipe_streaming::{OffsetToken, StreamingIngestClient};

fn seeds() -> Vec<u64> {
    match std::env::var("OWNERSHIP_SEED").ok().as_deref() {
        Some("random") => vec![rand::random()],
        Some(s) => vec![s.parse().expect("OWNERSHIP_SEED: a number or `random`")],
        None => vec![1, 2, 3],
    }
}

/// Waits for `child` (up to `limit`) and returns its exit status and what it wrote on stderr.
fn wait_with_stderr(child: &mut Guard, limit: Duration) -> (std::process::ExitStatus, String) {
    let mut stderr = child.0.stderr.take().expect("stderr piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let status = child.wait_within(limit, "the process");
    (status, reader.join().unwrap())
}

/// The issue's scenario with the real example binary: two `ecommerce stream` processes of the
/// same instance, with the same seed, the second started at a seeded moment while the first
/// streams. The first stops with one line naming the channel and the committed token and a
/// non-zero exit; the second is never fenced; a final run completes the plan; every order and
/// item id is in the tables once.
#[test]
fn a_second_process_on_the_same_channels_fences_the_first_and_no_id_lands_twice() {
    let bin = common::example::ecommerce_bin();
    for seed in seeds() {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let dir = tempfile::tempdir().unwrap();
        let (data_dir, key) = (dir.path().join("emulator"), dir.path().join("key.p8"));
        std::fs::create_dir_all(&data_dir).unwrap();
        let (mut emulator, url) = start_emulator(&bin, &data_dir, &key);
        // 1,000 orders a second: the first process streams for about 4 s.
        let setup = Setup::new(bin.clone(), url, key, dir.path(), 4_000, 1);

        let mut first = setup.stream(0, Stdio::piped());
        let overlap = Duration::from_millis(rng.gen_range(700..2_500));
        std::thread::sleep(overlap);
        let mut second = setup.stream(0, Stdio::piped());

        let (status, stderr) = wait_with_stderr(&mut first, Duration::from_secs(60));
        eprintln!("seed {seed}: second process after {overlap:?}; first: {status}\n{stderr}");
        assert!(
            !status.success(),
            "seed {seed}: the fenced process exited 0:\n{stderr}"
        );
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
        assert_eq!(errors.len(), 1, "seed {seed}: one error line:\n{stderr}");
        let line = errors[0];
        assert!(line.contains("ownership lost"), "seed {seed}: {line}");
        assert!(
            line.contains("orders_channel_0") || line.contains("order_items_channel_0"),
            "seed {seed}: the line names the channel: {line}"
        );
        // The token, or `none` when the fenced process had nothing committed yet.
        let token = line
            .split("last committed offset token ")
            .nth(1)
            .and_then(|rest| rest.split(';').next())
            .unwrap_or_else(|| panic!("seed {seed}: no committed token in: {line}"));
        assert!(
            token == "none" || token.starts_with("\"order_") || token.starts_with("\"item_"),
            "seed {seed}: the line names the committed token: {line}"
        );

        let (status, stderr) = wait_with_stderr(&mut second, Duration::from_secs(60));
        assert!(
            status.success(),
            "seed {seed}: the newer process failed: {status}\n{stderr}"
        );
        // A last run (an operator's restart) finds the plan complete, or completes it.
        let last = setup.stream(0, Stdio::inherit());
        let generated = BTreeMap::from([(0, finish(last, 0))]);
        // SAFETY: signalling a child we spawned and have not reaped.
        unsafe { libc::kill(emulator.0.id() as i32, libc::SIGTERM) };
        let _ = emulator.0.wait();
        let (orders, items) = assert_every_id_once(&data_dir, &setup, &generated);
        eprintln!("seed {seed}: {orders} orders and {items} items, each once");
    }
}

/// A zombie: the first process is SIGSTOPped mid-stream (a long GC pause, a frozen VM), a
/// second one takes its channels and finishes the plan, then the first is resumed. It must
/// find out it lost the channels, stop with the ownership line and a non-zero exit, and add no
/// row: the tables still hold every id once.
#[test]
fn a_process_resumed_after_its_channels_moved_stops_without_writing() {
    let bin = common::example::ecommerce_bin();
    let dir = tempfile::tempdir().unwrap();
    let (data_dir, key) = (dir.path().join("emulator"), dir.path().join("key.p8"));
    std::fs::create_dir_all(&data_dir).unwrap();
    let (mut emulator, url) = start_emulator(&bin, &data_dir, &key);
    let setup = Setup::new(bin.clone(), url, key, dir.path(), 4_000, 1);

    let mut zombie = setup.stream(0, Stdio::piped());
    std::thread::sleep(Duration::from_millis(1_500));
    let pid = zombie.0.id() as i32;
    // SAFETY: signalling a child we spawned and have not reaped.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let owner = setup.stream(0, Stdio::inherit());
    let generated = BTreeMap::from([(0, finish(owner, 0))]);
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let (status, stderr) = wait_with_stderr(&mut zombie, Duration::from_secs(90));
    eprintln!("zombie: {status}\n{stderr}");
    assert!(!status.success(), "the resumed process exited 0:\n{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("error: ownership lost: channel ")),
        "no ownership line:\n{stderr}"
    );
    // SAFETY: as above.
    unsafe { libc::kill(emulator.0.id() as i32, libc::SIGTERM) };
    let _ = emulator.0.wait();
    let (orders, items) = assert_every_id_once(&data_dir, &setup, &generated);
    eprintln!("{orders} orders and {items} items, each once");
}

#[derive(Serialize)]
struct Row {
    id: u64,
    name: String,
}

async fn emulator() -> Emulator {
    Emulator::start(
        EmulatorConfig::for_tests()
            .with_ddl(
                "CREATE DATABASE IF NOT EXISTS DB; CREATE SCHEMA IF NOT EXISTS SCH;
                 CREATE OR REPLACE TABLE T (ID NUMBER, NAME VARCHAR(100));",
            )
            .with_public_key(TEST_PUBLIC_KEY)
            .with_commit_delay(Duration::from_millis(30)),
    )
    .await
    .unwrap()
}

fn rows(ids: std::ops::Range<u64>) -> impl Iterator<Item = Row> {
    ids.map(|id| Row {
        id,
        name: format!("row {id}"),
    })
}

fn ids(emu: &Emulator) -> Vec<u64> {
    emu.query(r#"SELECT ID FROM "DB.SCH.T" ORDER BY ID"#)
        .unwrap()
        .iter()
        .map(|r| r[0].as_u64().unwrap())
        .collect()
}

fn fenced_appends(emu: &Emulator, channel: &str) -> u64 {
    let status = emu.status();
    status["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel_name"] == channel)
        .unwrap_or_else(|| panic!("{channel} in {status}"))["fenced_appends"]
        .as_u64()
        .unwrap()
}

/// Over the wire, two clients (two processes as far as the server can tell): the second
/// open fences the first, whose next append fails with `OwnershipLost` naming the channel and
/// the committed token, and stays failed; the second resumes after the committed token; the
/// emulator counts the fenced append.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_second_opener_fences_the_first_over_the_wire() {
    let emu = emulator().await;
    let first = common::emulator::builder(&emu).build().await.unwrap();
    let second: StreamingIngestClient = common::emulator::builder(&emu).build().await.unwrap();
    let a = first
        .table_pipe("DB", "SCH", "T")
        .open_channel("c")
        .await
        .unwrap();
    a.append_rows(rows(0..100), Some(0u64.into()), Some(99u64.into()))
        .await
        .unwrap();
    a.wait_for_commit(&OffsetToken::from(99u64), Duration::from_secs(30))
        .await
        .unwrap();

    let b = second
        .table_pipe("DB", "SCH", "T")
        .open_channel("c")
        .await
        .unwrap();
    assert_eq!(b.latest_committed_offset_token(), Some(99u64.into()));
    a.append_rows(rows(100..150), Some(100u64.into()), Some(149u64.into()))
        .await
        .unwrap();
    let err = a.flush().await.unwrap_err();
    assert!(err.is_ownership_lost(), "{err}");
    assert_eq!(err.last_committed_offset_token(), Some(&99u64.into()));
    assert!(err.to_string().contains("channel c"), "{err}");
    let err = a
        .append_rows(rows(150..160), Some(150u64.into()), Some(159u64.into()))
        .await
        .unwrap_err();
    assert!(err.is_ownership_lost(), "{err}");

    b.append_rows(rows(100..200), Some(100u64.into()), Some(199u64.into()))
        .await
        .unwrap();
    b.wait_for_commit(&OffsetToken::from(199u64), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(ids(&emu), (0..200).collect::<Vec<_>>());
    assert_eq!(fenced_appends(&emu, "c"), 1);
    assert!(a.close().await.unwrap_err().is_ownership_lost());
    b.close().await.unwrap();
    first.close().await.unwrap_or(());
    second.close().await.unwrap();
    emu.shutdown().await;
}

/// The hand-over recipe over the wire: the old owner flushes, waits for the commit and closes
/// (`hand_over`), reporting the committed token; the new owner opens and resumes after it.
/// Nobody is fenced while appending, and every row lands once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_over_passes_the_channel_on_at_the_committed_token() {
    let emu = emulator().await;
    let old = common::emulator::builder(&emu).build().await.unwrap();
    let new = common::emulator::builder(&emu).build().await.unwrap();
    let a = old
        .table_pipe("DB", "SCH", "T")
        .open_channel("p3")
        .await
        .unwrap();
    for k in 0..5u64 {
        a.append_rows(
            rows(k * 40..k * 40 + 40),
            Some((k * 40).into()),
            Some((k * 40 + 39).into()),
        )
        .await
        .unwrap();
    }
    let handed = a.hand_over(Duration::from_secs(30)).await.unwrap();
    assert_eq!(handed, Some(199u64.into()));

    let b = new
        .table_pipe("DB", "SCH", "T")
        .open_channel("p3")
        .await
        .unwrap();
    let resume = b.latest_committed_offset_token().unwrap().as_u64().unwrap() + 1;
    assert_eq!(resume, 200);
    b.append_rows(rows(resume..300), Some(resume.into()), Some(299u64.into()))
        .await
        .unwrap();
    b.wait_for_commit(&OffsetToken::from(299u64), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(ids(&emu), (0..300).collect::<Vec<_>>());
    assert_eq!(fenced_appends(&emu, "p3"), 0);
    b.close().await.unwrap();
    old.close().await.unwrap();
    new.close().await.unwrap();
    emu.shutdown().await;
}
