//! Rows as users write them — awkward strings, numbers at their limits, nested values, raw
//! JSON, maps keyed by numbers and booleans — appended through a channel to the emulator: the
//! table holds what serde_json says each row is. (The SDK serializes rows with its own writer,
//! `src/json`; that it writes serde_json's exact bytes is property-tested in
//! `src/json/tests.rs`. This checks the meaning, from the user's side, through the channel.)

use crate::common;
use snowpipe_streaming::{Positions, Rows};

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use snowpipe_emulator::Emulator;
use snowpipe_streaming::{Channel, CloseOptions, OffsetToken, StreamingIngestClient};

const DDL: &str = "
CREATE DATABASE IF NOT EXISTS DB;
CREATE SCHEMA IF NOT EXISTS SCH;
CREATE OR REPLACE TABLE T (ID NUMBER, NAME VARCHAR, BIG VARCHAR, RATIO FLOAT, DOC VARIANT,
  RAW VARIANT, BY_NUMBER OBJECT, FLAGS OBJECT, TAGS ARRAY, KIND VARIANT);
";

#[derive(Serialize)]
enum Kind {
    Plain,
    Pair(u8, String),
    Named { when: String },
}

#[derive(Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
struct Row {
    id: u64,
    name: String,
    /// Beyond what a JSON number holds exactly in most readers: sent as text.
    big: String,
    ratio: f64,
    doc: Value,
    /// Raw JSON in one row of ten (such rows are written by serde_json itself).
    raw: Option<Box<RawValue>>,
    by_number: BTreeMap<i64, String>,
    /// Boolean keys in one row of ten (serde_json writes those rows too).
    flags: Option<BTreeMap<bool, u8>>,
    tags: Vec<String>,
    kind: Kind,
}

/// Every control character, quotes, backslashes, U+007F, U+2028, multibyte and astral
/// characters, at every position class (start, middle, end, alone).
fn awkward(i: u64) -> String {
    let pieces = [
        "\"",
        "\\",
        "/",
        "\u{7f}",
        "\u{2028}",
        "é",
        "✓",
        "😀",
        "\n",
        "\r\n",
        "\t",
        "\u{0}",
        "\u{8}",
        "\u{c}",
        "\u{1b}",
        "\u{1f}",
        " ",
        "plain text",
    ];
    let n = pieces.len() as u64;
    (0..=(i % 7))
        .map(|k| pieces[((i * 7 + k * 3) % n) as usize])
        .collect()
}

fn row(id: u64) -> Row {
    let s = awkward(id);
    Row {
        id,
        name: s.clone(),
        big: u128::MAX.to_string(),
        ratio: [0.1, -0.0, 1e300, 5e-324, f64::MAX, 1.5][(id % 6) as usize],
        doc: json!({
            "s": s,
            "n": [i64::MIN, u64::MAX, 0, -1],
            "f": 2.5e-8,
            "nested": {"a": [null, true, false, {"b": s}]},
            "empty": {}, "list": []
        }),
        raw: (id % 10 == 0).then(|| {
            RawValue::from_string(format!("{{\"raw\": [1, 2, {id}], \"s\": \"x\\ty\"}}"))
                .expect("valid raw JSON")
        }),
        by_number: BTreeMap::from([(-(id as i64), s.clone()), (id as i64 + 1, "b".into())]),
        flags: (id % 10 == 5).then(|| BTreeMap::from([(true, 1), (false, 0)])),
        tags: vec![s.clone(), String::new(), "t".into()],
        kind: match id % 3 {
            0 => Kind::Plain,
            1 => Kind::Pair(id as u8, s),
            _ => Kind::Named { when: s },
        },
    }
}

