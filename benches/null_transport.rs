//! Rows per second through the whole client (append → serialize → batch → zstd → the channel
//! actor → commit polling) on a transport that does nothing (`bench_internals::NullApi`): the
//! SDK's own overhead, with no network and no server. Prints one JSON line per way in:
//! `append` of serde rows (typed rows serialized by the SDK, one token per call),
//! serde rows with a token per row (`Positions::per_row`) and `RawRows` (the same rows
//! already serialized, as a Kafka message or a log line is, a token per row in `RawRows`);
//! then two of the deprecated shims old callers still use, `append_rows` and
//! `append_raw_rows`, on the same rows (the door must not make them slower either).
//!
//! `cargo bench --features bench-internals --bench null_transport` (2 M rows, release; the
//! bench needs the feature, `NullApi` is behind it). Without `--bench` (as under
//! `cargo test --benches`), 20 000 rows: a smoke run.

use std::time::{Duration, Instant};

use serde::Serialize;
use snowpipe_streaming::bench_internals::null_client;
use snowpipe_streaming::{OffsetToken, Positions, RawRows, Rows};

/// How rows go in.
#[derive(Clone, Copy, Debug)]
enum Way {
    AppendRows,
    WithTokens,
    RawRows,
    DeprecatedAppendRows,
    DeprecatedRawRows,
}

#[derive(Serialize)]
struct Event<'a> {
    id: u64,
    resort: &'a str,
    lift: &'a str,
    ts: &'a str,
    skier: u64,
    price_cents: u64,
    note: &'a str,
}

fn main() {
    let rows: u64 = if std::env::args().any(|a| a == "--bench") {
        2_000_000
    } else {
        20_000
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    for way in [
        Way::AppendRows,
        Way::WithTokens,
        Way::RawRows,
        Way::DeprecatedAppendRows,
        Way::DeprecatedRawRows,
    ] {
        runtime.block_on(run(rows, way));
    }
}

async fn run(rows: u64, way: Way) {
    let (client, api) = null_client(Duration::from_millis(200), Duration::from_millis(20));
    let ch = client
        .pipe("DB", "SC", "P")
        .open_channel("c")
        .await
        .unwrap();
    // Varied text so zstd has real work (about 4-5x compression rather than 60x).
    let pool: Vec<String> = (0..4096)
        .map(|_| {
            (0..6)
                .map(|_| format!("{:x}", rand::random::<u64>()))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let per_call = 1000u64;
    let event = |id: u64| Event {
        id,
        resort: "Whistler Blackcomb",
        lift: "Peak Express",
        ts: "2026-11-21T07:00:00.000Z",
        skier: id * 7919 % 100_000,
        price_cents: 12_900,
        note: &pool[(id % 4096) as usize],
    };
    // The raw way's rows exist as text before the clock starts, as a source's messages do.
    let text: Vec<Vec<u8>> = match way {
        Way::RawRows | Way::DeprecatedRawRows => (0..rows)
            .map(|id| serde_json::to_vec(&event(id)).unwrap())
            .collect(),
        _ => Vec::new(),
    };
    let started = Instant::now();
    for call in 0..rows / per_call {
        let ids = call * per_call..(call + 1) * per_call;
        match way {
            Way::AppendRows => ch
                .append(
                    Rows::serde(ids.map(event)),
                    Positions::at(OffsetToken::from(call)),
                )
                .await
                .unwrap(),
            Way::WithTokens => ch
                .append(
                    Rows::serde(ids.clone().map(event)),
                    Positions::per_row(ids.map(OffsetToken::from)),
                )
                .await
                .unwrap(),
            Way::RawRows => {
                let mut raw = RawRows::with_capacity(per_call as usize * 300);
                for id in ids {
                    raw.push(&text[id as usize], id).unwrap();
                }
                let (rows, positions) = raw.into_append();
                ch.append(rows, positions).await.unwrap();
            }
            #[allow(deprecated)]
            Way::DeprecatedAppendRows => ch
                .append_rows(ids.map(event), None, Some(OffsetToken::from(call)))
                .await
                .unwrap(),
            #[allow(deprecated)]
            Way::DeprecatedRawRows => {
                let mut raw = RawRows::with_capacity(per_call as usize * 300);
                for id in ids {
                    raw.push(&text[id as usize], id).unwrap();
                }
                ch.append_raw_rows(raw).await.unwrap();
            }
        }
    }
    ch.flush().await.unwrap();
    let appended = started.elapsed();
    let last = match way {
        Way::AppendRows | Way::DeprecatedAppendRows => rows / per_call - 1,
        _ => rows / per_call * per_call - 1,
    };
    ch.wait_for_commit(&OffsetToken::from(last), Duration::from_secs(60))
        .await
        .unwrap();
    // NDJSON bytes: every row about as long as a middle one (the notes have the same shape).
    let ndjson = (serde_json::to_vec(&event(rows / 2)).unwrap().len() + 1) as f64 * rows as f64;
    let wire = api.wire_bytes();
    println!(
        "{{\"way\":\"{way:?}\",\"rows\":{rows},\"ndjson_mb\":{:.1},\"seconds\":{:.3},\"rows_per_s\":{:.0},\"mb_per_s\":{:.1},\"wire_mb\":{:.1}}}",
        ndjson / 1e6,
        appended.as_secs_f64(),
        rows as f64 / appended.as_secs_f64(),
        ndjson / 1e6 / appended.as_secs_f64(),
        wire as f64 / 1e6
    );
    ch.close().await.unwrap();
    client.close().await.unwrap();
}
