//! Two writers of one channel, from the users' side: two clients (two processes, as far as
//! the server can tell) follow the recipe of the channel docs on the same channel and the
//! same source, and take the channel from each other at random moments, as a rebalance, a
//! rolling deploy or an operator starting a second copy would. Random request sizes, both
//! token forms, lost acknowledgements, server-side invalidations and slow appends are mixed
//! in.
//!
//! Checked after every step: the committed rows are exactly the source's rows `1..=m` in
//! order, with none twice and none missing, and every request carries exactly the rows its
//! tokens name. At the end, the writer that takes the channel last finishes the source and
//! the table holds every row once. A second property covers false alarms: one writer alone,
//! through the same faults, never sees `OwnershipLost`.
//!
//! CI runs fixed seeds; `PROPTEST_RNG_SEED=random PROPTEST_CASES=2000` explores.

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;

use super::testing::{token_violation, FakeApi};
use crate::settings::ChannelSettings;
use crate::test_util::conformance::{Table, Tokens, Writer};
use crate::Compression;
use crate::{OffsetToken, StreamingIngestClient};

/// Rows in the source.
const SOURCE_ROWS: u64 = 400;

/// One step of the schedule.
#[derive(Debug, Clone)]
enum Step {
    /// The writer takes the channel: opens it (or reopens its handle) and resumes after the
    /// committed token.
    Take(usize),
    /// The writer appends its next `rows` rows (if it still has the channel).
    Append(usize, u64),
    /// The writer flushes.
    Flush(usize),
    /// Time passes (polls, commits, batching).
    Sleep(u64),
    /// The next append's acknowledgement is lost (the rows are applied).
    LoseAck,
    /// The server invalidates the channel.
    Invalidate,
    /// Appends take this long from now on.
    Latency(u64),
}

fn step(writers: usize) -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => (0..writers).prop_map(Step::Take),
        8 => (0..writers, 1u64..40).prop_map(|(w, n)| Step::Append(w, n)),
        2 => (0..writers).prop_map(Step::Flush),
        3 => (1u64..400).prop_map(Step::Sleep),
        1 => Just(Step::LoseAck),
        1 => Just(Step::Invalidate),
        1 => (0u64..120).prop_map(Step::Latency),
    ]
}

fn tokens() -> impl Strategy<Value = Tokens> {
    prop_oneof![Just(Tokens::Dense), Just(Tokens::PerRow)]
}

/// The writer takes the channel (see [`Writer::take`]).
async fn take(w: &mut Writer) -> Result<(), TestCaseError> {
    w.take()
        .await
        .map_err(|e| TestCaseError::fail(format!("take: {e}")))
}

/// An error the writer's recipe has no answer for fails the test.
fn recipe(res: crate::Result<()>) -> Result<(), TestCaseError> {
    res.map_err(|e| TestCaseError::fail(format!("unexpected error: {e}")))
}

