//! The sink configured the way an image is: every option from a `SNOWPIPE_KAFKA_*` variable,
//! the command line winning over a variable and a variable over the connector's file, and
//! logs a collector reads (`--log-format json`, no colour codes off a terminal).

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use serde_json::Value;
use snowpipe_kafka_lab::demo::{Lab, DATABASE, PIPE, SCHEMA};

use crate::common::{bin, lab, produce_per_partition, run};

const TOPIC: &str = "configured";
const PARTS: i32 = 3;
const PER: i64 = 25;

/// The sink with no option on its command line and the lab's connection in `SNOWFLAKE_*`
/// (as `Lab::instance_of` gives it), no `SNOWPIPE_KAFKA_*` variable inherited from the test.
fn bare(lab: &Lab) -> Command {
    let mut cmd = Command::new(bin());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("SNOWPIPE_KAFKA_") {
            cmd.env_remove(k);
        }
    }
    lab.connect(&mut cmd)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null());
    cmd
}

/// The options of a run as (flag, value) pairs (`None`: a switch).
fn options(lab: &Lab, group: &str) -> Vec<(&'static str, Option<String>)> {
    vec![
        ("--brokers", Some(lab.brokers())),
        ("--topic", Some(TOPIC.into())),
        ("--pipe", Some(PIPE.into())),
        ("--group", Some(group.into())),
        ("--database", Some(DATABASE.into())),
        ("--schema", Some(SCHEMA.into())),
        ("--metadata", None),
        ("--quiet", None),
        ("--until-idle", Some("3s".into())),
        ("--max-client-lag", Some("200ms".into())),
    ]
}

/// `--flag` → `SNOWPIPE_KAFKA_FLAG`.
fn var(flag: &str) -> String {
    format!(
        "SNOWPIPE_KAFKA_{}",
        flag.trim_start_matches('-')
            .to_uppercase()
            .replace('-', "_")
    )
}

