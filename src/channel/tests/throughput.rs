//! The data path without I/O: fairness to other tasks. (Rows per second through a null
//! transport: `cargo bench --bench null_transport`.)

use super::*;

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
        ch.append(Rows::serde(wide(i * 1000, 1000)), Positions::none())
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