fn row_ids(fake: &FakeApi) -> Vec<u64> {
    fake.committed_rows("c")
        .iter()
        .map(|r| {
            serde_json::from_str::<serde_json::Value>(r).unwrap()["id"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

/// The committed rows are the source's first rows, each once, in order; every request
/// carries exactly the rows its tokens name.
fn check_table(fake: &FakeApi, when: &str) -> Result<(), TestCaseError> {
    let ids = row_ids(fake);
    let expected: Vec<u64> = (1..=ids.len() as u64).collect();
    prop_assert_eq!(
        &ids,
        &expected,
        "{}: rows lost, repeated or out of order",
        when
    );
    for a in fake.appends_to("c") {
        prop_assert_eq!(token_violation(&a), None);
    }
    Ok(())
}

fn settings(request_kb: usize) -> ChannelSettings {
    ChannelSettings {
        max_request_bytes: request_kb * 1024,
        compression: Compression::None,
        max_client_lag: Duration::from_millis(40),
        commit_poll_interval: Duration::from_millis(50),
        ..ChannelSettings::default()
    }
}

/// Runs `schedule` with `tokens.len()` writers, then lets the last one finish the source.
/// Returns how many times a writer was told another writer has the channel.
async fn run(
    schedule: Vec<Step>,
    tokens: Vec<Tokens>,
    request_kb: usize,
    pad: usize,
) -> Result<usize, TestCaseError> {
    let fake = FakeApi::new();
    let table = Table {
        database: "DB".into(),
        schema: "SC".into(),
        name: "T".into(),
    };
    let mut writers: Vec<Writer> = tokens
        .into_iter()
        .map(|tokens| {
            let client =
                StreamingIngestClient::from_parts(Arc::clone(&fake) as _, settings(request_kb));
            Writer::new(client, table.clone(), "c", tokens, Some(pad))
        })
        .collect();
    take(&mut writers[0]).await?;
    let mut fenced = 0;
    for (i, step) in schedule.into_iter().enumerate() {
        let was: Vec<bool> = writers.iter().map(Writer::is_fenced).collect();
        match step {
            Step::Take(w) => take(&mut writers[w]).await?,
            Step::Append(w, n) => recipe(writers[w].append(n, SOURCE_ROWS).await)?,
            Step::Flush(w) => recipe(writers[w].flush().await)?,
            Step::Sleep(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
            Step::LoseAck => fake.lose_next_acks(1),
            Step::Invalidate => {
                if fake.committed_token("c").is_some() || !fake.appends_to("c").is_empty() {
                    fake.invalidate("c");
                }
            }
            Step::Latency(ms) => fake.set_latency(Duration::from_millis(ms)),
        }
        fenced += writers
            .iter()
            .zip(&was)
            .filter(|(w, was)| w.is_fenced() && !**was)
            .count();
        check_table(&fake, &format!("after step {i}"))?;
    }
    // The others stop (a fenced handle sends nothing; a healthy one delivers what it
    // admitted), then the last writer takes the channel and finishes the source.
    let (last, others) = writers.split_last_mut().unwrap();
    for w in others {
        if let Some(ch) = w.take_handle() {
            let _ = ch.close().await;
        }
    }
    fake.set_latency(Duration::ZERO);
    take(last).await?;
    while last.next() <= SOURCE_ROWS {
        recipe(last.append(50, SOURCE_ROWS).await)?;
        prop_assert!(!last.is_fenced(), "the only writer left was fenced");
    }
    let ch = last.take_handle().unwrap();
    let end = OffsetToken::from(SOURCE_ROWS);
    ch.flush().await.unwrap();
    ch.wait_for_commit(&end, Duration::from_secs(60))
        .await
        .map_err(|e| TestCaseError::fail(format!("final commit: {e}")))?;
    ch.close().await.unwrap();
    check_table(&fake, "at the end")?;
    prop_assert_eq!(row_ids(&fake).len() as u64, SOURCE_ROWS);
    Ok(fenced)
}

/// What [`run`] takes for `writers` writers: a schedule, each writer's token form, the request
/// size in KiB and the rows' padding.
fn inputs(writers: usize) -> impl Strategy<Value = (Vec<Step>, Vec<Tokens>, usize, usize)> {
    (
        prop::collection::vec(step(writers), 1..60),
        prop::collection::vec(tokens(), writers..=writers),
        1usize..16,
        0usize..200,
    )
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(crate::test_support::proptest_config(64))]

    #[test]
    fn two_writers_taking_one_channel_from_each_other_land_every_row_once(
        (schedule, tokens, request_kb, pad) in inputs(2),
    ) {
        paused_runtime().block_on(run(schedule, tokens, request_kb, pad))?;
    }

    #[test]
    fn one_writer_through_lost_acks_and_invalidations_is_never_told_it_lost_the_channel(
        (schedule, tokens, request_kb, pad) in inputs(1),
    ) {
        let schedule = schedule.into_iter().filter(|s| !matches!(s, Step::Take(_))).collect();
        let fenced = paused_runtime().block_on(run(schedule, tokens, request_kb, pad))?;
        prop_assert_eq!(fenced, 0, "a lone writer was told another writer has its channel");
    }
}

/// The schedules above do fence writers: a fixed one where the second writer takes the
/// channel while the first has rows in flight and goes on appending.
#[tokio::test(start_paused = true)]
async fn a_takeover_mid_stream_fences_the_first_writer_and_loses_nothing() {
    let schedule = vec![
        Step::Append(0, 30),
        Step::Sleep(100),
        Step::Append(0, 30),
        Step::Take(1),
        Step::Append(0, 30),
        Step::Flush(0),
        Step::Append(1, 30),
        Step::Sleep(200),
        Step::Append(0, 30),
    ];
    let fenced = run(schedule, vec![Tokens::Dense, Tokens::PerRow], 4, 20)
        .await
        .unwrap();
    assert_eq!(fenced, 1);
}
