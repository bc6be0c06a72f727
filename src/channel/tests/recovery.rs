//! Automatic recovery: reopen and exactly-once replay after invalidation or lost acks, and its bounds.

use super::*;

/// Another client opens the channel: this handle's next append is answered
/// `STALE_CONTINUATION_TOKEN_SEQUENCER`. That is final: no reopen, no replay, nothing sent
/// after it, every later call fails the same way, and the kept batches are dropped.
#[tokio::test(start_paused = true)]
async fn a_fenced_handle_fails_with_ownership_lost_and_never_sends_again() {
    let fake = FakeApi::new();
    fake.set_manual_commit(true);
    let client = client(&fake, settings());
    let ch = open(&client, "c").await;
    for id in 1..=3 {
        ch.append(Rows::serde([&Row { id }]), Positions::from(tok(id)))
            .await
            .unwrap();
        ch.flush().await.unwrap();
    }
    fake.commit("c"); // 1..=3 committed
    ch.append(Rows::serde([&Row { id: 4 }]), Positions::from(tok(4)))
        .await
        .unwrap();
    ch.flush().await.unwrap(); // 4 sent, not committed
    tokio::time::sleep(Duration::from_millis(500)).await; // poller sees committed 3
    fake.reopen_elsewhere("c", None); // discards 4, our token is now stale
    ch.append(Rows::serde([&Row { id: 5 }]), Positions::from(tok(5)))
        .await
        .unwrap();
    let err = ch.flush().await.unwrap_err();
    assert!(err.is_ownership_lost(), "{err}");
    assert_eq!(err.last_committed_offset_token(), tok(3).as_ref());
    assert_eq!(
        err.snowflake_code(),
        Some("STALE_CONTINUATION_TOKEN_SEQUENCER")
    );
    let msg = err.to_string();
    assert!(msg.contains("channel c") && msg.contains("\"3\""), "{msg}");
    let sent = fake.appends_to("c").len();
    for id in 6..=8 {
        let err = ch
            .append(Rows::serde([&Row { id }]), Positions::from(tok(id)))
            .await
            .unwrap_err();
        assert!(err.is_ownership_lost(), "{err}");
    }
    assert!(ch.flush().await.unwrap_err().is_ownership_lost());
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(
        fake.appends_to("c").len(),
        sent,
        "a fenced handle sent again"
    );
    assert_eq!(fake.opens("c"), 1, "a fenced handle reopened the channel");
    assert_eq!(ch.status().recoveries, 0);
    assert!(ch.status().failed);
    assert_eq!(client.runtime().budget_used(), 0, "kept batches dropped");
    fake.commit("c");
    assert_eq!(ids(&fake.committed_rows("c")), [1, 2, 3]);
    let err = ch.close().await.unwrap_err();
    assert!(err.is_ownership_lost(), "{err}");
}

/// The other writer commits a token this handle never sent: the poller's answer alone fails
/// the handle, before it tries to append, and `reopen()` (the application's explicit call,
/// once it knows the other writer is gone) takes the channel back after that token.
#[tokio::test(start_paused = true)]
async fn a_committed_token_this_handle_never_sent_fails_it_and_reopen_resumes() {
    let fake = FakeApi::new();
    fake.set_manual_commit(true);
    let client = client(&fake, settings());
    let ch = open(&client, "c").await;
    ch.append(
        Rows::serde([&Row { id: 1 }]),
        Positions::at(OffsetToken::new("a").unwrap()),
    )
    .await
    .unwrap();
    ch.flush().await.unwrap();
    fake.reopen_elsewhere("c", Some("zzz"));
    let mut state = ch.shared.actor.lifecycle.subscribe();
    tokio::time::timeout(Duration::from_secs(5), state.wait_for(|l| !l.is_open()))
        .await
        .expect("the poller's answer fails the channel")
        .unwrap();
    drop(state);
    let appends = fake.appends_to("c").len();
    let err = ch
        .append(
            Rows::serde([&Row { id: 2 }]),
            Positions::at(OffsetToken::new("b").unwrap()),
        )
        .await
        .unwrap_err();
    assert!(err.is_ownership_lost(), "{err}");
    assert!(err.to_string().contains("never sent"), "{err}");
    assert_eq!(
        err.last_committed_offset_token(),
        Some(&OffsetToken::new("zzz").unwrap())
    );
    assert_eq!(fake.appends_to("c").len(), appends);
    assert!(ch.status().failed);
    assert_eq!(client.runtime().budget_used(), 0);
    let resume = ch.reopen().await.unwrap();
    assert_eq!(resume, Some(OffsetToken::new("zzz").unwrap()));
    ch.append(
        Rows::serde([&Row { id: 3 }]),
        Positions::at(OffsetToken::new("c").unwrap()),
    )
    .await
    .unwrap();
    ch.flush().await.unwrap();
    fake.commit("c");
    assert_eq!(ids(&fake.committed_rows("c")), [3]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !ch.status().failed,
        "its own token after the reopen is its own"
    );
}

