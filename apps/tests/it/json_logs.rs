//! Issue 82 item 5 and issue 83's landing condition: with `--log-format json` (or
//! `<PREFIX>LOG_FORMAT=json`) every stderr line of an application is one JSON object in the
//! logger's schema: its progress and report lines, its warnings and its fatal error (the
//! message and causes as fields, the exit status the text format's). Stdout is untouched.

use std::process::{Command, Output};

use serde_json::Value;
use snowpipe_cli_support::server_start;

use crate::common::bin::{ecommerce_bin, sensor_stream_bin, ski_resort_bin, table_replay_bin};
use crate::common::sensor_stream::nats_available;

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

/// Every stderr line of `out`, each one JSON object with the keys the logger's events have
/// (`timestamp`, `level`, `target`, `fields.message`); at least `min` of them.
fn json_lines(what: &str, out: &Output, min: usize) -> Vec<Value> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<Value> = stderr
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{what}: a stderr line is not JSON ({e}): {l}"));
            for key in ["timestamp", "level", "target"] {
                assert!(v[key].is_string(), "{what}: {key} missing: {l}");
            }
            assert!(
                v["fields"]["message"].is_string(),
                "{what}: no message: {l}"
            );
            v
        })
        .collect();
    assert!(
        lines.len() >= min,
        "{what}: {} lines:\n{stderr}",
        lines.len()
    );
    lines
}

/// Whether some line's message contains `text`.
fn said(lines: &[Value], text: &str) -> bool {
    lines.iter().any(|l| {
        l["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(text))
    })
}

/// `cmd` run to its end with no account or log settings inherited.
fn output(mut cmd: Command) -> Output {
    for var in ["SNOWFLAKE_ACCOUNT", "SNOWFLAKE_URL", "RUST_LOG"] {
        cmd.env_remove(var);
    }
    cmd.output().expect("run the application")
}

#[test]
fn ski_resorts_progress_and_report_lines_are_json() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(ski_resort_bin());
    cmd.args([
        "generate",
        "--log-format",
        "json",
        "--events",
        "300",
        "--rate",
        "0",
    ])
    .arg("--queue")
    .arg(dir.path().join("queue"));
    let out = output(cmd);
    assert!(out.status.success(), "{out:?}");
    let lines = json_lines("ski_resort generate", &out, 1);
    assert!(said(&lines, "generating 300 events"), "{lines:?}");
    // The all-in-one run: whatever it writes on stderr is JSON; stdout keeps its report.
    let mut cmd = Command::new(ski_resort_bin());
    cmd.args(["--log-format", "json", "--events", "300", "--rate", "0"])
        .args(["--seed", "3", "--commit-delay", "20ms"]);
    let out = output(cmd);
    assert!(out.status.success(), "{out:?}");
    json_lines("ski_resort", &out, 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains("exactly once"));
}

#[test]
fn ecommerces_progress_and_summary_lines_are_json_in_every_process() {
    // `--processes`: the first `ecommerce stream` child prints its summary on the run's stderr,
    // in the run's format.
    let mut cmd = Command::new(ecommerce_bin());
    cmd.args([
        "--log-format",
        "json",
        "--orders",
        "200",
        "--instances",
        "2",
    ])
    .args(["--rate", "0", "--commit-delay", "20ms", "--processes"]);
    let out = output(cmd);
    assert!(out.status.success(), "{out:?}");
    json_lines("ecommerce --processes", &out, 1);
}

#[test]
fn table_replays_warning_and_fatal_error_are_json() {
    // Port 1 on loopback: nothing listens; the password warning, then the connection error.
    let mut cmd = Command::new(table_replay_bin());
    cmd.args(["--log-format", "json", "ddl", "--table", "t", "--source"])
        .arg("mysql://app:pw-in-argv@127.0.0.1:1/shop")
        .env_remove("TABLE_REPLAY_SOURCE")
        .env_remove("TABLE_REPLAY_PASSWORD");
    let out = output(cmd);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let lines = json_lines("table_replay ddl", &out, 2);
    assert_eq!(lines[0]["level"], "WARN", "{lines:?}");
    assert!(said(&lines, "holds a password"), "{lines:?}");
    let last = lines.last().unwrap();
    assert_eq!(last["level"], "ERROR", "{last}");
    assert!(last["fields"]["causes"].is_array(), "{last}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("pw-in-argv"));
}

#[test]
fn table_replays_default_run_lines_are_json() {
    use snowpipe_apps::table_replay::mariadb;
    let found = mariadb::server_binary().is_some();
    if !server_start::require_or_skip(found, "mariadbd", mariadb::INSTALL_HINT) {
        return;
    }
    let mut cmd = Command::new(table_replay_bin());
    cmd.args(["--log-format", "json", "--rows", "50", "--batch", "20"]);
    let out = output(cmd);
    assert!(out.status.success(), "{out:?}");
    let lines = json_lines("table_replay", &out, 3);
    assert!(
        said(&lines, "starting a private MariaDB server"),
        "{lines:?}"
    );
    assert!(said(&lines, "replayed"), "{lines:?}");
}

#[test]
fn sensor_streams_progress_and_report_lines_are_json() {
    if !nats_available("JSON log") {
        return;
    }
    let nats = snowpipe_apps::sensor_stream::nats_server::NatsServer::start(None).unwrap();
    let mut cmd = Command::new(sensor_stream_bin());
    cmd.args([
        "publish",
        "--log-format",
        "json",
        "--count",
        "50",
        "--rate",
        "1000",
    ])
    .args(["--nats", &nats.url()]);
    let out = output(cmd);
    assert!(out.status.success(), "{out:?}");
    let lines = json_lines("sensor_stream publish", &out, 1);
    assert!(said(&lines, "publishing 50 events"), "{lines:?}");
}
