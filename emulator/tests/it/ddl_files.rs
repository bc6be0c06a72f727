//! `--ddl FILE`, given several times: an error in one script names that file (escaped), its
//! line and the statement, through the real binary (issue 81, item 2).

use std::process::{Command, Stdio};
use std::time::Duration;

use snowpipe_hostile::{Input, Limits};

const GOOD: &str = "CREATE DATABASE D;\nCREATE SCHEMA D.S;\n";

/// A script whose sixth line holds an unterminated string (a tokenizer error).
const BAD: &str = "-- 1\n-- 2\n-- 3\n-- 4\n-- 5\nCREATE TABLE D.S.T (A VARCHAR DEFAULT 'x);\n";

/// Runs the emulator with these `--ddl` files; it must exit (a bad script is refused before
/// it listens): its stderr.
fn refused(files: &[std::path::PathBuf]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_snowpipe-emulator"));
    cmd.args(["--port", "0", "--accept-any-key"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null());
    for f in files {
        cmd.arg("--ddl").arg(f);
    }
    let mut limits = Limits::with_budget(256 << 20);
    limits.wall = Duration::from_secs(30);
    let o = snowpipe_hostile::run(cmd, Input::Null, &limits).expect("run the emulator");
    assert!(!o.timed_out && o.signal.is_none(), "{}", o.summary());
    assert_ne!(
        o.code,
        Some(0),
        "a bad script must be refused: {}",
        o.summary()
    );
    o.stderr_text()
}

#[test]
fn ddl_error_names_the_file_of_several() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.sql");
    let second = dir.path().join("second.sql");
    std::fs::write(&first, GOOD).unwrap();
    std::fs::write(&second, BAD).unwrap();
    let err = refused(&[first.clone(), second.clone()]);
    assert!(err.contains(second.to_str().unwrap()), "{err}");
    assert!(!err.contains(first.to_str().unwrap()), "{err}");
    assert!(err.contains("line 6"), "{err}");
}

#[test]
fn ddl_error_escapes_control_characters_in_the_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let forged = dir.path().join("x\nERROR forged line\u{1b}[2J.sql");
    std::fs::write(&forged, BAD).unwrap();
    let err = refused(&[forged]);
    assert!(err.contains(r"x\nERROR forged line\u{1b}[2J.sql"), "{err}");
    assert!(!err.contains('\u{1b}'), "{err}");
    assert!(!err.lines().any(|l| l.starts_with("ERROR forged")), "{err}");
}
