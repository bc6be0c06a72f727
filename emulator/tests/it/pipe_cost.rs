//! Issue 56: what one row of a PIPE transform may cost the emulator's process (a child, its
//! CPU and peak RSS from `/proc`): bytes built, copied or compared, bounded per row, and one
//! deadline for an append's rows (docs/SECURITY.md "A pipe's per-row cost").

#![cfg(target_os = "linux")]

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::*;

const SOURCE: &str = "FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING'))";

/// `REPLACE` nested `levels` deep, each level ten times the text before it.
fn tenfold(levels: usize) -> String {
    (0..levels).fold("$1:s".to_owned(), |inner, _| {
        format!("REPLACE({inner}, 'x', 'xxxxxxxxxx')")
    })
}

fn ddl() -> String {
    let chain = vec!["$1:s"; 100].join(" || ");
    let list: Vec<String> = (1..=50_000).map(|i| i.to_string()).collect();
    format!(
        "CREATE DATABASE DB; CREATE SCHEMA SCH; USE SCHEMA DB.SCH; CREATE TABLE T (V VARCHAR);
         CREATE PIPE GROW AS COPY INTO T (V) FROM (SELECT {grow} {SOURCE});
         CREATE PIPE CHAIN AS COPY INTO T (V) FROM (SELECT {chain} {SOURCE});
         CREATE PIPE LIST AS COPY INTO T (V) FROM (SELECT 'kept' {SOURCE} WHERE $1:s IN ({list}));
         CREATE PIPE TRIMS AS COPY INTO T (V) FROM (SELECT TRIM($1:s, $1:c) {SOURCE});
         CREATE PIPE SLOW AS COPY INTO T (V) FROM (SELECT LENGTH({slow}) {SOURCE});",
        grow = tenfold(12),
        list = list.join(", "),
        slow = tenfold(6),
    )
}

/// Appends `body` on a new channel of `pipe`; the channel's status once the append is
/// committed, and the process's CPU meanwhile.
async fn append(emu: &ChildEmulator, pipe: &str, body: String) -> (Value, Duration) {
    let c = Client {
        http: reqwest::Client::new(),
        url: emu.url.clone(),
        token: "any".into(),
    };
    let ct = c.open_on(pipe, "c").await;
    let (_, cpu_before) = emu.peak_rss_and_cpu();
    let channel = c.append_on(pipe, "c", &ct, "1", &body).await;
    let (_, cpu_after) = emu.peak_rss_and_cpu();
    (channel, cpu_after - cpu_before)
}

/// What a row's transform came to.
enum Outcome {
    /// A row error naming the 64 MiB a row may spend.
    Refused,
    Inserted,
    /// Dropped by the pipe's `WHERE`.
    Filtered,
}
use Outcome::*;

/// Transforms that build more than they read: before, a nested `REPLACE` on `x` asked for a
/// terabyte (the process died), 100 `||` over a 2 MB value copied 10 GB, an `IN` list of
/// 50,000 numbers parsed a 1 MB value 50,000 times (50 GB read), and `TRIM` of a 1 MB text by
/// a 1 MB list tried every character of the list at each position (10^12 steps). Each now
/// costs under a second of CPU and adds at most 64 MiB to the process's peak: the rows
/// whose work passes 64 MiB are row errors naming the limit; the list parses the value once
/// (and drops the row: no number matches it) and the trim uses a set (and answers).
#[tokio::test]
async fn a_transforms_work_per_row_is_bounded_in_cpu_and_memory() {
    let emu = ChildEmulator::start(&ddl(), &[]);
    let big = "1".repeat(1 << 20);
    let (started, _) = emu.peak_rss_and_cpu();
    println!("started: peak RSS {} MiB", started >> 20);
    let cases = [
        ("GROW", json!({ "s": "x" }).to_string(), Refused),
        (
            "CHAIN",
            json!({ "s": "y".repeat(2 << 20) }).to_string(),
            Refused,
        ),
        ("LIST", json!({ "s": big }).to_string(), Filtered),
        (
            "TRIMS",
            json!({ "s": "a".repeat(1 << 20), "c": format!("{}a", "b".repeat(1 << 20)) })
                .to_string(),
            Inserted,
        ),
    ];
    for (pipe, body, expected) in cases {
        let (channel, cpu) = append(&emu, pipe, format!("{body}\n")).await;
        let (peak, _) = emu.peak_rss_and_cpu();
        println!(
            "{pipe}: {cpu:?} of CPU, peak RSS {} MiB; {} inserted, {} errors: {}",
            peak >> 20,
            channel["rows_inserted"],
            channel["rows_error_count"],
            channel["last_error_message"]
                .as_str()
                .unwrap_or("")
                .chars()
                .take(160)
                .collect::<String>()
        );
        assert!(cpu <= Duration::from_secs(1), "{pipe}: {cpu:?}");
        // The process's own peak before (its catalog of these pipes, in a debug build) aside:
        // the attacks add no more than the 64 MiB a row may spend.
        assert!(
            peak <= started + (64 << 20),
            "{pipe}: peak RSS {} MiB, {} MiB before the appends",
            peak >> 20,
            started >> 20
        );
        let counts = (&channel["rows_inserted"], &channel["rows_error_count"]);
        match expected {
            Refused => {
                assert_eq!(counts, (&json!(0), &json!(1)), "{pipe}: {channel}");
                let message = channel["last_error_message"].as_str().unwrap();
                assert!(
                    message.contains("emulator's 64 MiB for one row"),
                    "{pipe}: {message}"
                );
            }
            Inserted => assert_eq!(counts, (&json!(1), &json!(0)), "{pipe}: {channel}"),
            Filtered => assert_eq!(counts, (&json!(0), &json!(0)), "{pipe}: {channel}"),
        }
        assert_eq!(channel["rows_parsed"], 1, "{pipe}: {channel}");
    }
}

/// Rows of a few bytes, each with 10 MB of work under the row's bound, add up: 100,000 of
/// them in one 1.2 MB append would take hours of CPU. The append's rows share one deadline
/// (5 s): the process spends at most that and a second, and the rows past it are row
/// errors saying so.
#[tokio::test]
async fn an_appends_transforms_stop_at_its_deadline() {
    let emu = ChildEmulator::start(&ddl(), &[]);
    let body = "{\"s\":\"x\"}\n".repeat(100_000);
    let (channel, cpu) = append(&emu, "SLOW", body).await;
    let errors = channel["rows_error_count"].as_u64().unwrap();
    println!(
        "100,000 rows of 10 MB of work each: {cpu:?} of CPU; {} inserted, {errors} errors: {}",
        channel["rows_inserted"], channel["last_error_message"]
    );
    assert!(cpu <= Duration::from_secs(6), "{cpu:?}");
    assert!(errors > 0 && errors < 100_000, "{channel}");
    assert_eq!(
        channel["rows_inserted"].as_u64().unwrap() + errors,
        100_000,
        "{channel}"
    );
    let message = channel["last_error_message"].as_str().unwrap();
    assert!(
        message.contains("ran past the emulator's time for one request"),
        "{message}"
    );
}
