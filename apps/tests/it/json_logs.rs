//! Issue 82 item 5: an application's fatal error with `<PREFIX>LOG_FORMAT=json` from the
//! environment alone is one JSON object on stderr, its message and causes as fields, the exit
//! status the text format's; a refused flag value too. (The applications' progress and
//! report lines stay text: they are demonstrations a person watches, not services a collector
//! reads.)

use std::process::Command;

use serde_json::Value;

use crate::common::bin::ski_resort_bin;

/// `ski_resort ARGS` with the log format `format` from the environment: exit code and stderr.
fn run(format: &str, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(ski_resort_bin())
        .args(args)
        .env("SKI_RESORT_LOG_FORMAT", format)
        .env_remove("RUST_LOG")
        .output()
        .expect("run ski_resort");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The one stderr line, an `ERROR` object: its chain (`message`, then `causes`) joined.
fn fatal(stderr: &str) -> String {
    let lines: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let [error] = lines.as_slice() else {
        panic!("one line expected:\n{stderr}")
    };
    assert_eq!(error["level"], "ERROR", "{error}");
    let f = &error["fields"];
    let mut chain = vec![f["message"].as_str().expect("message")];
    for c in f["causes"].as_array().expect("causes") {
        chain.push(c.as_str().expect("a cause is text"));
    }
    chain.join(": ")
}

#[test]
fn a_fatal_error_is_one_json_object_with_its_causes() {
    let args = ["report", "--queue", "/nonexistent/ski-resort-queue"];
    let (code, stderr) = run("json", &args);
    assert_eq!(code, Some(1), "{stderr}");
    let error = fatal(&stderr);
    assert!(error.starts_with("cannot open queue"), "{error}");
    assert!(
        stderr.contains("\"causes\":[\""),
        "a cause of its own: {stderr}"
    );
    let (code, text) = run("text", &args);
    assert_eq!(code, Some(1));
    assert_eq!(text.trim_end(), format!("error: {error}"));
}

#[test]
fn a_bad_flag_value_is_one_json_object() {
    let (code, stderr) = run("json", &["--events", "many"]);
    assert_eq!(code, Some(2), "{stderr}");
    let error = fatal(&stderr);
    assert!(
        error.contains("--events") && error.contains("many"),
        "{error}"
    );
}

/// Each subcommand's `--help` names the log format's variable, as the command's own does.
#[test]
fn every_subcommands_help_names_the_log_format_variable() {
    for sub in [None, Some("generate"), Some("stream"), Some("report")] {
        let out = Command::new(ski_resort_bin())
            .args(sub)
            .arg("--help")
            .output()
            .expect("help");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(
            help.contains("[env: SKI_RESORT_LOG_FORMAT"),
            "{sub:?}:\n{help}"
        );
    }
}
