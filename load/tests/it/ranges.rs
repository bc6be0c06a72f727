//! Large files split into ranges, loaded on several channels at once (issue 83): SIGKILL at
//! random instants of a multi-range, multi-file load, then reruns, leave every row once; a
//! file rewritten between runs is loaded anew; a file whose load began on one channel resumes
//! on it.
//!
//! The ranges are made small with the hidden `--range-bytes` (64 MiB by default), so files of
//! a few MB have 20 to 30 ranges each, more than a file's 16 lanes. The CSV file's every
//! record holds quoted line breaks and a quoted line that looks like a record, so a cut inside
//! quotes would add rows with IDs of other rows or bad records. CI runs a fixed seed;
//! `LOAD_KILLS=N` kills more often, `LOAD_CRASH_SEED=N` tries other instants.
#![cfg(unix)]

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::{kill, ndjson, Lab};

/// Small ranges and rows sent a few at a time, so a kill finds ranges done, in flight and not
/// started.
const ARGS: &[&str] = &["--range-bytes", "100000", "--max-client-lag", "20ms"];

/// A CSV file of `ids` whose every record has quoted line breaks and a quoted fake record.
fn tricky_csv(ids: std::ops::Range<u64>) -> String {
    let mut data = String::from("ID,NAME,NOTE\n");
    for i in ids {
        data.push_str(&format!(
            "{i},\"name {i}, quoted\",\"line\n{},\"\"fake\"\",row\nbreak\"\n",
            i + 1
        ));
    }
    data
}

#[test]
fn sigkill_at_random_instants_of_a_multi_range_load_then_rerun_writes_every_row_once() {
    let lab = Lab::new();
    let (nd, csv, pq) = (
        lab.path("a.ndjson"),
        lab.path("b.csv"),
        lab.path("c.parquet"),
    );
    std::fs::write(&nd, ndjson(0..60_000)).unwrap();
    std::fs::write(&csv, tricky_csv(60_000..120_000)).unwrap();
    crate::parquet::write_parquet(&pq, 120_000..220_000, 7_000);
    let files: [&Path; 3] = [&nd, &csv, &pq];
    let mut instants = kill::Instants::new(11, 4, Duration::from_millis(1_500));
    let mut killed_at = kill::at_instants(&lab, &files, ARGS, &mut instants);
    let seed = instants.seed;
    // And one kill once 30,000 more rows are in, so one lands mid-load however busy the
    // machine (the instants alone all fell before the first commit under a load average of
    // 20); then a run to the end.
    let counted = kill::at_counts(&lab, &files, ARGS, &[30_000]);
    killed_at.extend(counted.iter().map(|&rows| (0, rows)));
    assert!(
        killed_at
            .iter()
            .any(|&(_, rows)| rows > 0 && rows < 220_000),
        "no kill landed mid-load: {killed_at:?}"
    );
    let summary = lab.load(&files, ARGS).ok();
    eprintln!("killed at (ms, rows) {killed_at:?}");
    let why = format!("seed {seed}, killed at (ms, rows) {killed_at:?}, last run {summary}");
    assert_eq!(lab.counts(), (220_000, 220_000), "{why}");
    let rows = lab.rows("ID, NAME, NOTE");
    let note = |id: u64| format!("line\n{},\"fake\",row\nbreak", id + 1);
    for row in rows
        .iter()
        .filter(|r| (60_000..120_000).contains(&r[0].as_u64().unwrap()))
    {
        let id = row[0].as_u64().unwrap();
        assert_eq!(row[2].as_str(), Some(note(id).as_str()), "{why}");
    }
    for (i, file) in summary["per_file"].as_array().unwrap().iter().enumerate() {
        let channels = file["channels"]
            .as_array()
            .expect("a file of several ranges");
        assert!(file["ranges"].as_u64().unwrap() > 1, "{file}");
        assert!(channels.len() > 1 && channels.len() <= 16, "{file}");
        if i < 2 {
            assert!(
                file["ranges"].as_u64().unwrap() > 16,
                "more ranges than lanes: {file}"
            );
        }
    }
    // A rewritten file (other first bytes) is loaded anew, on the same channels.
    std::fs::write(&nd, ndjson(300_000..360_000)).unwrap();
    let summary = lab.load(&files, ARGS).ok();
    assert_eq!(summary["per_file"][0]["replaced"], true, "{summary}");
    assert_eq!(summary["per_file"][0]["rows"], 60_000, "{summary}");
    assert_eq!(summary["per_file"][1]["rows"], 0, "{summary}");
    assert_eq!(lab.counts(), (280_000, 280_000), "{summary}");
}

#[test]
fn a_load_begun_on_one_channel_resumes_on_it_when_the_file_now_has_ranges() {
    let lab = Lab::new();
    let nd = lab.path("big.ndjson");
    std::fs::write(&nd, ndjson(0..120_000)).unwrap();
    let whole = ["--range-bytes", "1000000000", "--max-client-lag", "20ms"];
    let mut child = lab.spawn(&[&nd], &whole);
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && lab.count() < 20_000 {
        std::thread::sleep(Duration::from_millis(2));
    }
    // `Child::kill` is SIGKILL on Unix: the process gets no chance to clean up.
    child.kill().unwrap();
    child.wait().unwrap();
    let before = lab.count();
    let summary = lab.load(&[&nd], ARGS).ok();
    let file = &summary["per_file"][0];
    assert!(
        file.get("channels").is_none(),
        "resumed on one channel: {file}"
    );
    assert!(
        file["committed_token"].as_str().unwrap().starts_with("v1:"),
        "{file}"
    );
    assert_eq!(
        lab.counts(),
        (120_000, 120_000),
        "killed with {before} rows"
    );
}

#[test]
fn channels_one_loads_the_ranges_one_after_another_and_a_rerun_adds_nothing() {
    let lab = Lab::new();
    let nd = lab.path("c.ndjson");
    std::fs::write(&nd, ndjson(0..30_000)).unwrap();
    let args = ["--range-bytes", "100000", "--channels", "1"];
    let summary = lab.load(&[&nd], &args).ok();
    assert!(
        summary["per_file"][0]["ranges"].as_u64().unwrap() > 5,
        "{summary}"
    );
    let token = summary["per_file"][0]["committed_token"].as_str().unwrap();
    assert!(token.starts_with("v1r:4096:"), "{token}");
    let again = lab.load(&[&nd], &args).ok();
    assert_eq!(again["rows"], 0, "{again}");
    assert_eq!(lab.counts(), (30_000, 30_000));
}

#[test]
fn a_bad_record_in_a_later_range_names_its_line_in_the_whole_file() {
    let lab = Lab::new();
    let nd = lab.path("bad.ndjson");
    let mut data = ndjson(0..20_000);
    data.push_str("not json\n");
    data.push_str(&ndjson(20_000..30_000));
    let offset = data.find("not json").unwrap();
    std::fs::write(&nd, &data).unwrap();
    let summary = lab.load(&[&nd], &["--range-bytes", "100000"]).ok();
    assert_eq!(summary["bad_records"], 1, "{summary}");
    assert!(
        summary["per_file"][0]["ranges"].as_u64().unwrap() > 5,
        "{summary}"
    );
    let dead = std::fs::read_to_string(lab.path("bad.ndjson.rejected.ndjson")).unwrap();
    let dead: serde_json::Value = serde_json::from_str(dead.trim()).unwrap();
    assert_eq!(dead["line"], 20_001, "{dead}");
    assert_eq!(dead["byte_offset"], offset, "{dead}");
    assert_eq!(lab.counts(), (30_000, 30_000));
}
