//! The SDK against the in-process emulator with injected faults (lost acknowledgements,
//! server-side invalidation): every row lands in the table exactly once without any
//! application code. Real time, loopback only. Another writer taking the channel is not a
//! fault the SDK recovers from: see tests/it/ownership.rs.

use crate::common;
use snowpipe_streaming::{Positions, Rows};

use std::time::Duration;

use serde::Serialize;
use snowpipe_emulator::{Emulator, Endpoint, FaultAction, FaultRule};
use snowpipe_streaming::{OffsetToken, OpenChannelOptions, StreamingIngestClient};

const DDL: &str = "
CREATE DATABASE IF NOT EXISTS DB;
CREATE SCHEMA IF NOT EXISTS SCH;
CREATE OR REPLACE TABLE T (ID NUMBER, NAME VARCHAR(100));
";

#[derive(Serialize)]
struct Row {
    id: u64,
    name: String,
}

async fn start() -> (Emulator, StreamingIngestClient) {
    let emu = Emulator::start(
        common::emulator::config_with_ddl(DDL).with_commit_delay(Duration::from_millis(30)),
    )
    .await
    .unwrap();
    let client = common::emulator::builder(&emu).build().await.unwrap();
    (emu, client)
}

fn count(emu: &Emulator, sql: &str) -> i64 {
    emu.query(sql).unwrap()[0][0].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_mid_stream_still_give_exactly_once() {
    // Arrange
    let (emu, client) = start().await;
    let faults = emu.faults();
    faults.add(
        FaultRule::new(Endpoint::AppendRows, FaultAction::LostAck)
            .every_nth(7)
            .times(3),
    );
    faults.add(
        FaultRule::new(Endpoint::AppendRows, FaultAction::InvalidateChannel)
            .after(12)
            .times(1),
    );
    faults.add(
        FaultRule::new(Endpoint::AppendRows, FaultAction::InvalidateChannel)
            .after(25)
            .times(1),
    );
    let ch = client
        .table_pipe("DB", "SCH", "T")
        .open_channel("c1")
        .await
        .unwrap();
    // Act: 100 appends of 20 rows with increasing tokens, a request every few appends.
    for call in 0..100u64 {
        let rows = (call * 20..call * 20 + 20).map(|id| Row {
            id,
            name: format!("row {id}"),
        });
        ch.append(
            Rows::serde(rows),
            Positions::span(OffsetToken::from(call * 20)..=OffsetToken::from(call * 20 + 19)),
        )
        .await
        .unwrap();
        if call % 3 == 0 {
            ch.flush().await.unwrap();
        }
    }
    ch.flush().await.unwrap();
    ch.wait_for_commit(&OffsetToken::from(1999u64), Duration::from_secs(30))
        .await
        .unwrap();
    // Assert
    assert!(faults.fired() >= 3, "faults fired: {}", faults.fired());
    assert!(ch.status().recoveries >= 2, "{:?}", ch.status());
    assert_eq!(count(&emu, r#"SELECT COUNT(*) FROM "DB.SCH.T""#), 2000);
    assert_eq!(
        count(&emu, r#"SELECT COUNT(DISTINCT ID) FROM "DB.SCH.T""#),
        2000
    );
    ch.close().await.unwrap();
    client.close().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_of_one_client_share_the_poller_and_close_together() {
    // Arrange
    let (emu, client) = start().await;
    let mut channels = Vec::new();
    for i in 0..4 {
        channels.push(
            client
                .table_pipe("DB", "SCH", "T")
                .open_channel(&format!("c{i}"))
                .await
                .unwrap(),
        );
    }
    // Act
    for (i, ch) in channels.iter().enumerate() {
        let base = i as u64 * 1000;
        ch.append(
            Rows::serde((base..base + 100).map(|id| Row {
                id,
                name: "x".into(),
            })),
            Positions::at(OffsetToken::from(base + 99)),
        )
        .await
        .unwrap();
    }
    client.close().await.unwrap();
    // Assert: close returned only after every channel's rows were accepted (HTTP 200)...
    let requests = emu.requests();
    for i in 0..4 {
        let name = format!("c{i}");
        assert!(
            requests.iter().any(|r| r.endpoint == Endpoint::AppendRows
                && r.status == 200
                && r.channel.as_deref() == Some(name.as_str())),
            "client.close() returned before {name} was delivered"
        );
    }
    // ...and the emulator commits them after its commit delay.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while count(&emu, r#"SELECT COUNT(*) FROM "DB.SCH.T""#) < 400 {
        assert!(std::time::Instant::now() < deadline, "rows never committed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(count(&emu, r#"SELECT COUNT(*) FROM "DB.SCH.T""#), 400);
    emu.shutdown().await;
}

/// The service asking for file mode (docs/protocol-wire.md §4.6, "Our client and file mode"): the
/// REST API has none, so the append (not applied) is retried as rows, whatever the status
/// (the official SDK obeys a 429/503 one and dies on a 400 one). Every row lands once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switch_to_file_mode_is_retried_as_rows_and_lands_once() {
    let (emu, client) = start().await;
    let faults = emu.faults();
    for status in [429, 503, 400] {
        faults.add(
            FaultRule::new(
                Endpoint::AppendRows,
                FaultAction::status(status, "SWITCH_TO_FILE_MODE"),
            )
            .times(1),
        );
    }
    let ch = client
        .table_pipe("DB", "SCH", "T")
        .open_channel("switch")
        .await
        .unwrap();
    for call in 0..10u64 {
        let rows = (call * 10..call * 10 + 10).map(|id| Row {
            id,
            name: format!("row {id}"),
        });
        ch.append(
            Rows::serde(rows),
            Positions::at(OffsetToken::from(call * 10 + 9)),
        )
        .await
        .unwrap();
        ch.flush().await.unwrap();
    }
    ch.wait_for_commit(&OffsetToken::from(99u64), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(faults.fired(), 3);
    assert_eq!(count(&emu, r#"SELECT COUNT(*) FROM "DB.SCH.T""#), 100);
    assert_eq!(
        count(&emu, r#"SELECT COUNT(DISTINCT ID) FROM "DB.SCH.T""#),
        100
    );
    ch.close().await.unwrap();

    // A service that keeps asking: the error says what happened and that nothing was applied.
    faults.add(FaultRule::new(
        Endpoint::AppendRows,
        FaultAction::status(400, "SWITCH_TO_FILE_MODE"),
    ));
    let ch = client
        .table_pipe("DB", "SCH", "T")
        .open_channel("switch")
        .await
        .unwrap();
    ch.append(
        Rows::serde([Row {
            id: 100,
            name: "x".into(),
        }]),
        Positions::at(OffsetToken::from(100u64)),
    )
    .await
    .unwrap();
    let err = ch.flush().await.unwrap_err().to_string();
    assert!(
        err.contains("SWITCH_TO_FILE_MODE") && err.contains("not applied"),
        "{err}"
    );
    assert_eq!(count(&emu, r#"SELECT COUNT(*) FROM "DB.SCH.T""#), 100);
    emu.shutdown().await;
}

/// A dropped channel stops in the background, draining what it holds; an open of its name
/// meanwhile waits for that stop instead of being refused as "already open" (the
/// `hostile_lambda_events` flake: a failed writer dropped, the next invocation reopening its
/// channel at once). The stop is made slow by an append answered 800 ms late.
///
/// The dropped handle's rows are acknowledged but commit 30 ms later; the open (the default
/// `fail_on_uncommitted_rows`) retries the 409 `ERR_CHANNEL_HAS_UNCOMMITTED_DATA` within the
/// client's retry budget (about 20 ms at the tests' pace), then opens with `false`, which
/// discards them. Which of the two happens depends on the scheduler, so the test asserts what
/// holds in both: the returned token is never overtaken by the dropped handle's rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_waits_for_a_dropped_predecessor_to_stop() {
    let (emu, client) = start().await;
    let pipe = client.table_pipe("DB", "SCH", "T");
    drop_with_a_slow_append(&emu, &pipe).await;

    let again = pipe
        .open_channel("slow_stop")
        .await
        .expect("the open waits for the dropped channel to stop");
    let resumed = again.latest_committed_offset_token();
    assert_not_overtaken(&emu, &again, resumed).await;
    // A live handle still makes a second open fail at once.
    let e = pipe.open_channel("slow_stop").await.unwrap_err();
    assert!(e.to_string().contains("already open"), "{e}");
    again.close().await.unwrap();
    client.close().await.unwrap();
    emu.shutdown().await;
}

/// The same timing with `fail_on_uncommitted_rows(true)`: the open never discards, so it
/// either fails with the 409 while the dropped handle's rows are uncommitted, or returns their
/// token. An open that returned an older token while those rows were still to commit (the
/// suspected hole) would make the caller's replay store them twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strict_open_after_a_dropped_predecessor_returns_its_token_or_the_409() {
    let (emu, client) = start().await;
    let pipe = client.table_pipe("DB", "SCH", "T");
    drop_with_a_slow_append(&emu, &pipe).await;

    let strict = OpenChannelOptions::default().fail_on_uncommitted_rows(true);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let again = loop {
        match pipe.open_channel_with("slow_stop", strict.clone()).await {
            Ok(ch) => break ch,
            Err(e) => {
                assert_eq!(
                    e.snowflake_code(),
                    Some("ERR_CHANNEL_HAS_UNCOMMITTED_DATA"),
                    "{e}"
                );
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "still 409 after 10 s"
                );
                tokio::task::yield_now().await;
            }
        }
    };
    // Nothing discarded them: the open that succeeded saw them committed.
    assert_eq!(
        again.latest_committed_offset_token(),
        Some(OffsetToken::from(3u64))
    );
    assert_not_overtaken(&emu, &again, Some(OffsetToken::from(3u64))).await;
    again.close().await.unwrap();
    client.close().await.unwrap();
    emu.shutdown().await;
}

/// Opens `slow_stop`, appends rows 1..=3 (token 3) answered 800 ms late, and drops the handle
/// with that append unanswered (sent now or by the drop's drain).
async fn drop_with_a_slow_append(emu: &Emulator, pipe: &snowpipe_streaming::Pipe) {
    let ch = pipe.open_channel("slow_stop").await.unwrap();
    emu.faults()
        .add(FaultRule::new(Endpoint::AppendRows, FaultAction::Latency { ms: 800 }).times(1));
    let rows: Vec<Row> = (1..=3)
        .map(|id| Row {
            id,
            name: format!("r{id}"),
        })
        .collect();
    ch.append(Rows::serde(&rows), Positions::from(OffsetToken::from(3u64)))
        .await
        .unwrap();
    drop(ch);
}

/// The caller resumes after `resumed` (the token its open returned): it appends row 4 on the
/// new handle and waits for that commit (the emulator commits a channel's batches in order, so
/// any row of the dropped handle still to land would land first). The table then holds rows
/// 1..=3 only when `resumed` names them: no row committed behind the returned token.
async fn assert_not_overtaken(
    emu: &Emulator,
    ch: &snowpipe_streaming::Channel,
    resumed: Option<OffsetToken>,
) {
    let replayed: Vec<u64> = match &resumed {
        None => vec![1, 2, 3],
        Some(t) => {
            assert_eq!(t, &OffsetToken::from(3u64), "an unexpected token");
            Vec::new()
        }
    };
    // The caller's replay after the returned token, then its next row.
    let rows: Vec<Row> = replayed
        .iter()
        .copied()
        .chain([4])
        .map(|id| Row {
            id,
            name: format!("r{id}"),
        })
        .collect();
    ch.append(Rows::serde(&rows), Positions::from(OffsetToken::from(4u64)))
        .await
        .unwrap();
    ch.wait_for_commit(&OffsetToken::from(4u64), Duration::from_secs(10))
        .await
        .unwrap();
    let ids = emu
        .query(r#"SELECT ID FROM "DB.SCH.T" ORDER BY ID"#)
        .unwrap()
        .iter()
        .map(|r| r[0].as_i64().unwrap())
        .collect::<Vec<_>>();
    assert_eq!(ids, vec![1, 2, 3, 4], "resumed after {resumed:?}");
}
