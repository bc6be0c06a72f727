//! `snowpipe-kafka check`: the plan of a run, asked of the mock cluster, the test registry and
//! the emulator, and nothing written: no channel opened, no table created, no group offset
//! committed (each checked after the check ran). It exits 0 when a run would start, and 1
//! naming the problem otherwise: a missing table without `--create-tables`, a missing topic,
//! a key Snowflake refuses, a registry that refuses the credentials, brokers that cannot be
//! reached.
#![cfg(unix)]

use std::process::Command;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;
use snowpipe_emulator::{Endpoint, KeyPair};
use snowpipe_kafka_lab::demo::{Lab, DATABASE, PIPE, SCHEMA};

use crate::common::registry::{registry, CREDENTIALS};
use crate::common::{bin, lab, lab_with_tables, produce_per_partition, run, run_json};

/// `snowpipe-kafka check` with the lab's brokers and connection, group `group`; add the
/// topics and options.
fn check(lab: &Lab, group: &str) -> Command {
    check_at(lab, &lab.brokers(), group)
}

/// [`check`] with the brokers `brokers`.
fn check_at(lab: &Lab, brokers: &str, group: &str) -> Command {
    let mut cmd = Command::new(bin());
    cmd.arg("check")
        .args(["--brokers", brokers, "--group", group])
        .args(["--database", DATABASE, "--schema", SCHEMA]);
    lab.connect(&mut cmd);
    cmd
}

/// The group's committed offset of each of `partitions` partitions of `topic`, read without
/// joining the group.
fn group_offsets(lab: &Lab, group: &str, topic: &str, partitions: i32) -> Vec<Option<i64>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", lab.brokers())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let committed = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("the group's offsets");
    committed
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        })
        .collect()
}

/// What shows a write: the channels the emulator holds (with their tokens), and the requests
/// that open, append to or drop a channel.
fn writes(lab: &Lab) -> (Value, usize) {
    let channels = lab.emulator().status()["channels"].clone();
    let writing = lab
        .emulator()
        .requests()
        .iter()
        .filter(|r| {
            matches!(
                r.endpoint,
                Endpoint::OpenChannel | Endpoint::AppendRows | Endpoint::DropChannel
            )
        })
        .count();
    (channels, writing)
}

