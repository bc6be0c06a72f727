//! The hostile-input suite's surfaces of the applications (issue 81, item 21; the harness is
//! `hostile/`, its README says what every surface asserts): Kinesis records read by the real
//! `sensor_stream consume --source kinesis` (`records.rs`), Lambda events given to the real
//! `sensor_stream lambda` through the Lambda runtime API (`lambda.rs`), and NATS JetStream
//! messages read by the real `sensor_stream consume` (`nats.rs`: the same payloads, the
//! partition key as a header value, and headers at JetStream's 64 KiB), and the rows of a
//! MariaDB table copied by the real `table_replay replay` (`mariadb.rs`), and its key class:
//! tables keyed by what breaks a key's text, followed by the real `table_replay follow`
//! (`mariadb_keys.rs`), and its value class: text in many character sets and colliding
//! column names, through `follow` too (`mariadb_values.rs`); rows too large to send, followed
//! likewise (`mariadb_large.rs`), a binlog connection that goes silent (`mariadb_silence.rs`),
//! and statements a foreign writer runs on a followed table and on the same name in another
//! database (`mariadb_statements.rs`).
//!
//! The record payloads of both are built here (`payload`), as a producer that is not ours
//! would write them, each with what must become of it: a dead letter naming its shard and
//! sequence number, a reading, or either (a value only the table's types decide) — exactly
//! once in all cases, and never lost.
#![cfg(unix)]

mod lambda;
mod mariadb;
mod mariadb_ddl;
mod mariadb_keys;
mod mariadb_large;
mod mariadb_silence;
mod mariadb_statements;
mod mariadb_values;
mod nats;
mod records;

use std::collections::BTreeMap;

use snowpipe_hostile::gen::{self, Class};
use snowpipe_hostile::{Case, Rng};
use snowpipe_streaming::sql::SqlClient;

/// Kinesis' largest record: data and partition key together.
pub(crate) const MAX_RECORD: usize = 1 << 20;

/// What must become of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// A row of `KINESIS_READINGS` with its own shard and sequence number.
    Reading,
    /// A row of `KINESIS_DEAD_LETTERS` naming its shard and sequence number.
    DeadLetter,
    /// One of the two (a value only the table's types decide), exactly once.
    Either,
}

/// One record of a case: its partition key, its data, and what must become of it.
#[derive(Debug, Clone)]
pub(crate) struct Hostile {
    pub key: String,
    pub data: Vec<u8>,
    pub expect: Expect,
}

/// A reading in the seed's format, as the sensors write it.
pub(crate) fn good(i: usize) -> Vec<u8> {
    format!(
        r#"{{"sensorId": {}, "currentTemperature": {}, "status": "{}"}}"#,
        i % 50,
        10 + i % 140,
        ["OK", "WARN", "FAIL"][i % 3]
    )
    .into_bytes()
}

/// A partition key at Kinesis' edges: 1 character, 256, 256 of two bytes each, or controls.
pub(crate) fn edge_key(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => "k".into(),
        1 => "k".repeat(256),
        2 => "é".repeat(256),
        _ => "\t\u{1}\u{7f}key".into(),
    }
}

/// `{"sensorId": 1, "currentTemperature": 20, "status": <value>}` with `status` the raw JSON
/// `value`.
fn with_status(value: &[u8]) -> Vec<u8> {
    let mut out = br#"{"sensorId": 1, "currentTemperature": 20, "status": "#.to_vec();
    out.extend_from_slice(value);
    out.push(b'}');
    out
}

/// A reading whose `status` string makes the whole record `total` bytes.
pub(crate) fn long_status(total: usize, rng: &mut Rng) -> Vec<u8> {
    let frame = with_status(b"\"\"").len();
    let mut value = Vec::with_capacity(total);
    gen::long_json_string(&mut value, total.saturating_sub(frame), rng);
    with_status(&value)
}

/// The most keys [`wide_reading`] takes to stay within `bytes`.
pub(crate) fn keys_within(bytes: usize) -> usize {
    let mut n = bytes / 10;
    while wide_reading(n).len() > bytes {
        n = n * 19 / 20;
    }
    n
}

/// A reading with `n` keys more than its own (which a reading ignores).
pub(crate) fn wide_reading(n: usize) -> Vec<u8> {
    let mut extra = Vec::new();
    gen::many_keys_object(&mut extra, n);
    let mut out = br#"{"sensorId": 2, "currentTemperature": 21, "status": "OK", "#.to_vec();
    out.extend_from_slice(&extra[1..]);
    out
}

