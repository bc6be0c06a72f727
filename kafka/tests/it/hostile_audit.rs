//! The hostile-input suite (issue 81, item 21) on `snowpipe-kafka audit`: the table it reads,
//! holding rows written by the test through the SDK (raw NDJSON, so duplicate keys and numbers
//! past i64 reach the table as written), beside a topic of the mock cluster.
//!
//! Each case gets a topic of its own with 20 records and the 20 genuine rows the connector
//! would have written for them (trusted push times), then hostile rows of one class:
//! `RECORD_METADATA` with 1 MB keys or a 1 MB offset, nested 100 deep, thousands of copies and
//! more holes than `MAX_HOLES`, offsets and partitions past i32/i64, negative, a float, a
//! string, NaN-like text, not an object, duplicate keys. A hostile row whose metadata is not
//! what a writer writes (an offset or partition that is not an integer, values as text)
//! claims an offset the genuine rows hold and a push time earlier than theirs, as does a copy
//! shaped as a writer's but for one key no writer writes (a 1 MiB key, `x`); rows well formed
//! but for their depth or a duplicate key get offsets of their own. The emulator rejects a row with a key
//! twice in any object (Snowflake's JSON is strict), so the duplicate-key rows never land
//! whichever copy a parser would keep. Asserted, for `audit` and then
//! `audit --apply`: no crash, within 60 s and the memory budget + 64 MiB; the report counts
//! every genuine offset (none a gap, none rejected: each hostile row is also written as one
//! the server rejects, `RECORD_METADATA` first, so the table's error table, which the audit
//! reads, holds the same claims); and after `--apply` every genuine row is still there,
//! exactly once: no hostile row was kept in place of one. `HOSTILE_SEED` / `HOSTILE_CASES` /
//! `HOSTILE_ONLY`: see `hostile/README.md`.
#![cfg(unix)]

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use snowpipe_hostile::gen::{self, Class};
use snowpipe_hostile::{check, Case, Input, Limits, Outcome, Rng, Suite, MIB};
use snowpipe_kafka_lab::demo::{Lab, DATABASE, PIPE, SCHEMA};
use snowpipe_streaming::{OffsetToken, Positions, Rows, StreamingIngestClient};

use crate::audit::{append_genuine, table_rows};
use crate::common::{bin, client, lab, produce_per_partition};

/// Records (and genuine rows) per case's topic.
const RECORDS: i64 = 20;

fn limits() -> Limits {
    let mut l = Limits::with_budget(256 * MIB);
    l.wall = Duration::from_secs(60);
    l
}

fn audit(lab: &Lab, topic: &str, apply: bool) -> Outcome {
    let mut cmd = Command::new(bin());
    cmd.arg("audit")
        .args(["--brokers", &lab.brokers(), "--group", "hostile"])
        .args(["--database", DATABASE, "--schema", SCHEMA])
        .args(["--topic", topic, "--pipe", PIPE, "--format", "json"]);
    if apply {
        cmd.args(["--apply", "--idle-for", "1s"]);
    }
    lab.connect(&mut cmd);
    snowpipe_hostile::run(cmd, Input::Null, &limits()).expect("start snowpipe-kafka")
}

/// Appends raw NDJSON lines through channel `name` and waits for their commit.
async fn append_raw(client: &StreamingIngestClient, name: &str, lines: &[Vec<u8>]) {
    if lines.is_empty() {
        return;
    }
    let ch = client
        .pipe(DATABASE, SCHEMA, PIPE)
        .open_channel(name)
        .await
        .expect("open");
    let mut body = Vec::new();
    for l in lines {
        body.extend_from_slice(l);
        body.push(b'\n');
    }
    let n = lines.len() as u64;
    ch.append(
        Rows::ndjson(body),
        Positions::numbered(1..=n).expect("numbered"),
    )
    .await
    .expect("append");
    ch.wait_for_commit(&OffsetToken::from(n), Duration::from_secs(60))
        .await
        .expect("committed");
    ch.close().await.expect("close");
}

