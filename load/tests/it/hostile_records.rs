//! Issue 81, records a foreign producer or an attacker writes: past the record limit (NDJSON,
//! CSV, `--follow`, standard input), escaped and long dead letters, invalid UTF-8, deep
//! nesting, a header naming a column twice, a byte order mark. Each through the binary, the
//! input written by the test.

use std::io::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::{ndjson, Lab, Run};
use snowpipe_cli_support::process::{signal, Signal};

/// Past the record limit (4,000,000 bytes, Snowflake's request size).
const LONG: usize = 5_000_000;

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn dead_letters(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `(rows, bad_records)` of a summary.
fn counts(s: &Value) -> (Option<u64>, Option<u64>) {
    (s["rows"].as_u64(), s["bad_records"].as_u64())
}

#[test]
fn an_ndjson_line_past_the_record_limit_is_a_dead_letter_and_the_rest_lands_once() {
    let lab = Lab::new();
    let file = lab.path("long.ndjson");
    let long = format!("{{\"id\":99,\"name\":\"{}\"}}\n", "x".repeat(LONG));
    let mut data = ndjson(1..=5);
    data.push_str(&long);
    data.push_str(&ndjson(6..=10));
    std::fs::write(&file, &data).unwrap();
    let s = lab.load(&[&file], &[]).ok();
    assert_eq!(counts(&s), (Some(10), Some(1)), "{s}");
    assert_eq!(lab.counts(), (10, 10));
    let dead = dead_letters(&lab.path("long.ndjson.rejected.ndjson"));
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["line"], 6);
    assert_eq!(dead[0]["byte_offset"], ndjson(1..=5).len());
    assert_eq!(dead[0]["record_bytes"], long.len());
    assert_eq!(dead[0]["record_sha256"], sha256(long.as_bytes()));
    let kept = dead[0]["record"].as_str().unwrap();
    assert!(
        long.starts_with(kept) && kept.len() <= 64 * 1024,
        "{}",
        kept.len()
    );
    assert!(
        dead[0]["error"].as_str().unwrap().contains("4000000"),
        "{}",
        dead[0]
    );
    // A rerun is past it.
    assert_eq!(counts(&lab.load(&[&file], &[]).ok()), (Some(0), Some(0)));
}

#[test]
fn a_csv_record_past_the_limit_is_a_dead_letter_and_later_lines_keep_their_numbers() {
    let lab = Lab::new();
    let file = lab.path("long.csv");
    let long = format!("3,\"a\nb{}\",c\n", "y".repeat(LONG));
    let data = format!("id,name,note\n1,one,a\n2,two,b\n{long}4,four,d\n5,x\n6,six,f\n");
    std::fs::write(&file, &data).unwrap();
    let s = lab.load(&[&file], &[]).ok();
    assert_eq!(counts(&s), (Some(4), Some(2)), "{s}");
    assert_eq!(lab.counts(), (4, 4));
    let dead = dead_letters(&lab.path("long.csv.rejected.ndjson"));
    assert_eq!(dead.len(), 2);
    assert_eq!(
        (dead[0]["line"].as_u64(), dead[1]["line"].as_u64()),
        (Some(4), Some(7))
    );
    assert_eq!(dead[0]["record_bytes"], long.len());
    assert_eq!(dead[0]["record_sha256"], sha256(long.as_bytes()));
    assert_eq!(dead[1]["record"], "5,x");
    assert_eq!(counts(&lab.load(&[&file], &[]).ok()), (Some(0), Some(0)));
}

#[test]
fn a_csv_dead_letter_keeps_the_first_bytes_escaped_with_the_length_and_hash() {
    let lab = Lab::new();
    let file = lab.path("control.csv");
    // 3 MB of control bytes in a record with one field too many (under the record limit).
    let control: String = (0..3_000_000)
        .map(|i| char::from((i % 31 + 1) as u8))
        .collect();
    let bad = format!("7,\"{}\",x,y\n", control.replace('"', ""));
    let data = format!("id,name,note\n1,one,a\n{bad}8,eight,h\n");
    std::fs::write(&file, &data).unwrap();
    let s = lab.load(&[&file], &[]).ok();
    assert_eq!(counts(&s), (Some(2), Some(1)), "{s}");
    let path = lab.path("control.csv.rejected.ndjson");
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size < 70 * 1024, "a dead letter of {size} bytes");
    let dead = dead_letters(&path);
    assert_eq!(dead[0]["line"], 3);
    assert_eq!(dead[0]["record_bytes"], bad.len());
    assert_eq!(dead[0]["record_sha256"], sha256(bad.as_bytes()));
    assert!(bad.starts_with(dead[0]["record"].as_str().unwrap()));
}

