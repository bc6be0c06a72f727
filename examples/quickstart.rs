//! Quickstart: connect, open a channel, append typed rows, wait for their commit, close.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! By default it streams into an emulator started in this process. With `SNOWFLAKE_ACCOUNT`,
//! `SNOWFLAKE_USER` and `SNOWFLAKE_PRIVATE_KEY_FILE` set it streams into your account instead;
//! create the table there first (the `DDL` below).

use std::time::Duration;

use serde::Serialize;
use snowpipe_streaming::emulator::{self, EmulatorConfig};
use snowpipe_streaming::{ClientBuilder, OffsetToken};

const DDL: &str = "CREATE DATABASE IF NOT EXISTS QUICKSTART;
CREATE SCHEMA IF NOT EXISTS QUICKSTART.PUBLIC;
CREATE TABLE IF NOT EXISTS QUICKSTART.PUBLIC.EVENTS (ID NUMBER, KIND VARCHAR, AMOUNT FLOAT);";

/// One row; field names match the table's columns.
#[derive(Serialize)]
struct Event {
    id: u64,
    kind: &'static str,
    amount: f64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A real account when one is configured, else an emulator in this process.
    let (local, builder) = if std::env::var_os("SNOWFLAKE_ACCOUNT").is_some() {
        (None, ClientBuilder::from_env())
    } else {
        let config = EmulatorConfig::for_tests().with_ddl(DDL);
        let (emulator, builder) = emulator::start(config).await?;
        (Some(emulator), builder)
    };
    let client = builder.build().await?;
    let channel = client
        .table_pipe("QUICKSTART", "PUBLIC", "EVENTS")
        .open_channel("quickstart")
        .await?;

    // Ten appends of 100 rows; each append names its first and last row's offset token.
    for batch in 0..10u64 {
        let (first, last) = (batch * 100, batch * 100 + 99);
        let rows: Vec<Event> = (first..=last)
            .map(|id| Event {
                id,
                kind: if id % 3 == 0 { "refund" } else { "sale" },
                amount: id as f64 * 1.25,
            })
            .collect();
        channel
            .append_rows(&rows, Some(first.into()), Some(last.into()))
            .await?;
    }

    // Appending buffers and sends; the rows are in the table once their token is committed.
    channel
        .wait_for_commit(&OffsetToken::from(999u64), Duration::from_secs(60))
        .await?;
    if let Some(token) = channel.latest_committed_offset_token() {
        println!("committed up to offset token {}", token.as_str());
    }
    channel.close().await?;
    client.close().await?;

    if let Some(emulator) = local {
        let rows =
            emulator.query("SELECT COUNT(*), SUM(AMOUNT) FROM \"QUICKSTART.PUBLIC.EVENTS\"")?;
        println!(
            "the table holds {} rows, amounts summing to {}",
            rows[0][0], rows[0][1]
        );
        emulator.shutdown().await;
    }
    Ok(())
}
