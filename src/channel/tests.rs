//! Actor, timer, budget and recovery tests against the fake server under paused time.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::testing::{server_error, token_violation, FakeApi};
use super::{ChannelSettings, CloseOptions};
use crate::transport::Compression;
use crate::{Channel, Error, OffsetToken, StreamingIngestClient};

#[derive(Serialize)]
struct Row {
    id: u64,
}

fn tok(n: u64) -> Option<OffsetToken> {
    Some(OffsetToken::from(n))
}

fn settings() -> ChannelSettings {
    ChannelSettings {
        max_client_lag: Duration::from_secs(1),
        compression: Compression::None,
        ..ChannelSettings::default()
    }
}

fn client(fake: &Arc<FakeApi>, settings: ChannelSettings) -> StreamingIngestClient {
    StreamingIngestClient::from_parts(Arc::clone(fake) as _, settings)
}

/// A client with the test settings and `compression`.
fn compressing(fake: &Arc<FakeApi>, compression: Compression) -> StreamingIngestClient {
    client(
        fake,
        ChannelSettings {
            compression,
            ..settings()
        },
    )
}

async fn open(client: &StreamingIngestClient, name: &str) -> Channel {
    client.open_channel("DB", "SC", "P", name).await.unwrap()
}

/// Lets spawned tasks run until the fake saw `n` appends to `channel`.
async fn until_appends(fake: &FakeApi, channel: &str, n: usize) {
    for _ in 0..100_000 {
        if fake.appends_to(channel).len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("fake never saw {n} appends to {channel}");
}

fn ids(rows: &[String]) -> Vec<u64> {
    rows.iter()
        .map(|r| {
            serde_json::from_str::<serde_json::Value>(r).unwrap()["id"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn batch_is_sent_at_exactly_the_client_lag() {
    let fake = FakeApi::new();
    let client = client(&fake, settings());
    let ch = open(&client, "c").await;
    let t0 = Instant::now();
    ch.append_row(&Row { id: 1 }, tok(1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    ch.append_row(&Row { id: 2 }, tok(2)).await.unwrap();
    until_appends(&fake, "c", 1).await;
    let a = &fake.appends_to("c")[0];
    assert_eq!(a.at - t0, Duration::from_secs(1));
    assert_eq!(ids(&a.rows), [1, 2]);
    assert_eq!(
        (a.start.as_deref(), a.end.as_deref()),
        (Some("1"), Some("2"))
    );
}

#[tokio::test(start_paused = true)]
async fn size_limit_triggers_flush_before_the_lag_and_is_never_exceeded() {
    let fake = FakeApi::new();
    let client = client(
        &fake,
        ChannelSettings {
            max_request_bytes: 1024,
            ..settings()
        },
    );
    let ch = open(&client, "c").await;
    let t0 = Instant::now();
    ch.append_rows((0..300).map(|id| Row { id }), tok(0), tok(299))
        .await
        .unwrap();
    until_appends(&fake, "c", 2).await;
    let appends = fake.appends_to("c");
    assert_eq!(appends[0].at, t0, "full batch goes out at once");
    for a in &appends {
        assert!(a.wire_len <= 1024, "{} bytes on the wire", a.wire_len);
    }
    ch.flush().await.unwrap();
    let appends = fake.appends_to("c");
    let all: Vec<u64> = appends.iter().flat_map(|a| ids(&a.rows)).collect();
    assert_eq!(all, (0..300).collect::<Vec<_>>());
    // Dense tokens: every request carries the tokens of its own first and last row.
    for a in &appends {
        assert_eq!(token_violation(a), None);
    }
    assert_eq!(appends[0].start.as_deref(), Some("0"));
    assert_eq!(appends.last().unwrap().end.as_deref(), Some("299"));
}

#[tokio::test(start_paused = true)]
async fn zstd_bodies_stay_under_the_wire_limit() {
    let fake = FakeApi::new();
    let client = client(
        &fake,
        ChannelSettings {
            max_request_bytes: 4096,
            compression: Compression::Zstd,
            ..settings()
        },
    );
    let ch = open(&client, "c").await;
    // Incompressible-ish payloads: random hex strings.
    let rows: Vec<_> = (0..200u64)
        .map(|id| serde_json::json!({"id": id, "r": format!("{:x}", rand::random::<u128>())}))
        .collect();
    ch.append_rows(rows, tok(0), tok(199)).await.unwrap();
    ch.flush().await.unwrap();
    let appends = fake.appends_to("c");
    assert!(appends.len() > 1);
    assert!(appends.iter().all(|a| a.wire_len <= 4096));
    assert_eq!(appends.iter().map(|a| a.rows.len()).sum::<usize>(), 200);
}

#[tokio::test(start_paused = true)]
async fn gzip_bodies_round_trip() {
    let fake = FakeApi::new();
    let client = compressing(&fake, Compression::Gzip);
    let ch = open(&client, "c").await;
    ch.append_rows((0..100).map(|id| Row { id }), None, tok(99))
        .await
        .unwrap();
    ch.flush().await.unwrap();
    let appends = fake.appends_to("c");
    assert_eq!(ids(&appends[0].rows), (0..100).collect::<Vec<_>>());
    assert!(appends[0].wire_len < 100 * 10);
}

#[tokio::test(start_paused = true)]
async fn flush_covers_rows_appended_before_the_call_only() {
    let fake = FakeApi::new();
    fake.set_latency(Duration::from_millis(100));
    let client = client(&fake, settings());
    let ch = open(&client, "c").await;
    let t0 = Instant::now();
    ch.flush().await.unwrap();
    assert_eq!(t0.elapsed(), Duration::ZERO, "empty flush resolves at once");

    ch.append_row(&Row { id: 1 }, tok(1)).await.unwrap();
    let flush = ch.flush();
    let later = async {
        tokio::task::yield_now().await;
        ch.append_row(&Row { id: 2 }, tok(2)).await.unwrap();
    };
    let (r, ()) = tokio::join!(flush, later);
    r.unwrap();
    assert_eq!(t0.elapsed(), Duration::from_millis(100));
    let appends = fake.appends_to("c");
    assert_eq!(appends.len(), 1);
    assert_eq!(ids(&appends[0].rows), [1]);
    until_appends(&fake, "c", 2).await;
    assert_eq!(ids(&fake.appends_to("c")[1].rows), [2]);
}

#[tokio::test(start_paused = true)]
async fn one_request_in_flight_with_chained_continuation_tokens_and_ordered_rows() {
    let fake = FakeApi::new();
    fake.set_latency(Duration::from_millis(50));
    let client = client(
        &fake,
        ChannelSettings {
            max_request_bytes: 1024,
            ..settings()
        },
    );
    let ch = open(&client, "c").await;
    for i in 0..50u64 {
        ch.append_rows(
            (i * 20..i * 20 + 20).map(|id| Row { id }),
            tok(i * 20),
            tok(i * 20 + 19),
        )
        .await
        .unwrap();
    }
    ch.flush().await.unwrap();
    let appends = fake.appends_to("c");
    assert!(appends.len() > 5);
    assert_eq!(fake.max_concurrent(), 1);
    assert_eq!(fake.chain_violations(), 0);
    for (i, a) in appends.iter().enumerate() {
        assert_eq!(a.continuation, format!("1:{i}"));
    }
    let all: Vec<u64> = appends.iter().flat_map(|a| ids(&a.rows)).collect();
    assert_eq!(all, (0..1000).collect::<Vec<_>>());
    ch.wait_for_commit(&OffsetToken::from(999u64), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        ids(&fake.committed_rows("c")),
        (0..1000).collect::<Vec<_>>()
    );
    assert_eq!(ch.latest_committed_offset_token(), tok(999));
}

#[tokio::test(start_paused = true)]
async fn budget_backpressure_waits_and_try_append_refuses_until_commit() {
    let fake = FakeApi::new();
    fake.set_manual_commit(true);
    let client = client(
        &fake,
        ChannelSettings {
            memory_budget_bytes: 4096,
            max_request_bytes: 1024,
            ..settings()
        },
    );
    let ch = open(&client, "c").await;
    let mut id = 0u64;
    loop {
        tokio::task::yield_now().await;
        match ch.try_append_row(&Row { id }, tok(id)) {
            Ok(()) => id += 1,
            Err(Error::Backpressure {
                requested, budget, ..
            }) => {
                assert_eq!(budget, 4096);
                assert!(requested > 0);
                break;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    ch.flush().await.unwrap();
    let used = client.inner_runtime().budget_used();
    let usable = client.inner_runtime().budget_usable();
    assert_eq!(
        usable,
        4096 - 4096 / 16,
        "1/16 is set aside for idle buffers"
    );
    assert!(
        used > usable - 64,
        "retained batches hold the budget: {used}"
    );
    // A waiting append stays pending while nothing commits...
    let pending =
        tokio::time::timeout(Duration::from_secs(10), ch.append_row(&Row { id }, tok(id))).await;
    assert!(pending.is_err(), "append must wait for budget");
    // ...and completes once the server commits and the poller sees it.
    fake.commit("c");
    let t = Instant::now();
    ch.append_row(&Row { id }, tok(id)).await.unwrap();
    assert!(
        t.elapsed() <= Duration::from_millis(200),
        "{:?}",
        t.elapsed()
    );
    assert!(client.inner_runtime().budget_used() < 100);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_handle_sends_the_buffer_and_unregisters() {
    let fake = FakeApi::new();
    let client = client(&fake, settings());
    let ch = open(&client, "c").await;
    let t0 = Instant::now();
    ch.append_rows((0..10).map(|id| Row { id }), None, tok(9))
        .await
        .unwrap();
    drop(ch);
    until_appends(&fake, "c", 1).await;
    assert_eq!(fake.appends_to("c")[0].at, t0, "drop flushes at once");
    // The channel is gone: it is no longer polled and the name can be opened again.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let polls = fake.status_polls();
    let last = polls.last().map(|(_, t)| *t).unwrap_or(t0);
    assert!(last - t0 < Duration::from_secs(6));
    assert_eq!(client.inner_runtime().budget_used(), 0);
    let again = open(&client, "c").await;
    again.close().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn stale_continuation_token_recovers_with_exactly_once_replay() {
    let fake = FakeApi::new();
    fake.set_manual_commit(true);
    let client = client(&fake, settings());
    let ch = open(&client, "c").await;
    for id in 1..=3 {
        ch.append_row(&Row { id }, tok(id)).await.unwrap();
        ch.flush().await.unwrap();
    }
    fake.commit("c"); // 1..=3 committed
    ch.append_row(&Row { id: 4 }, tok(4)).await.unwrap();
    ch.flush().await.unwrap(); // 4 sent, not committed
    tokio::time::sleep(Duration::from_millis(500)).await; // poller sees committed 3
    fake.reopen_elsewhere("c", None); // discards 4, our token is now stale
    ch.append_row(&Row { id: 5 }, tok(5)).await.unwrap();
    ch.flush().await.unwrap();
    fake.commit("c");
    ch.wait_for_commit(&OffsetToken::from(5u64), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(ids(&fake.committed_rows("c")), [1, 2, 3, 4, 5]);
    assert_eq!(ch.status().recoveries, 1);
    assert_eq!(fake.opens("c"), 2);
}

#[tokio::test(start_paused = true)]
async fn lost_ack_recovers_whether_or_not_the_batch_was_applied() {
    for committed_before_reopen in [false, true] {
        let fake = FakeApi::new();
        fake.set_commit_on_append(committed_before_reopen);
        fake.set_manual_commit(true);
        let client = client(&fake, settings());
        let ch = open(&client, "c").await;
        ch.append_row(&Row { id: 1 }, tok(1)).await.unwrap();
        ch.flush().await.unwrap();
        fake.lose_next_acks(1);
        ch.append_row(&Row { id: 2 }, tok(2)).await.unwrap();
        ch.flush().await.unwrap();
        ch.append_row(&Row { id: 3 }, tok(3)).await.unwrap();
        ch.flush().await.unwrap();
        fake.commit("c");
        ch.wait_for_commit(&OffsetToken::from(3u64), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(
            ids(&fake.committed_rows("c")),
            [1, 2, 3],
            "committed_before_reopen={committed_before_reopen}"
        );
        ch.close().await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn invalidation_status_from_the_poller_triggers_recovery() {
    let fake = FakeApi::new();
    fake.set_manual_commit(true);
    let client = client(&fake, settings());
    let ch = open(&client, "c").await;
    ch.append_rows((1..=3).map(|id| Row { id }), tok(1), tok(3))
        .await
        .unwrap();
    ch.flush().await.unwrap();
    fake.invalidate("c"); // uncommitted rows 1..=3 will be discarded by the reopen
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ch.status().recoveries, 1);
    ch.append_row(&Row { id: 4 }, tok(4)).await.unwrap();
    ch.flush().await.unwrap();
    fake.commit("c");
    ch.wait_for_commit(&OffsetToken::from(4u64), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(ids(&fake.committed_rows("c")), [1, 2, 3, 4]);
}

#[tokio::test(start_paused = true)]
async fn impossible_recovery_fails_with_the_committed_token_and_reopen_resumes() {
    let fake = FakeApi::new();
    fake.set_manual_commit(true);
    let client = client(&fake, settings());
    let ch = open(&client, "c").await;
    ch.append_row(&Row { id: 1 }, Some(OffsetToken::from("a")))
        .await
        .unwrap();
    ch.flush().await.unwrap();
    fake.reopen_elsewhere("c", Some("zzz"));
    ch.append_row(&Row { id: 2 }, Some(OffsetToken::from("b")))
        .await
        .unwrap();
    let err = ch.flush().await.unwrap_err();
    assert!(err.is_channel_invalidated(), "{err}");
    assert_eq!(
        err.last_committed_offset_token(),
        Some(&OffsetToken::from("zzz"))
    );
    let err = ch.append_row(&Row { id: 3 }, None).await.unwrap_err();
    assert!(err.is_channel_invalidated());
    assert!(ch.status().failed);
    assert_eq!(client.inner_runtime().budget_used(), 0);
    let resume = ch.reopen().await.unwrap();
    assert_eq!(resume, Some(OffsetToken::from("zzz")));
    ch.append_row(&Row { id: 3 }, Some(OffsetToken::from("c")))
        .await
        .unwrap();
    ch.flush().await.unwrap();
    fake.commit("c");
    assert_eq!(ids(&fake.committed_rows("c")), [3]);
}

#[tokio::test(start_paused = true)]
async fn channels_fail_independently() {
    let fake = FakeApi::new();
    let client = client(&fake, settings());
    let a = open(&client, "a").await;
    let b = open(&client, "b").await;
    fake.fail_next_append(|| server_error(400, "ERR_BAD_REQUEST", "append rows"));
    a.append_row(&Row { id: 1 }, tok(1)).await.unwrap();
    let err = a.flush().await.unwrap_err();
    assert!(err.is_channel_invalidated());
    assert_eq!(err.snowflake_code(), Some("ERR_BAD_REQUEST"));
    b.append_row(&Row { id: 1 }, tok(1)).await.unwrap();
    b.flush().await.unwrap();
    b.wait_for_commit(&OffsetToken::from(1u64), Duration::from_secs(5))
        .await
        .unwrap();
    assert!(a.status().failed);
    assert!(!b.status().failed);
    let err = client.close().await.unwrap_err();
    assert!(err.is_channel_invalidated());
}

#[tokio::test(start_paused = true)]
async fn two_writers_fighting_end_in_an_error_not_a_loop() {
    let fake = FakeApi::new();
    let client = client(&fake, settings());
    let ch = open(&client, "c").await;
    fake.contest("c");
    fake.reopen_elsewhere("c", None);
    ch.append_row(&Row { id: 1 }, tok(1)).await.unwrap();
    let err = ch.flush().await.unwrap_err();
    assert!(err.is_channel_invalidated(), "{err}");
    assert_eq!(fake.opens("c"), 1 + super::actor::MAX_RECOVERIES);
}

/// Opens `c`, commits token 1, then makes the server refuse reopens (each attempt taking
/// 30 s, as the REST layer's retries would) and invalidates the channel's continuation token.
async fn outage_during_recovery(fake: &Arc<FakeApi>, client: &StreamingIngestClient) -> Channel {
    let ch = open(client, "c").await;
    ch.append_row(&Row { id: 1 }, tok(1)).await.unwrap();
    ch.wait_for_commit(&OffsetToken::from(1u64), Duration::from_secs(5))
        .await
        .unwrap();
    fake.refuse_opens(Some(Duration::from_secs(30)));
    fake.reopen_elsewhere("c", None);
    ch.append_row(&Row { id: 2 }, tok(2)).await.unwrap();
    // The stale token starts a recovery; the flush waits for it, so stop waiting early.
    let pending = tokio::time::timeout(Duration::from_secs(5), ch.flush()).await;
    assert!(pending.is_err(), "the flush should wait for the recovery");
    assert_eq!(fake.opens("c"), 2, "recovering");
    ch
}

#[tokio::test(start_paused = true)]
async fn recovery_during_an_outage_fails_within_the_recovery_timeout() {
    let fake = FakeApi::new();
    let client = client(&fake, settings());
    let t0 = Instant::now();
    let ch = outage_during_recovery(&fake, &client).await;
    let mut state = ch.shared.actor.state.subscribe();
    tokio::time::timeout(
        Duration::from_secs(600),
        state.wait_for(|s| !matches!(s, super::shared::State::Open)),
    )
    .await
    .expect("recovery never gave up")
    .unwrap();
    drop(state);
    // 2 min of recovery plus at most one 30 s attempt started just before the deadline
    // is cut short by the deadline itself.
    assert!(
        t0.elapsed() <= Duration::from_secs(125),
        "{:?}",
        t0.elapsed()
    );
    let err = ch.append_row(&Row { id: 3 }, tok(3)).await.unwrap_err();
    match err {
        Error::ChannelInvalidated { last_committed, .. } => assert_eq!(last_committed, tok(1)),
        e => panic!("{e}"),
    }
    fake.refuse_opens(None);
    assert_eq!(ch.reopen().await.unwrap(), tok(1));
}

#[tokio::test(start_paused = true)]
async fn close_timeout_during_a_recovery_stops_the_actor_and_frees_the_name() {
    let fake = FakeApi::new();
    let client = client(&fake, settings());
    let ch = outage_during_recovery(&fake, &client).await;
    let err = ch
        .close_with(CloseOptions::default().timeout(Duration::from_secs(2)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    fake.refuse_opens(None);
    let again = client.open_channel("DB", "SC", "P", "c").await.unwrap();
    assert_eq!(again.latest_committed_offset_token(), tok(1));
    tokio::time::timeout(Duration::from_secs(60), client.close())
        .await
        .expect("client.close() hung")
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn client_close_during_a_recovery_returns_within_the_drain_limit() {
    let fake = FakeApi::new();
    let client = client(&fake, settings());
    let _ch = outage_during_recovery(&fake, &client).await;
    let t0 = Instant::now();
    let err = client.close().await.unwrap_err();
    assert!(err.is_channel_invalidated(), "{err}");
    assert!(err.to_string().contains("1 buffered rows"), "{err}");
    assert!(t0.elapsed() <= super::actor::SHUTDOWN_FLUSH_TIMEOUT + Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn concurrent_opens_of_one_channel_leave_the_winner_intact() {
    let fake = FakeApi::new();
    fake.set_open_latency(Duration::from_millis(200));
    let client = client(&fake, settings());
    let (a, b) = tokio::join!(
        client.open_channel("DB", "SC", "P", "c"),
        client.open_channel("DB", "SC", "P", "c")
    );
    let (winner, loser) = match (a, b) {
        (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
        (a, b) => panic!("expected one open to fail: {a:?} {b:?}"),
    };
    assert!(matches!(loser, Error::InvalidArgument { .. }), "{loser}");
    assert_eq!(fake.opens("c"), 1, "the loser never reached the server");
    winner.append_row(&Row { id: 1 }, tok(1)).await.unwrap();
    winner.flush().await.unwrap();
    assert_eq!(winner.status().recoveries, 0);
    winner.close().await.unwrap();
    // A failed open releases its reservation.
    fake.fail_next_open(|| server_error(404, "ERR_PIPE_DOES_NOT_EXIST", "open channel"));
    assert!(client.open_channel("DB", "SC", "P", "d").await.is_err());
    open(&client, "d").await.close().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn open_options_reach_the_request_and_table_channels_use_the_default_pipe() {
    let fake = FakeApi::new();
    let client = client(&fake, settings());
    let ch = client
        .open_table_channel_with(
            "DB",
            "SC",
            "T",
            "c",
            super::OpenChannelOptions::default()
                .fail_on_uncommitted_rows(true)
                .offset_token(7u64),
        )
        .await
        .unwrap();
    assert_eq!(ch.pipe_name(), "T-STREAMING");
    open(&client, "d").await.close().await.unwrap();
    let requests = fake.open_requests();
    assert_eq!(requests[0].0, "c");
    assert_eq!(requests[0].1.fail_on_uncommitted_rows, Some(true));
    assert_eq!(requests[0].1.offset_token.as_deref(), Some("7"));
    assert_eq!(
        requests[1].1.fail_on_uncommitted_rows, None,
        "server default"
    );
    ch.close().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn closing_without_waiting_for_commit_still_reports_row_errors_of_the_last_batch() {
    let fake = FakeApi::new();
    let client = client(
        &fake,
        ChannelSettings {
            commit_poll_interval: Duration::from_secs(30),
            idle_poll_interval: Duration::from_secs(30),
            ..settings()
        },
    );
    let ch = open(&client, "c").await;
    let mut events = ch.events();
    tokio::time::sleep(Duration::from_millis(10)).await; // the poller's first poll
    let polls = fake.status_polls().len();
    ch.append_row(&Row { id: 1 }, tok(1)).await.unwrap();
    ch.flush().await.unwrap();
    fake.add_row_errors("c", 1, "bad row", "1");
    ch.close().await.unwrap();
    assert_eq!(fake.status_polls().len(), polls + 1, "one final poll");
    let event = events.try_recv().expect("row error reported at close");
    assert_eq!(event.new_errors, 1);
    assert_eq!(event.offset_upper_bound, tok(1));
}

#[tokio::test(start_paused = true)]
async fn a_slow_pipe_does_not_delay_commit_detection_on_other_pipes() {
    let fake = FakeApi::new();
    fake.slow_status_for_pipe("SLOW", Duration::from_secs(3600));
    let client = client(&fake, settings());
    let _slow = client.open_channel("DB", "SC", "SLOW", "s").await.unwrap();
    let ch = open(&client, "c").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t0 = Instant::now();
    ch.append_row(&Row { id: 1 }, tok(1)).await.unwrap();
    ch.flush().await.unwrap();
    ch.wait_for_commit(&OffsetToken::from(1u64), Duration::from_secs(60))
        .await
        .unwrap();
    assert!(
        t0.elapsed() <= Duration::from_millis(1200),
        "{:?}",
        t0.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn failing_status_polls_make_wait_for_commit_fail_promptly() {
    let fake = FakeApi::new();
    let client = client(&fake, settings());
    let ch = open(&client, "c").await;
    fake.fail_status_for_pipe("P", true);
    ch.append_row(&Row { id: 1 }, tok(1)).await.unwrap();
    ch.flush().await.unwrap();
    let t0 = Instant::now();
    let err = ch
        .wait_for_commit(&OffsetToken::from(1u64), Duration::from_secs(600))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("status"), "{err}");
    assert!(
        t0.elapsed() <= Duration::from_secs(35),
        "{:?}",
        t0.elapsed()
    );
    // Once polls work again (the next poll clears the stall), commits are seen.
    fake.fail_status_for_pipe("P", false);
    tokio::time::sleep(Duration::from_millis(200)).await;
    ch.wait_for_commit(&OffsetToken::from(1u64), Duration::from_secs(5))
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_channel_missing_from_status_answers_is_recovered() {
    let fake = FakeApi::new();
    fake.set_manual_commit(true);
    let client = client(&fake, settings());
    let ch = open(&client, "c").await;
    ch.append_row(&Row { id: 1 }, tok(1)).await.unwrap();
    ch.flush().await.unwrap();
    // The server loses the channel and its uncommitted batch.
    fake.reopen_elsewhere("c", None);
    fake.hide_from_status("c");
    fake.set_manual_commit(false);
    ch.wait_for_commit(&OffsetToken::from(1u64), Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| assert!(matches!(e, Error::Timeout { .. }), "{e}"));
    let mut committed = ch.watch_committed();
    tokio::time::timeout(
        Duration::from_secs(60),
        committed.wait_for(|c| *c == tok(1)),
    )
    .await
    .expect("replayed and committed")
    .unwrap();
    drop(committed);
    assert_eq!(ids(&fake.committed_rows("c")), [1]);
    assert_eq!(ch.status().recoveries, 1);
    ch.close().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_idle_channel_frees_its_compression_buffers() {
    let fake = FakeApi::new();
    let client = compressing(&fake, Compression::Zstd);
    let ch = open(&client, "c").await;
    // Two appends: two row buffers go back to the pool once the batch is compressed.
    ch.append_rows((0..2000).map(|id| Row { id }), None, None)
        .await
        .unwrap();
    ch.append_rows((2000..4000).map(|id| Row { id }), None, tok(3999))
        .await
        .unwrap();
    ch.flush().await.unwrap();
    assert!(ch.shared.buffers.idle_bytes() > 0);
    tokio::time::sleep(super::actor::CODEC_IDLE_RELEASE + Duration::from_millis(100)).await;
    assert_eq!(ch.shared.buffers.idle_bytes(), 0);
    // The next batch recreates what it needs.
    ch.append_row(&Row { id: 4000 }, tok(4000)).await.unwrap();
    ch.flush().await.unwrap();
    let all: Vec<u64> = fake
        .appends_to("c")
        .iter()
        .flat_map(|a| ids(&a.rows))
        .collect();
    assert_eq!(all, (0..=4000).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn row_errors_become_events_with_the_offset_bound() {
    let fake = FakeApi::new();
    let client = client(&fake, settings());
    let ch = open(&client, "c").await;
    let mut events = ch.events();
    ch.append_row(&Row { id: 1 }, tok(1)).await.unwrap();
    ch.flush().await.unwrap();
    fake.add_row_errors("c", 2, "type mismatch", "1");
    let ev = tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ev.new_errors, 2);
    assert_eq!(ev.offset_upper_bound, tok(1));
    assert_eq!(ev.last_error_message.as_deref(), Some("type mismatch"));
    assert_eq!(ch.status().rows_error_count, 2);
}

#[tokio::test(start_paused = true)]
async fn commit_polling_is_fast_while_pending_and_slow_when_idle() {
    let fake = FakeApi::new();
    let client = client(&fake, settings());
    let ch = open(&client, "c").await;
    let mut watch = ch.watch_committed();
    let t0 = Instant::now();
    ch.append_row(&Row { id: 7 }, tok(7)).await.unwrap();
    watch.wait_for(|c| *c == tok(7)).await.unwrap();
    // sent at the lag (1 s), seen by the next fast poll (100 ms)
    assert!(
        t0.elapsed() <= Duration::from_millis(1100),
        "{:?}",
        t0.elapsed()
    );
    let n = fake.status_polls().len();
    tokio::time::sleep(Duration::from_secs(20)).await;
    let idle = fake.status_polls().len() - n;
    assert!((3..=5).contains(&idle), "{idle} polls in 20 s idle");
}

#[tokio::test(start_paused = true)]
async fn close_waits_for_commit_and_client_close_closes_every_channel() {
    let fake = FakeApi::new();
    let client = client(&fake, settings());
    let a = open(&client, "a").await;
    let b = open(&client, "b").await;
    a.append_row(&Row { id: 1 }, tok(1)).await.unwrap();
    b.append_row(&Row { id: 2 }, tok(2)).await.unwrap();
    let t0 = Instant::now();
    a.close_with(CloseOptions::default().wait_for_commit(true))
        .await
        .unwrap();
    assert!(t0.elapsed() < Duration::from_millis(200));
    assert_eq!(fake.committed_token("a").as_deref(), Some("1"));
    client.close().await.unwrap();
    assert_eq!(ids(&fake.appends_to("b")[0].rows), [2]);
    let err = b.append_row(&Row { id: 3 }, None).await.unwrap_err();
    assert!(matches!(err, Error::Shutdown { .. }), "{err}");
    assert!(client.open_channel("DB", "SC", "P", "x").await.is_err());
}

#[tokio::test(start_paused = true)]
async fn client_close_returns_only_after_every_channel_delivered_its_rows() {
    let fake = FakeApi::new();
    fake.set_latency(Duration::from_millis(500));
    let client = client(&fake, settings());
    let a = open(&client, "a").await;
    let b = open(&client, "b").await;
    a.append_row(&Row { id: 1 }, tok(1)).await.unwrap();
    b.append_rows([Row { id: 2 }, Row { id: 3 }], tok(2), tok(3))
        .await
        .unwrap();
    let t0 = Instant::now();
    client.close().await.unwrap();
    assert!(
        t0.elapsed() >= Duration::from_millis(500),
        "returned before sending"
    );
    assert_eq!(ids(&fake.appends_to("a")[0].rows), [1]);
    assert_eq!(ids(&fake.appends_to("b")[0].rows), [2, 3]);
    assert!(fake.appends().iter().all(|a| a.accepted));
}

#[tokio::test(start_paused = true)]
async fn client_close_reports_an_error_met_while_draining() {
    let fake = FakeApi::new();
    let client = client(&fake, settings());
    let a = open(&client, "a").await;
    a.append_row(&Row { id: 1 }, tok(1)).await.unwrap();
    fake.fail_next_append(|| server_error(400, "ERR_INVALID_ROWS", "append rows"));
    let err = client.close().await.unwrap_err();
    assert!(err.is_channel_invalidated(), "{err}");
}

#[tokio::test(start_paused = true)]
async fn close_times_out_when_the_server_hangs() {
    let fake = FakeApi::new();
    fake.set_latency(Duration::from_secs(3600));
    let client = client(&fake, settings());
    let ch = open(&client, "c").await;
    ch.append_row(&Row { id: 1 }, None).await.unwrap();
    let err = ch
        .close_with(CloseOptions::default().timeout(Duration::from_secs(2)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
}

#[tokio::test(start_paused = true)]
async fn drop_channel_waits_for_commit_then_deletes() {
    let fake = FakeApi::new();
    let client = client(&fake, settings());
    let ch = open(&client, "c").await;
    ch.append_row(&Row { id: 1 }, tok(1)).await.unwrap();
    let last = ch.drop_channel().await.unwrap();
    assert_eq!(last, tok(1));
    assert_eq!(
        ids(&fake.committed_rows("c")),
        Vec::<u64>::new(),
        "dropped on the server"
    );
}

#[tokio::test(start_paused = true)]
async fn opening_reports_the_committed_token_and_can_reset_it() {
    let fake = FakeApi::new();
    let client = client(&fake, settings());
    let ch = open(&client, "c").await;
    assert_eq!(ch.latest_committed_offset_token(), None);
    let err = client.open_channel("DB", "SC", "P", "c").await.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    ch.close().await.unwrap();
    let ch = client
        .open_channel_with(
            "DB",
            "SC",
            "P",
            "c",
            super::OpenChannelOptions::default().offset_token(41u64),
        )
        .await
        .unwrap();
    assert_eq!(ch.latest_committed_offset_token(), tok(41));
    let t = client
        .open_table_channel("DB", "SC", "T", "t")
        .await
        .unwrap();
    assert_eq!(t.pipe_name(), "T-STREAMING");
}

#[tokio::test(start_paused = true)]
async fn bad_rows_fail_at_once_and_buffer_nothing() {
    let fake = FakeApi::new();
    let client = client(
        &fake,
        ChannelSettings {
            max_request_bytes: 1024,
            ..settings()
        },
    );
    let ch = open(&client, "c").await;
    let big = "x".repeat(2000);
    let err = ch
        .append_rows(
            [serde_json::json!({"a": 1}), serde_json::json!({"a": big})],
            None,
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::RowTooLarge {
                row_index: Some(1),
                ..
            }
        ),
        "{err}"
    );
    let err = ch.append_row(&42, None).await.unwrap_err();
    assert!(
        matches!(err, Error::Serialization { row_index: 0, .. }),
        "{err}"
    );
    assert_eq!(ch.status().buffered_rows, 0);
    assert_eq!(client.inner_runtime().budget_used(), 0);
    ch.append_raw(
        bytes::Bytes::from_static(b"{\"id\":1}\n{\"id\":2}"),
        None,
        tok(2),
    )
    .await
    .unwrap();
    ch.flush().await.unwrap();
    assert_eq!(ids(&fake.appends_to("c")[0].rows), [1, 2]);
}

#[tokio::test(start_paused = true)]
async fn drop_without_close_gives_up_after_a_bounded_time() {
    let fake = FakeApi::new();
    fake.set_latency(Duration::from_secs(3600));
    let client = client(&fake, settings());
    let ch = open(&client, "c").await;
    ch.append_rows((0..10).map(|id| Row { id }), None, tok(9))
        .await
        .unwrap();
    assert!(client.inner_runtime().budget_used() > 0);
    let t0 = Instant::now();
    drop(ch);
    while client.inner_runtime().budget_used() > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(t0.elapsed() <= super::actor::DROP_FLUSH_TIMEOUT + Duration::from_millis(20));
    // The name is free again: the actor unregistered.
    let again = open(&client, "c").await;
    drop(again);
}

#[tokio::test(start_paused = true)]
async fn appends_larger_than_half_the_budget_go_piece_by_piece_in_order() {
    let fake = FakeApi::new();
    let client = client(
        &fake,
        ChannelSettings {
            memory_budget_bytes: 4096,
            max_request_bytes: 1024,
            ..settings()
        },
    );
    let ch = open(&client, "c").await;
    // ~12 KB: three times the whole budget; admitted as commits free room.
    ch.append_rows((0..1000).map(|id| Row { id }), tok(0), tok(999))
        .await
        .unwrap();
    ch.flush().await.unwrap();
    ch.wait_for_commit(&OffsetToken::from(999u64), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        ids(&fake.committed_rows("c")),
        (0..1000).collect::<Vec<_>>()
    );
    let appends = fake.appends_to("c");
    assert!(appends.len() >= 10, "{} requests", appends.len());
    for a in &appends {
        assert_eq!(token_violation(a), None);
    }
}

#[tokio::test(start_paused = true)]
async fn concurrent_appenders_never_exceed_the_budget() {
    let fake = FakeApi::new();
    fake.set_latency(Duration::from_millis(20));
    let client = client(
        &fake,
        ChannelSettings {
            memory_budget_bytes: 8192,
            max_request_bytes: 2048,
            max_client_lag: Duration::from_millis(50),
            ..settings()
        },
    );
    let ch = Arc::new(open(&client, "c").await);
    let mut tasks = Vec::new();
    for t in 0..4u64 {
        let ch = Arc::clone(&ch);
        tasks.push(tokio::spawn(async move {
            for i in 0..500u64 {
                ch.append_row(&Row { id: t * 1000 + i }, None)
                    .await
                    .unwrap();
            }
        }));
    }
    let watcher = {
        let client = client.clone();
        tokio::spawn(async move {
            let mut peak = 0;
            for _ in 0..2000 {
                peak = peak.max(client.inner_runtime().budget_used());
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            peak
        })
    };
    for t in tasks {
        t.await.unwrap();
    }
    ch.flush().await.unwrap();
    let peak = watcher.await.unwrap();
    assert!(peak <= 8192, "peak {peak}");
    assert!(peak > 0);
    let mut rows = ids(&fake
        .appends_to("c")
        .iter()
        .flat_map(|a| a.rows.clone())
        .collect::<Vec<_>>());
    assert_eq!(rows.len(), 2000);
    rows.sort_unstable();
    rows.dedup();
    assert_eq!(rows.len(), 2000);
}

/// Transport that accepts everything and commits every token at once (measures SDK overhead).
#[derive(Debug, Default)]
struct NullApi {
    last_end: std::sync::Mutex<Option<String>>,
    wire_bytes: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl crate::transport::IngestApi for NullApi {
    async fn open_channel(
        &self,
        _: &crate::transport::ChannelPath,
        _: &crate::api::OpenChannelRequest,
    ) -> crate::Result<crate::api::OpenChannelResponse> {
        Ok(crate::api::OpenChannelResponse {
            next_continuation_token: "c".into(),
            channel_status: crate::api::ChannelStatusWire {
                channel_status_code: Some("SUCCESS".into()),
                ..Default::default()
            },
        })
    }
    async fn append_rows(
        &self,
        _: &crate::transport::ChannelPath,
        r: &crate::transport::AppendRequest,
    ) -> crate::Result<String> {
        self.wire_bytes
            .fetch_add(r.body.len(), std::sync::atomic::Ordering::Relaxed);
        *self.last_end.lock().unwrap() = r.end_offset_token.as_ref().map(ToString::to_string);
        Ok("c".into())
    }
    async fn bulk_channel_status(
        &self,
        _: &crate::transport::PipePath,
        names: &[String],
    ) -> crate::Result<std::collections::HashMap<String, crate::api::ChannelStatusWire>> {
        let committed = self.last_end.lock().unwrap().clone();
        Ok(names
            .iter()
            .map(|n| {
                (
                    n.clone(),
                    crate::api::ChannelStatusWire {
                        channel_status_code: Some("SUCCESS".into()),
                        last_committed_offset_token: committed.clone(),
                        ..Default::default()
                    },
                )
            })
            .collect())
    }
    async fn drop_channel(
        &self,
        _: &crate::transport::ChannelPath,
    ) -> crate::Result<Option<String>> {
        Ok(None)
    }
}

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

/// Batches compressed while the previous request is in flight are sent in order and exactly
/// once, also when the channel recovers (stale continuation token) in the middle of the stream.
#[tokio::test(start_paused = true)]
async fn precompressed_batches_keep_order_across_a_recovery() {
    let fake = FakeApi::new();
    fake.set_latency(Duration::from_millis(50));
    let client = client(
        &fake,
        ChannelSettings {
            max_request_bytes: 2048,
            compression: Compression::Zstd,
            ..settings()
        },
    );
    let ch = open(&client, "c").await;
    for i in 0..40u64 {
        ch.append_rows(
            (i * 25..i * 25 + 25).map(|id| Row { id }),
            tok(i * 25),
            tok(i * 25 + 24),
        )
        .await
        .unwrap();
        if i == 20 {
            until_appends(&fake, "c", 3).await;
            fake.reopen_elsewhere("c", None);
        }
    }
    ch.flush().await.unwrap();
    ch.wait_for_commit(&OffsetToken::from(999u64), Duration::from_secs(30))
        .await
        .unwrap();
    assert!(fake.appends_to("c").len() > 5);
    assert_eq!(fake.max_concurrent(), 1);
    assert_eq!(
        ids(&fake.committed_rows("c")),
        (0..1000).collect::<Vec<_>>()
    );
    assert!(ch.status().recoveries >= 1);
}

#[derive(Serialize)]
struct Wide {
    id: u64,
    pad: &'static str,
}

const PAD: &str = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\
0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdef";

/// Rows `first..first + n` of ≈175 bytes each.
fn wide(first: u64, n: u64) -> impl Iterator<Item = Wide> {
    (first..first + n).map(|id| Wide { id, pad: PAD })
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

#[tokio::test(start_paused = true)]
async fn row_buffers_are_recycled_once_their_batch_is_compressed() {
    let fake = FakeApi::new();
    let client = compressing(&fake, Compression::Zstd);
    let ch = open(&client, "c").await;
    let append = |i: u64| {
        let ch = &ch;
        async move {
            ch.append_rows(wide(i * 1000, 1000), None, tok(i * 1000 + 999))
                .await
                .unwrap()
        }
    };
    append(0).await;
    ch.flush().await.unwrap();
    let idle = ch.shared.buffers.idle_bytes();
    assert!(
        idle > 150_000,
        "the compressed batch's row buffer went back to the pool ({idle} bytes idle)"
    );
    // The next append of the same size takes it (nothing new is allocated).
    append(1).await;
    assert!(ch.shared.buffers.idle_bytes() < idle - 150_000);
    ch.flush().await.unwrap();
    until_appends(&fake, "c", 2).await;
    let rows: Vec<u64> = fake
        .appends_to("c")
        .iter()
        .flat_map(|a| ids(&a.rows))
        .collect();
    assert_eq!(
        rows,
        (0..2000).collect::<Vec<_>>(),
        "recycled buffers hold the right rows"
    );
    // An idle channel frees its pool along with its codec.
    tokio::time::sleep(super::actor::CODEC_IDLE_RELEASE + Duration::from_millis(100)).await;
    assert_eq!(ch.shared.buffers.idle_bytes(), 0);
}

/// A client with requests of 10 KB (so a few appends fill one) and an 8 MiB budget (far more
/// than the channel's queue limit lets it use).
fn small_requests(fake: &Arc<FakeApi>, compression: Compression) -> StreamingIngestClient {
    client(
        fake,
        ChannelSettings {
            memory_budget_bytes: 8 << 20,
            max_request_bytes: 10_000,
            compression,
            ..settings()
        },
    )
}

#[tokio::test(start_paused = true)]
async fn a_producer_faster_than_the_server_stays_a_few_requests_ahead() {
    // 500 ms per append and a budget of 8 MB: without the per-channel queue limit the
    // producer would fill the budget; with it, only a few requests' worth (plus the mailbox)
    // wait.
    let fake = FakeApi::new();
    fake.set_latency(Duration::from_millis(500));
    let client = small_requests(&fake, Compression::None);
    let ch = Arc::new(open(&client, "c").await);
    let producer = {
        let ch = Arc::clone(&ch);
        tokio::spawn(async move {
            for i in 0u64.. {
                ch.append_rows(wide(i * 10, 10), None, tok(i * 10 + 9))
                    .await
                    .unwrap();
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let used = client.inner_runtime().budget_used();
    let limit = super::actor::MAX_QUEUED_REQUESTS * 10_000 + 64 * 2_000 + 4 * 10_000;
    assert!(used <= limit, "{used} bytes held, expected at most {limit}");
    assert!(
        fake.appends_to("c").len() >= 4,
        "the server still gets requests"
    );
    producer.abort();
}

#[tokio::test(start_paused = true)]
async fn batches_compressed_ahead_of_sending_are_charged_their_body_not_their_rows() {
    // The server holds the first request for a minute; the four batches queued behind it are
    // compressed meanwhile. Their rows are then freed and only their bodies count, so the
    // budget sees a fraction of the queued bytes (the rows compress about tenfold).
    let fake = FakeApi::new();
    fake.set_latency(Duration::from_secs(60));
    let client = small_requests(&fake, Compression::Zstd);
    let ch = open(&client, "c").await;
    for i in 0..25u64 {
        ch.append_rows(wide(i * 10, 10), None, tok(i * 10 + 9))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let st = ch.status();
    assert_eq!(st.in_flight_requests, 1);
    assert!(st.buffered_bytes >= 30_000, "{st:?}");
    let used = client.inner_runtime().budget_used();
    assert!(
        used * 4 < st.buffered_bytes,
        "{used} bytes charged for {} queued bytes of rows",
        st.buffered_bytes
    );
    assert!(
        ch.shared.buffers.idle_bytes() > 0,
        "the freed row buffers are kept for the next appends"
    );
}

#[tokio::test(start_paused = true)]
async fn the_budget_is_charged_what_row_buffers_hold() {
    let fake = FakeApi::new();
    let client = client(&fake, settings());
    let ch = open(&client, "c").await;
    // A recycled buffer a little larger than the next append needs.
    let mut spare = Vec::with_capacity(20_000);
    spare.push(b'x');
    ch.shared.buffers.give(bytes::Bytes::from(spare));
    ch.append_rows(wide(0, 100), None, None).await.unwrap();
    let st = ch.status();
    let used = client.inner_runtime().budget_used();
    assert!(st.buffered_bytes < 20_000, "{}", st.buffered_bytes);
    assert_eq!(
        used, 20_000,
        "charged the buffer's capacity, not its {} bytes",
        st.buffered_bytes
    );
    // Once sent (and compressed, or not), only the body is charged.
    ch.flush().await.unwrap();
    assert!(client.inner_runtime().budget_used() <= st.buffered_bytes);
}

#[tokio::test(start_paused = true)]
async fn large_batches_compressed_off_the_actor_survive_lost_acks_and_invalidation() {
    // 1 MB batches (zstd, compressed on the blocking pool, up to two at a time) through a lost
    // ack and an invalidation: every row lands exactly once, in order.
    let fake = FakeApi::new();
    fake.set_manual_commit(true);
    let client = client(
        &fake,
        ChannelSettings {
            compression: Compression::Zstd,
            max_request_bytes: 1_000_000,
            ..settings()
        },
    );
    let ch = open(&client, "c").await;
    let append = |i: u64| {
        let ch = &ch;
        async move {
            ch.append_rows(wide(i * 1000, 1000), tok(i * 1000), tok(i * 1000 + 999))
                .await
                .unwrap();
        }
    };
    for i in 0..12 {
        append(i).await;
    }
    ch.flush().await.unwrap();
    fake.commit("c");
    fake.lose_next_acks(1);
    for i in 12..24 {
        append(i).await;
    }
    ch.flush().await.unwrap();
    fake.reopen_elsewhere("c", None);
    for i in 24..36 {
        append(i).await;
    }
    ch.flush().await.unwrap();
    fake.commit("c");
    ch.wait_for_commit(&OffsetToken::from(35_999u64), Duration::from_secs(30))
        .await
        .unwrap();
    fake.commit("c");
    let rows = ids(&fake.committed_rows("c"));
    assert_eq!(rows, (0..36_000).collect::<Vec<_>>());
    assert!(ch.status().recoveries >= 1);
    assert!(
        fake.appends_to("c").iter().any(|a| a.rows.len() >= 1500),
        "batches were large enough for the blocking-pool path"
    );
}

/// A handle dropped without `close()` still sends its buffer, but when the channel was taken
/// over meanwhile (a new handle or another process opened it), it never reopens it: that would
/// steal the channel back and replay rows its new owner resumed after the committed token.
#[tokio::test(start_paused = true)]
async fn a_dropped_handle_never_reopens_a_channel_taken_over_by_another_writer() {
    let fake = FakeApi::new();
    let client = client(&fake, settings());
    let ch = open(&client, "c").await;
    ch.append_rows((0..10).map(|id| Row { id }), tok(0), tok(9))
        .await
        .unwrap();
    fake.reopen_elsewhere("c", None);
    let opens = fake.opens("c");
    drop(ch);
    tokio::time::sleep(super::actor::DROP_FLUSH_TIMEOUT + Duration::from_secs(5)).await;
    assert_eq!(
        fake.opens("c"),
        opens,
        "the dropped handle reopened the channel"
    );
    assert!(fake.committed_rows("c").is_empty());
    assert_eq!(client.inner_runtime().budget_used(), 0);
}

/// A row that counts how often it was serialized.
struct Counted(u64, Arc<std::sync::atomic::AtomicUsize>);

impl Serialize for Counted {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("id", &self.0)?;
        m.serialize_entry("pad", &"p".repeat(100))?;
        m.end()
    }
}

/// With the budget full, producers wait for room *before* serializing: the rows they hold
/// stay unserialized, so serialized rows never pile up outside the budget however many
/// producers wait (at 1,000 channels that was hundreds of MB).
#[tokio::test(start_paused = true)]
async fn producers_waiting_for_the_budget_hold_no_serialized_rows() {
    let fake = FakeApi::new();
    fake.set_manual_commit(true);
    let client = client(
        &fake,
        ChannelSettings {
            max_request_bytes: 8192,
            memory_budget_bytes: 64 << 10,
            max_client_lag: Duration::from_millis(10),
            ..settings()
        },
    );
    let serialized = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let rows = |from: u64| {
        let s = Arc::clone(&serialized);
        (from..from + 50).map(move |id| Counted(id, Arc::clone(&s)))
    };
    let mut channels = Vec::new();
    for i in 0..8 {
        let ch = Arc::new(open(&client, &format!("c{i}")).await);
        // ~6 KB each: 48 KB of the 60 KB the budget leaves to rows.
        ch.append_rows(rows(0), tok(0), tok(49)).await.unwrap();
        channels.push(ch);
    }
    let before = serialized.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(before, 400);
    let mut tasks = Vec::new();
    for ch in &channels {
        let ch = Arc::clone(ch);
        let rows = rows(50);
        tasks.push(tokio::spawn(async move {
            ch.append_rows(rows, tok(50), tok(99)).await
        }));
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = serialized.load(std::sync::atomic::Ordering::Relaxed) - before;
    // Room for about two more appends: the other producers wait with their rows unserialized.
    assert!(
        after <= 150,
        "{after} rows serialized while the budget was full"
    );
    assert!(
        tasks.iter().any(|t| !t.is_finished()),
        "some producers wait"
    );
    for (i, _) in channels.iter().enumerate() {
        fake.commit(&format!("c{i}"));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(serialized.load(std::sync::atomic::Ordering::Relaxed), 800);
}
