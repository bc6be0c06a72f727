//! NDJSON lands once, a rerun adds nothing, a rewritten file is loaded anew.

use crate::common::{ndjson, Lab};

#[test]
fn ndjson_lands_once_and_a_rerun_resumes_at_the_end() {
    let lab = Lab::new();
    let file = lab.path("events.ndjson");
    std::fs::write(&file, ndjson(1..=5000)).unwrap();
    let s = lab.load(&[&file], &[]).ok();
    assert_eq!(s["rows"], 5000);
    let f = &s["per_file"][0];
    let size = std::fs::metadata(&file).unwrap().len();
    assert_eq!(f["start_position"], 0);
    assert_eq!(f["end_position"], size);
    let token = f["committed_token"].as_str().unwrap();
    assert!(
        token.starts_with("v1:4096:") && token.ends_with(&format!(":{size}")),
        "{token}"
    );
    assert_eq!(lab.counts(), (5000, 5000));

    // The same file again: nothing to do. Then it grows: only the new rows.
    let again = lab.load(&[&file], &[]).ok();
    assert_eq!(
        (
            again["rows"].as_u64(),
            again["per_file"][0]["start_position"].as_u64()
        ),
        (Some(0), Some(size))
    );
    let mut grown = ndjson(1..=5000);
    grown.push_str(&ndjson(5001..=5100));
    std::fs::write(&file, grown).unwrap();
    assert_eq!(lab.load(&[&file], &[]).ok()["rows"], 100);
    assert_eq!(lab.counts(), (5100, 5100));
    let rows = lab.rows("ID, NAME");
    assert_eq!(rows[0], [serde_json::json!(1), serde_json::json!("name-1")]);
}

#[test]
fn a_rewritten_file_is_loaded_anew() {
    let lab = Lab::new();
    let file = lab.path("daily.ndjson");
    std::fs::write(&file, ndjson(1..=300)).unwrap();
    lab.load(&[&file], &[]).ok();
    // Other content, longer than the old position: not taken for the old file.
    std::fs::write(&file, ndjson(1001..=1400)).unwrap();
    let s = lab.load(&[&file], &[]).ok();
    assert_eq!(s["per_file"][0]["replaced"], true, "{s}");
    assert_eq!(s["rows"], 400);
    assert_eq!(lab.counts(), (700, 700));
}

#[test]
fn flags_come_from_the_environment_too() {
    let lab = Lab::new();
    let file = lab.path("rows.txt");
    std::fs::write(&file, ndjson(1..=10)).unwrap();
    let mut cmd = lab.command(&[&file], &["--channel", "MINE"]);
    cmd.env("SNOWPIPE_LOAD_FORMAT", "ndjson");
    let run = crate::common::Run::from(cmd.output().unwrap());
    let s = run.ok();
    assert_eq!(s["per_file"][0]["channel"], "MINE");
    assert_eq!(lab.counts(), (10, 10));
}