/// The demo's shape (a topic of several partitions, its dead-letter topic, the `EVENTS`
/// table's default pipe): the text plan names the table, the pipe and each partition's
/// channel, the JSON plan has each partition's log end and start, exit 0; nothing is written.
/// The same topic found by `--topic-regex` (its table by `--topic2table-map`) plans alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_of_the_demo_topics_and_nothing_written() {
    let lab = lab(&[("events", 3), ("events.dlq", 1)]).await;
    produce_per_partition(&lab, "events", 3, 4).await;
    let before = writes(&lab);
    assert_eq!(before.1, 0);
    let demo = |cmd: &mut Command| {
        cmd.args(["--topic", "events", "--pipe", PIPE, "--metadata"])
            .args(["--dead-letter-topic", "events.dlq"]);
    };

    let mut cmd = check(&lab, "demo");
    demo(&mut cmd);
    let out = run(&mut cmd).ok();
    let text = &out.stdout;
    for line in [
        "kafka      ",
        "registry   not used",
        "snowflake  DEMO.KAFKA: connected",
        "topic events (--topic): 3 partitions",
        "table  EVENTS: exists",
        "pipe   EVENTS-STREAMING (the default pipe of table EVENTS): exists",
        "demo_events_2",
        "none (new channel)",
        "0..4",
        "a run would start: 1 topic, 3 partitions (one channel each)",
    ] {
        assert!(text.contains(line), "{line:?} is not in the plan:\n{text}");
    }
    assert!(!text.contains("problems:"), "{text}");

    let mut cmd = check(&lab, "demo");
    demo(&mut cmd);
    let (out, plan) = run_json(&mut cmd);
    assert!(out.success, "{}", out.stderr);
    assert_eq!(plan["would_start"], true, "{plan:#}");
    assert_eq!(plan["kafka"]["reachable"], true);
    assert_eq!(plan["snowflake"]["connected"], true);
    let topic = &plan["topics"][0];
    assert_eq!(topic["topic"], "events");
    assert_eq!(topic["table"], "EVENTS");
    assert_eq!(topic["table_state"], "exists");
    assert_eq!(topic["pipe"], PIPE);
    assert_eq!(topic["pipe_state"], "exists");
    let channels = topic["channels"].as_array().expect("channels");
    assert_eq!(channels.len(), 3);
    for (p, c) in channels.iter().enumerate() {
        assert_eq!(c["partition"], p, "{c}");
        assert_eq!(c["channel"], format!("demo_events_{p}"), "{c}");
        assert_eq!(c["exists"], false, "{c}");
        assert_eq!(c["committed_token"], Value::Null, "{c}");
        assert_eq!(c["group_offset"], Value::Null, "{c}");
        assert_eq!(
            (c["log_start"].as_i64(), c["log_end"].as_i64()),
            (Some(0), Some(4))
        );
        assert_eq!(c["start"], 0, "{c}");
    }

    // By regex, its table by the map.
    let (out, plan) = run_json(
        check(&lab, "demo")
            .args([
                "--topic-regex",
                "events",
                "--topic2table-map",
                "events:EVENTS",
            ])
            .arg("--metadata"),
    );
    assert!(out.success, "{}", out.stderr);
    let topics = plan["topics"].as_array().expect("topics");
    assert_eq!(
        topics.len(),
        1,
        "events.dlq does not match the whole name: {plan:#}"
    );
    assert_eq!(topics[0]["matched_by"], "--topic-regex");
    assert_eq!(topics[0]["pipe"], PIPE);
    assert_eq!(topics[0]["channels"].as_array().map(Vec::len), Some(3));

    // Nothing written: no channel, no open, append or drop, no group offset, no row.
    assert_eq!(writes(&lab), before);
    assert_eq!(group_offsets(&lab, "demo", "events", 3), [None, None, None]);
    assert!(lab.landed().expect("table").is_empty());
}

/// As a run, `check` takes its options from `SNOWPIPE_KAFKA_*` alone (a repeated flag's
/// values comma-separated), `--format` too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_options_may_come_from_the_environment_alone() {
    let lab = lab(&[("events", 2), ("clicks", 1)]).await;
    let mut cmd = Command::new(bin());
    cmd.arg("check").envs([
        ("SNOWPIPE_KAFKA_BROKERS", lab.brokers().as_str()),
        ("SNOWPIPE_KAFKA_GROUP", "env"),
        ("SNOWPIPE_KAFKA_DATABASE", DATABASE),
        ("SNOWPIPE_KAFKA_SCHEMA", SCHEMA),
        ("SNOWPIPE_KAFKA_TOPIC", "events,clicks"),
        ("SNOWPIPE_KAFKA_PIPE", PIPE),
        ("SNOWPIPE_KAFKA_FORMAT", "json"),
    ]);
    lab.connect(&mut cmd);
    let out = run(&mut cmd);
    assert!(out.success, "{}", out.stderr);
    let plan: Value = serde_json::from_str(&out.stdout).expect("one JSON document");
    let channels: Vec<&str> = plan["topics"]
        .as_array()
        .expect("topics")
        .iter()
        .flat_map(|t| t["channels"].as_array().expect("channels"))
        .map(|c| c["channel"].as_str().expect("a name"))
        .collect();
    assert_eq!(channels, ["env_events_0", "env_events_1", "env_clicks_0"]);
}

