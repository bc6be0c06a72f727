//! Exactly-once across a crash: resume the source after the channel's committed offset token.
//!
//! ```text
//! cargo run --example exactly_once_resume
//! ```
//!
//! The source is 1,000 numbered events (a log, a Kafka partition, a file: anything that can be
//! read again from a position); each event's number is its offset token. The writer opens the
//! channel, reads the latest committed token and resumes the source right after it. The first
//! run is killed half-way, with rows buffered or in flight; the second run resumes and
//! finishes. The table then holds every event once.
//!
//! By default it streams into an emulator started in this process. With `SNOWFLAKE_ACCOUNT`,
//! `SNOWFLAKE_USER` and `SNOWFLAKE_PRIVATE_KEY_FILE` set it streams into your account instead;
//! create the table there first (the `DDL` below).

use snowpipe_streaming::{Positions, Rows};
use std::error::Error;
use std::time::Duration;

use serde::Serialize;
use snowpipe_streaming::emulator;
use snowpipe_streaming::ClientBuilder;

const DDL: &str = "CREATE DATABASE IF NOT EXISTS RESUME;
CREATE SCHEMA IF NOT EXISTS RESUME.PUBLIC;
CREATE TABLE IF NOT EXISTS RESUME.PUBLIC.EVENTS (SEQ NUMBER, PAYLOAD VARCHAR);";

const EVENTS: u64 = 1_000;
const BATCH: u64 = 100;
const WAIT: Duration = Duration::from_secs(60);

/// One row; field names match the table's columns.
#[derive(Serialize)]
struct Event {
    seq: u64,
    payload: String,
}

/// One run of the writer. With `crash_after` it stops after that many batches, the last two
/// not yet committed, without `close()`.
async fn run(builder: ClientBuilder, crash_after: Option<u64>) -> snowpipe_streaming::Result<()> {
    let client = builder.build().await?;
    let channel = client
        .table_pipe("RESUME", "PUBLIC", "EVENTS")
        .open_channel("events-0")
        .await?;
    // After a restart, the one position to trust is the one the server committed.
    let committed = channel.latest_committed_offset_token();
    let mut next = 1 + committed.as_ref().map_or(0, |t| t.as_u64().expect("ours"));
    println!("open: committed token {committed:?}, resuming at event {next}");
    for batch in 1..=EVENTS.saturating_sub(next - 1).div_ceil(BATCH) {
        // The source, read again from `next`: events are numbered 1..=EVENTS.
        let last = (next + BATCH - 1).min(EVENTS);
        let events: Vec<Event> = (next..=last)
            .map(|seq| Event {
                seq,
                payload: format!("event {seq}"),
            })
            .collect();
        // Tokens must increase: the first and last event's numbers name the whole batch.
        channel
            .append(
                Rows::serde(&events),
                Positions::span(next.into()..=last.into()),
            )
            .await?;
        next = last + 1;
        if crash_after == Some(batch + 2) {
            channel.wait_for_commit(&last.into(), WAIT).await?;
        } else if crash_after == Some(batch) {
            let lost = last - 2 * BATCH;
            println!("crash: killed, events after {lost} not committed");
            return Ok(());
        }
    }
    channel.wait_for_commit(&EVENTS.into(), WAIT).await?;
    channel.close().await?;
    client.close().await
}

/// Runs the writer twice (killed half-way, then restarted) and checks the table.
#[tokio::main]
async fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    // A real account when one is configured, else an emulator in this process.
    let (builder, _emulator) = emulator::from_env_or_start(DDL).await?;
    // The first run is killed: it has a runtime of its own, which stops when the run returns
    // and takes every task of its client down mid-flight, as a killed process would.
    let first = builder.clone();
    tokio::task::spawn_blocking(move || -> Result<(), Box<dyn Error + Send + Sync>> {
        Ok(tokio::runtime::Runtime::new()?.block_on(run(first, Some(6)))?)
    })
    .await??;
    run(builder.clone(), None).await?;

    // The same check works on Snowflake and on the emulator: the SQL API.
    let q = "SELECT COUNT(*), COUNT(DISTINCT SEQ) FROM RESUME.PUBLIC.EVENTS";
    let counts = builder.build_sql()?.query(q).await?.rows.remove(0);
    println!("the table holds {counts:?} (rows, distinct events)");
    let all = Some(EVENTS.to_string());
    assert_eq!(counts, [all.clone(), all], "every event once");
    println!("proved: every event landed exactly once across the crash");
    Ok(())
}

#[test]
fn every_event_lands_once_across_a_crash() {
    main().unwrap();
}
