//! SIGKILL mid-load at fixed points, then a rerun: every row exactly once.
//!
//! The fixed points are counts of committed rows: the test watches the table and kills the
//! process once its run committed at least that many (or after a time when it never does), so each kill
//! lands mid-load with rows committed, rows in flight and rows not yet read.
#![cfg(unix)]

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::{ndjson, Lab};

/// Rows sent (and so committed) a few at a time, so a kill finds some committed, some not.
pub const LAG: &[&str] = &["--max-client-lag", "20ms"];

/// Runs `snowpipe load FILES` once per kill point, killing it (SIGKILL) once that run has
/// committed `point` rows, then lets a last run finish. Returns the row counts at the kills.
pub fn kill_and_rerun(lab: &Lab, files: &[&Path], points: &[u64]) -> Vec<u64> {
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
            unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
            killed_at.push(lab.count());
        }
        child.wait().unwrap();
    }
    lab.load(files, LAG).ok();
    eprintln!("killed with {killed_at:?} rows committed");
    killed_at
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