#[tokio::test(start_paused = true)]
async fn lost_ack_recovers_whether_or_not_the_batch_was_applied() {
    for committed_before_reopen in [false, true] {
        let fake = FakeApi::new();
        fake.set_commit_on_append(committed_before_reopen);
        fake.set_manual_commit(true);
        let client = client(&fake, settings());
        let ch = open(&client, "c").await;
        ch.append(Rows::serde([&Row { id: 1 }]), Positions::from(tok(1)))
            .await
            .unwrap();
        ch.flush().await.unwrap();
        fake.lose_next_acks(1);
        ch.append(Rows::serde([&Row { id: 2 }]), Positions::from(tok(2)))
            .await
            .unwrap();
        ch.flush().await.unwrap();
        ch.append(Rows::serde([&Row { id: 3 }]), Positions::from(tok(3)))
            .await
            .unwrap();
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
    ch.append(
        Rows::serde((1..=3).map(|id| Row { id })),
        Positions::from_span(tok(1), tok(3)),
    )
    .await
    .unwrap();
    ch.flush().await.unwrap();
    fake.invalidate("c"); // uncommitted rows 1..=3 will be discarded by the reopen
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ch.status().recoveries, 1);
    ch.append(Rows::serde([&Row { id: 4 }]), Positions::from(tok(4)))
        .await
        .unwrap();
    ch.flush().await.unwrap();
    fake.commit("c");
    ch.wait_for_commit(&OffsetToken::from(4u64), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(ids(&fake.committed_rows("c")), [1, 2, 3, 4]);
}

#[tokio::test(start_paused = true)]
async fn channels_fail_independently() {
    let fake = FakeApi::new();
    let client = client(&fake, settings());
    let a = open(&client, "a").await;
    let b = open(&client, "b").await;
    fake.fail_next_append(|| server_error(400, "ERR_BAD_REQUEST", "append rows"));
    a.append(Rows::serde([&Row { id: 1 }]), Positions::from(tok(1)))
        .await
        .unwrap();
    let err = a.flush().await.unwrap_err();
    assert!(err.is_channel_invalidated());
    assert_eq!(err.snowflake_code(), Some("ERR_BAD_REQUEST"));
    b.append(Rows::serde([&Row { id: 1 }]), Positions::from(tok(1)))
        .await
        .unwrap();
    b.flush().await.unwrap();
    b.wait_for_commit(&OffsetToken::from(1u64), Duration::from_secs(5))
        .await
        .unwrap();
    assert!(a.status().failed);
    assert!(!b.status().failed);
    let err = client.close().await.unwrap_err();
    assert!(err.is_channel_invalidated());
}

/// Two writers never fight: the handle whose open another writer follows stops at its first
/// stale answer, without a single automatic reopen.
#[tokio::test(start_paused = true)]
async fn two_writers_never_fight_the_fenced_one_stops_at_once() {
    let fake = FakeApi::new();
    let client = client(&fake, settings());
    let ch = open(&client, "c").await;
    fake.contest("c");
    fake.reopen_elsewhere("c", None);
    ch.append(Rows::serde([&Row { id: 1 }]), Positions::from(tok(1)))
        .await
        .unwrap();
    let err = ch.flush().await.unwrap_err();
    assert!(err.is_ownership_lost(), "{err}");
    assert_eq!(fake.opens("c"), 1);
    assert_eq!(fake.appends_to("c").len(), 1);
}

/// Opens `c`, commits token 1, then makes the server refuse reopens (each attempt taking
/// 30 s, as the REST layer's retries would) and invalidates the channel's continuation token.
async fn outage_during_recovery(fake: &Arc<FakeApi>, client: &StreamingIngestClient) -> Channel {
    let ch = open(client, "c").await;
    ch.append(Rows::serde([&Row { id: 1 }]), Positions::from(tok(1)))
        .await
        .unwrap();
    ch.wait_for_commit(&OffsetToken::from(1u64), Duration::from_secs(5))
        .await
        .unwrap();
    fake.refuse_opens(Some(Duration::from_secs(30)));
    fake.invalidate("c");
    ch.append(Rows::serde([&Row { id: 2 }]), Positions::from(tok(2)))
        .await
        .unwrap();
    // The invalidation starts a recovery; the flush waits for it, so stop waiting early.
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
    let mut state = ch.shared.actor.lifecycle.subscribe();
    tokio::time::timeout(Duration::from_secs(600), state.wait_for(|l| !l.is_open()))
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
    let err = ch
        .append(Rows::serde([&Row { id: 3 }]), Positions::from(tok(3)))
        .await
        .unwrap_err();
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
    let again = client
        .pipe("DB", "SC", "P")
        .open_channel("c")
        .await
        .unwrap();
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
    assert!(t0.elapsed() <= crate::channel::actor::SHUTDOWN_FLUSH_TIMEOUT + Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn a_channel_missing_from_status_answers_is_recovered() {
    let fake = FakeApi::new();
    fake.set_manual_commit(true);
    let client = client(&fake, settings());
    let ch = open(&client, "c").await;
    ch.append(Rows::serde([&Row { id: 1 }]), Positions::from(tok(1)))
        .await
        .unwrap();
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

/// Batches compressed while the previous request is in flight are sent in order and exactly
/// once, also when the channel recovers (server-side invalidation) in the middle of the stream.
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
        append_dense(&ch, i * 25, 25).await;
        if i == 20 {
            until_appends(&fake, "c", 3).await;
            fake.invalidate("c");
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
            ch.append(
                Rows::serde(wide(i * 1000, 1000)),
                Positions::from_span(tok(i * 1000), tok(i * 1000 + 999)),
            )
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
    fake.invalidate("c");
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
    ch.append(
        Rows::serde((0..10).map(|id| Row { id })),
        Positions::from_span(tok(0), tok(9)),
    )
    .await
    .unwrap();
    fake.reopen_elsewhere("c", None);
    let opens = fake.opens("c");
    drop(ch);
    tokio::time::sleep(crate::channel::actor::DROP_FLUSH_TIMEOUT + Duration::from_secs(5)).await;
    assert_eq!(
        fake.opens("c"),
        opens,
        "the dropped handle reopened the channel"
    );
    assert!(fake.committed_rows("c").is_empty());
    assert_eq!(client.runtime().budget_used(), 0);
}

/// A writer paused with an append in flight (a SIGSTOPped process, a long GC pause) wakes up
/// to a lost response while another writer has taken the channel and committed since. Its
/// recovery reads the channel's status first, sees a token it never sent, and stops without
/// reopening: the live writer is not fenced.
#[tokio::test(start_paused = true)]
async fn a_paused_writer_whose_response_was_lost_does_not_take_the_channel_back() {
    let fake = FakeApi::new();
    let client = client(&fake, settings());
    let err = taken_over_while_an_append_hangs(&fake, &client, || {}).await;
    assert!(err.is_ownership_lost(), "{err}");
    assert!(err.to_string().contains("before reopening"), "{err}");
    assert_eq!(err.last_committed_offset_token(), tok(5).as_ref());
    assert_eq!(fake.opens("c"), 1, "the paused writer reopened the channel");
}

/// The same, when the status read fails too: the reopen goes ahead (it may fence the other
/// writer, which then stops), but the committed token it returns is not this handle's, so it
/// replays nothing and stops: one of the two goes on, never both.
#[tokio::test(start_paused = true)]
async fn a_recovery_that_reopens_over_another_writers_commit_replays_nothing() {
    let fake = FakeApi::new();
    let client = client(&fake, settings());
    let err = taken_over_while_an_append_hangs(&fake, &client, || {
        fake.fail_status_for_pipe("P", true);
    })
    .await;
    assert!(err.is_ownership_lost(), "{err}");
    assert!(err.to_string().contains("after reopening"), "{err}");
    assert_eq!(fake.opens("c"), 2);
    let appends = fake.appends_to("c");
    assert_eq!(appends.len(), 2, "a replay was sent: {appends:?}");
}

/// Opens `c`, commits token 1, then sends token 2 in an append that hangs for 2 s and loses its
/// response; while it hangs, another writer takes the channel and commits up to 5, and
/// `meanwhile` runs. Returns the error the flush of token 2 ends with.
async fn taken_over_while_an_append_hangs(
    fake: &Arc<FakeApi>,
    client: &StreamingIngestClient,
    meanwhile: impl FnOnce(),
) -> Error {
    fake.set_manual_commit(true);
    let ch = open(client, "c").await;
    ch.append(Rows::serde([&Row { id: 1 }]), Positions::from(tok(1)))
        .await
        .unwrap();
    ch.flush().await.unwrap();
    fake.commit("c");
    tokio::time::sleep(Duration::from_millis(500)).await;
    fake.set_latency(Duration::from_secs(2));
    fake.fail_next_append(super::super::testing::timeout_error);
    ch.append(Rows::serde([&Row { id: 2 }]), Positions::from(tok(2)))
        .await
        .unwrap();
    let flush = ch.flush();
    tokio::pin!(flush);
    assert!(tokio::time::timeout(Duration::from_secs(1), &mut flush)
        .await
        .is_err());
    fake.reopen_elsewhere("c", Some("5"));
    meanwhile();
    flush.await.unwrap_err()
}
