//! Opening, closing, dropping: handles, options, drains and their bounds, bad input.

use super::*;

#[tokio::test(start_paused = true)]
async fn dropping_the_handle_sends_the_buffer_and_unregisters() {
    let fake = FakeApi::new();
    let client = client(&fake, settings());
    let ch = open(&client, "c").await;
    let t0 = Instant::now();
    ch.append(
        Rows::serde((0..10).map(|id| Row { id })),
        Positions::from_span(None, tok(9)),
    )
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
    assert_eq!(client.runtime().budget_used(), 0);
    let again = open(&client, "c").await;
    again.close().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn concurrent_opens_of_one_channel_leave_the_winner_intact() {
    let fake = FakeApi::new();
    fake.set_open_latency(Duration::from_millis(200));
    let client = client(&fake, settings());
    let pipe = client.pipe("DB", "SC", "P");
    let (a, b) = tokio::join!(pipe.open_channel("c"), pipe.open_channel("c"));
    let (winner, loser) = match (a, b) {
        (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
        (a, b) => panic!("expected one open to fail: {a:?} {b:?}"),
    };
    assert!(matches!(loser, Error::InvalidArgument { .. }), "{loser}");
    assert_eq!(fake.opens("c"), 1, "the loser never reached the server");
    winner
        .append(Rows::serde([&Row { id: 1 }]), Positions::from(tok(1)))
        .await
        .unwrap();
    winner.flush().await.unwrap();
    assert_eq!(winner.status().recoveries, 0);
    winner.close().await.unwrap();
    // A failed open releases its reservation.
    fake.fail_next_open(|| server_error(404, "ERR_PIPE_DOES_NOT_EXIST", "open channel"));
    assert!(client
        .pipe("DB", "SC", "P")
        .open_channel("d")
        .await
        .is_err());
    open(&client, "d").await.close().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn open_options_reach_the_request_and_table_channels_use_the_default_pipe() {
    let fake = FakeApi::new();
    let client = client(&fake, settings());
    let ch = client
        .table_pipe("DB", "SC", "T")
        .open_channel_with(
            "c",
            crate::channel::OpenChannelOptions::default()
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
        requests[1].1.fail_on_uncommitted_rows,
        Some(true),
        "the official SDK's default: rows in flight commit rather than being discarded"
    );
    ch.close().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn close_waits_for_commit_and_client_close_closes_every_channel() {
    let fake = FakeApi::new();
    let client = client(&fake, settings());
    let a = open(&client, "a").await;
    let b = open(&client, "b").await;
    a.append(Rows::serde([&Row { id: 1 }]), Positions::from(tok(1)))
        .await
        .unwrap();
    b.append(Rows::serde([&Row { id: 2 }]), Positions::from(tok(2)))
        .await
        .unwrap();
    let t0 = Instant::now();
    a.close_with(CloseOptions::default().wait_for_commit(true))
        .await
        .unwrap();
    assert!(t0.elapsed() < Duration::from_millis(200));
    assert_eq!(fake.committed_token("a").as_deref(), Some("1"));
    client.close().await.unwrap();
    assert_eq!(ids(&fake.appends_to("b")[0].rows), [2]);
    let err = b
        .append(Rows::serde([&Row { id: 3 }]), Positions::none())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Shutdown { .. }), "{err}");
    assert!(client
        .pipe("DB", "SC", "P")
        .open_channel("x")
        .await
        .is_err());
}

#[tokio::test(start_paused = true)]
async fn client_close_returns_only_after_every_channel_delivered_its_rows() {
    let fake = FakeApi::new();
    fake.set_latency(Duration::from_millis(500));
    let client = client(&fake, settings());
    let a = open(&client, "a").await;
    let b = open(&client, "b").await;
    a.append(Rows::serde([&Row { id: 1 }]), Positions::from(tok(1)))
        .await
        .unwrap();
    b.append(
        Rows::serde([Row { id: 2 }, Row { id: 3 }]),
        Positions::from_span(tok(2), tok(3)),
    )
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
    a.append(Rows::serde([&Row { id: 1 }]), Positions::from(tok(1)))
        .await
        .unwrap();
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
    ch.append(Rows::serde([&Row { id: 1 }]), Positions::none())
        .await
        .unwrap();
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
    ch.append(Rows::serde([&Row { id: 1 }]), Positions::from(tok(1)))
        .await
        .unwrap();
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
    let err = client
        .pipe("DB", "SC", "P")
        .open_channel("c")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    ch.close().await.unwrap();
    let ch = client
        .pipe("DB", "SC", "P")
        .open_channel_with(
            "c",
            crate::channel::OpenChannelOptions::default().offset_token(41u64),
        )
        .await
        .unwrap();
    assert_eq!(ch.latest_committed_offset_token(), tok(41));
    let t = client
        .table_pipe("DB", "SC", "T")
        .open_channel("t")
        .await
        .unwrap();
    assert_eq!(t.pipe_name(), "T-STREAMING");
}

/// `check_row` answers what the append does, before it: a small row and a large one that
/// compresses into a request fit (their JSON sizes), an incompressible one larger than a
/// request does not (the size and limit the append then names), nor does a non-object.
#[tokio::test(start_paused = true)]
async fn check_row_answers_as_the_append_does() {
    let fake = FakeApi::new();
    let client = client(
        &fake,
        ChannelSettings {
            compression: Compression::Zstd,
            max_request_bytes: 16 << 10,
            ..settings()
        },
    );
    let ch = open(&client, "c").await;
    let small = serde_json::json!({"a": 1});
    assert_eq!(ch.check_row(&small).unwrap(), 7);
    let compressible = serde_json::json!({"a": "x".repeat(100_000)});
    assert_eq!(ch.check_row(&compressible).unwrap(), 100_008);
    // Fixed-seed noise: 100 KB that no codec makes 16 KB.
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let noise: String = (0..100_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect();
    let noisy = serde_json::json!({ "a": noise });
    let checked = ch.check_row(&noisy).unwrap_err();
    let (size, max) = match checked {
        Error::RowTooLarge {
            size,
            max,
            row_index: None,
        } => (size, max),
        other => panic!("expected RowTooLarge without a row index, got {other:?}"),
    };
    let appended = ch
        .append(Rows::serde([&noisy]), Positions::none())
        .await
        .unwrap_err();
    assert!(
        matches!(appended, Error::RowTooLarge { size: s, max: m, row_index: Some(0) } if (s, m) == (size, max)),
        "{appended:?}"
    );
    assert!(matches!(
        ch.check_row(&42).unwrap_err(),
        Error::Serialization { .. }
    ));
    ch.append(Rows::serde([&small, &compressible]), Positions::none())
        .await
        .unwrap();
    ch.flush().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn bad_rows_fail_at_once_and_buffer_nothing() {
    let fake = FakeApi::new();
    let client = client(&fake, kib_requests());
    let ch = open(&client, "c").await;
    let big = "x".repeat(2000);
    let err = ch
        .append(
            Rows::serde([serde_json::json!({"a": 1}), serde_json::json!({"a": big})]),
            Positions::none(),
        )
        .await
        .unwrap_err();
    assert_eq!(row_too_large(&err).0, Some(1), "{err}");
    let err = ch
        .append(Rows::serde([&42]), Positions::none())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Serialization { row_index: 0, .. }),
        "{err}"
    );
    assert_eq!(ch.status().buffered_rows, 0);
    assert_eq!(client.runtime().budget_used(), 0);
    ch.append(
        Rows::ndjson(bytes::Bytes::from_static(b"{\"id\":1}\n{\"id\":2}")),
        Positions::from_span(None, tok(2)),
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
    ch.append(
        Rows::serde((0..10).map(|id| Row { id })),
        Positions::from_span(None, tok(9)),
    )
    .await
    .unwrap();
    assert!(client.runtime().budget_used() > 0);
    let t0 = Instant::now();
    drop(ch);
    while client.runtime().budget_used() > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(t0.elapsed() <= crate::channel::actor::DROP_FLUSH_TIMEOUT + Duration::from_millis(20));
    // The name is free again: the actor unregistered.
    let again = open(&client, "c").await;
    drop(again);
}

/// Every way a handle ends (close, drop, a failed channel) takes its channel out of the
/// client's one registry (its actor removes it as it stops), and what the REST layer keeps
/// per channel (sticky session, pacing clock) is the actor's own: an application that
/// rotates channel names leaves nothing behind.
#[tokio::test(start_paused = true)]
async fn no_per_channel_state_survives_its_channel_with_rotating_names() {
    let fake = FakeApi::new();
    let client = client(&fake, settings());
    for i in 0..50 {
        let ch = open(&client, &format!("closed-{i}")).await;
        ch.append(Rows::serde([&Row { id: i }]), Positions::from(tok(1)))
            .await
            .unwrap();
        ch.close().await.unwrap();
        assert_eq!(client.runtime().open_channels(), 0, "closed-{i}");
    }
    let dropped = open(&client, "dropped").await;
    dropped
        .append(Rows::serde([&Row { id: 1 }]), Positions::from(tok(1)))
        .await
        .unwrap();
    let failed = open(&client, "failed").await;
    fake.fail_next_append(|| server_error(400, "ERR_BAD_REQUEST", "append rows"));
    failed
        .append(Rows::serde([&Row { id: 1 }]), Positions::from(tok(1)))
        .await
        .unwrap();
    assert!(
        failed.flush().await.is_err(),
        "the append failed the channel"
    );
    assert_eq!(client.runtime().open_channels(), 2);
    drop(dropped);
    drop(failed);
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(client.runtime().open_channels(), 0);
    client.close().await.unwrap();
}

/// A pipe whose format cannot be learned (the pipe-info call fails; the fake has no such
/// endpoint) writes no `Binary` in a guessed format: that row is refused, naming why and the
/// fix, while rows without bytes go on. Named on the builder, the format is used as it is.
#[tokio::test(start_paused = true)]
async fn an_unknown_binary_format_refuses_binary_rows_only() {
    #[derive(Serialize)]
    struct Blob {
        id: u64,
        b: crate::binary::Binary,
    }
    let fake = FakeApi::new();
    let c = client(&fake, settings());
    let ch = open(&c, "c").await;
    assert_eq!(ch.binary_format(), None);
    let err = ch
        .append(
            Rows::serde([&Blob {
                id: 1,
                b: crate::binary::Binary(vec![1]),
            }]),
            Positions::from(tok(1)),
        )
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Serialization { .. }), "{err:?}");
    assert!(
        text.contains("pipe-info") && text.contains("binary_format"),
        "{text}"
    );
    ch.append(Rows::serde([&Row { id: 2 }]), Positions::from(tok(2)))
        .await
        .unwrap();
    ch.close().await.unwrap();

    let c = client(
        &fake,
        ChannelSettings {
            binary_format: Some(crate::binary::BinaryFormat::Base64),
            ..settings()
        },
    );
    let ch = open(&c, "d").await;
    assert_eq!(
        ch.binary_format(),
        Some(crate::binary::BinaryFormat::Base64)
    );
    ch.append(
        Rows::serde([&Blob {
            id: 3,
            b: crate::binary::Binary(vec![0xca, 0xfe]),
        }]),
        Positions::from(tok(3)),
    )
    .await
    .unwrap();
    ch.close().await.unwrap();
    assert_eq!(fake.committed_rows("d"), [r#"{"id":3,"b":"yv4="}"#]);
}
