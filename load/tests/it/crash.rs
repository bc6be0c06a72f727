//! SIGKILL mid-load, then a rerun: every row exactly once.
//!
//! Two kinds of kill points. Counts of committed rows: the test watches the table and kills
//! the process once its run committed at least that many (or after a time when it never does),
//! so each kill lands mid-load with rows committed, rows in flight and rows not yet read. And
//! random instants: a delay after the start drawn from a seeded generator, for NDJSON, CSV and
//! Parquet in one input list (the kill may land while a file is read, appended, committed or
//! between files). CI runs a fixed seed; `LOAD_CRASH_SEED=N` tries another,
//! `LOAD_KILLS=N` kills more often (the loops: `common/kill.rs`).
#![cfg(unix)]

use std::path::Path;
use std::time::Duration;

use crate::common::{kill, ndjson, Lab};

/// Rows sent (and so committed) a few at a time, so a kill finds some committed, some not.
pub(crate) const LAG: &[&str] = &["--max-client-lag", "20ms"];

/// Runs `snowpipe load FILES` once per kill point, killing it (SIGKILL) once that run has
/// committed `point` rows, then lets a last run finish. Returns the row counts at the kills.
pub(crate) fn kill_and_rerun(lab: &Lab, files: &[&Path], points: &[u64]) -> Vec<u64> {
    kill::at_counts(lab, files, LAG, points)
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
    // 0 to 1.5 s after the start: before the first append, mid-file, between files.
    let mut instants = kill::Instants::new(7, 4, Duration::from_millis(1_500));
    let killed_at = kill::at_instants(&lab, &files, LAG, &mut instants);
    let seed = instants.seed;
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