/// The hostile records of one case of `class` (one or a few), each with its expectation.
pub(crate) fn payload(class: Class, rng: &mut Rng) -> Vec<Hostile> {
    let key = edge_key(rng);
    let one = |data: Vec<u8>, expect: Expect| Hostile {
        key: key.clone(),
        data,
        expect,
    };
    match class {
        // At Kinesis' limit (a reading row past the 1 MiB row limit), and under it (a status
        // the table's VARCHAR(8) cannot hold).
        Class::Size => vec![
            one(long_status(MAX_RECORD - key.len(), rng), Expect::DeadLetter),
            one(
                long_status(rng.range(9, 512 * 1024) as usize, rng),
                Expect::Either,
            ),
        ],
        Class::Depth => {
            let mut deep = Vec::new();
            gen::nested_json(&mut deep, rng.range(200, 100_000) as usize, rng);
            let data = if rng.below(2) == 0 {
                deep
            } else {
                with_status(&deep)
            };
            vec![one(data, Expect::DeadLetter)]
        }
        Class::Count => {
            let n = rng.range(1_000, 60_000) as usize;
            let mut keys_only = Vec::new();
            gen::many_keys_object(&mut keys_only, n);
            vec![
                one(wide_reading(n), Expect::Reading),
                one(keys_only, Expect::DeadLetter),
            ]
        }
        Class::Number => {
            let n = gen::edge_number(rng);
            let data = match rng.below(2) {
                0 => format!(r#"{{"sensorId": 3, "currentTemperature": {n}, "status": "OK"}}"#),
                _ => format!(r#"{{"sensorId": {n}, "currentTemperature": 4, "status": "OK"}}"#),
            };
            vec![one(data.into_bytes(), Expect::Either)]
        }
        Class::Encoding => {
            let mut bom = gen::BOM.to_vec();
            bom.extend_from_slice(&good(5));
            let mut utf8 = b"\"bad".to_vec();
            utf8.extend_from_slice(gen::invalid_utf8(rng));
            utf8.push(b'"');
            let mut control = b"\"c".to_vec();
            control.extend_from_slice(gen::control_chars(rng));
            control.push(b'"');
            vec![
                one(bom, Expect::Either),
                one(with_status(&utf8), Expect::DeadLetter),
                one(with_status(&control), Expect::DeadLetter),
            ]
        }
        // Not what it claims to be: not JSON, empty, JSON that is not an object, cut short.
        Class::Claim => {
            let mut cut = good(6);
            cut.truncate(rng.range(1, cut.len() as u64 - 1) as usize);
            let not: [&[u8]; 4] = [b"not json", b"", b"[1,2]", b"\"a string\""];
            vec![
                one(not[rng.below(4) as usize].to_vec(), Expect::DeadLetter),
                one(cut, Expect::DeadLetter),
            ]
        }
        // The columns the path writes itself, sent by the producer; a required key twice.
        Class::Reserved => {
            let forged = gen::reserved_json_object(
                [
                    "SHARD_ID",
                    "SEQUENCE_NUMBER",
                    "PARTITION_KEY",
                    "INGESTED_AT",
                ][rng.below(4) as usize],
                "\"shardId-999999999999\"",
                r#""sensorId": 7, "currentTemperature": 22, "status": "OK""#,
            );
            let mut twice = Vec::new();
            gen::duplicate_keys_object(&mut twice, "sensorId", rng.range(2, 1_000) as usize);
            vec![
                one(forged.into_bytes(), Expect::Reading),
                one(twice, Expect::DeadLetter),
            ]
        }
    }
}

/// Where each sequence number landed: readings and dead letters, by sequence number, with
/// the shard each row names (and a dead letter's error).
#[derive(Debug, Default)]
pub(crate) struct Landed {
    pub readings: BTreeMap<String, Vec<String>>,
    pub dead: BTreeMap<String, Vec<(String, String)>>,
}

impl Landed {
    /// Both tables, read through the SQL API.
    pub(crate) async fn read(sql: &SqlClient) -> Landed {
        let mut out = Landed::default();
        let rows = |statement: &'static str| async move {
            sql.query(statement)
                .await
                .unwrap_or_else(|e| panic!("{statement}: {e}"))
                .rows
        };
        for r in rows("SELECT SEQUENCE_NUMBER, SHARD_ID FROM KINESIS_READINGS").await {
            let text = |i: usize| r[i].clone().unwrap_or_default();
            out.readings.entry(text(0)).or_default().push(text(1));
        }
        for r in rows("SELECT SEQUENCE_NUMBER, SHARD_ID, ERROR FROM KINESIS_DEAD_LETTERS").await {
            let text = |i: usize| r[i].clone().unwrap_or_default();
            out.dead
                .entry(text(0))
                .or_default()
                .push((text(1), text(2)));
        }
        out
    }

    /// `seq` of `shard` landed exactly once as `expect` says; fails `case` otherwise.
    pub(crate) fn check<C: std::fmt::Debug>(
        &self,
        case: &Case<C>,
        shard: &str,
        seq: &str,
        expect: Expect,
    ) {
        let readings = self.readings.get(seq).map_or(&[][..], Vec::as_slice);
        let dead = self.dead.get(seq).map_or(&[][..], Vec::as_slice);
        let what = format!(
            "record {shard} {seq} (expected {expect:?}): {} reading(s) {readings:?}, {} dead \
             letter(s) {dead:?}",
            readings.len(),
            dead.len()
        );
        if readings.len() + dead.len() != 1 {
            case.fail(format!("not exactly once: {what}"));
        }
        match expect {
            Expect::Reading if readings.len() != 1 => case.fail(format!("not a reading: {what}")),
            Expect::DeadLetter if dead.len() != 1 => {
                case.fail(format!("not a dead letter: {what}"))
            }
            _ => {}
        }
        let named = readings.iter().all(|s| s == shard) && dead.iter().all(|(s, _)| s == shard);
        if !named {
            case.fail(format!("the row does not name its shard: {what}"));
        }
    }
}
