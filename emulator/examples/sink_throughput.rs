//! Measures how fast the emulator's `--sink` mode accepts NDJSON on loopback.
//!
//! ```text
//! cargo run --release -p snowpipe-emulator --example sink_throughput -- [SECONDS] [CONNECTIONS] [zstd|none] [sink|store]
//! ```
//!
//! Several connections POST 4 MiB NDJSON bodies (~333-byte rows, like the ski-resort rows) to
//! one channel each, chaining continuation tokens like a real client. It prints MB/s of
//! uncompressed NDJSON accepted. The client side shares the same cores, so the number is a lower
//! bound for the emulator. `store` measures the normal mode instead (JSON parsing, conversion
//! and SQLite inserts into an in-memory database, commit delay 0).

use std::time::{Duration, Instant};

use snowpipe_emulator::{Emulator, EmulatorConfig};

const DDL: &str = include_str!("../../apps/src/ski_resort/sql/setup.sql");
const PIPE: &str = "/databases/STREAMING_INGEST/schemas/STREAMING_INGEST/pipes/RESORT_TICKET_PIPE";

fn body() -> String {
    // Just under Snowflake's 4 MB cap on one request (the emulator answers 413 above it).
    let mut s = String::with_capacity(snowpipe_emulator::MAX_PAYLOAD_BYTES);
    let mut i = 0u64;
    while s.len() < snowpipe_emulator::MAX_PAYLOAD_BYTES - 400 {
        s.push_str(&format!(
            "{{\"TXID\":\"{:032x}\",\"RFID\":\"0x{:012x}\",\"RESORT\":\"Emulator Peak\",\"PURCHASE_TIME\":\"2026-01-01T09:00:00.000000\",\"EXPIRATION_TIME\":\"2026-03-01\",\"DAYS\":3,\"NAME\":\"Some Skier Name\",\"ADDRESS\":null,\"PHONE\":\"+1-555-0100\",\"EMAIL\":null,\"EMERGENCY_CONTACT\":{{\"name\":\"Contact Person\",\"phone\":\"+1-555-0199\"}}}}\n",
            i, i
        ));
        i += 1;
    }
    s
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let secs: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let conns: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(2);
    let zstd = args.get(3).map(|a| a == "zstd").unwrap_or(false);
    let sink = args.get(4).map(|a| a != "store").unwrap_or(true);

    let mut cfg = EmulatorConfig::for_tests().with_ddl(DDL);
    cfg.sink = sink;
    cfg.accept_any_key = true;
    let emu = Emulator::start(cfg).await.expect("start");
    let url = emu.url();
    let raw = body();
    let raw_len = raw.len() as u64;
    let payload: bytes::Bytes = if zstd {
        zstd::encode_all(raw.as_bytes(), 1).expect("zstd").into()
    } else {
        raw.into_bytes().into()
    };
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(conns)
        .build()
        .expect("client");
    let token = "any";
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..conns {
        let http = http.clone();
        let url = url.clone();
        let payload = payload.clone();
        tasks.push(tokio::spawn(async move {
            let open: serde_json::Value = http
                .put(format!("{url}/v2/streaming{PIPE}/channels/c{c}"))
                .bearer_auth(token)
                .json(&serde_json::json!({}))
                .send()
                .await
                .expect("open")
                .json()
                .await
                .expect("open json");
            let mut ct = open["next_continuation_token"].as_str().expect("token").to_string();
            let mut n = 0u64;
            while Instant::now() < deadline {
                let mut rb = http
                    .post(format!(
                        "{url}/v2/streaming/data{PIPE}/channels/c{c}/rows?startOffsetToken={n}&endOffsetToken={n}&continuationToken={ct}"
                    ))
                    .bearer_auth(token)
                    .header("Content-Type", "application/x-ndjson")
                    .body(payload.clone());
                if zstd {
                    rb = rb.header("Content-Encoding", "zstd");
                }
                let r: serde_json::Value = rb.send().await.expect("append").json().await.expect("json");
                ct = r["next_continuation_token"].as_str().expect("token").to_string();
                n += 1;
            }
            n
        }));
    }
    let mut requests = 0;
    for t in tasks {
        requests += t.await.expect("task");
    }
    let elapsed = start.elapsed().as_secs_f64();
    let st = emu.status();
    let rows = if sink {
        st["sink"]["rows"].as_f64().unwrap_or(0.0)
    } else {
        st["tables"]
            .as_array()
            .map(|t| t.iter().filter_map(|t| t["rows"].as_f64()).sum())
            .unwrap_or(0.0)
    };
    let mb = (requests * raw_len) as f64 / 1e6;
    println!(
        "{{\"mode\":\"{}\",\"encoding\":\"{}\",\"connections\":{conns},\"requests\":{requests},\"rows\":{rows},\"seconds\":{elapsed:.2},\"mb_per_s\":{:.0},\"rows_per_s\":{:.0}}}",
        if sink { "sink" } else { "store" },
        if zstd { "zstd" } else { "none" },
        mb / elapsed,
        rows / elapsed
    );
    emu.shutdown().await;
}
