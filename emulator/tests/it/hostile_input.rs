//! Issue 56: what the last hostile-input round left open, bounded. Request bodies are charged
//! to the memory budget as they arrive (1,024 connections could hold 4 GB of bodies), a
//! connection's read buffer (request heads) is small, one SQL API statement's SQLite memory
//! is bounded (one row of many 16 MB values), and a statement is interrupted at its deadline
//! inside SQLite's own loops too. Everything runs on 127.0.0.1.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::common::*;
use snowpipe_emulator::Emulator;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends the head of an append of `len` bytes (stated when `Some`, else chunked) on a new
/// connection, and `sent` bytes of its body; the connection is left open.
async fn start_append(
    addr: SocketAddr,
    path: &str,
    token: &str,
    len: Option<usize>,
    sent: usize,
) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let framing = match len {
        Some(n) => format!("Content-Length: {n}\r\n"),
        None => "Transfer-Encoding: chunked\r\n".to_owned(),
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         X-Snowflake-Authorization-Token-Type: OAUTH\r\nContent-Type: application/x-ndjson\r\n\
         {framing}\r\n"
    );
    // The server may answer (429) and close before the body is sent: writes may fail.
    let _ = s.write_all(head.as_bytes()).await;
    let row = b"{\"ID\": 1}\n";
    let body: Vec<u8> = row.iter().copied().cycle().take(sent).collect();
    if len.is_some() {
        let _ = s.write_all(&body).await;
    } else {
        for piece in body.chunks(64 << 10) {
            let chunk = [format!("{:x}\r\n", piece.len()).as_bytes(), piece, b"\r\n"].concat();
            if s.write_all(&chunk).await.is_err() {
                break;
            }
        }
    }
    let _ = s.flush().await;
    s
}

