//! Arrow record batches into a table (feature `arrow`): the batches a Parquet reader,
//! DataFusion or Polars hands out go in column by column, each with its rows' offset tokens,
//! and a restart resumes after the committed one.
//!
//! ```text
//! cargo run --example arrow_batches
//! ```
//!
//! By default it streams into an emulator started in this process; with `SNOWFLAKE_ACCOUNT`,
//! `SNOWFLAKE_USER` and `SNOWFLAKE_PRIVATE_KEY_FILE` set, into your account (create the table
//! there first: the DDL below). In your own `Cargo.toml`:
//! `snowpipe-streaming = { version = "0.1", features = ["arrow"] }`.

use snowpipe_streaming::{Positions, Rows};
use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use snowpipe_streaming::arrow::arrow_array::{
    ArrayRef, Decimal128Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use snowpipe_streaming::{emulator, OffsetToken};

/// Rows `first..first + n` of a day of trades: an exact price, a symbol, a time with its zone.
fn trades(first: u64, n: u64) -> Result<RecordBatch, Box<dyn Error + Send + Sync>> {
    let ids = first..first + n;
    let price = Decimal128Array::from_iter_values(ids.clone().map(|i| 10_000 + i as i128 * 25))
        .with_precision_and_scale(12, 4)?;
    let symbol =
        StringArray::from_iter_values(ids.clone().map(|i| ["SNOW", "RUST"][i as usize % 2]));
    let at = TimestampMillisecondArray::from_iter_values(
        ids.clone().map(|i| 1_767_258_000_000 + i as i64 * 1_500),
    )
    .with_timezone("America/New_York");
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("PRICE", Arc::new(price)),
        ("SYMBOL", Arc::new(symbol)),
        ("TRADED_AT", Arc::new(at)),
    ];
    Ok(RecordBatch::try_from_iter(columns)?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    let ddl = "CREATE DATABASE IF NOT EXISTS DEMO; CREATE SCHEMA IF NOT EXISTS DEMO.PUBLIC;
        CREATE TABLE IF NOT EXISTS DEMO.PUBLIC.TRADES
          (PRICE NUMBER(12,4), SYMBOL VARCHAR, TRADED_AT TIMESTAMP_TZ)";
    let (builder, emulator) = emulator::from_env_or_start(ddl).await?;
    let client = builder.build().await?;
    let channel = client
        .table_pipe("DEMO", "PUBLIC", "TRADES")
        .open_channel("trades")
        .await?;
    // Resume after what the channel committed (nothing the first time).
    let mut next = match channel.latest_committed_offset_token() {
        Some(t) => t.as_str().parse::<u64>()? + 1,
        None => 0,
    };
    let end = next + 3 * 1_000;
    while next < end {
        let batch = trades(next, 1_000)?;
        // One token per row: a batch of any size is split exactly and lands once.
        let positions = Positions::numbered(next..next + 1_000)?;
        channel.append(Rows::arrow(batch), positions).await?;
        next += 1_000;
    }
    let last = OffsetToken::from(end - 1);
    channel
        .wait_for_commit(&last, Duration::from_secs(60))
        .await?;
    println!("committed through row {last}");
    if let Some(emulator) = &emulator {
        let rows = emulator
            .query("SELECT COUNT(*), MIN(PRICE), MAX(TRADED_AT) FROM \"DEMO.PUBLIC.TRADES\"")?;
        println!("rows, lowest price, last trade: {:?}", rows[0]);
        if rows[0][0] != 3_000 {
            return Err(format!("expected 3,000 rows, found {}", rows[0][0]).into());
        }
    }
    Ok(client.close().await?)
}

#[test]
fn three_batches_land_and_commit() {
    main().unwrap();
}
