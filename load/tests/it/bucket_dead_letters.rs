//! Dead letters of objects in a bucket where an operator finds them (round six): they went to
//! the shared temporary directory, 0644, under the deleted spool file's name (which each
//! record named instead of the URL), nothing said where, and loads of one object into two
//! tables appended to one file. Now: `--dead-letters DIR` (default `snowpipe-dead-letters` in
//! the working directory, 0700), one file per object and table, each record naming the URL
//! and the table; the summary's `per_file[].rejected_path` and a stderr line name the file;
//! the lanes of a ranged object write one file, whole lines.
#![cfg(unix)]

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use serde_json::Value;

use crate::buckets::lab_with;
use crate::common::moto::Moto;
use crate::common::ndjson;

/// NDJSON rows `ids` with a bad record after every `every`-th.
fn with_bad(ids: std::ops::Range<u64>, every: u64) -> String {
    let mut text = String::new();
    for i in ids {
        text.push_str(&ndjson(i..i + 1));
        if i % every == 0 {
            text.push_str(&format!("not json {i}\n"));
        }
    }
    text
}

fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn an_objects_bad_records_go_to_a_stated_place_naming_the_url_and_table() {
    let Some(moto) = Moto::start() else { return };
    let lab = lab_with(&moto);
    let url = "s3://exports/2026/orders.ndjson";
    moto.put(
        "exports",
        "2026/orders.ndjson",
        with_bad(0..300, 100).into_bytes(),
    );
    let run = lab.load(&[Path::new(url)], &[]);
    let stderr = run.stderr.clone();
    let summary = run.ok();
    assert_eq!(summary["bad_records"], 3, "{summary}");
    let file = &summary["per_file"][0];
    let path = Path::new(file["rejected_path"].as_str().expect("rejected_path"));
    assert!(
        path.starts_with("snowpipe-dead-letters")
            && path.to_string_lossy().contains("orders.ndjson-"),
        "{}",
        path.display()
    );
    let path = lab.dir.path().join(path);
    assert!(
        stderr.contains("3 bad records: in snowpipe-dead-letters/orders.ndjson-"),
        "{stderr}"
    );
    let dir = path.parent().unwrap();
    assert_eq!(std::fs::metadata(dir).unwrap().mode() & 0o777, 0o700);
    let got = records(&path);
    assert_eq!(got.len(), 3);
    for r in &got {
        assert_eq!(r["file"], url, "{r}");
        assert_eq!(r["table"], "T", "{r}");
        assert!(r["record"].as_str().unwrap().starts_with("not json"), "{r}");
    }
    // Nothing in the temporary directory (the spool's) but the spool directory, emptied.
    let uid = std::fs::metadata(lab.dir.path()).unwrap().uid();
    let spool = lab.dir.path().join(format!("snowpipe-load-{uid}"));
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0);

    // The same object into another table: a file of its own.
    let other = lab.load(&[Path::new(url)], &["--table", "U"]);
    let other_path = other.summary["per_file"][0]["rejected_path"]
        .as_str()
        .map(str::to_owned);
    assert_ne!(other_path.as_deref(), file["rejected_path"].as_str());
}

#[test]
fn a_ranged_objects_lanes_write_one_dead_letter_file_in_a_chosen_directory() {
    let Some(moto) = Moto::start() else { return };
    let lab = lab_with(&moto);
    let url = "s3://exports/big.ndjson";
    moto.put(
        "exports",
        "big.ndjson",
        with_bad(0..20_000, 500).into_bytes(),
    );
    let dir = lab.path("dead");
    let dead = dir.display().to_string();
    let summary = lab
        .load(
            &[Path::new(url)],
            &["--range-bytes", "100000", "--dead-letters", &dead],
        )
        .ok();
    assert_eq!(summary["bad_records"], 40, "{summary}");
    assert!(summary["per_file"][0]["channels"].as_array().unwrap().len() > 1);
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let got = records(&files[0]);
    assert_eq!(got.len(), 40);
    assert!(got.iter().all(|r| r["file"] == url));
    assert_eq!(lab.counts(), (20_000, 20_000));
}
