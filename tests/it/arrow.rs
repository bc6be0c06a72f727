//! Arrow record batches appended through a channel to the emulator (feature `arrow`): the
//! table holds what the same values appended as serde rows make of them, column by column,
//! for every kind of column a batch can fill; per-row tokens commit exactly and a resend of a
//! committed batch is told apart by its tokens.

use crate::common;
use snowpipe_streaming::{Positions, Rows};

use std::sync::Arc;
use std::time::Duration;

use serde_json::value::RawValue;
use serde_json::{json, Value};
use snowpipe_emulator::Emulator;
use snowpipe_streaming::arrow::arrow_array::builder::{Int32Builder, ListBuilder};
use snowpipe_streaming::arrow::arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array,
    RecordBatch, StringArray, StructArray, Time64MicrosecondArray, TimestampMicrosecondArray,
    TimestampMillisecondArray,
};
use snowpipe_streaming::arrow::arrow_schema::{DataType, Field};
use snowpipe_streaming::{OffsetToken, StreamingIngestClient};

const COLUMNS: &str = "ID NUMBER, AMOUNT NUMBER(38,2), RATIO FLOAT, NAME VARCHAR, OK BOOLEAN, \
    DIGEST BINARY, DAY DATE, AT_TIME TIME, SEEN_NTZ TIMESTAMP_NTZ, SEEN_LTZ TIMESTAMP_LTZ, \
    SEEN_TZ TIMESTAMP_TZ, TAGS ARRAY, PLACE OBJECT, DOC VARIANT";

const SELECT: &str = "ID, AMOUNT, RATIO, NAME, OK, DIGEST, DAY, AT_TIME, SEEN_NTZ, SEEN_LTZ, \
    SEEN_TZ, TAGS, PLACE, DOC";

/// Rows 0..n of a batch holding every kind of column, some values null.
fn batch(first: i64, n: i64) -> RecordBatch {
    let ids: Vec<i64> = (first..first + n).collect();
    let null_every = |k: i64| move |i: &i64| i % k != 0;
    let mut tags = ListBuilder::new(Int32Builder::new());
    for i in &ids {
        if i % 5 == 4 {
            tags.append_null();
        } else {
            tags.append_value((0..(i % 3)).map(|t| Some(t as i32)));
        }
    }
    let place = StructArray::from(vec![
        (
            Arc::new(Field::new("city", DataType::Utf8, true)),
            Arc::new(StringArray::from_iter(
                ids.iter()
                    .map(|i| (i % 4 != 1).then(|| format!("city \"{i}\""))),
            )) as ArrayRef,
        ),
        (
            Arc::new(Field::new("floor", DataType::Int64, false)),
            Arc::new(Int64Array::from_iter_values(ids.iter().map(|i| i % 7))) as ArrayRef,
        ),
    ]);
    let day = 19_737; // 2024-01-15
    let micros = 1_705_312_800_000_000_i64; // 2024-01-15 10:00:00 UTC
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("ID", Arc::new(Int64Array::from(ids.clone()))),
        (
            "AMOUNT",
            Arc::new(
                Decimal128Array::from_iter(ids.iter().map(|i| {
                    null_every(6)(i).then_some(i128::from(*i) * 1_000_000_000_000_000_007)
                }))
                .with_precision_and_scale(38, 2)
                .unwrap(),
            ),
        ),
        (
            "RATIO",
            Arc::new(Float64Array::from_iter_values(ids.iter().map(|i| {
                match i % 9 {
                    3 => f64::NAN,
                    6 => f64::NEG_INFINITY,
                    _ => *i as f64 / 7.0,
                }
            }))),
        ),
        (
            "NAME",
            Arc::new(StringArray::from_iter(ids.iter().map(|i| {
                null_every(8)(i).then(|| format!("name ✓ {i}\n\"quoted\""))
            }))),
        ),
        (
            "OK",
            Arc::new(BooleanArray::from_iter(
                ids.iter().map(|i| null_every(10)(i).then_some(i % 2 == 0)),
            )),
        ),
        (
            "DIGEST",
            Arc::new(BinaryArray::from_iter(
                ids.iter()
                    .map(|i| null_every(4)(i).then(|| i.to_be_bytes().to_vec())),
            )),
        ),
        (
            "DAY",
            Arc::new(Date32Array::from_iter_values(
                ids.iter().map(|i| day + *i as i32),
            )),
        ),
        (
            "AT_TIME",
            Arc::new(Time64MicrosecondArray::from_iter_values(
                ids.iter().map(|i| (i * 1_234_567) % 86_400_000_000),
            )),
        ),
        (
            "SEEN_NTZ",
            Arc::new(TimestampMicrosecondArray::from_iter_values(
                ids.iter().map(|i| micros + i * 1_000_001),
            )),
        ),
        (
            "SEEN_LTZ",
            Arc::new(
                TimestampMillisecondArray::from_iter_values(
                    ids.iter().map(|i| micros / 1000 + i * 3_600_123),
                )
                .with_timezone("UTC"),
            ),
        ),
        (
            "SEEN_TZ",
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(
                    ids.iter().map(|i| micros + i * 86_400_000_000),
                )
                .with_timezone("Europe/Paris"),
            ),
        ),
        ("TAGS", Arc::new(tags.finish())),
        ("PLACE", Arc::new(place)),
        (
            "DOC",
            Arc::new(StringArray::from_iter_values(
                ids.iter().map(|i| format!("{{\"not parsed\": {i}}}")),
            )),
        ),
    ];
    RecordBatch::try_from_iter(columns).unwrap()
}

