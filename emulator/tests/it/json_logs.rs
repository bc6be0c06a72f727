//! Issue 82 item 5: with `SNOWPIPE_EMULATOR_LOG_FORMAT=json` from the environment alone, every
//! stderr line of the emulator is one JSON object: its notices (`--accept-any-key`'s warning,
//! `shutting down` on SIGTERM), the fatal error with its message and causes as fields, a
//! refused flag value; the exit status is the text format's.

use std::process::{Command, Stdio};

use serde_json::Value;
use snowpipe_hostile::json_logs::json_lines;

use crate::common::{bin, spawn_first_line, stderr_of};

/// The binary with the JSON format and no `SNOWPIPE_EMULATOR_*` or `RUST_LOG` inherited.
fn bare(format: &str) -> Command {
    let mut cmd = bin();
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("SNOWPIPE_EMULATOR_") {
            cmd.env_remove(k);
        }
    }
    cmd.env_remove("RUST_LOG")
        .env("SNOWPIPE_EMULATOR_LOG_FORMAT", format)
        .stdin(Stdio::null());
    cmd
}

/// The last line: an `ERROR` whose `message` and `causes` are the chain; the chain joined and
/// how many causes.
fn fatal(lines: &[Value]) -> (String, usize) {
    let (_, chain, causes) = snowpipe_hostile::json_logs::fatal(lines);
    (chain, causes)
}

/// A data directory that cannot be created: exit 1 in both formats, the same chain, the
/// operating system's error a cause of its own.
#[test]
fn a_fatal_error_is_one_json_object_with_its_causes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let run = |format: &str| {
        let out = bare(format)
            .env("SNOWPIPE_EMULATOR_DATA_DIR", &file)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = run("json");
    assert_eq!(code, Some(1), "{stderr}");
    let (error, causes) = fatal(&json_lines(&stderr));
    assert!(
        error.contains("cannot create the data directory"),
        "{error}"
    );
    assert!(causes >= 1, "{stderr}");
    let (code, text) = run("text");
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(
        text.lines().last(),
        Some(format!("error: {error}").as_str())
    );
}

/// A value clap refuses: one JSON object naming the flag, exit 2.
#[test]
fn a_bad_flag_value_is_one_json_object() {
    let out = bare("json")
        .env("SNOWPIPE_EMULATOR_COMMIT_DELAY", "soon")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let (error, _) = fatal(&json_lines(&String::from_utf8_lossy(&out.stderr)));
    assert!(
        error.contains("--commit-delay") && error.contains("soon"),
        "{error}"
    );
}

/// A server's own notices: the insecure mode's warning and `shutting down` on SIGTERM.
#[test]
fn a_servers_notices_are_json_objects() {
    let (mut child, _out, line) =
        spawn_first_line(bare("json").env("SNOWPIPE_EMULATOR_ACCEPT_ANY_KEY", "true"));
    assert!(line.starts_with("listening on http://"), "{line}");
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    assert!(child.wait().unwrap().success());
    let stderr = stderr_of(&mut child);
    let lines = json_lines(&stderr);
    let message = |l: &Value| {
        l["fields"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let insecure = lines
        .iter()
        .find(|l| message(l).contains("--accept-any-key accepts ANY bearer token"))
        .unwrap_or_else(|| panic!("no warning:\n{stderr}"));
    assert_eq!(insecure["level"], "WARN");
    let last = lines.last().expect("a line");
    assert_eq!(
        (message(last).as_str(), &last["level"]),
        ("shutting down", &Value::from("INFO"))
    );
}

/// Each subcommand's `--help` names the log format's variable, as the server's own does.
#[test]
fn every_subcommands_help_names_the_log_format_variable() {
    for sub in [None, Some("query"), Some("keygen"), Some("status")] {
        let out = bare("text").args(sub).arg("--help").output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(
            help.contains("[env: SNOWPIPE_EMULATOR_LOG_FORMAT"),
            "{sub:?}:\n{help}"
        );
    }
}
