//! A minimal queue → SDK streamer run as a child process by the chaos suite (the test binary
//! re-executes itself): it reads the ski-resort queue written by `ski_resort generate` and
//! streams each table through the SDK with the exactly-once recipe of the channel docs —
//! resume after the committed token, append with the queue id as offset token, reopen on
//! `ChannelInvalidated`, exit non-zero on `OwnershipLost` (another writer has the channel),
//! exit once the generator is gone and everything is committed.
//!
//! It leaves the queue untouched (it never deletes), so it exercises the SDK alone; the
//! ski-resort `stream` subcommand is the production-shaped streamer.

use snowpipe_streaming::{Positions, Rows};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use snowpipe_streaming::{ClientBuilder, OffsetToken, StreamingIngestClient};

use super::chaos::TABLES;

const DB: &str = "STREAMING_INGEST";
const SCHEMA: &str = "STREAMING_INGEST";
const BATCH_ROWS: i64 = 500;

fn open_queue(path: &Path) -> rusqlite::Connection {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open queue");
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn
}

/// Rows of `table` with id > `after`: (first id, last id, NDJSON).
fn read_after(conn: &rusqlite::Connection, table: &str, after: u64) -> Option<(u64, u64, Bytes)> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT id, json FROM q_{} WHERE id > ?1 ORDER BY id LIMIT ?2",
            table.to_lowercase()
        ))
        .expect("prepare");
    let mut rows = stmt.query((after as i64, BATCH_ROWS)).expect("query queue");
    let (mut first, mut last, mut buf) = (0u64, 0u64, Vec::new());
    while let Some(r) = rows.next().expect("row") {
        let id = r.get::<_, i64>(0).unwrap() as u64;
        if first == 0 {
            first = id;
        }
        last = id;
        buf.extend_from_slice(r.get_ref(1).unwrap().as_str().unwrap().as_bytes());
        buf.push(b'\n');
    }
    (first > 0).then(|| (first, last, Bytes::from(buf)))
}

/// Whether `ski_resort generate` is still writing (its pid is registered and alive).
fn generator_active(conn: &rusqlite::Connection) -> bool {
    let pid: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'generator_pid'",
            [],
            |r| r.get(0),
        )
        .ok();
    pid.and_then(|p| p.parse::<u32>().ok())
        .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
}

async fn stream_table(client: StreamingIngestClient, queue: PathBuf, table: &'static str) {
    let conn = open_queue(&queue);
    let pipe = format!("{table}_PIPE");
    let channel_name = format!("{table}_CHANNEL");
    'session: loop {
        let channel = match client
            .pipe(DB, SCHEMA, &pipe)
            .open_channel(&channel_name)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                eprintln!("sdk_streamer: {table}: open failed, retrying: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let mut next = channel
            .latest_committed_offset_token()
            .and_then(|t| t.as_u64())
            .unwrap_or(0);
        loop {
            match read_after(&conn, table, next) {
                Some((first, last, ndjson)) => {
                    let r = channel
                        .append(
                            Rows::ndjson(ndjson),
                            Positions::span(first.into()..=last.into()),
                        )
                        .await;
                    match r {
                        Ok(()) => next = last,
                        Err(e) if e.is_channel_invalidated() => {
                            // The recipe: reopen and replay after the committed token.
                            eprintln!("sdk_streamer: {table}: {e}; reopening");
                            match channel.reopen().await {
                                Ok(committed) => {
                                    next = committed.and_then(|t| t.as_u64()).unwrap_or(0);
                                }
                                Err(e) => {
                                    eprintln!("sdk_streamer: {table}: reopen failed: {e}");
                                    let _ = channel.close().await;
                                    continue 'session;
                                }
                            }
                        }
                        Err(e) if e.is_ownership_lost() => {
                            // Another writer has the channel: stop, never take it back.
                            eprintln!("sdk_streamer: {table}: {e}");
                            std::process::exit(3);
                        }
                        Err(e) => {
                            eprintln!("sdk_streamer: {table}: append failed, starting over: {e}");
                            let _ = channel.close().await;
                            continue 'session;
                        }
                    }
                }
                None if !generator_active(&conn) => {
                    if next == 0 {
                        return;
                    }
                    let done = channel
                        .wait_for_commit(&OffsetToken::from(next), Duration::from_secs(30))
                        .await;
                    match done {
                        Ok(()) => {
                            if read_after(&conn, table, next).is_none() {
                                let _ = channel.close().await;
                                return;
                            }
                        }
                        Err(e) => {
                            eprintln!(
                                "sdk_streamer: {table}: commit wait failed, starting over: {e}"
                            );
                            let _ = channel.close().await;
                            continue 'session;
                        }
                    }
                }
                None => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}

/// Streams every table of `queue` until drained; panics on a client that cannot be built.
pub async fn run(queue: PathBuf) {
    let client = ClientBuilder::from_env()
        .max_client_lag(Duration::from_millis(200))
        .build()
        .await
        .expect("client builds from SNOWFLAKE_* variables");
    let tasks: Vec<_> = TABLES
        .iter()
        .map(|t| tokio::spawn(stream_table(client.clone(), queue.clone(), t)))
        .collect();
    for t in tasks {
        t.await.expect("table task");
    }
    client.close().await.ok();
}
