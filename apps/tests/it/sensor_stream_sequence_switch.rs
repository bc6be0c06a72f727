//! Issue 82, item 6: the switch that trusts Kinesis' sequence numbers as they come
//! (`TRUST_SEQUENCE_NUMBERS` for the Lambda handler, `--trust-sequence-numbers` /
//! `SENSOR_STREAM_TRUST_SEQUENCE_NUMBERS` for the consumer), through the real `sensor_stream
//! lambda` binary and the Lambda runtime API (`common::lambda_esm`) into the emulator. No
//! Kinesis server: the events are written here with the numbers each check needs.
//!
//! A 57-digit number breaks only a layout rule (Kinesis gives 56; AWS documents up to 129):
//! without the switch it is refused and the refusal names the switch; with it the record lands,
//! once however often it comes; a number that does not follow the one before it is still
//! refused.
#![cfg(unix)]

use base64::Engine as _;

use crate::common;
use crate::common::lambda_esm::{Instance, Outcome};

const SHARD: &str = "shardId-000000000000";

/// A 57-digit sequence number: 10^56 + `i`.
fn seq(i: u32) -> String {
    format!("1{:056}", i)
}

/// A Lambda Kinesis event of one good reading per number in `seqs`, in that order.
fn event(seqs: &[String]) -> serde_json::Value {
    let records: Vec<serde_json::Value> = seqs
        .iter()
        .map(|s| {
            serde_json::json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": "1",
                    "sequenceNumber": s,
                    "data": base64::engine::general_purpose::STANDARD
                        .encode(br#"{"sensorId": 1, "currentTemperature": 20, "status": "OK"}"#),
                    "approximateArrivalTimestamp": 1_795_685_180.61,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("{SHARD}:{s}"),
                "eventName": "aws:kinesis:record",
                "awsRegion": "us-east-1",
                "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/switch",
            })
        })
        .collect();
    serde_json::json!({ "Records": records })
}

#[test]
fn trust_sequence_numbers_skips_only_the_layout_rules() {
    let rt = common::sensor_stream::runtime();
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = common::sensor_stream::start_emulator(&rt, dir.path());
    let env = |trust: bool| -> Vec<(String, String)> {
        let mut env = common::sensor_stream::kinesis_handler_env(&emulator.url(), &key, "error");
        if trust {
            env.push(("TRUST_SEQUENCE_NUMBERS".into(), "true".into()));
        }
        env
    };
    let bin = common::bin::sensor_stream_bin();
    let (refused, trusted, again, decreasing) = rt.block_on(async {
        let mut strict = Instance::start(&bin, &env(false)).await;
        let refused = strict.invoke(&event(&[seq(1)]), None).await;
        drop(strict);
        let mut trusting = Instance::start(&bin, &env(true)).await;
        let trusted = trusting.invoke(&event(&[seq(1)]), None).await;
        let again = trusting.invoke(&event(&[seq(1)]), None).await;
        let decreasing = trusting.invoke(&event(&[seq(3), seq(2)]), None).await;
        (refused, trusted, again, decreasing)
    });
    // Without the switch: refused, naming the rule and the switch.
    let Outcome::Error(msg) = &refused else {
        panic!("a 57-digit number was not refused: {refused:?}");
    };
    for needle in [
        "at most 56 digits",
        "--trust-sequence-numbers",
        "TRUST_SEQUENCE_NUMBERS=true",
        &seq(1),
    ] {
        assert!(msg.contains(needle), "{needle:?} not in {msg}");
    }
    // With it: the record lands, once, though it came twice.
    for o in [&trusted, &again] {
        assert!(
            matches!(o, Outcome::Response(r) if r["batchItemFailures"].as_array().is_none_or(Vec::is_empty)),
            "{o:?}"
        );
    }
    // A number that does not follow the one before it: still refused, naming both.
    let Outcome::Error(msg) = &decreasing else {
        panic!("a decreasing number was not refused: {decreasing:?}");
    };
    assert!(
        msg.contains(&seq(3)) && msg.contains(&seq(2)) && msg.contains("out of order"),
        "{msg}"
    );
    let sql = common::sensor_stream::sql_client(&emulator.url(), &key);
    let rows = rt
        .block_on(sql.query("SELECT SEQUENCE_NUMBER, SHARD_ID FROM KINESIS_READINGS"))
        .unwrap()
        .rows;
    let got: Vec<(String, String)> = rows
        .into_iter()
        .map(|r| {
            (
                r[0].clone().unwrap_or_default(),
                r[1].clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [(seq(1), SHARD.to_owned())],
        "only the trusted record, once"
    );
}
