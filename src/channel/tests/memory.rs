//! The client-wide memory budget: backpressure, what is charged, buffers recycled and released.

use super::*;

#[tokio::test(start_paused = true)]
async fn budget_backpressure_waits_and_try_append_refuses_until_commit() {
    let fake = FakeApi::new();
    fake.set_manual_commit(true);
    let client = client(&fake, small_budget());
    let ch = open(&client, "c").await;
    let mut id = 0u64;
    loop {
        tokio::task::yield_now().await;
        match ch.try_append(Rows::serde([&Row { id }]), Positions::from(tok(id))) {
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
    let used = client.runtime().budget_used();
    let usable = client.runtime().budget_usable();
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
    let pending = tokio::time::timeout(
        Duration::from_secs(10),
        ch.append(Rows::serde([&Row { id }]), Positions::from(tok(id))),
    )
    .await;
    assert!(pending.is_err(), "append must wait for budget");
    // ...and completes once the server commits and the poller sees it.
    fake.commit("c");
    let t = Instant::now();
    ch.append(Rows::serde([&Row { id }]), Positions::from(tok(id)))
        .await
        .unwrap();
    assert!(
        t.elapsed() <= Duration::from_millis(200),
        "{:?}",
        t.elapsed()
    );
    assert!(client.runtime().budget_used() < 100);
}

#[tokio::test(start_paused = true)]
async fn an_idle_channel_frees_its_compression_buffers() {
    let fake = FakeApi::new();
    let client = compressing(&fake, Compression::Zstd);
    let ch = open(&client, "c").await;
    // Two appends: two row buffers go back to the pool once the batch is compressed.
    ch.append(
        Rows::serde((0..2000).map(|id| Row { id })),
        Positions::none(),
    )
    .await
    .unwrap();
    ch.append(
        Rows::serde((2000..4000).map(|id| Row { id })),
        Positions::from_span(None, tok(3999)),
    )
    .await
    .unwrap();
    ch.flush().await.unwrap();
    assert!(ch.shared.buffers.idle_bytes() > 0);
    tokio::time::sleep(crate::channel::actor::CODEC_IDLE_RELEASE + Duration::from_millis(100))
        .await;
    assert_eq!(ch.shared.buffers.idle_bytes(), 0);
    // The next batch recreates what it needs.
    ch.append(Rows::serde([&Row { id: 4000 }]), Positions::from(tok(4000)))
        .await
        .unwrap();
    ch.flush().await.unwrap();
    let all: Vec<u64> = fake
        .appends_to("c")
        .iter()
        .flat_map(|a| ids(&a.rows))
        .collect();
    assert_eq!(all, (0..=4000).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn appends_larger_than_half_the_budget_go_piece_by_piece_in_order() {
    let fake = FakeApi::new();
    let client = client(&fake, small_budget());
    let ch = open(&client, "c").await;
    // ~12 KB: three times the whole budget; admitted as commits free room.
    ch.append(
        Rows::serde((0..1000).map(|id| Row { id })),
        Positions::from_span(tok(0), tok(999)),
    )
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
                ch.append(Rows::serde([&Row { id: t * 1000 + i }]), Positions::none())
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
                peak = peak.max(client.runtime().budget_used());
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

#[tokio::test(start_paused = true)]
async fn row_buffers_are_recycled_once_their_batch_is_compressed() {
    let fake = FakeApi::new();
    let client = compressing(&fake, Compression::Zstd);
    let ch = open(&client, "c").await;
    let append = |i: u64| {
        let ch = &ch;
        async move {
            ch.append(
                Rows::serde(wide(i * 1000, 1000)),
                Positions::from_span(None, tok(i * 1000 + 999)),
            )
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
    // 5 s after the channel goes idle, the buffers it gave back are freed.
    tokio::time::sleep(crate::channel::actor::CODEC_IDLE_RELEASE + Duration::from_millis(100))
        .await;
    assert_eq!(ch.shared.buffers.idle_bytes(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_buffer_one_channel_freed_serves_another_and_outlives_an_idle_neighbour() {
    let fake = FakeApi::new();
    let client = compressing(&fake, Compression::Zstd);
    let (a, b, quiet) = (
        open(&client, "a").await,
        open(&client, "b").await,
        open(&client, "quiet").await,
    );
    // The quiet channel appends once and goes idle; its buffers are freed 5 s later.
    quiet
        .append(
            Rows::serde(wide(0, 1000)),
            Positions::from_span(None, tok(999)),
        )
        .await
        .unwrap();
    quiet.flush().await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    a.append(
        Rows::serde(wide(0, 1000)),
        Positions::from_span(None, tok(999)),
    )
    .await
    .unwrap();
    a.flush().await.unwrap();
    let idle = a.shared.buffers.idle_bytes();
    assert!(idle > 150_000, "{idle} bytes idle");
    // 3 s later the quiet channel's idle timer fires: a's buffers are 3 s old and stay.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let left = a.shared.buffers.idle_bytes();
    assert!(
        left > 150_000,
        "a's young buffers were kept ({left} of {idle})"
    );
    // b's append of the same size takes a's buffer instead of allocating.
    b.append(
        Rows::serde(wide(0, 1000)),
        Positions::from_span(None, tok(999)),
    )
    .await
    .unwrap();
    assert!(
        b.shared.buffers.idle_bytes() < left - 150_000,
        "b reused a's row buffer"
    );
    b.flush().await.unwrap();
    let rows: Vec<u64> = fake
        .appends_to("b")
        .iter()
        .flat_map(|x| ids(&x.rows))
        .collect();
    assert_eq!(rows, (0..1000).collect::<Vec<_>>(), "b's own rows");
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
                ch.append(
                    Rows::serde(wide(i * 10, 10)),
                    Positions::from_span(None, tok(i * 10 + 9)),
                )
                .await
                .unwrap();
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let used = client.runtime().budget_used();
    let limit = crate::channel::actor::MAX_QUEUED_REQUESTS * 10_000 + 64 * 2_000 + 4 * 10_000;
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
        ch.append(
            Rows::serde(wide(i * 10, 10)),
            Positions::from_span(None, tok(i * 10 + 9)),
        )
        .await
        .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let st = ch.status();
    assert_eq!(st.in_flight_requests, 1);
    assert!(st.buffered_bytes >= 30_000, "{st:?}");
    let used = client.runtime().budget_used();
    assert!(
        used * 4 < st.buffered_bytes,
        "{used} bytes charged for {} queued bytes of rows",
        st.buffered_bytes
    );
    // (The freed row buffers, under 10 KB each here, are left to the allocator: the pool
    // keeps buffers of `MIN_POOLED` and more; `row_buffers_are_recycled_*` covers reuse.)
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
    ch.append(Rows::serde(wide(0, 100)), Positions::none())
        .await
        .unwrap();
    let st = ch.status();
    let used = client.runtime().budget_used();
    assert!(st.buffered_bytes < 20_000, "{}", st.buffered_bytes);
    assert_eq!(
        used, 20_000,
        "charged the buffer's capacity, not its {} bytes",
        st.buffered_bytes
    );
    // Once sent (and compressed, or not), only the body is charged.
    ch.flush().await.unwrap();
    assert!(client.runtime().budget_used() <= st.buffered_bytes);
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
        ch.append(Rows::serde(rows(0)), Positions::from_span(tok(0), tok(49)))
            .await
            .unwrap();
        channels.push(ch);
    }
    let before = serialized.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(before, 400);
    let mut tasks = Vec::new();
    for ch in &channels {
        let ch = Arc::clone(ch);
        let rows = rows(50);
        tasks.push(tokio::spawn(async move {
            ch.append(Rows::serde(rows), Positions::from_span(tok(50), tok(99)))
                .await
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

/// Eight channels hold the whole budget in open batches, far below a request and far from
/// their 30 s `max_client_lag`. A producer that needs room does not wait out the lag: once it
/// is short of budget, the channels send what they hold, and their commit makes the room.
/// Without a shortage the lag still holds.
#[tokio::test(start_paused = true)]
async fn a_producer_short_of_budget_does_not_wait_out_the_other_channels_lag() {
    // The test's runtime runs every task on this thread: the channels' metrics register here.
    let recorded = crate::test_util::MetricsRecorder::default();
    let _recorder = metrics::set_default_local_recorder(&recorded);
    let fake = FakeApi::new();
    let lag = Duration::from_secs(30);
    let client = client(
        &fake,
        ChannelSettings {
            memory_budget_bytes: 64 << 10,
            max_request_bytes: 1 << 20,
            max_client_lag: lag,
            ..settings()
        },
    );
    let mut channels = Vec::new();
    for i in 0..8 {
        channels.push(open(&client, &format!("c{i}")).await);
    }
    let usable = client.runtime().budget_usable();
    let mut next = [0u64; 8];
    'fill: loop {
        for (i, ch) in channels.iter().enumerate() {
            if client.runtime().budget_used() > usable * 3 / 4 {
                break 'fill;
            }
            let from = next[i];
            append_dense(ch, from, 100).await;
            next[i] += 100;
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for i in 0..8 {
        assert!(
            fake.appends_to(&format!("c{i}")).is_empty(),
            "c{i} sent before its lag with the budget not short"
        );
    }
    // Needs more than is free: waits until the others' rows are committed.
    let t = Instant::now();
    let from = next[0];
    channels[0]
        .append(
            Rows::serde((from..from + 2000).map(|id| Row { id })),
            Positions::from_span(tok(from), tok(from + 1999)),
        )
        .await
        .unwrap();
    next[0] += 2000;
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "the producer waited {:?} for room (max_client_lag {lag:?})",
        t.elapsed()
    );
    for ch in &channels {
        ch.flush().await.unwrap();
    }
    for (i, ch) in channels.iter().enumerate() {
        let end = OffsetToken::from(next[i] - 1);
        ch.wait_for_commit(&end, Duration::from_secs(10))
            .await
            .unwrap();
        let name = format!("c{i}");
        assert_eq!(
            ids(&fake.committed_rows(&name)),
            (0..next[i]).collect::<Vec<_>>()
        );
        for a in fake.appends_to(&name) {
            assert_eq!(token_violation(&a), None);
        }
        let labels = [("channel", name.as_str()), ("kind", "named"), ("pipe", "P")];
        let early = recorded.counter("snowpipe_batches_sealed_for_memory_total", &labels);
        assert!(
            early >= 1,
            "{name}: {early} batches counted as sealed for memory"
        );
    }
}

#[test]
fn a_mailbox_slot_is_small() {
    // tokio preallocates a mailbox's slots 32 at a time, so every channel, busy or idle, holds
    // 32 commands' worth: 112 bytes a slot made that 3.5 KB of an idle channel's ≈ 14 KB.
    let slot = std::mem::size_of::<crate::channel::cmd::Cmd>();
    assert!(slot <= 16, "a command takes {slot} bytes");
}
