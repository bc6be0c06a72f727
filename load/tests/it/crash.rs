//! SIGKILL mid-load, then a rerun: every row exactly once.
//!
//! Two kinds of kill points. Counts of committed rows: the test watches the table and kills
//! the process once its run committed at least that many (or after a time when it never does),
//! so each kill lands mid-load with rows committed, rows in flight and rows not yet read. And
//! random instants: a delay after the start drawn from a seeded generator, for NDJSON, CSV and
//! Parquet in one input list (the kill may land while a file is read, appended, committed or
//! between files). CI runs a fixed seed; `LOAD_CRASH_SEED=N` tries another,
//! `LOAD_CRASH_KILLS=N` kills more often.
#![cfg(unix)]

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::{ndjson, Lab};

/// Rows sent (and so committed) a few at a time, so a kill finds some committed, some not.
pub(crate) const LAG: &[&str] = &["--max-client-lag", "20ms"];

/// Runs `snowpipe load FILES` once per kill point, killing it (SIGKILL) once that run has
/// committed `point` rows, then lets a last run finish. Returns the row counts at the kills.
pub(crate) fn kill_and_rerun(lab: &Lab, files: &[&Path], points: &[u64]) -> Vec<u64> {
    let mut killed_at = Vec::new();
    for &point in points {
        let base = lab.count();
        let mut child = lab.spawn(files, LAG);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            if lab.count() >= base + point {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if child.try_wait().unwrap().is_none() {
            // SAFETY: a child we spawned and have not reaped.
            #[allow(
                unsafe_code,
                reason = "a signal to a child process of the test, through libc"
            )]
            unsafe {
                libc::kill(child.id() as i32, libc::SIGKILL)
            };
            killed_at.push(lab.count());
        }
        child.wait().unwrap();
    }
    lab.load(files, LAG).ok();
    eprintln!("killed with {killed_at:?} rows committed");
    killed_at
}

/// The next of a xorshift64* sequence: the delays need no more than reproducible numbers.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn sigkill_at_random_instants_then_rerun_writes_every_row_of_every_format_once() {
    let lab = Lab::new();
    let (nd, csv, pq) = (
        lab.path("a.ndjson"),
        lab.path("b.csv"),
        lab.path("c.parquet"),
    );
    std::fs::write(&nd, ndjson(0..60_000)).unwrap();
    let mut data = String::from("ID,NAME,NOTE\n");
    for i in 60_000..120_000u64 {
        data.push_str(&format!("{i},\"name {i}, quoted\",\"line\nbreak\"\n"));
    }
    std::fs::write(&csv, data).unwrap();
    crate::parquet::write_parquet(&pq, 120_000..220_000, 15_000);
    let files: [&Path; 3] = [&nd, &csv, &pq];
    let seed = env_u64("LOAD_CRASH_SEED").unwrap_or(7);
    let kills = env_u64("LOAD_CRASH_KILLS").unwrap_or(4);
    let mut state = seed.max(1);
    let mut killed_at = Vec::new();
    for _ in 0..kills {
        // 0 to 1.5 s after the start: before the first append, mid-file, between files.
        let delay = Duration::from_millis(next(&mut state) % 1_500);
        let mut child = lab.spawn(&files, LAG);
        let deadline = Instant::now() + delay;
        while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(1));
        }
        if child.try_wait().unwrap().is_none() {
            // SAFETY: a child we spawned and have not reaped.
            #[allow(
                unsafe_code,
                reason = "a signal to a child process of the test, through libc"
            )]
            unsafe {
                libc::kill(child.id() as i32, libc::SIGKILL)
            };
            killed_at.push((delay.as_millis(), lab.count()));
        }
        child.wait().unwrap();
    }
    let last = lab.load(&files, LAG).ok();
    assert_eq!(
        lab.counts(),
        (220_000, 220_000),
        "seed {seed}, killed at (ms, rows) {killed_at:?}, last run {last}"
    );
}

#[test]
fn sigkill_mid_load_then_rerun_writes_every_ndjson_row_once() {
    let lab = Lab::new();
    let file = lab.path("big.ndjson");
    std::fs::write(&file, ndjson(0..200_000)).unwrap();
    let killed_at = kill_and_rerun(&lab, &[&file], &[1, 40_000, 40_000]);
    assert!(
        killed_at.iter().any(|&n| n > 0 && n < 200_000),
        "no kill landed mid-load: {killed_at:?}"
    );
    assert_eq!(lab.counts(), (200_000, 200_000), "killed at {killed_at:?}");
}

#[test]
fn sigkill_mid_load_then_rerun_writes_every_csv_row_once() {
    let lab = Lab::new();
    let file = lab.path("big.csv");
    let mut data = String::from("ID,NAME,NOTE\n");
    for i in 0..150_000u64 {
        data.push_str(&format!("{i},\"name {i}, quoted\",\"line\nbreak\"\n"));
    }
    std::fs::write(&file, data).unwrap();
    let killed_at = kill_and_rerun(&lab, &[&file], &[1, 30_000, 30_000]);
    assert!(
        killed_at.iter().any(|&n| n > 0 && n < 150_000),
        "no kill landed mid-load: {killed_at:?}"
    );
    assert_eq!(lab.counts(), (150_000, 150_000), "killed at {killed_at:?}");
}
