//! Moving from Snowflake's Kafka connector (v4): the connector landed part of a topic under its
//! own channel names, with each message's Kafka offset as its row's offset token, and stopped
//! mid-stream; `snowpipe-kafka --connector-name` in a new consumer group finishes the topic.
//! Every message is in the table once, and only the connector's channels were ever opened.
//!
//! The connector is played by the test, through the SDK, as the connector writes
//! (`PartitionChannelManager.makeChannelName`: one channel per partition on the table's default
//! pipe, named `<connector name sanitized>_<topic>_<partition>`; offset token = offset; a
//! `RECORD_METADATA` object).
#![cfg(unix)]

use snowpipe_streaming::{Positions, Rows};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use snowpipe_emulator::faults::Endpoint;
use snowpipe_kafka_lab::demo::{Lab, DATABASE, PIPE, SCHEMA};
use snowpipe_streaming::OffsetToken;

use crate::common::{bin, client, lab, produce_per_partition, run};

const TOPIC: &str = "orders";
const PARTITIONS: i32 = 4;
const PER_PARTITION: i64 = 40;
/// The connector's `name`.
const CONNECTOR: &str = "snowflake-sink";
/// How the connector names its channels' prefix for `snowflake-sink`, from a connector log
/// (`SNOWFLAKE_SINK_1996731346_test_table_0`), not from the sink's code.
const CHANNEL_PREFIX: &str = "SNOWFLAKE_SINK_1996731346";
/// How far the connector got on each partition before it stopped (messages landed): one
/// partition nearly done, one barely started, one with a single row, one never started.
const LANDED_BY_CONNECTOR: [i64; 4] = [33, 5, 1, 0];

fn channel(partition: i32) -> String {
    format!("{CHANNEL_PREFIX}_{TOPIC}_{partition}")
}

/// Every message of the topic (`(partition, offset) → id`) is in the lab's table once.
fn assert_the_table_is_the_topic_once(lab: &Lab, messages: BTreeMap<(i32, i64), i64>) {
    let mut seen: HashMap<(i32, i64), i64> = HashMap::new();
    for (id, p, o) in lab.landed().expect("table") {
        assert!(seen.insert((p, o), id).is_none(), "{p}/{o} landed twice");
    }
    let expected: HashMap<(i32, i64), i64> = messages.into_iter().collect();
    assert_eq!(seen, expected, "the table is the topic, once");
}

/// The channels either writer opened on the emulator.
fn opened_channels(lab: &Lab) -> BTreeSet<String> {
    lab.emulator()
        .requests()
        .into_iter()
        .filter(|r| r.endpoint == Endpoint::OpenChannel)
        .filter_map(|r| r.channel)
        .collect()
}