/// An emulator with table `T`, a client of it and channel `name` on the table.
async fn start(name: &str) -> (Emulator, StreamingIngestClient, Channel) {
    let emu = Emulator::start(
        common::emulator::config_with_ddl(DDL).with_commit_delay(Duration::from_millis(20)),
    )
    .await
    .unwrap();
    let client = common::emulator::builder(&emu).build().await.unwrap();
    let ch = client
        .table_pipe("DB", "SCH", "T")
        .open_channel(name)
        .await
        .unwrap();
    (emu, client, ch)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awkward_rows_land_as_serde_json_serializes_them() {
    // Arrange
    let (emu, client, ch) = start("rows").await;
    let n = 120u64;

    // Act: a few appends of typed rows, and the same rows as `serde_json::Value`s.
    for chunk in (0..n).collect::<Vec<_>>().chunks(25) {
        let rows: Vec<Row> = chunk.iter().map(|&id| row(id)).collect();
        ch.append(
            Rows::serde(&rows),
            Positions::span(
                OffsetToken::from(chunk[0])..=OffsetToken::from(chunk[chunk.len() - 1]),
            ),
        )
        .await
        .unwrap();
    }
    let as_values: Vec<Value> = (n..n + 10)
        .map(|id| serde_json::to_value(row(id)).unwrap())
        .collect();
    ch.append(
        Rows::serde(&as_values),
        Positions::span(OffsetToken::from(n)..=OffsetToken::from(n + 9)),
    )
    .await
    .unwrap();
    ch.close_with(CloseOptions::default().wait_for_commit(true))
        .await
        .unwrap();

    // Assert: every column of every row is what serde_json makes of the row.
    let stored = emu
        .query(
            "SELECT ID, NAME, BIG, RATIO, DOC, RAW, BY_NUMBER, FLAGS, TAGS, KIND FROM \"DB.SCH.T\" \
             ORDER BY ID",
        )
        .unwrap();
    assert_eq!(stored.len() as u64, n + 10, "every row once");
    let parse = |v: &Value| -> Value {
        if v.is_null() {
            return Value::Null;
        }
        serde_json::from_str(v.as_str().unwrap_or_else(|| panic!("JSON text, got {v}")))
            .expect("stored JSON parses")
    };
    for (got, id) in stored.iter().zip(0..) {
        let want = serde_json::to_value(row(id)).unwrap();
        assert_eq!(got[0], json!(id), "row {id}");
        assert_eq!(got[1], want["NAME"], "NAME of row {id}");
        assert_eq!(got[2], want["BIG"], "BIG of row {id}");
        assert_eq!(
            got[3].as_f64(),
            want["RATIO"].as_f64(),
            "RATIO of row {id}: {}",
            got[3]
        );
        for (col, key) in [
            (4, "DOC"),
            (5, "RAW"),
            (6, "BY_NUMBER"),
            (7, "FLAGS"),
            (8, "TAGS"),
            (9, "KIND"),
        ] {
            assert_eq!(parse(&got[col]), want[key], "{key} of row {id}");
        }
    }
    client.close().await.unwrap();
    emu.shutdown().await;
}

/// A row whose `Serialize` fails is refused with serde_json's own message and its index,
/// and nothing of the append lands; the channel keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_that_cannot_serialize_is_named_and_the_append_takes_nothing() {
    struct Refuses;
    impl Serialize for Refuses {
        fn serialize<S: serde::Serializer>(&self, _s: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("the ledger is locked"))
        }
    }
    #[derive(Serialize)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    struct Maybe {
        id: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<Refuses>,
    }
    let (emu, client, ch) = start("bad").await;
    let rows = vec![
        Maybe { id: 1, name: None },
        Maybe {
            id: 2,
            name: Some(Refuses),
        },
    ];
    let err = ch
        .append(Rows::serde(&rows), Positions::at(OffsetToken::from(2u64)))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("the ledger is locked"), "{text}");
    assert!(matches!(
        err,
        snowpipe_streaming::Error::Serialization { row_index: 1, .. }
    ));
    ch.append(
        Rows::serde(&[Maybe { id: 3, name: None }]),
        Positions::at(OffsetToken::from(3u64)),
    )
    .await
    .unwrap();
    ch.close_with(CloseOptions::default().wait_for_commit(true))
        .await
        .unwrap();
    let ids = emu
        .query("SELECT ID FROM \"DB.SCH.T\" ORDER BY ID")
        .unwrap();
    assert_eq!(ids, vec![vec![json!(3)]], "only the good append landed");
    client.close().await.unwrap();
    emu.shutdown().await;
}