/// The report's `consumed` object (per partition: rows and the committed offset).
fn consumed(report: &Value) -> BTreeMap<String, Value> {
    report["consumed"]
        .as_object()
        .expect("consumed")
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn variables_alone_run_the_sink_as_flags_do_and_log_json_lines() {
    let lab = lab(&[(TOPIC, PARTS)]).await;
    let messages = produce_per_partition(&lab, TOPIC, PARTS, PER).await;
    let session = [
        ("-X", "session.timeout.ms=6000"),
        ("-X", "heartbeat.interval.ms=500"),
    ];

    // With flags.
    let mut flags = bare(&lab);
    for (flag, value) in options(&lab, "by_flags") {
        flags.arg(flag);
        if let Some(v) = value {
            flags.arg(v);
        }
    }
    for (flag, value) in session {
        flags.args([flag, value]);
    }
    let by_flags = run(&mut flags).ok();

    // With variables alone, logging JSON.
    let mut vars = bare(&lab);
    for (flag, value) in options(&lab, "by_variables") {
        vars.env(var(flag), value.unwrap_or_else(|| "true".into()));
    }
    vars.env(
        "SNOWPIPE_KAFKA_PROPERTIES",
        "session.timeout.ms=6000,heartbeat.interval.ms=500",
    )
    .env("SNOWPIPE_KAFKA_LOG_FORMAT", "json");
    let by_vars = run(&mut vars).ok();

    assert_eq!(
        consumed(&by_vars.report()),
        consumed(&by_flags.report()),
        "the same partitions, rows and offsets"
    );
    assert_eq!(
        consumed(&by_vars.report()).len(),
        PARTS as usize,
        "{}",
        by_vars.stdout
    );
    // Two groups, two sets of channels: every message landed once for each.
    let mut landed: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for (_, p, o) in lab.landed().expect("table") {
        *landed.entry((p, o)).or_default() += 1;
    }
    assert_eq!(landed.len(), messages.len());
    assert!(landed.values().all(|&n| n == 2), "{landed:?}");

    // Every stderr line is one JSON object with the fields a collector indexes.
    assert!(
        !by_vars.stderr.contains('\u{1b}'),
        "colour codes off a terminal"
    );
    assert!(
        !by_flags.stderr.contains('\u{1b}'),
        "colour codes off a terminal"
    );
    let lines: Vec<Value> = by_vars
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(!lines.is_empty());
    for l in &lines {
        for key in ["timestamp", "level", "target", "fields"] {
            assert!(l.get(key).is_some(), "{key} missing: {l}");
        }
    }
    // A partition's lines carry its topic, partition and channel.
    let channel = format!("by_variables_{TOPIC}_1");
    let assigned = lines
        .iter()
        .find(|l| {
            l["span"]["channel"] == channel.as_str()
                && l["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("partition assigned"))
        })
        .unwrap_or_else(|| panic!("no line of {channel}:\n{}", by_vars.stderr));
    assert_eq!(assigned["span"]["topic"], TOPIC);
    assert_eq!(assigned["span"]["partition"], 1);
    assert_eq!(assigned["fields"]["committed_offset"], -1);
}

/// The connector's file named by its variable alone; a variable wins over the file's key, and
/// the command line over a variable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_wins_over_a_variable_and_a_variable_over_the_connector_file() {
    let lab = lab(&[(TOPIC, 1)]).await;
    let messages = produce_per_partition(&lab, TOPIC, 1, 10).await;
    let config = serde_json::json!({
        "name": "snowflake-sink",
        "config": {
            "topics": "a_topic_nobody_wrote",
            "snowflake.database.name": DATABASE,
            "snowflake.schema.name": SCHEMA,
            "snowflake.enable.schematization": "true",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter.schemas.enable": "false",
        }
    });
    let file = lab.dir().join("from-variable.json");
    std::fs::write(&file, config.to_string()).expect("write");
    let mut cmd = bare(&lab);
    cmd.args(["--until-idle", "3s"])
        .env("SNOWPIPE_KAFKA_CONNECTOR_CONFIG", &file)
        .env("SNOWPIPE_KAFKA_BROKERS", lab.brokers())
        .env("SNOWPIPE_KAFKA_TOPIC", TOPIC)
        .env("SNOWPIPE_KAFKA_PIPE", PIPE)
        .env("SNOWPIPE_KAFKA_METADATA", "true")
        .env("SNOWPIPE_KAFKA_QUIET", "1")
        .env(
            "SNOWPIPE_KAFKA_PROPERTIES",
            "session.timeout.ms=6000,heartbeat.interval.ms=500",
        )
        // Refused if it were read: the command line's `--until-idle 3s` wins.
        .env("SNOWPIPE_KAFKA_UNTIL_IDLE", "soon");
    let out = run(&mut cmd).ok();
    let consumed = consumed(&out.report());
    assert_eq!(
        consumed.keys().collect::<Vec<_>>(),
        [&format!("{TOPIC}/0")],
        "{}",
        out.stdout
    );
    assert_eq!(lab.landed().expect("table").len(), messages.len());

    // A variable's bad value is refused by its name, before anything connects.
    let mut cmd = bare(&lab);
    crate::common::env_with_unitless_idle(&mut cmd, &lab.brokers(), TOPIC);
    let out = run(&mut cmd);
    assert!(!out.success);
    assert!(
        out.stderr.contains("no unit") && out.stderr.contains("--until-idle"),
        "{}",
        out.stderr
    );
}

/// `--help` names every option's variable, never a value.
#[test]
fn help_names_each_variable() {
    let out = Command::new(bin())
        .arg("--help")
        .env("SNOWPIPE_KAFKA_BROKERS", "secret-broker:9092")
        .output()
        .expect("help");
    let help = String::from_utf8_lossy(&out.stdout);
    for v in [
        "SNOWPIPE_KAFKA_BROKERS",
        "SNOWPIPE_KAFKA_CONNECTOR_CONFIG",
        "SNOWPIPE_KAFKA_TOPIC",
        "SNOWPIPE_KAFKA_PROPERTIES",
        "SNOWPIPE_KAFKA_UNTIL_IDLE",
        "SNOWPIPE_KAFKA_LOG_FORMAT",
    ] {
        assert!(help.contains(v), "{v} missing from --help:\n{help}");
    }
    assert!(!help.contains("secret-broker"), "{help}");
}

/// Issue 81 item 19: `SNOWPIPE_KAFKA_PROPERTIES` never cuts a secret's value at a comma, and no
/// part of the value reaches the error; written with `\,` the same password is taken whole.
#[test]
fn a_secret_in_the_properties_variable_is_never_cut_nor_shown() {
    let sink = |properties: &str| {
        let mut cmd = Command::new(bin());
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.starts_with("SNOWPIPE_KAFKA_") || k.starts_with("SNOWFLAKE_") {
                cmd.env_remove(k);
            }
        }
        let out = cmd
            .env("SNOWPIPE_KAFKA_BROKERS", "127.0.0.1:9")
            .env("SNOWPIPE_KAFKA_TOPIC", TOPIC)
            .env("SNOWPIPE_KAFKA_PIPE", PIPE)
            .env("SNOWPIPE_KAFKA_GROUP", "g")
            .env("SNOWPIPE_KAFKA_DATABASE", DATABASE)
            .env("SNOWPIPE_KAFKA_SCHEMA", SCHEMA)
            .env("SNOWPIPE_KAFKA_PROPERTIES", properties)
            .stdin(Stdio::null())
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        for piece in ["Hq7z", "Wx9p", "Kd3"] {
            assert!(!stderr.contains(piece), "{piece} shown:\n{stderr}");
        }
        (out.status.success(), stderr)
    };
    // Unescaped: refused before anything runs, naming the variable, the key and the rule.
    let (ok, stderr) = sink("session.timeout.ms=6000,sasl.password=Hq7z,Wx9p=Kd3");
    assert!(!ok);
    assert!(
        stderr.contains("SNOWPIPE_KAFKA_PROPERTIES")
            && stderr.contains("sasl.password")
            && stderr.contains(r"\,"),
        "{stderr}"
    );
    // Escaped: the configuration passes (the run stops later, at the missing Snowflake
    // account), and nothing of the value is shown either.
    let (ok, stderr) = sink(r"session.timeout.ms=6000,sasl.password=Hq7z\,Wx9p=Kd3");
    assert!(!ok);
    assert!(
        !stderr.contains("SNOWPIPE_KAFKA_PROPERTIES") && !stderr.contains("librdkafka refuses"),
        "{stderr}"
    );
}
