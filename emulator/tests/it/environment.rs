//! The emulator configured the way an image is: every option from a `SNOWPIPE_EMULATOR_*`
//! variable (the workspace's rule: `snowpipe_cli_support::env`), logs as JSON lines.

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;

use serde_json::Value;

use crate::common::{bin, keys, spawn_first_line, stderr_of};

/// The binary with no `SNOWPIPE_EMULATOR_*` variable inherited from the test.
fn bare() -> std::process::Command {
    let mut cmd = bin();
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("SNOWPIPE_EMULATOR_") {
            cmd.env_remove(k);
        }
    }
    cmd.env_remove("RUST_LOG");
    cmd
}

#[test]
fn variables_alone_configure_a_server_and_its_subcommands() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.sql"), dir.path().join("b.sql"));
    std::fs::write(&a, "CREATE DATABASE D; CREATE SCHEMA D.S;").unwrap();
    std::fs::write(&b, "CREATE TABLE D.S.T (ID NUMBER);").unwrap();
    let key = dir.path().join("key.pub");
    std::fs::write(&key, keys(0).1).unwrap();
    let data = dir.path().join("data");
    let ddl = format!("{},{}", a.display(), b.display());
    let (mut child, _out, line) = spawn_first_line(
        bare()
            .env("SNOWPIPE_EMULATOR_DATA_DIR", &data)
            .env("SNOWPIPE_EMULATOR_DDL", &ddl)
            .env("SNOWPIPE_EMULATOR_PUBLIC_KEY", &key)
            .env("SNOWPIPE_EMULATOR_COMMIT_DELAY", "0.5s")
            .env("SNOWPIPE_EMULATOR_LOG_FORMAT", "json")
            .env("RUST_LOG", "info"),
    );
    assert!(line.starts_with("listening on http://127.0.0.1:"), "{line}");
    child.kill().unwrap();
    child.wait().unwrap();
    let stderr = stderr_of(&mut child);
    assert!(!stderr.contains('\u{1b}'), "colour codes off a terminal");
    let lines: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(!lines.is_empty(), "no log line at info");
    assert!(lines
        .iter()
        .all(|l| l["level"].is_string() && l["fields"].is_object()));

    // Both DDL files were read: `status`, its data directory from the variable too.
    let out = bare()
        .arg("status")
        .env("SNOWPIPE_EMULATOR_DATA_DIR", &data)
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(status.contains("\"D.S.T\""), "{status}");
}

#[test]
fn a_flag_wins_over_its_variable_and_a_bad_variable_is_named() {
    let out = bare()
        .args(["--commit-delay", "1s", "--help"])
        .env("SNOWPIPE_EMULATOR_COMMIT_DELAY", "zzz-value")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for v in [
        "SNOWPIPE_EMULATOR_DATA_DIR",
        "SNOWPIPE_EMULATOR_DDL",
        "SNOWPIPE_EMULATOR_COMMIT_DELAY",
        "SNOWPIPE_EMULATOR_LOG_FORMAT",
    ] {
        assert!(help.contains(v), "{v} missing from --help:\n{help}");
    }
    assert!(!help.contains("zzz-value"), "--help shows no value");
    // The command line's `--commit-delay` wins: the variable's value is never read.
    let mut child = bare()
        .args(["--accept-any-key", "--commit-delay", "1s"])
        .env("SNOWPIPE_EMULATOR_COMMIT_DELAY", "zzz-value")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(line.starts_with("listening on "), "{line}");
    let out = bare()
        .env("SNOWPIPE_EMULATOR_ACCEPT_ANY_KEY", "yes")
        .env("SNOWPIPE_EMULATOR_COMMIT_DELAY", "3")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("--commit-delay") && err.contains("no unit"),
        "{err}"
    );
}
