//! Elastic channels against the in-process emulator: rows land at least
//! once with no open call and no tokens, and a batch that may have landed twice (a lost
//! acknowledgement, retried with the same requestId) is reported with its request id.

use crate::common;
use snowpipe_streaming::Rows;

use std::time::Duration;

use crate::common::*;
use snowpipe_emulator::{Emulator, Endpoint, FaultAction, FaultRule};
use snowpipe_streaming::{ClientBuilder, ElasticChannel, ElasticEvent, StreamingIngestClient};

const DDL: &str = "
CREATE DATABASE IF NOT EXISTS DB;
CREATE SCHEMA IF NOT EXISTS SCH;
CREATE OR REPLACE TABLE T (ID NUMBER);
CREATE OR REPLACE TABLE U (ID NUMBER);
CREATE OR REPLACE PIPE P AS COPY INTO T FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING')) MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE;
";

#[derive(serde::Serialize)]
struct Row {
    id: u64,
}

/// An emulator with [`DDL`] and a client of it, built by `configure` from the common builder.
async fn start_with(
    configure: impl FnOnce(ClientBuilder) -> ClientBuilder,
) -> (Emulator, StreamingIngestClient) {
    let emu = Emulator::start(common::emulator::config_with_ddl(DDL))
        .await
        .unwrap();
    let client = configure(common::emulator::builder(&emu))
        .build()
        .await
        .unwrap();
    (emu, client)
}

async fn start() -> (Emulator, StreamingIngestClient) {
    start_with(|b| {
        b.max_client_lag(Duration::from_millis(50))
            .max_request_bytes(4096)
    })
    .await
}

