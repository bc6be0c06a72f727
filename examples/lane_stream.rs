//! One logical stream over several channels ("lanes"), exactly once across a crash and a
//! resize.
//!
//! ```text
//! cargo run --example lane_stream
//! ```
//!
//! One channel is paced at the service's 20 MB/s; a faster source spreads its records over a
//! [`LaneStream`]: lane 0 is the channel `base`, lane `j` is `<base>_<j>`. Each record goes to
//! the lane of its key (FNV-1a, fixed across releases), so one key's records stay in order, and
//! carries its position in the source as its offset token (one order across the stream: a
//! log's offset, a sequence number).
//!
//! The source is 2,000 numbered clicks of 37 users. The first run writes over 4 lanes and is
//! killed at click 700, clicks after 500 buffered or in flight. The second run reopens the stream
//! with the count it recorded, skips every click `is_committed` says landed, and at click
//! 1,000 resizes the stream to 2 lanes ("drain and hand over": every lane commits what it
//! was given, then the new count and the boundary are recorded). It finishes on 2 lanes. The
//! table then holds every click once.
//!
//! By default it streams into an emulator started in this process. With `SNOWFLAKE_ACCOUNT`,
//! `SNOWFLAKE_USER` and `SNOWFLAKE_PRIVATE_KEY_FILE` set it streams into your account instead;
//! create the table there first (the `DDL` below).

use std::error::Error;
use std::time::Duration;

use serde::Serialize;
use snowpipe_streaming::emulator;
use snowpipe_streaming::{ClientBuilder, LaneStream, OffsetToken, Positions, Rows};

const DDL: &str = "CREATE DATABASE IF NOT EXISTS LANES;
CREATE SCHEMA IF NOT EXISTS LANES.PUBLIC;
CREATE TABLE IF NOT EXISTS LANES.PUBLIC.CLICKS (SEQ NUMBER, USER_ID VARCHAR);";

const CLICKS: u64 = 2_000;
const LANES: usize = 4;
/// Where the second run hands the stream over to [`RESIZED`] lanes.
const RESIZE_AT: u64 = 1_000;
const RESIZED: usize = 2;
const WAIT: Duration = Duration::from_secs(60);

/// One row; field names match the table's columns.
#[derive(Serialize)]
struct Click {
    seq: u64,
    user_id: String,
}

/// The source, readable again from any position: click `seq` is by user `seq mod 37`.
fn click(seq: u64) -> Click {
    Click {
        seq,
        user_id: format!("user-{}", seq % 37),
    }
}

/// Hands clicks `from..=to` to the stream, each to its user's lane, skipping those that
/// landed before a crash.
async fn feed(stream: &LaneStream, from: u64, to: u64) -> snowpipe_streaming::Result<()> {
    for seq in from..=to {
        let click = click(seq);
        let lane = stream.lane_of(click.user_id.as_bytes());
        let position = OffsetToken::from(seq);
        if stream.is_committed(lane, &position) {
            continue;
        }
        stream
            .append(lane, Rows::serde([click]), Positions::at(position))
            .await?;
    }
    Ok(())
}

/// One run of the writer. With `crash_at` it stops after handing that click over, without
/// `close()`.
async fn run(builder: ClientBuilder, crash_at: Option<u64>) -> snowpipe_streaming::Result<()> {
    let client = builder.build().await?;
    let pipe = client.table_pipe("LANES", "PUBLIC", "CLICKS");
    // After a restart, open with the count the stream recorded (a resize changes it).
    let lanes = pipe.lane_count("clicks").await?.unwrap_or(LANES);
    let mut stream = pipe.open_lanes("clicks", lanes).await?;
    println!("open: {lanes} lanes, committed {:?}", stream.committed());
    if let Some(crash) = crash_at {
        // Part of it committed, the rest buffered or in flight when the process dies.
        feed(&stream, 1, crash - 200).await?;
        stream.wait_for_commit(WAIT).await?;
        feed(&stream, crash - 199, crash).await?;
        println!("crash: killed after click {crash}, lanes' tails not committed");
        return Ok(());
    }
    if stream.lanes() != RESIZED {
        feed(&stream, 1, RESIZE_AT).await?;
        // Every click up to RESIZE_AT was handed over, none after: the boundary.
        stream = stream.resize(RESIZED, &RESIZE_AT.into(), WAIT).await?;
        println!("resized to {RESIZED} lanes at click {RESIZE_AT}");
    }
    feed(&stream, RESIZE_AT + 1, CLICKS).await?;
    stream.wait_for_commit(WAIT).await?;
    stream.close().await?;
    client.close().await
}

/// Runs the writer twice (killed part-way, then restarted and resized) and checks the table.
#[tokio::main]
async fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    // A real account when one is configured, else an emulator in this process.
    let (builder, _emulator) = emulator::from_env_or_start(DDL).await?;
    // The first run is killed: it has a runtime of its own, which stops when the run returns
    // and takes every task of its client down mid-flight, as a killed process would.
    let first = builder.clone();
    tokio::task::spawn_blocking(move || -> Result<(), Box<dyn Error + Send + Sync>> {
        Ok(tokio::runtime::Runtime::new()?.block_on(run(first, Some(700)))?)
    })
    .await??;
    run(builder.clone(), None).await?;

    // The same check works on Snowflake and on the emulator: the SQL API.
    let q = "SELECT COUNT(*), COUNT(DISTINCT SEQ) FROM LANES.PUBLIC.CLICKS";
    let counts = builder.build_sql()?.query(q).await?.rows.remove(0);
    println!("the table holds {counts:?} (rows, distinct clicks)");
    let all = Some(CLICKS.to_string());
    assert_eq!(counts, [all.clone(), all], "every click once");
    println!("proved: every click landed exactly once across the crash and the resize");
    Ok(())
}

#[test]
fn every_click_lands_once_across_a_crash_and_a_resize() {
    main().unwrap();
}