/// A hostile row: `meta` is `RECORD_METADATA`'s JSON text as written.
fn raw_row(id: i64, meta: &str) -> Vec<u8> {
    format!(r#"{{"ID":{id},"KIND":"hostile","AMOUNT":0,"RECORD_METADATA":{meta}}}"#).into_bytes()
}

/// The row of `line` (a [`raw_row`]) the server rejects (its `ID` not a number), with its
/// `RECORD_METADATA` first, as a writer writes it: the line lands in the table's error table,
/// which the audit reads. `None` for a line [`raw_row`] did not make.
fn rejected_row(line: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(line).ok()?;
    let rest = text.strip_prefix(r#"{"ID":"#)?;
    let meta = rest
        .split_once(r#","KIND":"hostile","AMOUNT":0,"RECORD_METADATA":"#)?
        .1
        .strip_suffix('}')?;
    Some(format!(r#"{{"RECORD_METADATA":{meta},"ID":"x","KIND":"rejected"}}"#).into_bytes())
}

/// The hostile rows of `class` for `topic` (ids from `id`).
fn hostile_rows(class: Class, rng: &mut Rng, topic: &str, id: i64) -> (Vec<Vec<u8>>, String) {
    let o = rng.below(RECORDS as u64) as i64;
    // Valid but for the class: an offset the genuine rows hold, an earlier push time.
    let base = |offset: &str| {
        format!(
            r#"{{"topic":"{topic}","partition":0,"offset":{offset},"CreateTime":1,"SnowflakeConnectorPushTime":2"#
        )
    };
    let mut rows = Vec::new();
    let what = match class {
        Class::Size => {
            let mut key = Vec::new();
            gen::long_run(&mut key, 1 << 20, b'k');
            let key = String::from_utf8(key).unwrap();
            // Shaped as a writer's copy of a genuine offset but for one key no writer writes
            // (a 1 MiB one, a short one): untrusted by the keys, never kept over the genuine.
            rows.push(raw_row(
                id,
                &format!(r#"{},"{key}":1}}"#, base(&o.to_string())),
            ));
            rows.push(raw_row(
                id + 2,
                &format!(r#"{},"x":1}}"#, base(&o.to_string())),
            ));
            rows.push(raw_row(
                id + 1,
                &format!(r#"{}}}"#, base(&format!("\"{o}{key}\""))),
            ));
            "a 1 MiB key and an extra key at a genuine offset, a 1 MiB offset"
        }
        Class::Depth => {
            let mut deep = Vec::new();
            gen::nested_json(&mut deep, 100, rng);
            let deep = String::from_utf8(deep).unwrap();
            rows.push(raw_row(id, &format!(r#"{}}}"#, base(&deep))));
            // Shaped as a writer's but for an extra key holding a value nested 100 deep.
            rows.push(raw_row(
                id + 1,
                &format!(r#"{},"x":{deep}}}"#, base(&o.to_string())),
            ));
            "nested 100 deep"
        }
        Class::Count => {
            // Copies of one offset without a push time, and holes past MAX_HOLES above the log.
            for k in 0..2_000 {
                rows.push(raw_row(
                    id + k,
                    &format!(r#"{{"topic":"{topic}","partition":0,"offset":{o}}}"#),
                ));
            }
            for k in 0..10_050 {
                let far = 1_000 + 2 * k;
                rows.push(raw_row(
                    id + 2_000 + k,
                    &format!("{}}}", base(&far.to_string())),
                ));
            }
            "2,000 copies, 10,050 holes"
        }
        Class::Number => {
            for (k, n) in [
                format!("{o}.4"),
                format!("{}.6", o - 1),
                "1e30".to_owned(),
                "-1".to_owned(),
                "9223372036854775808".to_owned(),
                format!("{o}e0"),
                gen::edge_number(rng),
            ]
            .iter()
            .enumerate()
            {
                rows.push(raw_row(id + k as i64, &format!("{}}}", base(n))));
            }
            rows.push(raw_row(id + 10, &format!(
                r#"{{"topic":"{topic}","partition":2147483648,"offset":{o},"CreateTime":1,"SnowflakeConnectorPushTime":2}}"#
            )));
            rows.push(raw_row(id + 11, &format!(
                r#"{{"topic":"{topic}","partition":-4294967296,"offset":{o},"CreateTime":1,"SnowflakeConnectorPushTime":2}}"#
            )));
            "offsets as floats, past i64, negative; partitions past i32"
        }
        Class::Encoding => {
            for (k, n) in [
                format!("\"{o}\""),
                format!("\" {o}\""),
                "\"NaN\"".into(),
                format!("\"{o}\\u0000\""),
            ]
            .iter()
            .enumerate()
            {
                rows.push(raw_row(id + k as i64, &format!("{}}}", base(n))));
            }
            rows.push(raw_row(id + 9, &format!(
                r#"{{"topic":"{topic}\u0000","partition":0,"offset":{o},"CreateTime":1,"SnowflakeConnectorPushTime":2}}"#
            )));
            "offsets as text, a NUL in the topic"
        }
        Class::Claim => {
            for (k, m) in ["\"x\"", "5", &format!("[0,{o}]"), "null", "true"]
                .iter()
                .enumerate()
            {
                rows.push(raw_row(id + k as i64, m));
            }
            rows.push(raw_row(id + 9, &format!(
                r#"{{"topic":"{topic}","partition":"0","offset":"{o}","CreateTime":"1","SnowflakeConnectorPushTime":"2"}}"#
            )));
            "metadata not an object; every value a string"
        }
        Class::Reserved => {
            // Which of two keys a parser keeps is its own: at an offset of their own.
            let own = RECORDS + 5;
            rows.push(raw_row(
                id,
                &format!(r#"{},"offset":{o}}}"#, base(&own.to_string())),
            ));
            rows.push(raw_row(id + 1, &format!(
                r#"{{"topic":"{topic}","partition":0,"offset":{own},"CreateTime":1,"SnowflakeConnectorPushTime":9999999,"SnowflakeConnectorPushTime":2}}"#
            )));
            "duplicate keys in RECORD_METADATA"
        }
    };
    (rows, what.to_owned())
}

/// The genuine rows of `topic` in the table: offset → copies.
fn genuine(lab: &Lab, topic: &str) -> std::collections::BTreeMap<i64, usize> {
    let mut out = std::collections::BTreeMap::new();
    for (kind, meta) in table_rows(lab) {
        if kind == "genuine" && meta["topic"] == topic {
            if let Some(o) = meta["offset"].as_i64() {
                *out.entry(o).or_default() += 1;
            }
        }
    }
    out
}

fn check_run(case: &Case<Class>, o: &Outcome, topic: &str) -> Value {
    check::no_crash(case, o);
    check::rss_within(case, o, &limits());
    if !matches!(o.code, Some(0 | 1)) {
        case.fail(format!(
            "audit did not report (exit 0 or 1): {}",
            o.summary()
        ));
    }
    let report: Value = serde_json::from_str(&o.stdout_text())
        .unwrap_or_else(|e| case.fail(format!("the report is not JSON ({e}): {}", o.summary())));
    let part = report["tables"][0]["partitions"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|p| p["topic"] == topic && p["partition"] == 0)
        })
        .cloned()
        .unwrap_or_else(|| case.fail(format!("no partition 0 in the report: {report}")));
    if part["rejected"].as_u64() != Some(0) {
        case.fail(format!(
            "an offset the table holds reported rejected (the error table's claims): {part}"
        ));
    }
    let gaps = part["gaps"].as_array().cloned().unwrap_or_default();
    if let Some(g) = gaps
        .iter()
        .find(|g| g["from"].as_i64().is_some_and(|f| f < RECORDS))
    {
        case.fail(format!("a genuine offset reported missing: {g} in {part}"));
    }
    part
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_audit() {
    run_suite().await;
}

async fn run_suite() {
    let suite = Suite::from_env("audit", Class::ALL.len());
    let cases = suite.cases(&Class::ALL);
    let topics: Vec<String> = cases
        .iter()
        .map(|c| format!("hostile_{}", c.index))
        .collect();
    let spec: Vec<(&str, i32)> = topics.iter().map(|t| (t.as_str(), 1)).collect();
    let lab = lab(&spec).await;
    let client = client(&lab).await;
    let mut failures = Vec::new();
    for (mut case, topic) in cases.into_iter().zip(&topics) {
        produce_per_partition(&lab, topic, 1, RECORDS).await;
        append_genuine(&client, topic, &format!("genuine_{topic}"), RECORDS).await;
        let (lines, what) = hostile_rows(case.class, &mut case.rng, topic, 1_000_000);
        append_raw(&client, &format!("hostile_{topic}"), &lines).await;
        // The same claims in rows the server rejects: into the error table.
        let rejected: Vec<Vec<u8>> = lines.iter().filter_map(|l| rejected_row(l)).collect();
        append_raw(&client, &format!("rejected_{topic}"), &rejected).await;
        let (lab, topic) = (&lab, topic.as_str());
        let result = snowpipe_hostile::attempt(|| {
            let o = audit(lab, topic, false);
            eprintln!(
                "hostile audit case {} ({what}): {}",
                case.index,
                o.summary().lines().next().unwrap_or("")
            );
            check_run(&case, &o, topic);
            let o = audit(lab, topic, true);
            eprintln!(
                "hostile audit case {} --apply: {}",
                case.index,
                o.summary().lines().next().unwrap_or("")
            );
            check_run(&case, &o, topic);
            let kept = genuine(lab, topic);
            let lost: Vec<i64> = (0..RECORDS).filter(|o| kept.get(o) != Some(&1)).collect();
            if !lost.is_empty() {
                case.fail(format!(
                    "{what}: after --apply the genuine rows of offsets {lost:?} are gone or \
                     doubled (kept {kept:?}): {}",
                    o.summary()
                ));
            }
        });
        failures.extend(result.err());
    }
    client.close().await.ok();
    // The error table was fed: the claims reached the audit's reading.
    let logged = lab
        .emulator()
        .query(r#"SELECT COUNT(*) FROM "ERROR_TABLE(DEMO.KAFKA.EVENTS)""#)
        .expect("the error table");
    assert!(
        logged[0][0].as_i64().unwrap_or(0) > 0,
        "no rejected row reached the error table: {logged:?}"
    );
    suite.finish(failures);
}
