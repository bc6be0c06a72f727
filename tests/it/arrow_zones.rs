//! Issue 83 item 4: a zoned Arrow timestamp is written with the offset its zone had at that
//! instant, for every zone of the tz database, instants from year 2 to 9998 (and the seconds
//! around transitions), in every unit. The reference is independent of the SDK: Python's
//! `zoneinfo` from the `tzdata` package of the release the SDK bundles, computed by
//! `tests/fixtures/zones/generate.py` into `tests/fixtures/zones/offsets.txt` (checked in).
//!
//! CI compares the checked-in offsets (seed 83). `SNOWPIPE_ZONES_SEED=N` (and optionally
//! `SNOWPIPE_ZONES_PER_RANGE=M`, default 8) runs the script for other instants and compares
//! those too; it needs `python3` with `tzdata` of that release (`pip install tzdata==2026.6`).

use std::process::Command;
use std::sync::Arc;

use chrono::DateTime;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use snowpipe_streaming::arrow::arrow_array::{
    ArrayRef, RecordBatch, TimestampMicrosecondArray, TimestampMillisecondArray,
    TimestampNanosecondArray, TimestampSecondArray,
};
use snowpipe_streaming::bench_internals::encode_record_batch;

const CHECKED_IN: &str = include_str!("../fixtures/zones/offsets.txt");

/// The reference: each zone with its `(seconds since the epoch, offset in seconds)` pairs.
fn parse(text: &str) -> Vec<(String, Vec<(i64, i32)>)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut parts = l.split(' ');
            let name = parts.next().unwrap().to_owned();
            let pairs = parts
                .map(|p| {
                    let (s, o) = p.split_once(':').unwrap();
                    (s.parse().unwrap(), o.parse().unwrap())
                })
                .collect();
            (name, pairs)
        })
        .collect()
}

/// What the SDK must write for `secs` and `nanos` (truncated to `digits` fractional digits)
/// at `offset`: the wall clock at the offset in whole minutes, then `+hh:mm` (formatted here
/// with chrono, not by the SDK's writer).
fn expected(secs: i64, nanos: u32, digits: usize, offset: i32) -> String {
    let shown = offset - offset % 60;
    let wall = DateTime::from_timestamp(secs + i64::from(shown), 0).unwrap();
    let mut text = wall.format("%Y-%m-%d %H:%M:%S").to_string();
    if digits > 0 {
        text.push('.');
        text.push_str(&format!("{nanos:09}")[..digits]);
    }
    let sign = if shown < 0 { '-' } else { '+' };
    let abs = shown.unsigned_abs();
    text + &format!("{sign}{:02}:{:02}", abs / 3600, abs % 3600 / 60)
}

/// Compares the SDK with `reference`, every instant in every unit with a random fraction
/// (the instant's second is the reference's): the number of values compared.
fn compare(reference: &[(String, Vec<(i64, i32)>)], seed: u64) -> usize {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut compared = 0;
    for (zone, pairs) in reference {
        let nanos: Vec<u32> = pairs
            .iter()
            .map(|_| rng.gen_range(0..1_000_000_000))
            .collect();
        let tz = Some(zone.as_str());
        let at = |per: i64, i: usize| -> Option<i64> {
            let whole = pairs[i].0.checked_mul(per)?;
            whole.checked_add(i64::from(nanos[i]) / (1_000_000_000 / per))
        };
        let col = |per: i64| (0..pairs.len()).map(move |i| at(per, i));
        let columns: Vec<(&str, ArrayRef, usize)> = vec![
            (
                "S",
                Arc::new(TimestampSecondArray::from_iter(col(1)).with_timezone_opt(tz)),
                0,
            ),
            (
                "MS",
                Arc::new(TimestampMillisecondArray::from_iter(col(1_000)).with_timezone_opt(tz)),
                3,
            ),
            (
                "US",
                Arc::new(
                    TimestampMicrosecondArray::from_iter(col(1_000_000)).with_timezone_opt(tz),
                ),
                6,
            ),
            (
                "NS",
                Arc::new(
                    TimestampNanosecondArray::from_iter(col(1_000_000_000)).with_timezone_opt(tz),
                ),
                9,
            ),
        ];
        let digits: Vec<(&str, usize)> = columns.iter().map(|c| (c.0, c.2)).collect();
        let batch = RecordBatch::try_from_iter(columns.into_iter().map(|c| (c.0, c.1))).unwrap();
        let text = encode_record_batch(&batch).unwrap_or_else(|e| panic!("{zone}: {e}"));
        let rows: Vec<serde_json::Value> = text
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(rows.len(), pairs.len(), "{zone}");
        for (i, row) in rows.iter().enumerate() {
            let (secs, offset) = pairs[i];
            for &(name, d) in &digits {
                let per = 10i64.pow(d as u32);
                if at(per, i).is_none() {
                    continue; // nanoseconds hold only 1677 to 2262
                }
                let frac = nanos[i] / 10u32.pow(9 - d as u32) * 10u32.pow(9 - d as u32);
                let want = expected(secs, frac, d, offset);
                assert_eq!(
                    row[name],
                    want.as_str(),
                    "{zone} at {secs} s ({name}): {row}"
                );
                compared += 1;
            }
        }
    }
    compared
}

#[test]
fn every_zone_at_random_instants_in_every_unit_matches_pythons_zoneinfo() {
    let reference = parse(CHECKED_IN);
    assert!(reference.len() > 500, "{} zones", reference.len());
    let compared = compare(&reference, 83);
    // Every pair in three units at least (nanoseconds hold the years 1677 to 2262 only).
    let pairs: usize = reference.iter().map(|z| z.1.len()).sum();
    assert!(compared >= 3 * pairs, "{compared} of {pairs} pairs");
}

/// `SNOWPIPE_ZONES_SEED=N`: more instants, drawn by the script with that seed.
#[test]
fn more_instants_from_the_reference_script_when_asked() {
    let Ok(seed) = std::env::var("SNOWPIPE_ZONES_SEED") else {
        eprintln!("skipped: set SNOWPIPE_ZONES_SEED=N to compare the instants of another seed");
        return;
    };
    let per_range = std::env::var("SNOWPIPE_ZONES_PER_RANGE").unwrap_or_else(|_| "8".into());
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/zones/generate.py"
    );
    let out = Command::new("python3")
        .args([script, "--seed", &seed, "--per-range", &per_range])
        .output()
        .expect("python3 (with `pip install tzdata==2026.6`) runs the reference script");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text.lines().next(),
        CHECKED_IN.lines().next(),
        "the reference must use the tzdata release the checked-in file names"
    );
    let compared = compare(&parse(&text), seed.parse().unwrap_or(0));
    eprintln!("compared {compared} values (seed {seed})");
}