#[test]
fn invalid_utf8_and_deep_nesting_are_dead_letters_with_their_lines() {
    let lab = Lab::new();
    let file = lab.path("odd.ndjson");
    let mut data = ndjson(1..=3).into_bytes();
    data.extend_from_slice(b"{\"id\":4,\"name\":\"caf\xe9\"}\n");
    let deep = format!(
        "{{\"id\":5,\"name\":{}1{}}}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    data.extend_from_slice(deep.as_bytes());
    data.extend_from_slice(ndjson(6..=8).as_bytes());
    std::fs::write(&file, &data).unwrap();
    let s = lab.load(&[&file], &[]).ok();
    assert_eq!(counts(&s), (Some(6), Some(2)), "{s}");
    assert_eq!(s["row_errors"], 0, "{s}");
    let dead = dead_letters(&lab.path("odd.ndjson.rejected.ndjson"));
    assert_eq!(
        (dead[0]["line"].as_u64(), dead[1]["line"].as_u64()),
        (Some(4), Some(5))
    );
    assert!(
        dead[0]["error"].as_str().unwrap().contains("not UTF-8"),
        "{}",
        dead[0]
    );
    assert!(
        dead[1]["error"].as_str().unwrap().contains("100001 levels"),
        "{}",
        dead[1]
    );
    assert_eq!(lab.counts(), (6, 6));
}

#[test]
fn a_csv_header_naming_a_column_twice_is_refused_with_both_positions() {
    let lab = Lab::new();
    let file = lab.path("twice.csv");
    std::fs::write(&file, "id,name,ID\n1,a,2\n").unwrap();
    let run = lab.load(&[&file], &[]);
    assert_ne!(run.code, Some(0), "{run:#?}");
    let error = run.summary["per_file"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("twice.csv") && error.contains("positions 1 (\"id\") and 3 (\"ID\")"),
        "{error}"
    );
    assert_eq!(lab.counts().0, 0);
}

#[test]
fn an_ndjson_file_starting_with_a_byte_order_mark_loses_no_row() {
    let lab = Lab::new();
    let file = lab.path("bom.ndjson");
    std::fs::write(&file, format!("\u{feff}{}", ndjson(1..=3))).unwrap();
    let s = lab.load(&[&file], &[]).ok();
    assert_eq!(counts(&s), (Some(3), Some(0)), "{s}");
    assert_eq!(lab.counts(), (3, 3));
}

/// The binary's address space for data (`RLIMIT_DATA`, Linux counts the heap and private
/// mappings): a reader holding the long line would fail to allocate.
#[cfg(target_os = "linux")]
fn data_limit(cmd: &mut std::process::Command, bytes: u64) {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: only setrlimit between fork and exec, async-signal-safe.
    #[allow(
        unsafe_code,
        reason = "the test child's exit state and the clock tick, through libc"
    )]
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_DATA, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(target_os = "linux")]
#[test]
fn standard_input_with_a_line_larger_than_memory_loads_the_rest_in_bounded_memory() {
    let lab = Lab::new();
    let mut cmd = lab.command(&[Path::new("-")], &[]);
    cmd.current_dir(lab.dir.path()).stdin(Stdio::piped());
    data_limit(&mut cmd, 256 << 20);
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        stdin.write_all(ndjson(1..=3).as_bytes())?;
        let block = vec![b'z'; 1 << 20];
        for _ in 0..400 {
            stdin.write_all(&block)?;
        }
        stdin.write_all(b"\n")?;
        stdin.write_all(ndjson(4..=6).as_bytes())
    });
    let run = Run::from(child.wait_with_output().unwrap());
    let written = writer.join().unwrap();
    let s = run.ok();
    assert!(written.is_ok(), "{written:?}");
    assert_eq!(counts(&s), (Some(6), Some(1)), "{s}");
    let dead = dead_letters(&lab.path("stdin.rejected.ndjson"));
    assert_eq!(
        (dead[0]["line"].as_u64(), dead[0]["record_bytes"].as_u64()),
        (Some(4), Some(400 * (1 << 20) + 1))
    );
    assert_eq!(lab.counts(), (6, 6));
}

#[cfg(unix)]
#[test]
fn follow_reads_past_an_unterminated_csv_quote_once_and_loads_what_follows() {
    let lab = Lab::new();
    let csv = lab.path("feed.csv");
    std::fs::write(&csv, "ID,NAME,NOTE\n1,one,a\n").unwrap();
    let child = lab.command(&[&csv], &["--follow"]).spawn().unwrap();
    let wait_for = |rows: u64| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while lab.counts().0 < rows {
            assert!(
                Instant::now() < deadline,
                "{} rows of {rows}",
                lab.counts().0
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for(1);
    let mut f = std::fs::OpenOptions::new().append(true).open(&csv).unwrap();
    // A quote opened and written on for several polls, then closed.
    f.write_all(b"2,\"").unwrap();
    for _ in 0..5 {
        f.write_all(&vec![b'q'; LONG / 4]).unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    f.write_all(b"\",b\n3,three,c\n").unwrap();
    wait_for(2);
    signal(child.id(), Signal::Term).expect("signal the child");
    let run = Run::from(child.wait_with_output().unwrap());
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert_eq!(
        counts(&run.summary),
        (Some(2), Some(1)),
        "{:#}",
        run.summary
    );
    let dead = dead_letters(&lab.path("feed.csv.rejected.ndjson"));
    let record_len = 3 + 5 * (LONG / 4) + 4;
    assert_eq!(
        (dead[0]["line"].as_u64(), dead[0]["record_bytes"].as_u64()),
        (Some(3), Some(record_len as u64))
    );
    assert_eq!(lab.counts(), (2, 2));
}