/// The same rows as JSON text, written by hand as a serde user would (the decimal as raw JSON:
/// a `Value` would hold it as a double).
fn rows(first: i64, n: i64) -> Vec<Box<RawValue>> {
    let hex = |i: i64| -> String { i.to_be_bytes().iter().map(|b| format!("{b:02X}")).collect() };
    (first..first + n)
        .map(|i| {
            let micros = 1_705_312_800_000_000_i64;
            let ts = |us: i64| {
                chrono::DateTime::from_timestamp_micros(us)
                    .unwrap()
                    .naive_utc()
            };
            let paris = ts(micros + i * 86_400_000_000);
            // Europe/Paris is UTC+1 from late October to late March (the rows stay in winter).
            let paris = paris + chrono::Duration::hours(1);
            json!({
                "ID": i,
                "RATIO": match i % 9 { 3 => json!("NaN"), 6 => json!("-inf"), _ => json!(i as f64 / 7.0) },
                "NAME": if i % 8 == 0 { Value::Null } else { json!(format!("name ✓ {i}\n\"quoted\"")) },
                "OK": if i % 10 == 0 { Value::Null } else { json!(i % 2 == 0) },
                "DIGEST": if i % 4 == 0 { Value::Null } else { json!(hex(i)) },
                "DAY": (chrono::NaiveDate::from_ymd_opt(2024, 1, 15).unwrap() + chrono::Duration::days(i)).to_string(),
                "AT_TIME": chrono::NaiveTime::from_num_seconds_from_midnight_opt(
                    ((i * 1_234_567) % 86_400_000_000 / 1_000_000) as u32,
                    ((i * 1_234_567) % 1_000_000 * 1000) as u32,
                ).unwrap().format("%H:%M:%S%.6f").to_string(),
                "SEEN_NTZ": ts(micros + i * 1_000_001).format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
                "SEEN_LTZ": format!("{}+00:00", ts(micros + i * 3_600_123_000).format("%Y-%m-%d %H:%M:%S%.3f")),
                "SEEN_TZ": format!("{}+01:00", paris.format("%Y-%m-%d %H:%M:%S%.6f")),
                "TAGS": if i % 5 == 4 { Value::Null } else { json!((0..(i % 3)).collect::<Vec<_>>()) },
                "PLACE": json!({"city": if i % 4 == 1 { Value::Null } else { json!(format!("city \"{i}\"")) }, "floor": i % 7}),
                "DOC": format!("{{\"not parsed\": {i}}}"),
            })
        })
        .zip(first..)
        .map(|(row, i)| {
            let v = i128::from(i) * 1_000_000_000_000_000_007;
            let amount = if i % 6 == 0 {
                "null".to_owned()
            } else {
                format!("{}.{:02}", v / 100, v % 100)
            };
            let text = serde_json::to_string(&row).unwrap();
            RawValue::from_string(format!("{{\"AMOUNT\":{amount},{}", &text[1..])).unwrap()
        })
        .collect()
}

