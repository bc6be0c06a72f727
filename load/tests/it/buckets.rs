//! Objects in a bucket as inputs, against a real S3 API server (`moto_server`, `common/moto.rs`):
//! a glob over a prefix of NDJSON, CSV and Parquet objects; SIGKILL mid-load and a rerun;
//! SIGKILL at seeded instants of a load of objects in ranges on many lanes, then reruns
//! (`LOAD_KILLS=N` kills more often, `LOAD_CRASH_SEED=N` tries other instants); an object
//! overwritten between runs; a store's errors (plain HTTP refused, no such bucket, a key
//! `object_store` cannot read) as one short line naming the cause and the fix. Every count is
//! the table's, through the emulator's SQL.
#![cfg(unix)]

use std::path::Path;
use std::time::Duration;

use crate::common::moto::Moto;
use crate::common::{ndjson, Lab};

/// A lab whose binary reaches `moto`, with the bucket `exports`.
pub(crate) fn lab_with(moto: &Moto) -> Lab {
    let mut lab = Lab::new();
    lab.env = moto.env();
    // Spool files (one a SIGKILL leaves behind) in the lab's directory, not the system's.
    let tmp = lab.dir.path().display().to_string();
    lab.env.push(("TMPDIR".to_owned(), tmp));
    moto.bucket("exports");
    lab
}

/// CSV rows `ID,NAME,NOTE` for `ids`, with quoted commas and line breaks.
fn csv(ids: std::ops::Range<u64>) -> Vec<u8> {
    let mut data = String::from("ID,NAME,NOTE\n");
    for i in ids {
        data.push_str(&format!("{i},\"name {i}, quoted\",\"line\nbreak\"\n"));
    }
    data.into_bytes()
}

/// Parquet bytes with `ids`, in row groups of `row_group` rows.
fn parquet(lab: &Lab, ids: std::ops::Range<i64>, row_group: usize) -> Vec<u8> {
    let path = lab.path(&format!("{}.parquet", ids.start));
    crate::parquet::write_parquet(&path, ids, row_group);
    std::fs::read(path).unwrap()
}

/// Puts the three formats under `2026-01/` and `2026-02/` (ids `0..3n`) and objects the glob
/// must leave out.
fn put_prefix(moto: &Moto, lab: &Lab, n: u64) {
    moto.put(
        "exports",
        "2026-01/part-0.ndjson",
        ndjson(0..n).into_bytes(),
    );
    moto.put("exports", "2026-01/part-1.csv", csv(n..2 * n));
    let pq = parquet(lab, (2 * n) as i64..(3 * n) as i64, (n as usize / 4).max(1));
    moto.put("exports", "2026-02/part-2.parquet", pq);
    // Not matched: another month's name, a marker, a deeper key.
    moto.put(
        "exports",
        "2025-12/part-9.ndjson",
        ndjson(900_000..900_010).into_bytes(),
    );
    moto.put("exports", "2026-01/_SUCCESS", Vec::new());
    moto.put(
        "exports",
        "2026-01/x/part-8.ndjson",
        ndjson(800_000..800_010).into_bytes(),
    );
}

const GLOB: &str = "s3://exports/2026-*/part-*";

#[test]
fn a_glob_over_a_prefix_loads_ndjson_csv_and_parquet_objects_once() {
    let Some(moto) = Moto::start() else { return };
    let lab = lab_with(&moto);
    put_prefix(&moto, &lab, 500);
    let first = lab.load(&[Path::new(GLOB)], &[]).ok();
    assert_eq!(first["files"], 3, "{first}");
    assert_eq!(lab.counts(), (1500, 1500));
    for file in first["per_file"].as_array().unwrap() {
        let token = file["committed_token"].as_str().unwrap();
        assert!(token.starts_with("obj1:"), "an object's token: {token}");
    }
    // A rerun sends nothing: every object's token names it, at its end.
    let again = lab.load(&[Path::new(GLOB)], &[]).ok();
    assert_eq!(again["rows"], 0, "{again}");
    assert_eq!(lab.counts(), (1500, 1500));
}

#[test]
fn sigkill_mid_load_of_objects_then_rerun_writes_every_row_once() {
    let Some(moto) = Moto::start() else { return };
    let lab = lab_with(&moto);
    put_prefix(&moto, &lab, 40_000);
    let killed_at =
        crate::crash::kill_and_rerun(&lab, &[Path::new(GLOB)], &[1, 20_000, 50_000, 90_000]);
    assert!(
        killed_at.iter().any(|&n| n > 0 && n < 120_000),
        "no kill landed mid-load: {killed_at:?}"
    );
    assert_eq!(lab.counts(), (120_000, 120_000), "killed at {killed_at:?}");
}

