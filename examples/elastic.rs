//! Elastic channels: at-least-once fan-in with no open call and no offset tokens.
//!
//! ```text
//! cargo run --example elastic
//! ```
//!
//! Use an elastic channel when rows come from many stateless producers (web servers, lambdas,
//! a fleet of agents) with no source position to resume from, and a duplicate now and then is
//! fine. Use a named channel with offset tokens when you need exactly-once or order
//! (`examples/exactly_once_resume.rs`). Any number of tasks append to one cheap-to-clone handle;
//! a batch whose acknowledgement was lost is sent again with the same request id, and if the
//! server had applied the first attempt its rows land twice. The client reports each such batch
//! on `events()`. A duplicate is an identical row: give every row a stable id and dedupe
//! downstream (`SELECT DISTINCT`, or one row per id with `QUALIFY ROW_NUMBER() OVER (PARTITION
//! BY EVENT_ID ORDER BY …) = 1` in a view or a dynamic table).
//!
//! By default it streams into an emulator started in this process, told to lose one
//! acknowledgement so a duplicate shows up. With `SNOWFLAKE_ACCOUNT`, `SNOWFLAKE_USER` and
//! `SNOWFLAKE_PRIVATE_KEY_FILE` set it streams into your account instead; create the table
//! there first (the `DDL` below).

use snowpipe_streaming::Rows;
use std::error::Error;

use serde::Serialize;
use snowpipe_streaming::emulator;
use snowpipe_streaming::ElasticChannel;

const DDL: &str = "CREATE DATABASE IF NOT EXISTS WEB;
CREATE SCHEMA IF NOT EXISTS WEB.PUBLIC;
CREATE TABLE IF NOT EXISTS WEB.PUBLIC.CLICKS (EVENT_ID VARCHAR, PAGE VARCHAR);";

const PRODUCERS: u64 = 4;
const CLICKS_EACH: u64 = 250;

/// One row; `event_id` is the same on every copy (producer and sequence), so it dedupes.
#[derive(Serialize)]
struct Click {
    event_id: String,
    page: String,
}

/// One producer (a web server, say): appends its clicks as they happen.
async fn produce(clicks: ElasticChannel, producer: u64) -> snowpipe_streaming::Result<()> {
    for seq in 0..CLICKS_EACH {
        let (event_id, page) = (format!("{producer}-{seq}"), format!("/page/{}", seq % 7));
        clicks
            .append(Rows::serde([Click { event_id, page }]))
            .await?;
        if seq % 50 == 49 {
            clicks.flush().await?; // a request every 50 clicks, to show several
        }
    }
    Ok(())
}

/// Four producers append concurrently to one elastic channel; the table is then checked.
#[tokio::main]
async fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    // A real account when one is configured, else an emulator in this process.
    let (builder, local) = emulator::from_env_or_start(DDL).await?;
    if let Some(emulator) = &local {
        // The second request is applied, but its answer is lost: the client sends it again.
        emulator.add_fault("append_rows:lost_ack,after=1,times=1")?;
    }
    let client = builder.clone().build().await?;
    let clicks = client
        .table_pipe("WEB", "PUBLIC", "CLICKS")
        .elastic_channel();
    let mut maybe_twice = clicks.events();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| tokio::spawn(produce(clicks.clone(), p)))
        .collect();
    for producer in producers {
        producer.await??;
    }
    clicks.close().await?;
    client.close().await?;
    let mut reported = 0;
    while let Ok(event) = maybe_twice.try_recv() {
        let (rows, id, retry) = (event.rows, &event.request_id, event.retry_count);
        println!("may have landed twice: {rows} rows of request {id} (retry {retry})");
        reported += rows;
    }

    // The same check works on Snowflake and on the emulator: the SQL API.
    let q = "SELECT COUNT(*), COUNT(DISTINCT EVENT_ID) FROM WEB.PUBLIC.CLICKS";
    let counts = builder.build_sql()?.query(q).await?.rows.remove(0);
    let [rows, distinct] = [&counts[0], &counts[1]].map(|v| v.as_deref().unwrap_or("0").parse());
    let (rows, distinct): (usize, usize) = (rows?, distinct?);
    println!("the table holds {rows} rows, {distinct} distinct event ids");
    // On the emulator the lost acknowledgement made duplicates: exactly the rows reported.
    let explained = local.is_none() || (reported > 0 && rows - distinct == reported);
    assert!(distinct as u64 >= PRODUCERS * CLICKS_EACH && explained);
    println!("proved: every click landed, the {reported} extra rows were reported, dedup works");
    Ok(())
}

#[test]
fn every_click_lands_and_each_duplicate_is_reported() {
    main().unwrap();
}
