//! Two writers, one channel: a rebalance moves a source partition from one process to another.
//!
//! ```text
//! cargo run --example handover
//! ```
//!
//! One writer at a time owns a channel. Opening it, anywhere, fences the previous holder:
//! its next append fails with `Error::OwnershipLost` (naming the channel and the committed
//! token), and it must stop, not reopen. The new owner reads the committed token and resumes
//! the source after it. A planned move uses `hand_over`: flush, wait for the commit, close,
//! and return the token the next owner resumes after. Either way no row is lost or doubled.
//!
//! By default it streams into an emulator started in this process. With `SNOWFLAKE_ACCOUNT`,
//! `SNOWFLAKE_USER` and `SNOWFLAKE_PRIVATE_KEY_FILE` set it streams into your account instead;
//! create the table there first (the `DDL` below).

use snowpipe_streaming::{Positions, Rows};
use std::time::Duration;

use serde::Serialize;
use snowpipe_streaming::emulator;
use snowpipe_streaming::{Channel, StreamingIngestClient};

const DDL: &str = "CREATE DATABASE IF NOT EXISTS KAFKA;
CREATE SCHEMA IF NOT EXISTS KAFKA.PUBLIC;
CREATE TABLE IF NOT EXISTS KAFKA.PUBLIC.ORDERS (KAFKA_OFFSET NUMBER, ITEM VARCHAR);";

const WAIT: Duration = Duration::from_secs(60);

/// One record of partition 3; field names match the table's columns.
#[derive(Serialize)]
struct Record {
    kafka_offset: u64,
    item: String,
}

/// Takes partition 3: opens its channel (fencing any other holder) and returns it with the
/// offset to resume the partition at.
async fn assign(client: &StreamingIngestClient) -> snowpipe_streaming::Result<(Channel, u64)> {
    let channel = client
        .table_pipe("KAFKA", "PUBLIC", "ORDERS")
        .open_channel("orders-partition-3")
        .await?;
    let resume = channel
        .latest_committed_offset_token()
        .map_or(0, |t| t.as_u64().unwrap() + 1);
    Ok((channel, resume))
}

/// Appends the partition's offsets `from..to` (the offset is the token).
async fn poll(channel: &Channel, from: u64, to: u64) -> snowpipe_streaming::Result<()> {
    let records = (from..to).map(|kafka_offset| Record {
        kafka_offset,
        item: format!("item {}", kafka_offset % 13),
    });
    channel
        .append(
            Rows::serde(records),
            Positions::span(from.into()..=(to - 1).into()),
        )
        .await
}

/// Two clients take turns on partition 3's channel; the table is then checked.
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // A real account when one is configured, else an emulator in this process.
    let (builder, _emulator) = emulator::from_env_or_start(DDL).await?;
    // Two clients: as far as Snowflake can tell, two processes.
    let a = builder.clone().build().await?;
    let b = builder.clone().build().await?;

    // A owns the partition and streams; then B is assigned it while A still runs.
    let (old, start) = assign(&a).await?;
    poll(&old, start, start + 200).await?;
    old.wait_for_commit(&(start + 199).into(), WAIT).await?;
    let (new, resume) = assign(&b).await?;
    println!("B opened the channel: resumes at offset {resume}");
    poll(&old, start + 200, start + 300).await?; // A has not heard of the rebalance yet
    let fenced = old.flush().await.expect_err("A's append is refused");
    assert!(fenced.is_ownership_lost());
    println!("A is fenced and stops (no reopen): {fenced}");
    let _ = old.close().await; // fails with the same error; frees the name in client A

    // B resumes after the committed token: A's refused rows are polled again by B.
    poll(&new, resume, resume + 300).await?;
    // A planned move back to A: B hands over, A resumes after the token B returns.
    let handed = new.hand_over(WAIT).await?;
    let (back, resume) = assign(&a).await?;
    println!("B handed over at {handed:?}; A resumes at offset {resume}");
    poll(&back, resume, resume + 100).await?;
    back.wait_for_commit(&(resume + 99).into(), WAIT).await?;
    back.close().await?;
    a.close().await?;
    b.close().await?;

    // The same check works on Snowflake and on the emulator: the SQL API.
    let q = "SELECT COUNT(*), COUNT(*) - COUNT(DISTINCT KAFKA_OFFSET), \
             MAX(KAFKA_OFFSET) - MIN(KAFKA_OFFSET) + 1 - COUNT(DISTINCT KAFKA_OFFSET) \
             FROM KAFKA.PUBLIC.ORDERS";
    let n = builder.build_sql()?.query(q).await?.rows.remove(0);
    println!("the table holds {n:?} (rows, doubled, missing)");
    assert_eq!(n[1..], [Some("0".into()), Some("0".into())]); // every offset once
    println!("proved: two owners in turn, and every offset landed exactly once");
    Ok(())
}

#[test]
fn each_offset_lands_once_across_a_fence_and_a_hand_over() {
    main().unwrap();
}