/// Small ranges and rows sent a few at a time, so a kill finds ranges done, in flight and
/// not started.
const RANGED: &[&str] = &["--range-bytes", "100000", "--max-client-lag", "20ms"];

#[test]
fn sigkill_at_random_instants_of_a_multi_range_object_load_then_reruns_write_every_row_once() {
    let Some(moto) = Moto::start() else { return };
    let lab = lab_with(&moto);
    // NDJSON (2 MB: 20 ranges on 16 lanes), CSV (loaded whole) and Parquet (4 row groups,
    // each past the 12.5 KB Parquet step, split into ranges).
    put_prefix(&moto, &lab, 60_000);
    let glob = [Path::new(GLOB)];
    let mut instants = crate::common::kill::Instants::new(5, 4, Duration::from_millis(2_500));
    let mut killed_at = crate::common::kill::at_instants(&lab, &glob, RANGED, &mut instants);
    // And one kill once 20,000 more rows are in, whatever the machine's speed; then a run to
    // the end.
    let counted = crate::common::kill::at_counts(&lab, &glob, RANGED, &[20_000]);
    killed_at.extend(counted.iter().map(|&rows| (0, rows)));
    eprintln!("killed at (ms, rows) {killed_at:?}");
    assert!(
        killed_at
            .iter()
            .any(|&(_, rows)| rows > 0 && rows < 180_000),
        "no kill landed mid-load: {killed_at:?}"
    );
    // A rerun sends nothing; its summary names every object's channels and tokens.
    let summary = lab.load(&glob, RANGED).ok();
    let why = format!(
        "seed {}, killed at (ms, rows) {killed_at:?}, last run {summary}",
        instants.seed
    );
    assert_eq!(summary["rows"], 0, "{why}");
    assert_eq!(lab.counts(), (180_000, 180_000), "{why}");
    let files = summary["per_file"].as_array().unwrap();
    for (i, file) in files.iter().enumerate() {
        let token = file["committed_token"].as_str().unwrap();
        if i == 1 {
            // CSV: one channel, the whole object (its cuts need every byte before them).
            assert!(token.starts_with("obj1:"), "{why}");
            continue;
        }
        assert!(token.starts_with("obj1r:"), "a lane's token: {why}");
        let lanes = file["channels"].as_array().map_or(0, Vec::len);
        assert!(lanes > 1 && lanes <= 16, "{why}");
        assert!(file["ranges"].as_u64().unwrap() > 1, "{why}");
    }
    assert!(files[0]["ranges"].as_u64().unwrap() > 16, "{why}");
    // Every lane's spool file is gone once its object loaded (SIGKILL left some behind), in
    // the loader's own directory under TMPDIR.
    let uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(lab.dir.path()).unwrap());
    let spool = lab.dir.path().join(format!("snowpipe-load-{uid}"));
    assert!(spool.is_dir(), "no spool directory {}", spool.display());
    let left: Vec<String> = std::fs::read_dir(&spool)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("_LOAD_") || n.contains("_footer"))
        .collect();
    assert!(left.is_empty(), "spool files left: {left:?}");
}

#[test]
fn an_object_overwritten_between_runs_is_loaded_anew() {
    let Some(moto) = Moto::start() else { return };
    let lab = lab_with(&moto);
    let url = "s3://exports/daily.ndjson";
    // The same size and the same first bytes: only the ETag tells the two apart.
    let old = ndjson(1000..1100);
    let new = old.replace("name-", "NAME-");
    assert_eq!(old.len(), new.len());
    moto.put("exports", "daily.ndjson", old.into_bytes());
    lab.load(&[Path::new(url)], &[]).ok();
    assert_eq!(lab.count(), 100);
    moto.put("exports", "daily.ndjson", new.into_bytes());
    let second = lab.load(&[Path::new(url)], &[]).ok();
    assert_eq!(second["per_file"][0]["replaced"], true, "{second}");
    assert_eq!(second["rows"], 100, "{second}");
    let names = lab.rows("NAME");
    let upper = names
        .iter()
        .filter(|r| r[0].as_str().unwrap().starts_with("NAME-"));
    assert_eq!((names.len(), upper.count()), (200, 100));
    // And a third run loads nothing more.
    assert_eq!(lab.load(&[Path::new(url)], &[]).ok()["rows"], 0);
}

