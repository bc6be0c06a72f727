//! The data path without I/O: rows per second through a null transport, fairness to other tasks.

use super::*;

/// Prints serialize + batch + zstd throughput through a transport that does nothing.
/// Run with `cargo test --release --lib -- --ignored --nocapture throughput`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run by hand in release mode"]
async fn throughput_through_a_null_transport() {
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
    let api = Arc::new(NullApi::default());
    let client = StreamingIngestClient::from_parts(
        Arc::clone(&api) as _,
        ChannelSettings {
            max_client_lag: Duration::from_millis(200),
            commit_poll_interval: Duration::from_millis(20),
            ..ChannelSettings::default()
        },
    );
    let ch = client.open_channel("DB", "SC", "P", "c").await.unwrap();
    // Varied text so zstd has real work (about 4-5x compression rather than 60x).
    let pool: Vec<String> = (0..4096)
        .map(|_| {
            (0..6)
                .map(|_| format!("{:x}", rand::random::<u64>()))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let rows = 2_000_000u64;
    let per_call = 1000u64;
    let started = std::time::Instant::now();
    let mut bytes = 0usize;
    for call in 0..rows / per_call {
        let batch = (call * per_call..(call + 1) * per_call).map(|id| Event {
            id,
            resort: "Whistler Blackcomb",
            lift: "Peak Express",
            ts: "2026-11-21T07:00:00.000Z",
            skier: id * 7919 % 100_000,
            price_cents: 12_900,
            note: &pool[(id % 4096) as usize],
        });
        ch.append_rows(batch, None, Some(OffsetToken::from(call)))
            .await
            .unwrap();
    }
    ch.flush().await.unwrap();
    let appended = started.elapsed();
    ch.wait_for_commit(
        &OffsetToken::from(rows / per_call - 1),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    bytes += ch.status().retained_bytes;
    let _ = bytes;
    let ndjson = {
        let one = serde_json::to_vec(&Event {
            id: 1_000_000,
            resort: "Whistler Blackcomb",
            lift: "Peak Express",
            ts: "2026-11-21T07:00:00.000Z",
            skier: 12345,
            price_cents: 12_900,
            note: &pool[0],
        })
        .unwrap()
        .len()
            + 1;
        one as f64 * rows as f64
    };
    let wire = api.wire_bytes.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "{{\"rows\":{rows},\"ndjson_mb\":{:.1},\"seconds\":{:.3},\"rows_per_s\":{:.0},\"mb_per_s\":{:.1},\"wire_mb\":{:.1}}}",
        ndjson / 1e6,
        appended.as_secs_f64(),
        rows as f64 / appended.as_secs_f64(),
        ndjson / 1e6 / appended.as_secs_f64(),
        wire as f64 / 1e6
    );
    ch.close().await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn a_producer_that_never_waits_still_lets_other_tasks_run() {
    // Plenty of budget, so no append waits: without the yield every YIELD_EVERY bytes, the
    // ticker (standing in for the connection and channel tasks) would not run until the loop
    // ended.
    let fake = FakeApi::new();
    let client = client(&fake, settings());
    let ch = open(&client, "c").await;
    let ticks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t = Arc::clone(&ticks);
    let ticker = tokio::spawn(async move {
        loop {
            t.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tokio::task::yield_now().await;
        }
    });
    tokio::task::yield_now().await;
    let before = ticks.load(std::sync::atomic::Ordering::Relaxed);
    let mut seen_during = 0;
    for i in 0..20u64 {
        // ≈ 170 KB an append: a yield every second append.
        ch.append_rows(wide(i * 1000, 1000), None, None)
            .await
            .unwrap();
        seen_during = ticks.load(std::sync::atomic::Ordering::Relaxed) - before;
    }
    ticker.abort();
    assert!(
        seen_during >= 5,
        "the ticker ran {seen_during} times during 20 appends of 170 KB"
    );
}
