//! The "serde rows" side of `benches/load_head_to_head.sh`: a Parquet file into a table the
//! way a Rust user without `Channel::append_record_batch` writes it. The `parquet` crate's
//! Arrow reader hands out record batches; each row is copied into a serde struct (decimals,
//! timestamps with their zone and dates formatted as text, the struct column as a nested
//! struct), and the structs go in with `Channel::append_rows`, each call with its rows'
//! numeric offset tokens. At the end: `flush()`, then the last token's commit is awaited.
//!
//! ```text
//! cargo build --release -p snowpipe-load --example parquet_serde_rows
//! SNOWFLAKE_URL=... SNOWFLAKE_ACCOUNT=... SNOWFLAKE_USER=... SNOWFLAKE_PRIVATE_KEY_FILE=... \
//!   target/release/examples/parquet_serde_rows FILE.parquet --database BENCH --schema PUBLIC \
//!   --table EVENTS [--unpaced]
//! ```
//!
//! The file's columns are the bench's: `ID` int64, `QTY` int32, `SCORE` float64, `AMOUNT`
//! decimal128(18,2), `NAME` utf8 (nullable), `SEEN` timestamp(µs, zone), `DAY` date32,
//! `PLACE` struct<city utf8, floor int64>. The last stdout line is a JSON summary.

use snowpipe_streaming::{Positions, Rows};
use std::error::Error;
use std::fs::File;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate};
use clap::Parser;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Serialize;
use snowpipe_streaming::arrow::arrow_array::cast::AsArray as _;
use snowpipe_streaming::arrow::arrow_array::types::{
    Date32Type, Decimal128Type, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType,
};
use snowpipe_streaming::arrow::arrow_array::{Array, RecordBatch};
use snowpipe_streaming::arrow::arrow_schema::{DataType, TimeUnit};
use snowpipe_streaming::{ClientBuilder, OffsetToken};

type BoxError = Box<dyn Error + Send + Sync>;

/// Command line.
#[derive(Parser)]
struct Args {
    /// The Parquet file.
    path: PathBuf,
    #[arg(long)]
    database: String,
    #[arg(long)]
    schema: String,
    /// The table (its default pipe `<TABLE>-STREAMING`).
    #[arg(long)]
    table: String,
    #[arg(long, default_value = "SERDE_ROWS")]
    channel: String,
    /// Rows per Parquet batch, and so per `append_rows` call.
    #[arg(long, default_value_t = 8192)]
    batch: usize,
    /// No per-channel request pacing (`max_requests_per_second(0)`,
    /// `max_bytes_per_second(0)`), as the throughput harness runs.
    #[arg(long)]
    unpaced: bool,
}

/// `PLACE`.
#[derive(Serialize)]
struct Place {
    city: String,
    floor: i64,
}

/// One row of the file.
#[derive(Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
struct Row {
    id: i64,
    qty: i32,
    score: f64,
    /// The decimal as its exact text (an `f64` would round it).
    amount: String,
    name: Option<String>,
    /// `2026-01-01 09:00:00.000000+01:00`
    seen: String,
    /// `2026-01-01`
    day: String,
    place: Place,
}

/// `value` with `scale` digits after the point.
fn decimal(value: i128, scale: u32) -> String {
    if scale == 0 {
        return value.to_string();
    }
    let p = 10u128.pow(scale);
    let sign = if value < 0 { "-" } else { "" };
    let v = value.unsigned_abs();
    format!("{sign}{}.{:0width$}", v / p, v % p, width = scale as usize)
}

/// The batch's rows as structs.
fn rows(b: &RecordBatch) -> Result<Vec<Row>, BoxError> {
    let col = |name: &str| {
        b.column_by_name(name)
            .ok_or_else(|| format!("no column {name}"))
    };
    let id = col("ID")?.as_primitive::<Int64Type>();
    let qty = col("QTY")?.as_primitive::<Int32Type>();
    let score = col("SCORE")?.as_primitive::<Float64Type>();
    let amount = col("AMOUNT")?.as_primitive::<Decimal128Type>();
    let scale = u32::try_from(amount.scale())?;
    let name = col("NAME")?.as_string::<i32>();
    let seen_col = col("SEEN")?;
    let zone: chrono_tz::Tz = match seen_col.data_type() {
        DataType::Timestamp(TimeUnit::Microsecond, Some(z)) => z.parse()?,
        DataType::Timestamp(TimeUnit::Microsecond, None) => chrono_tz::UTC,
        other => return Err(format!("SEEN is {other}, not a µs timestamp").into()),
    };
    let seen = seen_col.as_primitive::<TimestampMicrosecondType>();
    let day = col("DAY")?.as_primitive::<Date32Type>();
    let place = col("PLACE")?.as_struct();
    let city = place
        .column_by_name("city")
        .ok_or("no PLACE.city")?
        .as_string::<i32>();
    let floor = place
        .column_by_name("floor")
        .ok_or("no PLACE.floor")?
        .as_primitive::<Int64Type>();
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).ok_or("epoch")?;
    (0..b.num_rows())
        .map(|r| {
            let at = DateTime::from_timestamp_micros(seen.value(r)).ok_or("timestamp range")?;
            Ok(Row {
                id: id.value(r),
                qty: qty.value(r),
                score: score.value(r),
                amount: decimal(amount.value(r), scale),
                name: (!name.is_null(r)).then(|| name.value(r).to_owned()),
                seen: at
                    .with_timezone(&zone)
                    .format("%Y-%m-%d %H:%M:%S%.6f%:z")
                    .to_string(),
                day: (epoch + chrono::Duration::days(i64::from(day.value(r)))).to_string(),
                place: Place {
                    city: city.value(r).to_owned(),
                    floor: floor.value(r),
                },
            })
        })
        .collect()
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    let t0 = Instant::now();
    let mut builder = ClientBuilder::from_env().application("parquet-serde-rows");
    if args.unpaced {
        builder = builder.max_requests_per_second(0).max_bytes_per_second(0);
    }
    let client = builder.build().await?;
    let channel = client
        .table_pipe(&args.database, &args.schema, &args.table)
        .open_channel(&args.channel)
        .await?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&args.path)?)?
        .with_batch_size(args.batch)
        .build()?;
    let mut sent = 0u64;
    for batch in reader {
        let batch = batch?;
        let rows = rows(&batch)?;
        let n = rows.len() as u64;
        if n == 0 {
            continue;
        }
        channel
            .append(
                Rows::serde(&rows),
                Positions::span(OffsetToken::from(sent + 1)..=OffsetToken::from(sent + n)),
            )
            .await?;
        sent += n;
    }
    channel.flush().await?;
    channel
        .wait_for_commit(&OffsetToken::from(sent), Duration::from_secs(300))
        .await?;
    let seconds = t0.elapsed().as_secs_f64();
    channel.close().await?;
    client.close().await?;
    println!(
        "{}",
        serde_json::json!({"ok": true, "rows": sent, "seconds": (seconds * 1000.0).round() / 1000.0})
    );
    Ok(())
}
