//! Topics found by a regex, each to its table: one instance subscribes with
//! `--topic-regex '^orders\..*'` and maps topics to tables with the Kafka connector's
//! `snowflake.topic2table.map` syntax and regex replacement (`orders\.(.*):orders_$1`). A
//! matching topic that exists at start and one created while the sink runs both land, each in
//! its own table, once; a topic the regex does not match is not consumed.
#![cfg(unix)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use rdkafka::producer::FutureProducer;
use snowpipe_kafka_lab::demo::{Lab, DATABASE, SCHEMA};

use crate::common::{bin, lab_with_tables, produce_events, signal, variant};
use snowpipe_cli_support::process::Signal;

const EU: &str = "orders.eu";
const US: &str = "orders.us";
const OTHER: &str = "clicks";

const TABLES: &str = "
CREATE OR REPLACE TABLE DEMO.KAFKA.ORDERS_EU (ID NUMBER, KIND VARCHAR, AMOUNT NUMBER, RECORD_METADATA VARIANT);
CREATE OR REPLACE TABLE DEMO.KAFKA.ORDERS_US (ID NUMBER, KIND VARCHAR, AMOUNT NUMBER, RECORD_METADATA VARIANT);
";

type Landed = HashSet<(String, i32, i64)>;

async fn produce(p: &FutureProducer, topic: &str, ids: std::ops::Range<i64>) -> Landed {
    produce_events(p, topic, ids).await.into_iter().collect()
}

/// `(topic, partition, offset)` of every row of `table`, and how many rows it has.
fn landed(lab: &Lab, table: &str) -> (Landed, usize) {
    let rows = lab
        .emulator()
        .query(&format!(
            r#"SELECT RECORD_METADATA FROM "{DATABASE}.{SCHEMA}.{table}""#
        ))
        .expect("table");
    let set = rows
        .iter()
        .map(|r| {
            let meta = variant(&r[0]);
            (
                meta["topic"].as_str().expect("topic").to_owned(),
                i32::try_from(meta["partition"].as_i64().expect("partition")).expect("i32"),
                meta["offset"].as_i64().expect("offset"),
            )
        })
        .collect();
    (set, rows.len())
}

async fn wait_for(lab: &Lab, table: &str, want: &Landed) {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let (got, _) = landed(lab, table);
        if got.len() >= want.len() {
            return;
        }
        assert!(
            Instant::now() < until,
            "{table}: {} of {} rows within 60 s",
            got.len(),
            want.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_regex_lands_each_topic_in_its_mapped_table_also_topics_created_later() {
    let lab = lab_with_tables(&[(EU, 2), (OTHER, 1)], TABLES).await;
    let producer = lab.producer().expect("producer");
    let mut sink = lab
        .instance_of(&bin(), "by-regex")
        .args(["--topic-regex", r"^orders\..*"])
        .args(["--topic2table-map", r"orders\.(.*):orders_$1"])
        .arg("--topic2table-regex-replacement")
        .arg("--metadata")
        .args(["-X", "topic.metadata.refresh.interval.ms=1000"])
        .spawn()
        .expect("spawn snowpipe-kafka");

    let eu = produce(&producer, EU, 0..200).await;
    produce(&producer, OTHER, 0..20).await;
    wait_for(&lab, "ORDERS_EU", &eu).await;

    // A topic the regex matches, created while the sink runs.
    lab.create_topic(US, 2).expect("new topic");
    let us = produce(&producer, US, 200..400).await;
    wait_for(&lab, "ORDERS_US", &us).await;

    signal(&sink, Signal::Term);
    let status = sink.wait().expect("wait");
    assert!(status.success(), "the sink failed: {status}");

    for (table, want) in [("ORDERS_EU", &eu), ("ORDERS_US", &us)] {
        let (got, rows) = landed(&lab, table);
        assert_eq!(&got, want, "{table}: lost or unexpected rows");
        assert_eq!(rows, want.len(), "{table}: rows landed twice");
    }
    // `clicks` does not match: nothing of it anywhere (the lab's own table stays empty).
    let (events, _) = landed(&lab, "EVENTS");
    assert!(events.is_empty(), "{events:?}");
}