/// A table that does not exist, without `--create-tables`: exit 1 naming the table and the
/// two fixes. With `--create-tables` the plan says the run creates it, exit 0, and the table
/// is still not there afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_table_without_create_tables_is_named() {
    let lab = lab(&[("orders", 2)]).await;
    let out = run(check(&lab, "g").args(["--topic", "orders", "--pipe", "MISSING-STREAMING"]));
    assert!(!out.success, "{}", out.stdout);
    assert!(
        out.stderr.contains(
            "table DEMO.KAFKA.MISSING does not exist (or this role may not use it) and \
             --create-tables is off: create it (docs/snowflake-setup.md) or pass --create-tables"
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout.contains("table  MISSING: MISSING")
            && out.stdout.contains("a run would NOT start: 1 problem"),
        "{}",
        out.stdout
    );

    let (out, plan) = run_json(check(&lab, "g").args([
        "--topic",
        "orders",
        "--pipe",
        "MISSING-STREAMING",
        "--create-tables",
    ]));
    assert!(out.success, "{}", out.stderr);
    let topic = &plan["topics"][0];
    assert_eq!(topic["table_state"], "to_be_created", "{plan:#}");
    assert_eq!(topic["pipe_state"], "to_be_created", "{plan:#}");
    assert_eq!(topic["channels"][1]["channel"], "g_orders_1");
    let missing = lab
        .emulator()
        .query(r#"SELECT * FROM "DEMO.KAFKA.MISSING""#);
    assert!(missing.is_err(), "check created the table: {missing:?}");
    assert_eq!(writes(&lab).1, 0);
}

/// A connector file configures `check` as it configures a run: its topics and map, its
/// tables created by default, and a pipe named like the table chosen over the default pipe
/// (`desc pipe`). The table to be created is still not there afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_file_is_planned_as_a_run_takes_it() {
    let lab = lab_with_tables(
        &[("clicks", 1), ("views", 1)],
        "CREATE TABLE DEMO.KAFKA.CLICKS (ID NUMBER, RECORD_METADATA VARIANT); \
         CREATE PIPE DEMO.KAFKA.CLICKS AS COPY INTO DEMO.KAFKA.CLICKS (ID, RECORD_METADATA) \
         FROM (SELECT $1:ID, $1:RECORD_METADATA FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING')))",
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("sink.properties");
    std::fs::write(
        &file,
        "name=pipes\ntopics=clicks,views\nsnowflake.topic2table.map=clicks:CLICKS,views:VIEWS\n",
    )
    .expect("the connector file");
    let mut cmd = Command::new(bin());
    cmd.arg("check")
        .args(["--brokers", &lab.brokers(), "--group", "pipes"])
        .args(["--database", DATABASE, "--schema", SCHEMA])
        .arg("--connector-config")
        .arg(&file);
    lab.connect(&mut cmd);
    let (out, plan) = run_json(&mut cmd);
    assert!(out.success, "{}", out.stderr);
    let topics = plan["topics"].as_array().expect("topics");
    let summary: Vec<_> = topics
        .iter()
        .map(|t| {
            (
                t["topic"].as_str().unwrap_or_default(),
                t["pipe"].as_str().unwrap_or_default(),
                t["pipe_state"].as_str().unwrap_or_default(),
                t["table_state"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("clicks", "CLICKS", "exists", "exists"),
            ("views", "VIEWS-STREAMING", "to_be_created", "to_be_created"),
        ],
        "{plan:#}"
    );
    assert!(lab
        .emulator()
        .query(r#"SELECT * FROM "DEMO.KAFKA.VIEWS""#)
        .is_err());
    assert_eq!(writes(&lab).1, 0);
}

/// A listed topic the brokers do not have: exit 1 naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_topic_is_named() {
    let lab = lab(&[("events", 1)]).await;
    let out = run(check(&lab, "g").args(["--topic", "evnets", "--pipe", PIPE]));
    assert!(!out.success, "{}", out.stdout);
    assert!(
        out.stderr.contains("topic evnets: ")
            && out
                .stderr
                .contains("it does not exist, or this consumer's principal may not"),
        "{}",
        out.stderr
    );
    assert!(out
        .stdout
        .contains("topic evnets (--topic): partitions not known"));
}

/// A key Snowflake does not know: exit 1, Snowflake refusing the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_snowflake_refuses_is_named() {
    let lab = lab(&[("events", 1)]).await;
    let other = lab.dir().join("other.p8");
    let pair = KeyPair::generate().expect("a key pair");
    snowpipe_emulator::write_private_key(&other, pair.private_key_pem()).expect("key file");
    let (out, plan) = run_json(
        check(&lab, "g")
            .args(["--topic", "events", "--pipe", PIPE])
            .env("SNOWFLAKE_PRIVATE_KEY_FILE", &other),
    );
    assert!(!out.success);
    assert!(
        out.stderr.contains("Snowflake refused the connection"),
        "{}",
        out.stderr
    );
    assert_eq!(plan["snowflake"]["connected"], false);
    assert_eq!(plan["kafka"]["reachable"], true);
    assert_eq!(plan["topics"][0]["pipe_state"], "unknown");
}

/// After a run of the sink: each channel's committed token, the group's offset (the token +
/// 1, committed by the run's hand-over) and the start (the token + 1), in both formats.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_run_the_committed_tokens_and_group_offsets_are_shown() {
    let lab = lab(&[("events", 2)]).await;
    produce_per_partition(&lab, "events", 2, 5).await;
    run(lab
        .instance(&bin(), "events", "ran")
        .args(["--until-idle", "2s"]))
    .ok();
    assert_eq!(lab.landed().expect("table").len(), 10);
    let before = writes(&lab);
    let offsets = group_offsets(&lab, "ran", "events", 2);

    let (out, plan) = run_json(check(&lab, "ran").args(["--topic", "events", "--pipe", PIPE]));
    assert!(out.success, "{}", out.stderr);
    for c in plan["topics"][0]["channels"].as_array().expect("channels") {
        assert_eq!(c["exists"], true, "{c}");
        assert_eq!(c["committed_token"], "4", "{c}");
        assert_eq!(c["group_offset"], 5, "{c}");
        assert_eq!(c["start"], 5, "{c}");
        assert_eq!(c["start_reason"], "the committed token + 1", "{c}");
    }
    let out = run(check(&lab, "ran").args(["--topic", "events", "--pipe", PIPE])).ok();
    assert!(
        out.stdout.lines().any(|l| l.contains("ran_events_1")
            && l.contains("  4  ")
            && l.contains("5: the committed token + 1")),
        "{}",
        out.stdout
    );
    assert_eq!(writes(&lab), before);
    assert_eq!(group_offsets(&lab, "ran", "events", 2), offsets);
    assert_eq!(offsets, [Some(5), Some(5)]);
}

/// A registry `--value-format`: the registry refusing the credentials is a problem; with
/// them it answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_that_refuses_the_credentials_is_named() {
    let lab = lab(&[("events", 1)]).await;
    let (url, asked) = registry(Default::default()).await;
    let avro = |cmd: &mut Command| {
        cmd.args(["--topic", "events", "--pipe", PIPE]).args([
            "--value-format",
            "avro",
            "--schema-registry-url",
            &url,
        ]);
    };
    let mut cmd = check(&lab, "g");
    avro(&mut cmd);
    let out = run(&mut cmd);
    assert!(!out.success);
    assert!(
        out.stderr
            .contains("refuses the sink's credentials (HTTP 401"),
        "{}",
        out.stderr
    );
    assert!(out
        .stdout
        .contains(&format!("registry   {url}: DOES NOT ANSWER")));
    let mut cmd = check(&lab, "g");
    avro(&mut cmd);
    let (out, plan) = run_json(
        cmd.args(["--schema-registry-basic-auth", "env:TEST_SR_AUTH"])
            .env("TEST_SR_AUTH", CREDENTIALS),
    );
    assert!(out.success, "{}", out.stderr);
    assert_eq!(plan["registry"]["answers"], true);
    assert_eq!(plan["registry"]["urls"][0], url.as_str());
    assert_eq!(asked.lock().unwrap().get("/schemas/ids/0"), Some(&2));
}

/// Brokers that do not answer: exit 1 naming them (after the check's Kafka timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokers_that_cannot_be_reached_are_named() {
    let lab = lab(&[("events", 1)]).await;
    let out = run(check_at(&lab, "127.0.0.1:9", "g").args(["--topic", "events", "--pipe", PIPE]));
    assert!(!out.success);
    assert!(
        out.stderr
            .contains("cannot reach the Kafka brokers 127.0.0.1:9 within 10s"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("NOT REACHABLE"), "{}", out.stdout);
}
