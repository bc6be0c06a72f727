//! `--shard I/N`: N processes at once over the same inputs (local files, and a prefix of
//! objects on a real S3 API server) load every row once, and no input is loaded by two.
#![cfg(unix)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::common::moto::Moto;
use crate::common::{ndjson, Lab, Run};

const SHARDS: u32 = 3;
const FILES: u64 = 12;
const ROWS: u64 = 500;

/// Runs `snowpipe load INPUTS --shard i/N` for every i at once; returns each run's summary.
fn run_shards(lab: &Lab, inputs: &[&Path]) -> Vec<serde_json::Value> {
    let children: Vec<_> = (0..SHARDS)
        .map(|i| {
            let shard = format!("{i}/{SHARDS}");
            lab.command(inputs, &["--shard", &shard])
                .spawn()
                .expect("start snowpipe")
        })
        .collect();
    children
        .into_iter()
        .map(|c| Run::from(c.wait_with_output().unwrap()).ok())
        .collect()
}

/// Every input in exactly one shard's summary, every row once in the table.
fn assert_shared_once(lab: &Lab, summaries: &[serde_json::Value], expect: &BTreeSet<String>) {
    let mut seen = BTreeSet::new();
    for s in summaries {
        for file in s["per_file"].as_array().unwrap() {
            let path = file["path"].as_str().unwrap().to_owned();
            assert!(
                seen.insert(path.clone()),
                "{path} loaded by two shards: {summaries:#?}"
            );
        }
    }
    assert_eq!(&seen, expect, "every input in one shard");
    let busy = summaries.iter().filter(|s| s["files"] != 0).count();
    assert!(
        busy > 1,
        "the hash gave every input to one shard: {summaries:#?}"
    );
    assert_eq!(lab.counts(), (FILES * ROWS, FILES * ROWS));
}

#[test]
fn shards_of_local_files_load_every_row_once() {
    let lab = Lab::new();
    let paths: Vec<PathBuf> = (0..FILES)
        .map(|f| {
            let p = lab.path(&format!("part-{f:02}.ndjson"));
            std::fs::write(&p, ndjson(f * ROWS..(f + 1) * ROWS)).unwrap();
            p
        })
        .collect();
    let inputs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    let summaries = run_shards(&lab, &inputs);
    let expect = paths.iter().map(|p| p.display().to_string()).collect();
    assert_shared_once(&lab, &summaries, &expect);
    // A rerun of every shard finds its own files done.
    for s in run_shards(&lab, &inputs) {
        assert_eq!(s["rows"], 0, "{s}");
    }
}

#[test]
fn shards_of_a_prefix_of_objects_load_every_row_once() {
    let Some(moto) = Moto::start() else { return };
    let lab = crate::buckets::lab_with(&moto);
    for f in 0..FILES {
        let body = ndjson(f * ROWS..(f + 1) * ROWS).into_bytes();
        moto.put("exports", &format!("shard/part-{f:02}.ndjson"), body);
    }
    let summaries = run_shards(&lab, &[Path::new("s3://exports/shard/")]);
    let expect = (0..FILES)
        .map(|f| format!("s3://exports/shard/part-{f:02}.ndjson"))
        .collect();
    assert_shared_once(&lab, &summaries, &expect);
}

#[test]
fn a_shard_that_cannot_be_one_is_refused_before_anything_loads() {
    let lab = Lab::new();
    let file = lab.path("a.ndjson");
    std::fs::write(&file, ndjson(0..3)).unwrap();
    let run = lab.load(&[&file], &["--shard", "3/3"]);
    assert_eq!(run.code, Some(2), "{run:#?}");
    assert!(run.stderr.contains("0 <= I < N"), "{}", run.stderr);
    let run = lab.load(&[Path::new("-")], &["--shard", "0/2"]);
    assert_eq!(run.code, Some(2), "{run:#?}");
    assert!(
        run.stderr.contains("standard input cannot be shared"),
        "{}",
        run.stderr
    );
    assert_eq!(lab.count(), 0);
}