#[test]
fn a_url_that_names_nothing_is_an_error_naming_it() {
    let Some(moto) = Moto::start() else { return };
    let lab = lab_with(&moto);
    let run = lab.load(&[Path::new("s3://exports/none-*.ndjson")], &[]);
    assert_eq!(run.code, Some(2), "{run:#?}");
    assert!(
        run.stderr
            .contains("s3://exports/none-*.ndjson names no object"),
        "{}",
        run.stderr
    );
}

/// Each common cause is one short line naming it and its fix, with nothing the store sent
/// reaching stderr raw (before: 600 characters of one URL three times, "check the URL and the
/// credentials" for every cause).
#[test]
fn a_stores_errors_are_one_line_naming_the_cause_and_the_fix() {
    let Some(moto) = Moto::start() else { return };
    let mut lab = lab_with(&moto);
    moto.put("exports", "ok/part-0.ndjson", ndjson(0..10).into_bytes());
    let check = |run: &crate::common::Run, want: &str| {
        assert_ne!(run.code, Some(0), "{run:#?}");
        let line = run
            .stderr
            .lines()
            .find(|l| l.contains("error"))
            .unwrap_or_default();
        assert!(
            line.contains(want),
            "{want:?} not in {line:?}\n{}",
            run.stderr
        );
        assert!(line.len() < 600, "{} characters: {line}", line.len());
    };
    let nob = lab.load(&[Path::new("s3://no-such-bucket/ok/")], &[]);
    check(&nob, "no such bucket");
    lab.env.retain(|(k, _)| k != "AWS_ALLOW_HTTP");
    let http = lab.load(&[Path::new("s3://exports/ok/")], &[]);
    check(&http, "AWS_ALLOW_HTTP=true");
    assert_eq!(lab.count(), 0, "nothing loaded by a failed listing");
}

/// Keys `object_store` cannot read (a `..` segment, an ESC) under a prefix: each is skipped
/// and named escaped (stderr, the summary's `skipped`), every other object loads once, the
/// exit status says not everything loaded, and a rerun loads nothing twice. A glob that leaves
/// them out loads with exit 0 (before: the whole prefix failed at every rerun, naming no key).
#[test]
fn keys_that_are_no_paths_are_skipped_and_named_and_the_rest_loads_once() {
    let Some(moto) = Moto::start() else { return };
    let lab = lab_with(&moto);
    moto.put("exports", "mixed/a.ndjson", ndjson(0..10).into_bytes());
    moto.put_raw(
        "exports",
        "mixed/x/%2E%2E/y.ndjson",
        ndjson(10..20).as_bytes(),
    );
    moto.put_raw(
        "exports",
        "mixed/%1B%5B31mred.ndjson",
        ndjson(20..30).as_bytes(),
    );
    moto.put("exports", "mixed/b.ndjson", ndjson(30..40).into_bytes());
    for _ in 0..2 {
        let run = lab.load(&[Path::new("s3://exports/mixed/")], &[]);
        assert_eq!(run.code, Some(1), "{run:#?}");
        assert_eq!(run.summary["ok"], false, "{run:#?}");
        let skipped: Vec<&str> = run.summary["skipped"]
            .as_array()
            .expect("skipped[]")
            .iter()
            .map(|s| s["url"].as_str().unwrap())
            .collect();
        assert_eq!(
            skipped,
            [
                "s3://exports/mixed/\u{1b}[31mred.ndjson",
                "s3://exports/mixed/x/../y.ndjson"
            ],
            "{run:#?}"
        );
        assert!(!run.stderr.contains('\u{1b}'), "a raw ESC: {}", run.stderr);
        assert!(
            run.stderr
                .contains("s3://exports/mixed/\\u{1b}[31mred.ndjson")
                && run.stderr.contains("s3://exports/mixed/x/../y.ndjson")
                && run.stderr.contains("rename"),
            "{}",
            run.stderr
        );
        assert_eq!(lab.counts(), (20, 20), "a.ndjson and b.ndjson once");
    }
    let glob = lab
        .load(&[Path::new("s3://exports/mixed/?.ndjson")], &[])
        .ok();
    assert_eq!(glob["skipped"], serde_json::json!([]), "{glob}");
    assert_eq!(lab.counts(), (20, 20));
}