fn ids(emu: &Emulator) -> Vec<u64> {
    emu.query("SELECT ID FROM \"DB.SCH.T\" ORDER BY ID")
        .unwrap()
        .into_iter()
        .map(|r| r[0].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_lands_at_least_once_and_each_possible_duplicate_is_reported() {
    let (emu, client) = start().await;
    // The third elastic request is applied but its response is lost: the client retries it
    // with the same requestId and retryCount 1, and the emulator applies it again.
    emu.faults().add(
        FaultRule::new(Endpoint::AppendRows, FaultAction::LostAck)
            .after(2)
            .times(1),
    );
    let elastic = client.table_pipe("DB", "SCH", "T").elastic_channel();
    let mut events = elastic.events();
    for chunk in 0..20u64 {
        elastic
            .append(Rows::serde(
                (chunk * 50..chunk * 50 + 50).map(|id| Row { id }),
            ))
            .await
            .unwrap();
    }
    elastic.close().await.unwrap();

    let landed = ids(&emu);
    let mut unique = landed.clone();
    unique.dedup();
    assert_eq!(
        unique,
        (0..1000).collect::<Vec<_>>(),
        "every row at least once"
    );
    let mut reported: Vec<ElasticEvent> = Vec::new();
    while let Ok(e) = events.try_recv() {
        reported.push(e);
    }
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert_eq!(reported[0].retry_count, 1);
    assert_eq!(
        landed.len() - 1000,
        reported[0].rows,
        "duplicates = rows reported"
    );
    // The emulator saw the same requestId twice, the second with retryCount 1.
    let same: Vec<_> = emu
        .requests()
        .into_iter()
        .filter(|r| r.request_id.as_deref() == Some(reported[0].request_id.as_str()))
        .map(|r| r.retry_count)
        .collect();
    assert_eq!(same, [Some(0), Some(1)]);
    // No tokens on the wire, the table endpoint, and the retry counted on the server.
    for r in emu
        .requests()
        .iter()
        .filter(|r| r.endpoint == Endpoint::AppendRows)
    {
        assert!(r.path.ends_with("/tables/T/rows"), "{}", r.path);
        assert!(!r.query.contains("Token"), "{}", r.query);
    }
    let ch = common::emulator::server_channel(&emu, "ELASTIC");
    assert_eq!(ch["retried_appends"], 1, "{ch}");
    client.close().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipes_elastic_channel_appends_to_its_elastic_endpoint() {
    let (emu, client) = start().await;
    let elastic = client.pipe("DB", "SCH", "P").elastic_channel();
    elastic
        .append(Rows::serde((0..10).map(|id| Row { id })))
        .await
        .unwrap();
    elastic.flush().await.unwrap();
    assert_eq!(ids(&emu), (0..10).collect::<Vec<_>>());
    assert!(emu
        .requests()
        .iter()
        .any(|r| r.path.ends_with("/pipes/P/channels/ELASTIC/rows") && r.status == 200));
    elastic.close().await.unwrap();
    client.close().await.unwrap();
    emu.shutdown().await;
}

#[derive(serde::Serialize)]
struct Padded {
    id: u64,
    pad: String,
}

/// `n` rows of about 1 KB each, ids from `first`.
fn padded(first: u64, n: u64) -> Vec<Padded> {
    (first..first + n)
        .map(|id| Padded {
            id,
            pad: "x".repeat(1000),
        })
        .collect()
}

/// Elastic appends charge the client-wide memory budget named channels charge, and report the
/// same metrics, labelled `kind`: a budget held by elastic buffers refuses a named
/// `try_append_*` and makes the next elastic `append_rows` wait, exactly as named buffers do.
///
/// The recorder is installed on this test's threads only (its own runtime's workers and the
/// thread that blocks on it), not globally: every integration test shares this process, and
/// the others' channels must not count here.
#[test]
fn elastic_and_named_channels_share_the_budget_and_the_metrics() {
    let recorded = MetricsRecorder::default();
    common::with_local_metrics(&recorded, budget_and_metrics(recorded.clone()));
}

async fn budget_and_metrics(recorded: MetricsRecorder) {
    // 1 MiB, of which 1/16 is set aside for idle buffers: 960 KiB for rows. Nothing is sent
    // on a timer during the test.
    let (emu, client) = start_with(|b| {
        b.account("myorg-myacct")
            .user("tester")
            .max_client_lag(Duration::from_secs(60))
            .max_request_bytes(256 * 1024)
            .memory_budget_bytes(1024 * 1024)
    })
    .await;
    let named = client
        .pipe("DB", "SCH", "P")
        .open_channel("n1")
        .await
        .unwrap();

    // The named append fits while the budget is free...
    let span = |a: u64, b: u64| {
        snowpipe_streaming::Positions::span(
            snowpipe_streaming::OffsetToken::from(a)..=snowpipe_streaming::OffsetToken::from(b),
        )
    };
    named
        .try_append(Rows::serde(padded(0, 235)), span(1, 235))
        .unwrap();
    named.flush().await.unwrap();
    named
        .wait_for_commit(
            &snowpipe_streaming::OffsetToken::from(235),
            Duration::from_secs(10),
        )
        .await
        .unwrap();

    // ...but not once three elastic buffers hold about 750 KB of it.
    let elastic: Vec<_> = (0..3)
        .map(|_| client.table_pipe("DB", "SCH", "U").elastic_channel())
        .collect();
    for (i, e) in elastic.iter().enumerate() {
        e.append(Rows::serde(padded(1000 * (i as u64 + 1), 245)))
            .await
            .unwrap();
    }
    let refused = named
        .try_append(Rows::serde(padded(5000, 235)), span(236, 470))
        .unwrap_err();
    assert!(
        matches!(refused, snowpipe_streaming::Error::Backpressure { .. }),
        "{refused}"
    );

    // A fourth elastic append waits for room like a named one...
    let fourth = client.table_pipe("DB", "SCH", "U").elastic_channel();
    {
        let waiting = fourth.append(Rows::serde(padded(6000, 245)));
        tokio::pin!(waiting);
        assert!(
            tokio::time::timeout(Duration::from_millis(300), &mut waiting)
                .await
                .is_err(),
            "an elastic append went past a full budget"
        );
        // ...until an acknowledged elastic request frees its bytes.
        elastic[0].flush().await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("room after the flush")
            .unwrap();
    }
    for e in elastic {
        e.close().await.unwrap();
    }
    fourth.close().await.unwrap();
    named
        .try_append(Rows::serde(padded(5000, 235)), span(236, 470))
        .unwrap();
    named.close().await.unwrap();
    client.close().await.unwrap();
    assert_eq!(ids(&emu).len(), 235 * 2);
    let elastic_rows = emu.query("SELECT COUNT(*) FROM \"DB.SCH.U\"").unwrap();
    assert_eq!(elastic_rows[0][0], 245 * 4);

    // The same metric names for both kinds, told apart by `kind`.
    let label_sets = |name: &str| -> Vec<String> {
        let mut v: Vec<String> = recorded
            .labels_of(name)
            .into_iter()
            .map(|l| format!("{l:?}"))
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let named_labels = [("channel", "n1"), ("kind", "named"), ("pipe", "P")];
    let elastic_labels = [
        ("channel", "ELASTIC"),
        ("kind", "elastic"),
        ("pipe", "U-STREAMING"),
    ];
    for name in [
        "snowpipe_rows_appended_total",
        "snowpipe_bytes_appended_total",
        "snowpipe_requests_total",
        "snowpipe_wire_bytes_total",
        "snowpipe_buffer_bytes",
        "snowpipe_backpressure_wait_seconds",
    ] {
        let sets = label_sets(name);
        for labels in [&named_labels[..], &elastic_labels[..]] {
            let want = format!(
                "{:?}",
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect::<Vec<_>>()
            );
            assert!(sets.contains(&want), "{name}: {want} not in {sets:?}");
        }
    }
    assert_eq!(
        recorded.counter("snowpipe_rows_appended_total", &elastic_labels),
        245 * 4
    );
    assert_eq!(
        recorded.counter("snowpipe_rows_appended_total", &named_labels),
        235 * 2
    );
    assert!(recorded.counter("snowpipe_requests_total", &elastic_labels) >= 4);
    emu.shutdown().await;
}

/// A client whose elastic channels never send on a timer during a test.
async fn start_without_timer() -> (Emulator, StreamingIngestClient) {
    start_with(|b| b.max_client_lag(Duration::from_secs(60))).await
}

/// The elastic channel of table `T`, holding rows `0..10`.
async fn elastic_holding_ten_rows(client: &StreamingIngestClient) -> ElasticChannel {
    let elastic = client.table_pipe("DB", "SCH", "T").elastic_channel();
    elastic
        .append(Rows::serde((0..10).map(|id| Row { id })))
        .await
        .unwrap();
    elastic
}

/// Elastic channels belong to the client's lifecycle: `client.close()` sends what an elastic
/// channel holds (never flushed by hand), and afterwards it takes no more rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_an_elastic_channel_holds_are_in_the_table_after_client_close() {
    let (emu, client) = start_without_timer().await;
    let elastic = elastic_holding_ten_rows(&client).await;
    assert!(ids(&emu).is_empty(), "nothing sent before the close");
    client.close().await.unwrap();
    assert_eq!(ids(&emu), (0..10).collect::<Vec<_>>());
    let refused = elastic
        .append(Rows::serde([Row { id: 10 }]))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, snowpipe_streaming::Error::Shutdown { .. }),
        "{refused:?}"
    );
    emu.shutdown().await;
}

/// `client.flush()` sends what every elastic channel holds, as it does for named channels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_an_elastic_channel_holds_are_in_the_table_after_client_flush() {
    let (emu, client) = start_without_timer().await;
    let elastic = elastic_holding_ten_rows(&client).await;
    client.flush().await.unwrap();
    assert_eq!(ids(&emu), (0..10).collect::<Vec<_>>());
    elastic.close().await.unwrap();
    client.close().await.unwrap();
    emu.shutdown().await;
}