/// The status line's code of what the server answered on `s` within `wait` (0: nothing).
async fn answer_status(s: &mut TcpStream, wait: Duration) -> u16 {
    let mut buf = vec![0u8; 4096];
    match tokio::time::timeout(wait, s.read(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => String::from_utf8_lossy(&buf[..n])
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}

async fn pending_bytes(emu: &Emulator) -> u64 {
    get_json(&format!("{}/", emu.url())).await["pending_bytes"]
        .as_u64()
        .unwrap()
}

/// Waits until `pending_bytes` reaches `at_least` (bodies arrive asynchronously).
async fn pending_reaches(emu: &Emulator, at_least: u64) -> u64 {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let p = pending_bytes(emu).await;
        if p >= at_least || Instant::now() > until {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Two appends whose bodies are still arriving hold the budget for what they will hold; a
/// third that does not fit beside them is answered 429 before its body is read, and a body
/// without a stated length is charged as it grows. Hanging up returns the charge. (Before,
/// `pending_bytes` stayed 0 while bodies were read: 1,024 connections could hold 4 GB.)
#[tokio::test]
async fn append_bodies_are_charged_to_the_budget_as_they_arrive() {
    let mut cfg = config();
    cfg.max_pending_bytes = 8 << 20;
    let emu = Emulator::start(cfg).await.unwrap();
    let c = Client::connect(&emu).await;
    let ct = c.open_ok("c").await;
    let path = format!(
        "{}/channels/c/rows?continuationToken={ct}&offsetToken=1",
        pipe_path("P").replacen("/v2/streaming/", "/v2/streaming/data/", 1)
    );
    let addr = emu.addr();
    let len = 3_000_000;
    let first = start_append(addr, &path, &c.token, Some(len), 100_000).await;
    let second = start_append(addr, &path, &c.token, Some(len), 100_000).await;
    let held = pending_reaches(&emu, 2 * (len as u64 - (16 << 10))).await;
    assert!(
        held >= 2 * (len as u64 - (16 << 10)),
        "two stated bodies of 3 MB in flight hold {held} bytes of the budget"
    );
    let mut third = start_append(addr, &path, &c.token, Some(len), 0).await;
    assert_eq!(
        answer_status(&mut third, Duration::from_secs(5)).await,
        429,
        "a third body does not fit an 8 MiB budget beside two of 3 MB"
    );
    drop((first, second, third));
    let until = Instant::now() + Duration::from_secs(10);
    while pending_bytes(&emu).await != 0 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        pending_bytes(&emu).await,
        0,
        "hanging up returns the charge"
    );

    // Chunked: charged for what arrived (by doubling), not for nothing.
    let chunked = start_append(addr, &path, &c.token, None, 2_000_000).await;
    let held = pending_reaches(&emu, 2_000_000 - (16 << 10)).await;
    assert!(
        (2_000_000 - (16 << 10)..=4_000_000).contains(&held),
        "2 MB of a chunked body hold {held} bytes of the budget"
    );
    drop(chunked);
    emu.shutdown().await;
}

/// A request head may not grow the connection's read buffer past 32 KiB (and one read): a
/// 100 KiB head is answered 431, not held (hyper's default buffer takes ~400 KiB).
#[tokio::test]
async fn a_request_head_past_32_kib_is_refused() {
    let emu = Emulator::start(config()).await.unwrap();
    let mut s = TcpStream::connect(emu.addr()).await.unwrap();
    let head = format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: {}\r\n\r\n",
        "a".repeat(100 << 10)
    );
    // The server may answer and close before it has read everything.
    let _ = s.write_all(head.as_bytes()).await;
    assert_eq!(answer_status(&mut s, Duration::from_secs(5)).await, 431);
    emu.shutdown().await;
}

/// Measured on the `snowpipe-emulator` binary: 300 connections each sending a stated 3.9 MB
/// append body that never completes, and 300 more each sending 300 KiB of headers, keep the
/// process within `--max-pending-bytes` (64 MiB) + 64 MiB. Before: every body was read into
/// memory whole (1.2 GB here) and hyper buffered ~400 KiB of headers per connection.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn hundreds_of_unfinished_bodies_and_heads_stay_within_the_budget() {
    let budget: u64 = 64 << 20;
    let emu = ChildEmulator::start(
        "CREATE DATABASE DB; CREATE SCHEMA SCH; USE SCHEMA DB.SCH; CREATE TABLE T (ID NUMBER);",
        &["--max-pending-bytes", &budget.to_string()],
    );
    let ct = emu.open("T-STREAMING", "c").await;
    let (before, _) = emu.peak_rss_and_cpu();
    let addr: SocketAddr = emu.url.trim_start_matches("http://").parse().unwrap();
    let path = format!(
        "{}/channels/c/rows?continuationToken={ct}&offsetToken=1",
        pipe_path("T-STREAMING").replacen("/v2/streaming/", "/v2/streaming/data/", 1)
    );
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..300 {
        let len = 3_900_000;
        let mut s = start_append(addr, &path, "any", Some(len), len - 10).await;
        if answer_status(&mut s, Duration::from_millis(1)).await == 429 {
            refused += 1;
        }
        held.push(s);
    }
    for _ in 0..300 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let filler = "a".repeat(1000);
        let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n").await;
        for i in 0..300 {
            if s.write_all(format!("X-{i}: {filler}\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (peak, _) = emu.peak_rss_and_cpu();
    println!(
        "unfinished bodies and heads: peak RSS {} MiB (before {} MiB), budget {} MiB, {refused} \
         of 300 bodies answered 429 at once",
        peak >> 20,
        before >> 20,
        budget >> 20
    );
    assert!(
        peak <= budget + (64 << 20),
        "peak RSS {} MiB, budget {} MiB",
        peak >> 20,
        budget >> 20
    );
    drop(held);
}

/// Measured on the binary: a statement of 40 values of 16 MB each (one row, 640 MB in SQLite
/// before the result cap sees any) is refused at 96 MiB of SQLite memory with the limit named,
/// and the process stays within 96 + 64 MiB. Before: 640 MB were built, then the result cap
/// refused the row.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn one_row_of_many_large_values_is_refused_within_the_statement_memory() {
    let emu = ChildEmulator::start(
        "CREATE DATABASE DB; CREATE SCHEMA SCH; USE SCHEMA DB.SCH; CREATE TABLE T (ID NUMBER);",
        &[],
    );
    let (before, _) = emu.peak_rss_and_cpu();
    let columns: Vec<String> = (0..40)
        .map(|i| {
            format!(
                "printf('%.*c', 16000000, '{}') c{i}",
                (b'a' + i % 26) as char
            )
        })
        .collect();
    let r = reqwest::Client::new()
        .post(format!("{}/api/v2/statements", emu.url))
        .bearer_auth("any")
        .json(&serde_json::json!({"statement": format!("SELECT {}", columns.join(", "))}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().await.unwrap();
    let (peak, _) = emu.peak_rss_and_cpu();
    println!(
        "40 × 16 MB values: {status} {} {:?}; peak RSS {} MiB (before {} MiB)",
        body["code"],
        body["message"],
        peak >> 20,
        before >> 20
    );
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "000603", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("96 MiB of memory"),
        "{body}"
    );
    assert!(peak <= (96 + 64) << 20, "peak RSS {} MiB", peak >> 20);
    // The reader is fine afterwards.
    let r = reqwest::Client::new()
        .post(format!("{}/api/v2/statements", emu.url))
        .bearer_auth("any")
        .json(&serde_json::json!({"statement": "SELECT length(printf('%.*c', 16000000, 'x'))"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Measured on the binary: `CREATE PIPE` through the SQL API whose transform is a chain of
/// 300,000 additions (600 KB) is refused naming the limit, and the process lives on. Before,
/// the chain became a tree 300,000 deep and a recursive walk over it overflowed a worker's
/// stack: the process aborted. Since issue 72 the SQL API refuses DDL over 64 KiB before
/// reading it, so the chain here has 30,000 additions (60 KB), still 100 times the depth
/// limit, to reach the depth check.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_pipe_of_a_long_operator_chain_is_refused_and_the_process_lives() {
    let mut emu = ChildEmulator::start(
        "CREATE DATABASE DB; CREATE SCHEMA SCH; USE SCHEMA DB.SCH; CREATE TABLE T (ID NUMBER);",
        &[],
    );
    let chain = vec!["1"; 30_000].join("+");
    let statement = format!(
        "CREATE OR REPLACE PIPE DB.SCH.P2 AS COPY INTO DB.SCH.T (ID) FROM (SELECT {chain} \
         FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING')))"
    );
    let sent = reqwest::Client::new()
        .post(format!("{}/api/v2/statements", emu.url))
        .bearer_auth("any")
        .json(&serde_json::json!({ "statement": statement }))
        .send()
        .await;
    let answer = match sent {
        Ok(r) => format!("{} {}", r.status(), r.text().await.unwrap_or_default()),
        Err(e) => format!("no answer: {e}"),
    };
    let alive = emu.child.try_wait().unwrap().is_none();
    println!(
        "a 30,000-operator pipe: {}; process alive: {alive}",
        answer.chars().take(240).collect::<String>()
    );
    assert!(alive, "the emulator died: {answer}");
    assert!(
        answer.contains("operators and parentheses deep"),
        "{answer}"
    );
}

/// Legitimate depth still works: a transform of a 240-operator chain and a `WHERE` of 80
/// comparisons (just under the limit of 256, counted on tokens) is created, compiled and
/// evaluated for each row on a decode thread's 2 MiB stack, in whatever build runs the tests.
#[tokio::test]
async fn an_expression_at_the_depth_limit_is_created_and_evaluated() {
    let chain = vec!["1"; 240].join(" + ");
    let conditions: Vec<String> = (0..80).map(|i| format!("$1:k{i} IS NULL")).collect();
    let ddl = format!(
        "USE SCHEMA DB.SCH;
         CREATE OR REPLACE TABLE D (ID NUMBER, N NUMBER);
         CREATE OR REPLACE PIPE DEEP AS COPY INTO D (ID, N) FROM (
             SELECT $1:id, $1:id + {chain} FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING'))
             WHERE {});",
        conditions.join(" AND ")
    );
    let (emu, c) = connected(config().with_ddl(&ddl)).await;
    let ct = c.open_on("DEEP", "d").await;
    let status = c
        .append_on(
            "DEEP",
            "d",
            &ct,
            "2",
            "{\"id\":1}\n{\"id\":2,\"k3\":true}\n",
        )
        .await;
    assert_eq!(status["rows_inserted"], serde_json::json!(1), "{status}");
    let rows = emu.query("SELECT ID, N FROM \"DB.SCH.D\"").unwrap();
    assert_eq!(format!("{rows:?}"), "[[Number(1), Number(241)]]");
}
