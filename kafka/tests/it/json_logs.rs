//! Issue 82 item 5: run as the image runs it (`SNOWPIPE_KAFKA_LOG_FORMAT=json` from the
//! environment alone), every stderr line of the sink is one JSON object: the progress report
//! an `INFO` event with its figures as fields, the fatal error an `ERROR` event with its
//! message and cause chain as fields, a refused command line too; the exit status is the
//! text format's. With the text format the lines are today's.

use std::process::{Command, Stdio};

use serde_json::Value;
use snowpipe_kafka_lab::demo::{Lab, DATABASE, PIPE, SCHEMA};

use crate::common::{bin, lab, produce_per_partition, run};

const TOPIC: &str = "collected";
const PARTS: i32 = 2;

/// The sink with no option on its command line, the lab's connection in `SNOWFLAKE_*`, no
/// `SNOWPIPE_KAFKA_*` or `RUST_LOG` inherited from the test.
fn bare() -> Command {
    let mut cmd = Command::new(bin());
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("SNOWPIPE_KAFKA_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// A run's options as variables: long enough idle (6 s) for a progress report (every 5 s).
fn sink(lab: &Lab, group: &str) -> Command {
    let mut cmd = bare();
    lab.connect(&mut cmd);
    for (k, v) in [
        ("BROKERS", lab.brokers()),
        ("TOPIC", TOPIC.into()),
        ("PIPE", PIPE.into()),
        ("GROUP", group.into()),
        ("DATABASE", DATABASE.into()),
        ("SCHEMA", SCHEMA.into()),
        ("UNTIL_IDLE", "6s".into()),
        ("MAX_CLIENT_LAG", "200ms".into()),
        (
            "PROPERTIES",
            "session.timeout.ms=6000,heartbeat.interval.ms=500".into(),
        ),
    ] {
        cmd.env(format!("SNOWPIPE_KAFKA_{k}"), v);
    }
    cmd
}

pub(crate) use snowpipe_hostile::json_logs::json_lines;

/// The fatal error: the last line, an `ERROR` whose message and causes are fields and whose
/// `error` is the chain the text format prints.
pub(crate) fn fatal(lines: &[Value]) -> &Value {
    snowpipe_hostile::json_logs::fatal(lines).0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_is_a_structured_event_in_json_and_todays_line_in_text() {
    let lab = lab(&[(TOPIC, PARTS)]).await;
    produce_per_partition(&lab, TOPIC, PARTS, 20).await;

    let json = run(sink(&lab, "json").env("SNOWPIPE_KAFKA_LOG_FORMAT", "json")).ok();
    let lines = json_lines(&json.stderr);
    let progress: Vec<&Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "progress")
        .collect();
    let first = progress
        .first()
        .unwrap_or_else(|| panic!("no progress event:\n{}", json.stderr));
    assert_eq!(first["level"], "INFO");
    assert_eq!(first["target"], "snowpipe_kafka::progress");
    let f = &first["fields"];
    assert!(f["elapsed_s"].as_f64().is_some_and(|s| s >= 5.0), "{f}");
    let budget = f["memory_budget_bytes"].as_u64().expect("budget");
    assert!(budget > 0 && f["memory_used_bytes"].as_u64().is_some_and(|u| u <= budget));
    let mut parts: Vec<(String, i64)> = f["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| {
            assert!(p["rows_per_s"].is_number(), "{p}");
            assert!(p["lag"].is_null() || p["lag"].is_i64(), "{p}");
            assert!(p["dead_lettered"].is_u64() && p["rejected"].is_u64(), "{p}");
            (
                p["topic"].as_str().expect("topic").into(),
                p["partition"].as_i64().expect("n"),
            )
        })
        .collect();
    parts.sort();
    assert_eq!(parts, [(TOPIC.into(), 0), (TOPIC.into(), 1)]);

    // Text: the line of before, `[   5.0s] messages in memory 0.0/128.0 MiB (their quarter of
    // --memory-budget) | collected/0: 0 rows/s …`: the line says which budget it shows.
    let text = run(&mut sink(&lab, "text")).ok();
    let line = text
        .stderr
        .lines()
        .find(|l| l.starts_with('[') && l.contains("s] messages in memory "))
        .unwrap_or_else(|| panic!("no progress line:\n{}", text.stderr));
    assert!(
        line.contains(" MiB (their quarter of --memory-budget) | "),
        "{line}"
    );
    for p in 0..PARTS {
        assert!(line.contains(&format!("{TOPIC}/{p}: ")), "{line}");
    }
    assert!(
        line.contains(" rows/s lag ") && line.contains(" commit "),
        "{line}"
    );
}

/// `check` against brokers nobody answers on: exit 1 as in text, the last line the error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fatal_error_of_check_is_one_json_object_with_its_causes() {
    let lab = lab(&[(TOPIC, 1)]).await;
    let check = |format: &str| {
        let mut cmd = sink(&lab, "g");
        cmd.arg("check")
            .env("SNOWPIPE_KAFKA_BROKERS", "127.0.0.1:9")
            .env("SNOWPIPE_KAFKA_LOG_FORMAT", format)
            .env_remove("SNOWPIPE_KAFKA_UNTIL_IDLE")
            .env_remove("SNOWPIPE_KAFKA_MAX_CLIENT_LAG");
        let out = cmd.output().expect("check");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (json_status, json) = check("json");
    let (text_status, text) = check("text");
    assert_eq!(
        (json_status, text_status),
        (Some(1), Some(1)),
        "{json}\n{text}"
    );
    let lines = json_lines(&json);
    let error = fatal(&lines);
    let all = error["fields"]["error"].as_str().expect("error");
    assert!(
        all.contains("cannot reach the Kafka brokers 127.0.0.1:9"),
        "{error}"
    );
    // The text format's last line is the same chain.
    assert_eq!(
        text.lines().last(),
        Some(format!("error: {all}").as_str()),
        "{text}"
    );
}

/// A variable's bad value (clap refuses it) and a missing option: JSON objects, exit 2.
#[test]
fn a_refused_command_line_is_one_json_object_and_exits_2() {
    let out = |cmd: &mut Command| {
        cmd.env("SNOWPIPE_KAFKA_LOG_FORMAT", "json");
        cmd.output().expect("run")
    };
    let mut bad = bare();
    crate::common::env_with_unitless_idle(&mut bad, "127.0.0.1:9", TOPIC);
    for (cmd, says) in [
        (&mut bad, "--until-idle"),
        (&mut bare(), "not provided: --brokers"),
    ] {
        let o = out(cmd);
        assert_eq!(o.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&o.stderr);
        let lines = json_lines(&stderr);
        let error = fatal(&lines);
        assert!(error.to_string().contains(says), "{error}");
    }
}

/// Every subcommand that takes the sink's options names `SNOWPIPE_KAFKA_LOG_FORMAT` in its
/// `--help`, as the sink's own does (`demo` and `bench` are lab tools without variables).
#[test]
fn every_subcommands_help_names_the_log_format_variable() {
    for args in [&["--help"][..], &["check", "--help"], &["audit", "--help"]] {
        let out = bare().args(args).output().expect("help");
        assert!(out.status.success(), "{args:?}");
        let help = String::from_utf8_lossy(&out.stdout);
        let line = help
            .lines()
            .find(|l| l.contains("--log-format"))
            .unwrap_or_else(|| panic!("{args:?}: no --log-format:\n{help}"));
        let rest = &help[help.find(line).expect("line")..];
        let entry = rest.split("\n  -").next().unwrap_or(rest);
        assert!(
            entry.contains("[env: SNOWPIPE_KAFKA_LOG_FORMAT"),
            "{args:?}: {entry}"
        );
    }
}
