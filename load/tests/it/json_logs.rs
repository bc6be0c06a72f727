//! Issue 82 item 5: with `SNOWPIPE_LOAD_LOG_FORMAT=json` from the environment alone, every
//! stderr line of `snowpipe load` is one JSON object: a progress event per file with its
//! figures as fields, a bad record's warning, the fatal error with its message and causes as
//! fields; the exit status is the text format's, whose lines are today's.

use std::process::Output;

use serde_json::Value;

use crate::common::Lab;

/// Every stderr line of `out`, each one JSON object with the logger's keys.
fn json_lines(out: &Output) -> Vec<Value> {
    snowpipe_hostile::json_logs::json_lines(&String::from_utf8_lossy(&out.stderr))
}

/// The last line: an `ERROR` whose `message` and `causes` make up `error`, the chain.
fn fatal(lines: &[Value]) -> String {
    snowpipe_hostile::json_logs::fatal(lines).1
}

fn json(lab: &Lab, files: &[&std::path::Path], args: &[&str]) -> Output {
    lab.command(files, args)
        .env("SNOWPIPE_LOAD_LOG_FORMAT", "json")
        .output()
        .expect("run snowpipe")
}

#[test]
fn a_load_with_a_bad_record_writes_only_json_lines_and_a_progress_event_per_file() {
    let lab = Lab::new();
    let file = lab.path("orders.ndjson");
    let mut text = String::new();
    for i in 0..30 {
        text.push_str(&format!("{{\"ID\": {i}, \"NAME\": \"n{i}\"}}\n"));
    }
    text.push_str("not json\n");
    std::fs::write(&file, &text).unwrap();
    let out = json(&lab, &[&file], &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let lines = json_lines(&out);
    let done = lines
        .iter()
        .find(|l| l["fields"]["message"] == "progress" && l["fields"]["file_done"] == true)
        .unwrap_or_else(|| panic!("no progress event: {lines:?}"));
    assert_eq!(done["level"], "INFO");
    assert_eq!(done["target"], "snowpipe_load::progress");
    let f = &done["fields"];
    assert_eq!(
        (f["file_index"].as_u64(), f["files"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(
        f["file"]
            .as_str()
            .is_some_and(|n| n.ends_with("orders.ndjson")),
        "{f}"
    );
    assert_eq!(f["file_rows"], 30);
    assert_eq!(f["rows"], 30);
    assert_eq!(f["file_bytes"].as_u64(), Some(text.len() as u64), "{f}");
    assert_eq!(f["total_bytes"].as_u64(), Some(text.len() as u64), "{f}");
    assert!(f["elapsed_s"].is_number(), "{f}");
    assert_eq!(lab.count(), 30);
}

/// A missing file: exit 2 in both formats, the same chain.
#[test]
fn a_missing_file_is_one_json_error_with_its_causes_and_exits_2() {
    let lab = Lab::new();
    let missing = lab.path("nowhere.ndjson");
    let out = json(&lab, &[&missing], &[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let error = fatal(&json_lines(&out));
    assert!(
        error.contains("nowhere.ndjson") && error.contains("check the path"),
        "{error}"
    );
    let text = lab.load(&[&missing], &[]);
    assert_eq!(text.code, Some(2));
    assert_eq!(
        text.stderr.lines().last(),
        Some(format!("error: {error}").as_str())
    );
}

/// A value clap refuses: one JSON object naming the flag, exit 2 as clap's.
#[test]
fn a_bad_flag_value_is_one_json_error() {
    let lab = Lab::new();
    let file = lab.path("a.ndjson");
    std::fs::write(&file, "{\"ID\": 1}\n").unwrap();
    let out = json(&lab, &[&file], &["--on-error", "sometimes"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let error = fatal(&json_lines(&out));
    assert!(
        error.contains("--on-error") && error.contains("sometimes"),
        "{error}"
    );
}

/// Round six: files load at once on many channels, and every progress line named the last
/// file started, credited with every file's rows (`part-0.parquet`, `file_done: true`, 417,631
/// rows), in identical lines; off a terminal in text mode there was no progress at all. Now
/// each file's last line carries that file's name, index and rows, once; and text mode off a
/// terminal writes a plain line per file.
#[test]
fn each_files_progress_is_its_own_in_json_and_in_text_off_a_terminal() {
    let lab = Lab::new();
    let sizes = [5u64, 700, 40, 2_000];
    let mut files = Vec::new();
    for (i, n) in sizes.iter().enumerate() {
        let path = lab.path(&format!("part-{i}.ndjson"));
        std::fs::write(
            &path,
            crate::common::ndjson(i as u64 * 10_000..i as u64 * 10_000 + n),
        )
        .unwrap();
        files.push(path);
    }
    let paths: Vec<&std::path::Path> = files.iter().map(std::path::PathBuf::as_path).collect();
    let out = json(&lab, &paths, &["--channels", "4"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let done: Vec<Value> = json_lines(&out)
        .into_iter()
        .filter(|l| l["fields"]["message"] == "progress" && l["fields"]["file_done"] == true)
        .map(|l| l["fields"].clone())
        .collect();
    assert_eq!(done.len(), sizes.len(), "one last line a file: {done:#?}");
    for f in &done {
        let i = f["file_index"].as_u64().unwrap() as usize - 1;
        assert!(
            f["file"]
                .as_str()
                .is_some_and(|n| n.ends_with(&format!("part-{i}.ndjson"))),
            "{f}"
        );
        assert_eq!(f["file_rows"].as_u64(), Some(sizes[i]), "{f}");
        let bytes = std::fs::metadata(&files[i]).unwrap().len();
        assert_eq!(f["file_bytes"].as_u64(), Some(bytes), "{f}");
    }
    let mut indexes: Vec<u64> = done
        .iter()
        .map(|f| f["file_index"].as_u64().unwrap())
        .collect();
    indexes.sort_unstable();
    assert_eq!(indexes, [1, 2, 3, 4]);

    // Text, stderr a pipe: a plain line as each file ends.
    let text = lab.load(&paths, &["--channels", "4"]);
    assert_eq!(text.code, Some(0), "{text:#?}");
    for (i, _) in sizes.iter().enumerate() {
        assert!(
            text.stderr
                .lines()
                .any(|l| l.contains(&format!("part-{i}.ndjson (done): 0 rows"))),
            "no line for part-{i} (a rerun loads 0 rows): {}",
            text.stderr
        );
    }
}
