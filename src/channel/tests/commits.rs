//! Commit tracking: the poller's cadence, failing and slow polls, row-error events.

use super::*;

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
    ch.append(Rows::serde([&Row { id: 1 }]), Positions::from(tok(1)))
        .await
        .unwrap();
    ch.flush().await.unwrap();
    fake.add_row_errors("c", 1, "bad row", "1");
    ch.close().await.unwrap();
    assert_eq!(fake.status_polls().len(), polls + 1, "one final poll");
    let event = events.try_recv().expect("row error reported at close");
    assert_eq!(event.new_errors, 1);
    assert_eq!(event.offset_upper_bound, tok(1));
    // Then the receivers end: a task counting them (`snowpipe load`'s) need not wait for more.
    assert_eq!(
        events.try_recv().unwrap_err(),
        tokio::sync::broadcast::error::TryRecvError::Closed
    );
}

#[tokio::test(start_paused = true)]
async fn a_closed_channels_event_receivers_end_even_with_nothing_sent() {
    let fake = FakeApi::new();
    let client = client(&fake, settings());
    let ch = open(&client, "c").await;
    let mut events = ch.events();
    ch.close().await.unwrap();
    assert_eq!(
        events.try_recv().unwrap_err(),
        tokio::sync::broadcast::error::TryRecvError::Closed
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_pipe_does_not_delay_commit_detection_on_other_pipes() {
    let fake = FakeApi::new();
    fake.slow_status_for_pipe("SLOW", Duration::from_secs(3600));
    let client = client(&fake, settings());
    let _slow = client
        .pipe("DB", "SC", "SLOW")
        .open_channel("s")
        .await
        .unwrap();
    let ch = open(&client, "c").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t0 = Instant::now();
    ch.append(Rows::serde([&Row { id: 1 }]), Positions::from(tok(1)))
        .await
        .unwrap();
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
    ch.append(Rows::serde([&Row { id: 1 }]), Positions::from(tok(1)))
        .await
        .unwrap();
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
async fn row_errors_become_events_with_the_offset_bound() {
    let fake = FakeApi::new();
    let client = client(&fake, settings());
    let ch = open(&client, "c").await;
    let mut events = ch.events();
    ch.append(Rows::serde([&Row { id: 1 }]), Positions::from(tok(1)))
        .await
        .unwrap();
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
    ch.append(Rows::serde([&Row { id: 7 }]), Positions::from(tok(7)))
        .await
        .unwrap();
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

/// Opens `n` channels that never append, named `idle_0`…
async fn idle_channels(client: &StreamingIngestClient, n: usize) -> Vec<Channel> {
    let mut v = Vec::new();
    for i in 0..n {
        v.push(open(client, &format!("idle_{i}")).await);
    }
    v
}

#[tokio::test(start_paused = true)]
async fn busy_channels_are_polled_fast_and_idle_ones_at_the_idle_interval() {
    let fake = FakeApi::new();
    fake.set_manual_commit(true);
    let client = client(&fake, settings());
    let _idle = idle_channels(&client, 30).await;
    let busy = open(&client, "busy").await;
    busy.append(Rows::serde([&Row { id: 1 }]), Positions::from(tok(1)))
        .await
        .unwrap();
    busy.flush().await.unwrap();
    let start = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let polls: Vec<_> = fake
        .status_polls()
        .into_iter()
        .filter(|(_, at)| *at >= start)
        .collect();
    let busy_polls = polls
        .iter()
        .filter(|(names, _)| names.iter().any(|n| n == "busy"))
        .count();
    let idle_polls = polls
        .iter()
        .filter(|(names, _)| names.iter().any(|n| n == "idle_7"))
        .count();
    assert!(
        busy_polls >= 25,
        "the busy channel: {busy_polls} polls in 3 s"
    );
    assert!(
        idle_polls <= 1,
        "an idle channel: {idle_polls} polls in 3 s (idle interval 5 s)"
    );
    // The commit is still seen at the fast cadence.
    fake.commit("busy");
    busy.wait_for_commit(&OffsetToken::from(1u64), Duration::from_millis(300))
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_late_answer_to_an_older_poll_never_moves_the_committed_token_back() {
    let fake = FakeApi::new();
    fake.set_manual_commit(true);
    let client = client(&fake, settings());
    let _idle = idle_channels(&client, 20).await;
    let busy = open(&client, "busy").await;
    let mut seen = busy.watch_committed();
    busy.append(Rows::serde([&Row { id: 1 }]), Positions::from(tok(1)))
        .await
        .unwrap();
    busy.flush().await.unwrap();
    fake.commit("busy");
    busy.wait_for_commit(&OffsetToken::from(1u64), Duration::from_secs(1))
        .await
        .unwrap();
    // From now on the full polls (21 names) answer 3 s late with what was true when asked:
    // the next one, due within the idle interval, reports token 1 after token 2 is committed.
    fake.late_answers_to_large_status_calls(10, Duration::from_secs(3));
    busy.append(Rows::serde([&Row { id: 2 }]), Positions::from(tok(2)))
        .await
        .unwrap();
    busy.flush().await.unwrap();
    let values = Arc::new(std::sync::Mutex::new(Vec::new()));
    let recorder = {
        let values = Arc::clone(&values);
        tokio::spawn(async move {
            while seen.changed().await.is_ok() {
                let v = seen.borrow_and_update().clone();
                values.lock().unwrap().push(v);
            }
        })
    };
    // Wait for a full poll to be asked (while token 2 is not yet committed), then commit.
    let asked = fake.status_polls().len();
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if fake.status_polls()[asked..]
            .iter()
            .any(|(names, _)| names.len() >= 10)
        {
            break;
        }
    }
    fake.commit("busy");
    busy.wait_for_commit(&OffsetToken::from(2u64), Duration::from_secs(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await; // the late answer arrives
    assert_eq!(busy.latest_committed_offset_token(), tok(2));
    recorder.abort();
    let values = values.lock().unwrap().clone();
    assert!(values.contains(&tok(2)), "{values:?}");
    assert!(
        !values.windows(2).any(|w| w[0] == tok(2) && w[1] == tok(1)),
        "the committed token went back: {values:?}"
    );
}

/// A server that keeps channel names upper-case: the channel opened as `c`
/// is `C` from then on. Appends and status polls use the server's spelling, so the commit is
/// seen at once and the channel is never taken for gone and reopened.
#[tokio::test(start_paused = true)]
async fn every_call_after_open_uses_the_name_the_server_gave() {
    let fake = FakeApi::new();
    fake.set_upper_case_names(true);
    let client = client(&fake, settings());
    let ch = open(&client, "c").await;
    assert_eq!(ch.name(), "C");
    ch.append(Rows::serde([&Row { id: 1 }]), Positions::from(tok(1)))
        .await
        .unwrap();
    ch.flush().await.unwrap();
    ch.wait_for_commit(&OffsetToken::from(1u64), Duration::from_secs(5))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(fake.opens("c") + fake.opens("C"), 1, "never reopened");
    assert!(fake
        .status_polls()
        .iter()
        .all(|(names, _)| names.iter().all(|n| n == "C")));
    assert!(fake.appends().iter().all(|a| a.channel == "C"));
    ch.close().await.unwrap();
}

/// The stall signal: `uncommitted_for` is `None` on an idle channel, starts when rows wait,
/// grows while the server commits nothing, starts again when the token moves, and is `None`
/// once everything is committed.
#[tokio::test(start_paused = true)]
async fn uncommitted_for_grows_while_commits_stop_and_resets_when_they_move() {
    let fake = FakeApi::new();
    fake.set_manual_commit(true);
    let client = client(&fake, settings());
    let ch = open(&client, "c").await;
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(ch.status().uncommitted_for, None, "an idle channel");

    ch.append(Rows::serde([&Row { id: 1 }]), Positions::from(tok(1)))
        .await
        .unwrap();
    ch.flush().await.unwrap();
    tokio::time::sleep(Duration::from_secs(90)).await;
    let waited = ch.status().uncommitted_for.expect("rows wait");
    assert!(
        (Duration::from_secs(89)..=Duration::from_secs(91)).contains(&waited),
        "{waited:?}: counted from the append, not from the channel's open"
    );

    // A second row, then both committed: nothing waits.
    ch.append(Rows::serde([&Row { id: 2 }]), Positions::from(tok(2)))
        .await
        .unwrap();
    ch.flush().await.unwrap();
    fake.commit("c");
    ch.wait_for_commit(&OffsetToken::from(2u64), Duration::from_secs(10))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(ch.status().uncommitted_for, None, "everything committed");
    ch.append(Rows::serde([&Row { id: 3 }]), Positions::from(tok(3)))
        .await
        .unwrap();
    ch.flush().await.unwrap();
    tokio::time::sleep(Duration::from_secs(20)).await;
    let waited = ch.status().uncommitted_for.expect("the third row waits");
    assert!(waited <= Duration::from_secs(21), "{waited:?}");
}

/// A receiver 100 reports behind (the broadcast holds 64) still counts every rejected row
/// once: the lag is folded into one report read from the channel's status.
#[tokio::test(start_paused = true)]
async fn row_errors_count_every_rejected_row_once_however_far_behind() {
    let fake = FakeApi::new();
    let client = client(&fake, settings());
    let ch = open(&client, "c").await;
    let mut errors = ch.row_errors();
    let mut expected = 0;
    for i in 1..=100u64 {
        ch.append(Rows::serde([&Row { id: i }]), Positions::from(tok(i)))
            .await
            .unwrap();
        ch.flush().await.unwrap();
        let n = i % 3 + 1;
        expected += n;
        fake.add_row_errors("c", n, "bad", &i.to_string());
        // Each poll sees the new count (one report each) while nobody reads them.
        ch.wait_for_commit(&OffsetToken::from(i), Duration::from_secs(60))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for _ in 0..100 {
        if ch.status().rows_error_count == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ch.status().rows_error_count, expected, "every poll seen");
    let mut counted = 0;
    let mut reports = 0;
    while let Some(event) = errors.try_recv() {
        counted += event.new_errors;
        reports += 1;
    }
    assert_eq!(counted, expected, "every row once, over {reports} reports");
    assert!(reports < 100, "the lag was folded: {reports} reports");
    // More after the catch-up, some read before the channel ends and the rest after:
    // counted from there, not again from the start.
    ch.append(Rows::serde([&Row { id: 101 }]), Positions::from(tok(101)))
        .await
        .unwrap();
    ch.flush().await.unwrap();
    fake.add_row_errors("c", 5, "late", "101");
    for _ in 0..600 {
        if ch.status().rows_error_count == expected + 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ch.close().await.unwrap();
    let mut after = 0;
    while let Some(event) = errors.recv().await {
        after += event.new_errors;
    }
    assert_eq!(after, 5);
    assert!(errors.is_ended());
    assert_eq!(errors.reported_through(), expected + 5);
}