/// Dropping the last handle sends what it held in the background, as a named channel's drop
/// does, and `client.close()` waits for that send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_a_dropped_elastic_channel_held_are_sent_before_client_close_returns() {
    let (emu, client) = start_without_timer().await;
    let elastic = elastic_holding_ten_rows(&client).await;
    drop(elastic);
    client.close().await.unwrap();
    assert_eq!(ids(&emu), (0..10).collect::<Vec<_>>());
    emu.shutdown().await;
}

/// A timed (background) flush that fails is not only logged: the next call on the channel
/// returns its error, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_timed_flush_is_returned_by_the_next_append() {
    let (emu, client) = start().await;
    // The first elastic request is refused (not retryable): only the timer sends it.
    emu.faults().add(
        FaultRule::new(
            Endpoint::AppendRows,
            FaultAction::status(400, "ERR_TIMED_FLUSH_REFUSED"),
        )
        .times(1),
    );
    let elastic = elastic_holding_ten_rows(&client).await;
    // Wait (bounded) until the timer's request was refused, then until the failure reaches
    // a call: the append that returns it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !emu
        .requests()
        .iter()
        .any(|r| r.endpoint == Endpoint::AppendRows && r.status == 400)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no timed flush sent"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut next = 100;
    let err = loop {
        match elastic.append(Rows::serde([Row { id: next }])).await {
            Err(e) => break e,
            Ok(()) => next += 1,
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the timed flush's failure never reached a call"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    match &err {
        snowpipe_streaming::Error::Server(e) => {
            assert_eq!(e.status, 400, "{err:?}");
            assert_eq!(
                e.code.as_deref(),
                Some("ERR_TIMED_FLUSH_REFUSED"),
                "{err:?}"
            );
        }
        other => panic!("expected the refused request's error, got {other:?}"),
    }
    // Returned once: the channel goes on, and rows appended afterwards land.
    elastic
        .append(Rows::serde([Row { id: 1000 }]))
        .await
        .unwrap();
    client.close().await.unwrap();
    let landed = ids(&emu);
    assert!(landed.contains(&1000), "{landed:?}");
    assert!(
        !landed.contains(&0),
        "the refused batch is not in the table: {landed:?}"
    );
    emu.shutdown().await;
}
