//! Issue 83 item 5: a rerun over files already loaded sends nothing and waits for nothing it
//! need not (it was ~2 s a file: the wait for each closed channel's row-error events, which
//! never ended), and a refused connection names where its settings came from.

use std::path::PathBuf;

use crate::common::{ndjson, Lab};

/// The debug line `snowpipe load` logs when it gave up waiting for a closed channel's
/// row-error events (`load.rs`, `RowErrors::total`).
const WAITED: &str = "row-error events still open after the channel closed";

#[test]
fn a_rerun_over_loaded_files_sends_no_rows_and_waits_for_no_events() {
    let lab = Lab::new();
    let files: Vec<PathBuf> = (0..4u64)
        .map(|i| {
            let file = lab.path(&format!("one-{i}.ndjson"));
            std::fs::write(&file, ndjson([i])).unwrap();
            file
        })
        .collect();
    let paths: Vec<&std::path::Path> = files.iter().map(PathBuf::as_path).collect();
    let first = lab.load(&paths, &[]);
    assert!(!first.stderr.contains(WAITED), "{}", first.stderr);
    assert_eq!(first.ok()["rows"], 4);
    let mut cmd = lab.command(&paths, &[]);
    cmd.env("RUST_LOG", "snowpipe=debug");
    let rerun = crate::common::Run::from(cmd.output().unwrap());
    assert!(!rerun.stderr.contains(WAITED), "{}", rerun.stderr);
    let summary = rerun.ok();
    assert_eq!(summary["rows"], 0, "{summary}");
    for file in summary["per_file"].as_array().unwrap() {
        assert_eq!(file["rows"], 0, "{file}");
        assert_eq!(file["start_position"], file["end_position"], "{file}");
    }
    assert_eq!(lab.counts(), (4, 4));
}

/// Nothing listens on port 1: the connection is refused.
const NOWHERE: &str = "http://127.0.0.1:1";

#[test]
fn a_refused_connection_names_the_profile_passed_or_the_variables() {
    let lab = Lab::new();
    let file = lab.path("a.ndjson");
    std::fs::write(&file, ndjson([1])).unwrap();
    let profile = lab.profile_at(NOWHERE, &serde_json::json!({}));
    let run = lab.load(&[&file], &["--profile", profile.to_str().unwrap()]);
    assert_ne!(run.code, Some(0), "{run:#?}");
    let named = format!(
        "cannot connect with the connection profile {}",
        profile.display()
    );
    assert!(run.stderr.contains(&named), "{}", run.stderr);
    assert!(!run.stderr.contains("pass --profile"), "{}", run.stderr);

    let mut cmd = lab.command(&[&file], &[]);
    cmd.env("SNOWFLAKE_URL", NOWHERE);
    let run = crate::common::Run::from(cmd.output().unwrap());
    assert_ne!(run.code, Some(0), "{run:#?}");
    assert!(
        run.stderr
            .contains("cannot connect with the SNOWFLAKE_* variables"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("or pass --profile FILE"),
        "{}",
        run.stderr
    );
    assert_eq!(lab.count(), 0);
}