/// The connector lands the first `landed` messages of `partition` under its channel name,
/// offsets as tokens, as the connector writes rows, and returns the channel still open.
async fn connector_lands(
    client: &snowpipe_streaming::StreamingIngestClient,
    messages: &BTreeMap<(i32, i64), i64>,
    partition: i32,
    landed: i64,
) -> snowpipe_streaming::Channel {
    let ch = client
        .pipe(DATABASE, SCHEMA, PIPE)
        .open_channel(&channel(partition))
        .await
        .expect("open");
    assert_eq!(ch.latest_committed_offset_token(), None);
    let rows: Vec<_> = messages
        .range((partition, 0)..(partition, landed))
        .map(|(&(p, o), &id)| {
            let row = serde_json::json!({
                "ID": id, "KIND": "order", "AMOUNT": o,
                "RECORD_METADATA": {"topic": TOPIC, "partition": p, "offset": o},
            });
            (row, OffsetToken::new(o.to_string()).expect("token"))
        })
        .collect();
    let last = rows.last().expect("rows").1.clone();
    let (rows, tokens): (Vec<_>, Vec<_>) = rows.into_iter().unzip();
    ch.append(Rows::serde(rows), Positions::per_row(tokens))
        .await
        .expect("append");
    ch.wait_for_commit(&last, Duration::from_secs(30))
        .await
        .expect("committed");
    ch
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sink_finishes_what_the_connector_started_each_message_once() {
    let lab = lab(&[(TOPIC, PARTITIONS)]).await;

    // The topic: 40 messages on each partition, ids unique across the topic.
    let messages = produce_per_partition(&lab, TOPIC, PARTITIONS, PER_PARTITION).await;

    // The connector lands the first messages of each partition, then stops. Partition 0's
    // channel it never closes (a connector still running, or stuck): the sink's open fences it.
    let client = client(&lab).await;
    let mut still_open = None;
    for (p, &landed) in (0..PARTITIONS).zip(LANDED_BY_CONNECTOR.iter()) {
        if landed == 0 {
            continue; // the connector never got to this partition
        }
        let ch = connector_lands(&client, &messages, p, landed).await;
        if p == 0 {
            still_open = Some(ch);
        } else {
            ch.close().await.expect("close");
        }
    }
    let committed_by_connector = lab.landed_offsets().expect("table").len();
    let expected_by_connector: i64 = LANDED_BY_CONNECTOR.iter().sum();
    assert_eq!(
        i64::try_from(committed_by_connector).expect("count"),
        expected_by_connector
    );

    // snowpipe-kafka, in a consumer group of its own, continues the connector's channels.
    let out = run(lab.instance(&bin(), TOPIC, "orders-to-snowflake").args([
        "--connector-name",
        CONNECTOR,
        "--until-idle",
        "3s",
    ]))
    .ok();
    let stderr = &out.stderr;
    let fence_lines: Vec<_> = stderr
        .lines()
        .filter(|l| l.contains("continuing Snowflake's Kafka connector"))
        .collect();
    assert_eq!(fence_lines.len(), 1, "one line at start: {stderr}");
    assert!(
        fence_lines[0].contains(&format!("{CHANNEL_PREFIX}_<topic>_<partition>"))
            && fence_lines[0].contains("fences"),
        "{}",
        fence_lines[0]
    );
    let report = out.report();
    for (p, &landed) in (0..PARTITIONS).zip(LANDED_BY_CONNECTOR.iter()) {
        let part = &report["consumed"][format!("{TOPIC}/{p}")];
        assert_eq!(
            part["rows"].as_i64(),
            Some(PER_PARTITION - landed),
            "partition {p} starts after the connector's committed offset: {report}"
        );
        assert_eq!(
            part["committed"],
            (PER_PARTITION - 1).to_string(),
            "{report}"
        );
    }

    // The connector's fenced channel can no longer write: a late row is refused, never landed.
    let zombie = still_open.expect("partition 0's channel");
    let late = serde_json::json!({
        "ID": -1, "KIND": "late", "AMOUNT": 0,
        "RECORD_METADATA": {"topic": TOPIC, "partition": 0, "offset": PER_PARTITION},
    });
    let token = OffsetToken::new(PER_PARTITION.to_string()).expect("token");
    let refused = match zombie
        .append(Rows::serde([late]), Positions::at(token))
        .await
    {
        Err(e) => Some(e),
        Ok(()) => zombie.flush().await.err(),
    };
    assert!(refused.is_some(), "the fenced connector still wrote");
    drop(zombie);
    client.close().await.ok();

    // Every message once, each with its own id.
    assert_the_table_is_the_topic_once(&lab, messages);

    // Only the connector's channels were opened, by either writer.
    let names: BTreeSet<String> = (0..PARTITIONS).map(channel).collect();
    let listed: BTreeSet<String> = lab.emulator().status()["channels"]
        .as_array()
        .expect("channels")
        .iter()
        .map(|c| c["channel_name"].as_str().expect("name").to_owned())
        .collect();
    assert_eq!(listed, names, "the emulator's channels");
    assert_eq!(
        opened_channels(&lab),
        names,
        "every channel open named a connector channel"
    );
}

/// The same move driven by the connector's own JSON file: `--connector-config` alone names the
/// connector, topic, table, database, schema and the Snowflake connection (no `SNOWFLAKE_*`
/// variable, no `--topic`/`--pipe`); keys without an equivalent are listed by name, and the
/// private key never reaches the output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_json_file_drives_the_same_take_over() {
    const PARTS: i32 = 2;
    const PER: i64 = 20;
    let lab = lab(&[(TOPIC, PARTS)]).await;
    let messages = produce_per_partition(&lab, TOPIC, PARTS, PER).await;
    // The connector landed 7 messages of partition 0, none of partition 1, and stopped.
    let client = client(&lab).await;
    connector_lands(&client, &messages, 0, 7)
        .await
        .close()
        .await
        .expect("close");
    client.close().await.expect("close");

    // The connector's file, as a team has it: the key's base64 body, Connect's own keys, and
    // tuning keys this sink has no use for.
    let pem = std::fs::read_to_string(lab.key_path()).expect("key");
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    let config = serde_json::json!({
        "name": CONNECTOR,
        "config": {
            "connector.class": "com.snowflake.kafka.connector.SnowflakeStreamingSinkConnector",
            "tasks.max": "2",
            "topics": TOPIC,
            "snowflake.topic2table.map": format!("{TOPIC}:{}", snowpipe_kafka_lab::demo::TABLE),
            "snowflake.url.name": lab.emulator().url(),
            "snowflake.user.name": "KAFKA",
            "snowflake.private.key": body,
            "snowflake.database.name": DATABASE,
            "snowflake.schema.name": SCHEMA,
            "snowflake.enable.schematization": "true",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter.schemas.enable": "false",
            "key.converter": "org.apache.kafka.connect.storage.StringConverter",
            "buffer.flush.time": "10",
        }
    });
    let file = lab.dir().join("snowflake-sink.json");
    std::fs::write(&file, config.to_string()).expect("write");
    let mut cmd = std::process::Command::new(bin());
    cmd.args(["--brokers", &lab.brokers(), "--connector-config"])
        .arg(&file)
        .args(["--until-idle", "3s", "--quiet"])
        .args([
            "-X",
            "session.timeout.ms=6000",
            "-X",
            "heartbeat.interval.ms=500",
        ])
        .env_remove("SNOWFLAKE_URL")
        .env_remove("SNOWFLAKE_ACCOUNT")
        .env_remove("SNOWFLAKE_USER")
        .env_remove("SNOWFLAKE_PRIVATE_KEY")
        .env_remove("SNOWFLAKE_PRIVATE_KEY_FILE")
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null());
    if let Some(ca) = lab.emulator().ca_path() {
        cmd.env("SSL_CERT_FILE", ca);
    }
    let stderr = run(&mut cmd).ok().stderr;
    let ignored: Vec<_> = stderr.lines().filter(|l| l.contains("not taken")).collect();
    assert_eq!(ignored.len(), 1, "{stderr}");
    assert!(ignored[0].ends_with("buffer.flush.time"), "{}", ignored[0]);
    assert!(!stderr.contains(&body[10..40]), "the key reached stderr");

    assert_the_table_is_the_topic_once(&lab, messages);
    assert_eq!(
        opened_channels(&lab),
        (0..PARTS).map(channel).collect(),
        "only the connector's channels"
    );
}