async fn start() -> (Emulator, StreamingIngestClient) {
    let ddl = format!(
        "CREATE DATABASE IF NOT EXISTS DB; CREATE SCHEMA IF NOT EXISTS SCH; \
         CREATE OR REPLACE TABLE FROM_ARROW ({COLUMNS}); \
         CREATE OR REPLACE TABLE FROM_ROWS ({COLUMNS});"
    );
    let emu = Emulator::start(
        common::emulator::config_with_ddl(&ddl).with_commit_delay(Duration::from_millis(20)),
    )
    .await
    .unwrap();
    let client = common::emulator::builder(&emu).build().await.unwrap();
    (emu, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_lands_as_the_same_values_appended_as_rows() {
    // Arrange
    let (emu, client) = start().await;
    let arrow = client
        .table_pipe("DB", "SCH", "FROM_ARROW")
        .open_channel("arrow")
        .await
        .unwrap();
    let serde = client
        .table_pipe("DB", "SCH", "FROM_ROWS")
        .open_channel("rows")
        .await
        .unwrap();
    let n = 60;

    // Act: two batches (the second a slice of a larger one) and the same rows as serde values.
    arrow
        .append(
            Rows::arrow(batch(0, 40).clone()),
            Positions::span(OffsetToken::from(0u64)..=OffsetToken::from(39u64)),
        )
        .await
        .unwrap();
    let tail = batch(30, 30).slice(10, 20);
    arrow
        .append(
            Rows::arrow(tail.clone()),
            Positions::span(OffsetToken::from(40u64)..=OffsetToken::from(59u64)),
        )
        .await
        .unwrap();
    serde
        .append(
            Rows::serde(&rows(0, n)),
            Positions::span(OffsetToken::from(0u64)..=OffsetToken::from(59u64)),
        )
        .await
        .unwrap();
    common::emulator::close_committed([arrow, serde]).await;

    // Assert: every column of every row is the same in both tables, and no row errors.
    let from_arrow = emu
        .query(&format!(
            "SELECT {SELECT} FROM \"DB.SCH.FROM_ARROW\" ORDER BY ID"
        ))
        .unwrap();
    let from_rows = emu
        .query(&format!(
            "SELECT {SELECT} FROM \"DB.SCH.FROM_ROWS\" ORDER BY ID"
        ))
        .unwrap();
    assert_eq!(
        from_arrow.len(),
        n as usize,
        "every row of the batches once"
    );
    assert_eq!(from_rows.len(), n as usize, "every serde row once");
    let names: Vec<&str> = SELECT.split(", ").collect();
    for (i, (a, r)) in from_arrow.iter().zip(&from_rows).enumerate() {
        for (c, name) in names.iter().enumerate() {
            assert_eq!(
                a[c], r[c],
                "{name} of row {i}: arrow {} vs rows {}",
                a[c], r[c]
            );
        }
    }
    // A few values checked by themselves: an exact 38-digit decimal, a zone's offset kept.
    assert_eq!(from_arrow[7][1], json!("70000000000000000.49"));
    let tz = from_arrow[1][10].as_str().unwrap();
    assert!(tz.contains("2024-01-16") && tz.contains("+01:00"), "{tz}");
    client.close().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_row_tokens_commit_exactly_and_tell_a_resent_batch_apart() {
    // Arrange
    let (emu, client) = start().await;
    let pipe = client.table_pipe("DB", "SCH", "FROM_ARROW");
    let ch = pipe.open_channel("tokens").await.unwrap();
    let b = batch(0, 25);
    // Sparse tokens: every third offset of a source.
    let tokens: Vec<u64> = (0..25).map(|i| 1_000 + 3 * i).collect();

    // Act: append with a token per row, close, reopen as a restarted process would.
    let positions = Positions::numbered(tokens.clone()).unwrap();
    ch.append(Rows::arrow(b.clone()), positions).await.unwrap();
    common::emulator::close_committed([ch]).await;
    let again = pipe.open_channel("tokens").await.unwrap();
    let committed = again.latest_committed_offset_token();

    // Assert: the committed token is the last row's; a token count that differs is refused.
    assert_eq!(committed, Some(OffsetToken::from(1_072u64)));
    let positions = Positions::numbered([2_000, 2_001]).unwrap();
    let err = again
        .append(Rows::arrow(batch(25, 3)), positions)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("2 numbered positions for 3 rows"), "{err}");
    common::emulator::close_committed([again]).await;
    let stored = emu
        .query("SELECT COUNT(*) FROM \"DB.SCH.FROM_ARROW\"")
        .unwrap();
    assert_eq!(stored[0][0], json!(25));
    client.close().await.unwrap();
    emu.shutdown().await;
}
