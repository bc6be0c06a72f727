//! `--follow`: appends, a rotation and a truncation, each line once.
#![cfg(unix)]

use std::io::Write as _;
use std::time::{Duration, Instant};

use crate::common::{ndjson, Lab};
use snowpipe_cli_support::process::{signal, Signal};

fn append(path: &std::path::Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn wait_for_rows(lab: &Lab, rows: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while lab.counts().0 < rows {
        assert!(
            Instant::now() < deadline,
            "{} rows of {rows} after 30 s",
            lab.counts().0
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn follow_reads_appends_a_rotation_and_a_truncation_each_once() {
    let lab = Lab::new();
    let log = lab.path("app.log.ndjson");
    append(&log, &ndjson(1..=100));
    let child = lab.command(&[&log], &["--follow"]).spawn().unwrap();
    wait_for_rows(&lab, 100);

    // Growth, with a line written in two pieces: taken once whole.
    append(&log, &ndjson(101..=150));
    append(&log, "{\"id\":151,");
    std::thread::sleep(Duration::from_millis(500));
    append(&log, "\"name\":\"name-151\"}\n");
    wait_for_rows(&lab, 151);

    // Rotation: the old file gets a last line after the rename, then the new file starts.
    let rotated = lab.path("app.log.ndjson.1");
    std::fs::rename(&log, &rotated).unwrap();
    append(&rotated, &ndjson(152..=160));
    append(&log, &ndjson(161..=200));
    wait_for_rows(&lab, 200);

    // Truncation: the file starts over with other content.
    std::fs::write(&log, "").unwrap();
    std::thread::sleep(Duration::from_millis(600));
    append(&log, &ndjson(201..=230));
    wait_for_rows(&lab, 230);

    signal(child.id(), Signal::Term).expect("signal the child");
    let out = child.wait_with_output().unwrap();
    let run = crate::common::Run::from(out);
    assert_eq!(run.code, Some(0), "{run:#?}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(lab.counts(), (230, 230));
}

#[test]
fn follow_takes_a_csv_record_only_once_its_quotes_and_line_close() {
    let lab = Lab::new();
    let csv = lab.path("feed.csv");
    append(&csv, "ID,NAME,NOTE\n1,one,a\n");
    let child = lab.command(&[&csv], &["--follow"]).spawn().unwrap();
    wait_for_rows(&lab, 1);
    // A quoted field with a line break, written in two pieces.
    append(&csv, "2,\"two\n");
    std::thread::sleep(Duration::from_millis(500));
    append(&csv, "lines\",b\n3,three,");
    std::thread::sleep(Duration::from_millis(500));
    append(&csv, "c\n");
    wait_for_rows(&lab, 3);
    signal(child.id(), Signal::Term).expect("signal the child");
    let run = crate::common::Run::from(child.wait_with_output().unwrap());
    assert_eq!(run.code, Some(0), "{run:#?}");
    let rows = lab.rows("ID, NAME, NOTE");
    assert_eq!(
        rows,
        [
            vec![serde_json::json!(1), "one".into(), "a".into()],
            vec![serde_json::json!(2), "two\nlines".into(), "b".into()],
            vec![serde_json::json!(3), "three".into(), "c".into()],
        ]
    );
}
