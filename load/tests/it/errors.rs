//! Bad records: the dead-letter file and `--on-error abort`.

use crate::common::{ndjson, Lab};

#[test]
fn a_garbage_line_goes_to_the_dead_letter_file_and_the_rest_lands() {
    let lab = Lab::new();
    let file = lab.path("mixed.ndjson");
    let mut data = ndjson(1..=10);
    data.push_str("this is not json\n[1,2]\n");
    data.push_str(&ndjson(11..=20));
    std::fs::write(&file, data).unwrap();
    let s = lab.load(&[&file], &[]).ok();
    assert_eq!(
        (s["rows"].as_u64(), s["bad_records"].as_u64()),
        (Some(20), Some(2)),
        "{s}"
    );
    assert_eq!(lab.counts(), (20, 20));
    let dead = std::fs::read_to_string(lab.path("mixed.ndjson.rejected.ndjson")).unwrap();
    let lines: Vec<serde_json::Value> = dead
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["line"], 11);
    assert_eq!(lines[0]["record"], "this is not json");
    assert_eq!(lines[1]["line"], 12);
    assert_eq!(lines[0]["file"], file.display().to_string());
    assert!(lines[0]["byte_offset"].as_u64().unwrap() > 0);
}

#[test]
fn on_error_abort_exits_non_zero_naming_the_file_and_line() {
    let lab = Lab::new();
    let file = lab.path("strict.ndjson");
    let mut data = ndjson(1..=3);
    data.push_str("{\"id\": 4,\n");
    std::fs::write(&file, data).unwrap();
    let run = lab.load(&[&file], &["--on-error", "abort"]);
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert_eq!(run.summary["ok"], false);
    let error = run.summary["per_file"][0]["error"].as_str().unwrap();
    assert!(error.contains("strict.ndjson at line 4"), "{error}");
    assert!(run.stderr.contains("line 4"), "{}", run.stderr);
    assert!(!lab.path("strict.ndjson.rejected.ndjson").exists());
}

#[test]
fn rows_the_server_refuses_are_counted_in_the_summary() {
    let lab = Lab::new();
    let file = lab.path("typed.ndjson");
    let mut data = ndjson(1..=5);
    data.push_str("{\"id\":\"not a number\",\"name\":\"x\"}\n");
    std::fs::write(&file, data).unwrap();
    let s = lab.load(&[&file], &[]).ok();
    assert_eq!(
        (s["rows"].as_u64(), s["bad_records"].as_u64()),
        (Some(6), Some(0)),
        "{s}"
    );
    assert_eq!(s["row_errors"], 1, "{s}");
    assert_eq!(lab.counts().0, 5);
}
