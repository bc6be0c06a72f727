//! When batches are cut and sent: the client lag, the size limit, compression, flush, one request in flight.

use super::*;

#[tokio::test(start_paused = true)]
async fn batch_is_sent_at_exactly_the_client_lag() {
    let fake = FakeApi::new();
    let client = client(&fake, settings());
    let ch = open(&client, "c").await;
    let t0 = Instant::now();
    ch.append(Rows::serde([&Row { id: 1 }]), Positions::from(tok(1)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    ch.append(Rows::serde([&Row { id: 2 }]), Positions::from(tok(2)))
        .await
        .unwrap();
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
    let client = client(&fake, kib_requests());
    let ch = open(&client, "c").await;
    let t0 = Instant::now();
    ch.append(
        Rows::serde((0..300).map(|id| Row { id })),
        Positions::from_span(tok(0), tok(299)),
    )
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
    ch.append(Rows::serde(rows), Positions::from_span(tok(0), tok(199)))
        .await
        .unwrap();
    ch.flush().await.unwrap();
    let appends = fake.appends_to("c");
    assert!(appends.len() > 1);
    assert!(appends.iter().all(|a| a.wire_len <= 4096));
    assert_eq!(appends.iter().map(|a| a.rows.len()).sum::<usize>(), 200);
}

/// Many small appends within one lag: once the open batch holds 256 KB it is compressed as
/// the appends arrive (`pipeline::compress::frame`); the request still carries every row
/// once, in order, with the tokens of its first and last, in one zstd frame.
#[tokio::test(start_paused = true)]
async fn a_batch_compressed_as_it_fills_carries_every_row_once_in_order() {
    let fake = FakeApi::new();
    let client = compressing(&fake, Compression::Zstd);
    let ch = open(&client, "c").await;
    for i in 0..200u64 {
        append_dense(&ch, i * 500, 500).await;
    }
    ch.flush().await.unwrap();
    let appends = fake.appends_to("c");
    assert_eq!(appends.len(), 1, "one request: the rows fit one");
    let a = &appends[0];
    assert_eq!(ids(&a.rows), (0..100_000).collect::<Vec<_>>());
    assert_eq!(
        (a.start.as_deref(), a.end.as_deref()),
        (Some("0"), Some("99999"))
    );
    assert!(a.wire_len * 4 < a.rows.iter().map(|r| r.len() + 1).sum::<usize>());
    assert_eq!(a.stated_size, None, "an early frame states no size");
    ch.wait_for_commit(&OffsetToken::from(99_999u64), Duration::from_secs(5))
        .await
        .unwrap();
    // A small batch is compressed whole when sealed, and its frame states its size.
    append_dense(&ch, 100_000, 100).await;
    ch.flush().await.unwrap();
    let small = &fake.appends_to("c")[1];
    assert_eq!(ids(&small.rows), (100_000..100_100).collect::<Vec<_>>());
    let len = small.rows.iter().map(|r| r.len() + 1).sum::<usize>();
    assert_eq!(small.stated_size, Some(len as u64));
}

#[tokio::test(start_paused = true)]
async fn gzip_bodies_round_trip() {
    let fake = FakeApi::new();
    let client = compressing(&fake, Compression::Gzip);
    let ch = open(&client, "c").await;
    ch.append(
        Rows::serde((0..100).map(|id| Row { id })),
        Positions::from_span(None, tok(99)),
    )
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

    ch.append(Rows::serde([&Row { id: 1 }]), Positions::from(tok(1)))
        .await
        .unwrap();
    let flush = ch.flush();
    let later = async {
        tokio::task::yield_now().await;
        ch.append(Rows::serde([&Row { id: 2 }]), Positions::from(tok(2)))
            .await
            .unwrap();
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
    let client = client(&fake, kib_requests());
    let ch = open(&client, "c").await;
    for i in 0..50u64 {
        append_dense(&ch, i * 20, 20).await;
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

/// Two tasks sharing one handle: the token order is decided where an append enters the
/// channel's mailbox, not where it is prepared. An append checked first (token 1) but
/// admitted after another task's (token 2) is refused, so the server never sees tokens go
/// back.
#[tokio::test(start_paused = true)]
async fn tasks_sharing_a_handle_cannot_admit_tokens_out_of_order() {
    let fake = FakeApi::new();
    let client = client(&fake, settings());
    let ch = Arc::new(open(&client, "c").await);
    let (checked_tx, checked_rx) = tokio::sync::oneshot::channel();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let slow = tokio::spawn({
        let ch = Arc::clone(&ch);
        async move {
            // Prepared (checked against the last token: none yet) now, admitted later.
            let append = ch.append(Rows::serde([&Row { id: 1 }]), Positions::from(tok(1)));
            checked_tx.send(()).unwrap();
            go_rx.await.unwrap();
            append.await
        }
    });
    checked_rx.await.unwrap();
    let fast = tokio::spawn({
        let ch = Arc::clone(&ch);
        async move {
            ch.append(Rows::serde([&Row { id: 2 }]), Positions::from(tok(2)))
                .await
        }
    });
    fast.await.unwrap().unwrap();
    go_tx.send(()).unwrap();
    let err = slow.await.unwrap().unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    assert!(err.to_string().contains("goes back before"), "{err}");
    ch.flush().await.unwrap();
    let sent: Vec<_> = fake
        .appends_to("c")
        .iter()
        .map(|a| (ids(&a.rows), a.start.clone(), a.end.clone()))
        .collect();
    assert_eq!(sent, [(vec![2], Some("2".into()), Some("2".into()))]);
    // The handle goes on from token 2.
    ch.append(Rows::serde([&Row { id: 3 }]), Positions::from(tok(3)))
        .await
        .unwrap();
    assert!(ch
        .append(Rows::serde([&Row { id: 4 }]), Positions::from(tok(3)))
        .await
        .is_err());
}
