//! Quickstart: connect, open a channel, append typed rows, wait for their commit, close.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! By default it streams into an emulator started in this process. With `SNOWFLAKE_ACCOUNT`,
//! `SNOWFLAKE_USER` and `SNOWFLAKE_PRIVATE_KEY_FILE` set it streams into your account instead;
//! create the table there first (the DDL below). The README's first screen shows this file from
//! its first `use` line down; `tests/it/readme.rs` keeps the two the same.

use serde::Serialize;
use snowpipe_streaming::{emulator, OffsetToken, Rows};

#[derive(Serialize)] // field names match the table's columns
struct Event {
    id: u64,
    kind: &'static str,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ddl = "CREATE DATABASE IF NOT EXISTS DEMO; CREATE SCHEMA IF NOT EXISTS DEMO.PUBLIC;
        CREATE TABLE IF NOT EXISTS DEMO.PUBLIC.EVENTS (ID NUMBER, KIND VARCHAR)";
    // Your account when SNOWFLAKE_ACCOUNT is set, else an emulator in this process.
    let (builder, _emulator) = emulator::from_env_or_start(ddl).await?;
    let client = builder.build().await?;
    let pipe = client.table_pipe("DEMO", "PUBLIC", "EVENTS");
    let ch = pipe.open_channel("events").await?;
    let rows = (1..=100).map(|id| Event { id, kind: "sale" });
    let span = OffsetToken::from(1u64)..=OffsetToken::from(100u64);
    ch.append(Rows::serde(rows), span.clone().into()).await?;
    let timeout = std::time::Duration::from_secs(60);
    ch.wait_for_commit(span.end(), timeout).await?; // the rows are in the table
    Ok(client.close().await?) // closes the channel too
}
