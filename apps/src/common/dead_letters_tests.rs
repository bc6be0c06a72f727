use std::time::Duration;

use serde_json::json;
use snowpipe_emulator::EmulatorConfig;

use super::*;
use crate::common::all_in_one::{connect_embedded, start_embedded};

const DDL: &str = "CREATE DATABASE D; CREATE SCHEMA D.S; \
                   CREATE TABLE D.S.DLQ (SOURCE_KEY NUMBER, REASON VARCHAR);";

fn letters(keys: std::ops::RangeInclusive<u64>) -> Vec<(serde_json::Value, u64)> {
    keys.map(|k| (json!({"SOURCE_KEY": k, "REASON": "bad"}), k))
        .collect()
}

/// Across a crash, a dead letter lands once: what was settled is covered after a reopen and
/// skipped; what was appended and dropped before its commit is not covered, and is appended
/// again; the table holds each key once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopened_channel_covers_what_was_committed_and_nothing_else() {
    let mut config = EmulatorConfig::for_tests().with_ddl(DDL);
    config.strict_offsets = true;
    config.commit_delay = Duration::from_millis(300);
    let (emulator, builder) = start_embedded(config, "LAB").await.unwrap();
    let client = connect_embedded(builder).await.unwrap();
    let pipe = client.pipe("D", "S", "DLQ-STREAMING");
    let wait = Duration::from_secs(30);

    let mut first = DeadLetterChannel::<u64>::open(&pipe, "dlq").await.unwrap();
    assert!(first.covered().is_none());
    first.append(letters(1..=3)).await.unwrap();
    first.settle(wait).await.unwrap();
    assert!(first.covers(&3) && !first.covers(&4));
    // Appended, then the process "dies" before the commit.
    first.append(letters(4..=5)).await.unwrap();
    assert_eq!(first.stored(), 5);
    drop(first);

    let mut second = DeadLetterChannel::<u64>::open(&pipe, "dlq").await.unwrap();
    let covered = *second.covered().expect("the settled letters are committed");
    assert!((3..=5).contains(&covered), "{covered}");
    let again: Vec<_> = letters(1..=6)
        .into_iter()
        .filter(|(_, k)| !second.covers(k))
        .collect();
    assert_eq!(again.first().map(|(_, k)| *k), Some(covered + 1));
    second.append(again).await.unwrap();
    let status = second.close(wait).await.unwrap();
    assert_eq!(status.committed_offset_token, Some(OffsetToken::from(6)));

    let rows = emulator
        .query("SELECT COUNT(*), COUNT(DISTINCT SOURCE_KEY) FROM \"D.S.DLQ\"")
        .unwrap();
    assert_eq!(
        (rows[0][0].as_u64(), rows[0][1].as_u64()),
        (Some(6), Some(6))
    );
}

/// A committed token that is not a key is refused at the open, naming the channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_is_not_a_place_is_refused_naming_the_channel() {
    let mut config = EmulatorConfig::for_tests().with_ddl(DDL);
    config.strict_offsets = true;
    let (_emulator, builder) = start_embedded(config, "LAB").await.unwrap();
    let client = connect_embedded(builder).await.unwrap();
    let pipe = client.pipe("D", "S", "DLQ-STREAMING");
    let channel = pipe.open_channel("dlq").await.unwrap();
    channel
        .append(
            Rows::serde([json!({"SOURCE_KEY": 1, "REASON": "x"})]),
            Positions::at(OffsetToken::new("not-a-key").unwrap()),
        )
        .await
        .unwrap();
    channel
        .close_with(CloseOptions::default().wait_for_commit(true))
        .await
        .unwrap();
    let e = DeadLetterChannel::<u64>::open(&pipe, "dlq")
        .await
        .err()
        .expect("refused");
    let e = format!("{e:#}");
    assert!(
        e.contains("dlq") && e.contains("not-a-key") && e.contains("not a key"),
        "{e}"
    );
}
