//! Exactly once through request timeouts, against the in-process emulator: a client whose
//! request timeout is shorter than the latency the emulator injects on some appends (drawn
//! from the emulator's seeded generator). The emulator applies an append it has read whole
//! even after the client gave up on it (as the real service may), so a blind re-send would
//! store its rows twice; the SDK instead reopens the channel and replays after the committed
//! token (`docs/GUARANTEES.md`). Some timed-out appends land before the reopen (the reopen
//! then names their token), the others after it (fenced by the reopen, refused). Every row
//! must land exactly once.
//!
//! Fixed seeds; `EXACTLY_ONCE_SEED=N` tries another one.

use std::time::Duration;

use serde::Serialize;
use snowpipe_emulator::{Emulator, Endpoint, FaultAction, FaultPlan, FaultRule};
use snowpipe_streaming::{CloseOptions, OffsetToken, Positions, Rows};

use crate::common::emulator as emu_common;

/// The client's request timeout.
const TIMEOUT_MS: u64 = 300;
/// Appends (of [`ROWS_PER_APPEND`] rows, the last row's id their token) per seed.
const APPENDS: u64 = 20;
const ROWS_PER_APPEND: u64 = 5;

#[derive(Serialize)]
struct Row {
    id: u64,
    name: String,
}

/// Appends past the timeout: some just past it (applied before the client's reopen, which
/// waits out its own latency), some long past it (applied after the reopen: refused); every
/// open takes 200 ms.
fn plan() -> FaultPlan {
    let latency = |endpoint, ms| FaultRule::new(endpoint, FaultAction::Latency { ms });
    FaultPlan {
        rules: vec![
            latency(Endpoint::AppendRows, TIMEOUT_MS + 100).probability(0.15),
            latency(Endpoint::AppendRows, TIMEOUT_MS + 900).probability(0.1),
            latency(Endpoint::OpenChannel, 200),
        ],
    }
}

/// One seed: the rows land once each; returns how many appends the client gave up on were
/// applied all the same.
async fn run(seed: u64) -> usize {
    let mut config = emu_common::config().with_faults(plan());
    config.seed = seed;
    let emu = Emulator::start(config).await.expect("emulator starts");
    let client = emu_common::builder(&emu)
        .request_timeout(Duration::from_millis(TIMEOUT_MS))
        .build()
        .await
        .expect("client connects to the emulator");
    let ch = emu_common::open_on(&client, emu_common::PIPE, "timeouts").await;
    for append in 1..=APPENDS {
        let last = append * ROWS_PER_APPEND;
        let rows: Vec<Row> = (last - ROWS_PER_APPEND + 1..=last)
            .map(|id| Row {
                id,
                name: format!("r{id}"),
            })
            .collect();
        ch.append(Rows::serde(&rows), Positions::from(OffsetToken::from(last)))
            .await
            .expect("an append is accepted (the SDK recovers from timeouts itself)");
        // One request per append, so that the seeded faults pick among them.
        ch.flush()
            .await
            .expect("a flush goes through (the SDK recovers from timeouts itself)");
    }
    let recoveries = ch.status().recoveries;
    ch.close_with(
        CloseOptions::default()
            .wait_for_commit(true)
            .timeout(Duration::from_secs(120)),
    )
    .await
    .expect("the channel closes with its rows committed");
    let landed = emu_common::ids(&emu);
    let expected: Vec<i64> = (1..=(APPENDS * ROWS_PER_APPEND) as i64).collect();
    // The appends delayed past the timeout, by the emulator's answer (to a client gone by
    // then): 200 when applied before the reopen, refused when after.
    let delayed: Vec<u16> = emu
        .requests()
        .iter()
        .filter(|r| r.endpoint == Endpoint::AppendRows)
        .filter(|r| r.faults.iter().any(|f| f.contains("latency")))
        .map(|r| r.status)
        .collect();
    let applied = delayed.iter().filter(|&&s| s == 200).count();
    assert_eq!(
        landed, expected,
        "seed {seed}: every row exactly once (appends delayed past the timeout, answered: \
         {delayed:?}; {recoveries} recoveries before the close)"
    );
    client.close().await.expect("the client closes");
    emu.shutdown().await;
    applied
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_that_time_out_but_land_are_not_stored_twice() {
    let seeds = match std::env::var("EXACTLY_ONCE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(seed) => vec![seed],
        None => vec![1, 2, 3],
    };
    let mut delayed = 0;
    for seed in seeds {
        delayed += run(seed).await;
    }
    assert!(
        delayed > 0,
        "no append was delayed past the timeout: the test tested nothing"
    );
}
