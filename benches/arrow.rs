//! The CPU of writing rows to NDJSON, per row: an Arrow record batch through
//! `append_record_batch`'s writer (column by column) beside the same rows as serde structs
//! through `append_rows`' (`Pipeline`, no compression), and beside what a user without
//! `append_record_batch` pays: the batch turned into structs, then `append_rows`. 100,000
//! rows of mixed types: integers, a float, a decimal, text, a timestamp with a zone, a date,
//! a list and a struct. Criterion reports rows/s (`elem/s`).
//!
//! `cargo bench --bench arrow --features arrow,bench-internals`

use std::sync::Arc;
use std::time::Duration;

use arrow_array::builder::{Int32Builder, ListBuilder};
use arrow_array::cast::AsArray as _;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType,
};
use arrow_array::{
    Array, ArrayRef, Date32Array, Decimal128Array, Float64Array, Int64Array, RecordBatch,
    StringArray, StructArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde::Serialize;
use snowpipe_streaming::arrow::{arrow_array, arrow_schema};
use snowpipe_streaming::bench_internals::{encode_record_batch, Output, Pipeline};
use snowpipe_streaming::Compression;

const ROWS: usize = 100_000;

#[derive(Serialize)]
struct Place {
    city: String,
    floor: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
struct Row {
    id: i64,
    score: f64,
    /// A decimal as its exact text (serde_json would make an `f64` of it).
    amount: Box<serde_json::value::RawValue>,
    name: String,
    seen: String,
    day: String,
    tags: Vec<i32>,
    place: Place,
}

fn batch() -> RecordBatch {
    let ids: Vec<i64> = (0..ROWS as i64).collect();
    let mut tags = ListBuilder::new(Int32Builder::new());
    for i in &ids {
        tags.append_value((0..(i % 4) as i32).map(Some));
    }
    let place = StructArray::from(vec![
        (
            Arc::new(Field::new("city", DataType::Utf8, false)),
            Arc::new(StringArray::from_iter_values(
                ids.iter().map(|i| format!("city-{}", i % 500)),
            )) as ArrayRef,
        ),
        (
            Arc::new(Field::new("floor", DataType::Int64, false)),
            Arc::new(Int64Array::from_iter_values(ids.iter().map(|i| i % 12))) as ArrayRef,
        ),
    ]);
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("ID", Arc::new(Int64Array::from(ids.clone()))),
        (
            "SCORE",
            Arc::new(Float64Array::from_iter_values(
                ids.iter().map(|i| *i as f64 / 3.0),
            )),
        ),
        (
            "AMOUNT",
            Arc::new(
                Decimal128Array::from_iter_values(ids.iter().map(|i| i128::from(*i) * 12_345))
                    .with_precision_and_scale(20, 2)
                    .unwrap(),
            ),
        ),
        (
            "NAME",
            Arc::new(StringArray::from_iter_values(
                ids.iter().map(|i| format!("skier-{}", i % 1000)),
            )),
        ),
        (
            "SEEN",
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(
                    ids.iter().map(|i| 1_767_225_600_000_000 + i * 1_000_123),
                )
                .with_timezone("Europe/Paris"),
            ),
        ),
        (
            "DAY",
            Arc::new(Date32Array::from_iter_values(
                ids.iter().map(|i| 20_000 + (*i % 365) as i32),
            )),
        ),
        ("TAGS", Arc::new(tags.finish())),
        ("PLACE", Arc::new(place)),
    ];
    RecordBatch::try_from_iter(columns).unwrap()
}

/// The batch as structs, as a user without `append_record_batch` writes them.
fn structs(b: &RecordBatch) -> Vec<Row> {
    let id = b.column(0).as_primitive::<Int64Type>();
    let score = b.column(1).as_primitive::<Float64Type>();
    let amount = b.column(2).as_primitive::<Decimal128Type>();
    let name = b.column(3).as_string::<i32>();
    let seen = b.column(4).as_primitive::<TimestampMicrosecondType>();
    let day = b.column(5).as_primitive::<Date32Type>();
    let tags = b.column(6).as_list::<i32>();
    let place = b.column(7).as_struct();
    let city = place.column(0).as_string::<i32>();
    let floor = place.column(1).as_primitive::<Int64Type>();
    let paris: chrono_tz::Tz = "Europe/Paris".parse().unwrap();
    (0..b.num_rows())
        .map(|r| {
            let a = amount.value(r);
            Row {
                id: id.value(r),
                score: score.value(r),
                amount: serde_json::value::RawValue::from_string(format!(
                    "{}.{:02}",
                    a / 100,
                    a % 100
                ))
                .unwrap(),
                name: name.value(r).to_owned(),
                seen: chrono::DateTime::from_timestamp_micros(seen.value(r))
                    .unwrap()
                    .with_timezone(&paris)
                    .format("%Y-%m-%d %H:%M:%S%.6f%:z")
                    .to_string(),
                day: (chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()
                    + chrono::Duration::days(i64::from(day.value(r))))
                .to_string(),
                tags: tags.value(r).as_primitive::<Int32Type>().values().to_vec(),
                place: Place {
                    city: city.value(r).to_owned(),
                    floor: floor.value(r),
                },
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let b = batch();
    let rows = structs(&b);
    let mut g = c.benchmark_group("arrow_vs_rows");
    g.throughput(Throughput::Elements(ROWS as u64))
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    g.bench_function("record_batch", |bench| {
        bench.iter(|| encode_record_batch(&b).unwrap().len());
    });
    g.bench_function("serde_structs", |bench| {
        let mut p = Pipeline::new(Compression::None).unwrap();
        bench.iter(|| {
            let mut out = Output::default();
            p.append(&rows, &mut out).unwrap();
            p.finish(&mut out).unwrap();
            out.ndjson_bytes
        });
    });
    g.bench_function("batch_to_structs_then_rows", |bench| {
        let mut p = Pipeline::new(Compression::None).unwrap();
        bench.iter(|| {
            let rows = structs(&b);
            let mut out = Output::default();
            p.append(&rows, &mut out).unwrap();
            p.finish(&mut out).unwrap();
            out.ndjson_bytes
        });
    });
    g.finish();
    // The two writers agree on the rows' meaning (the structs' text is the batch's).
    let from_batch = encode_record_batch(&b).unwrap();
    let first: serde_json::Value =
        serde_json::from_slice(from_batch.split(|&c| c == b'\n').nth(7).unwrap()).unwrap();
    let want = serde_json::to_value(&rows[7]).unwrap();
    assert_eq!(first["SEEN"], want["SEEN"]);
    assert_eq!(first["PLACE"], want["PLACE"]);
    assert_eq!(first["TAGS"], want["TAGS"]);
    let _ = b.column(0).len();
}

criterion_group!(benches, bench);
criterion_main!(benches);
