//! Two writers of one channel, from the users' side, with the `ecommerce` application: a
//! rolling deploy or an operator starts a second copy while the first still runs, or a paused
//! process wakes up after its work moved. The newer opener fences the older one, which must
//! stop (a non-zero exit naming the channel and the committed token) and never take the
//! channel back; every id lands exactly once.
//!
//! * `cargo test -p snowpipe-apps --test it ownership::`: the CI run, fixed seeds.
//! * `OWNERSHIP_SEED=N` replays one seed; `OWNERSHIP_SEED=random` explores.
//!
//! The same over the wire in one process is the SDK's `tests/it/ownership.rs`.
#![cfg(unix)]

use crate::common;

use std::collections::BTreeMap;
use std::io::Read as _;
use std::process::Stdio;
use std::time::Duration;

use crate::common::bin::{start_emulator, Guard};
use crate::common::ecommerce::{assert_every_id_once, finish, Setup};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use snowpipe_cli_support::process::{signal, Signal};

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

/// The scenario with the real application binary: two `ecommerce stream` processes of the
/// same instance, with the same seed, the second started at a seeded moment while the first
/// streams. The first stops with one line naming the channel and the committed token and a
/// non-zero exit; the second is never fenced; a final run completes the plan; every order and
/// item id is in the tables once.
#[test]
fn a_second_process_on_the_same_channels_fences_the_first_and_no_id_lands_twice() {
    let bin = common::bin::ecommerce_bin();
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
        signal(emulator.0.id(), Signal::Term).expect("signal the child");
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
    let bin = common::bin::ecommerce_bin();
    let dir = tempfile::tempdir().unwrap();
    let (data_dir, key) = (dir.path().join("emulator"), dir.path().join("key.p8"));
    std::fs::create_dir_all(&data_dir).unwrap();
    let (mut emulator, url) = start_emulator(&bin, &data_dir, &key);
    let setup = Setup::new(bin.clone(), url, key, dir.path(), 4_000, 1);

    let mut zombie = setup.stream(0, Stdio::piped());
    std::thread::sleep(Duration::from_millis(1_500));
    let pid = zombie.0.id();
    signal(pid, Signal::Stop).expect("signal the child");
    let owner = setup.stream(0, Stdio::inherit());
    let generated = BTreeMap::from([(0, finish(owner, 0))]);
    signal(pid, Signal::Cont).expect("signal the child");
    let (status, stderr) = wait_with_stderr(&mut zombie, Duration::from_secs(90));
    eprintln!("zombie: {status}\n{stderr}");
    assert!(!status.success(), "the resumed process exited 0:\n{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("error: ownership lost: channel ")),
        "no ownership line:\n{stderr}"
    );
    signal(emulator.0.id(), Signal::Term).expect("signal the child");
    let _ = emulator.0.wait();
    let (orders, items) = assert_every_id_once(&data_dir, &setup, &generated);
    eprintln!("{orders} orders and {items} items, each once");
}
