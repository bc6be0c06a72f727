//! Objects in a bucket as inputs, against a real S3 API server (`moto_server`, `common/moto.rs`):
//! a glob over a prefix of NDJSON, CSV and Parquet objects; SIGKILL mid-load and a rerun; an
//! object overwritten between runs. Every count is the table's, through the emulator's SQL.
#![cfg(unix)]

use std::path::Path;

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
