//! Elastic channels (issue 14 item 10) against the in-process emulator: rows land at least
//! once with no open call and no tokens, and a batch that may have landed twice (a lost
//! acknowledgement, retried with the same requestId) is reported with its request id.

mod common;

use std::time::Duration;

use common::*;
use snowpipe_emulator::{Emulator, EmulatorConfig, Endpoint, FaultAction, FaultRule};
use snowpipe_streaming::{ElasticEvent, StreamingIngestClient};

const DDL: &str = "
CREATE DATABASE IF NOT EXISTS DB;
CREATE SCHEMA IF NOT EXISTS SCH;
CREATE OR REPLACE TABLE T (ID NUMBER);
CREATE OR REPLACE PIPE P AS COPY INTO T FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING')) MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE;
";

#[derive(serde::Serialize)]
struct Row {
    id: u64,
}

async fn start() -> (Emulator, StreamingIngestClient) {
    let emu = Emulator::start(
        EmulatorConfig::for_tests()
            .with_ddl(DDL)
            .with_public_key(TEST_PUBLIC_KEY),
    )
    .await
    .unwrap();
    let client = common::emulator::builder(&emu)
        .max_client_lag(Duration::from_millis(50))
        .max_request_bytes(4096)
        .build()
        .await
        .unwrap();
    (emu, client)
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
    let elastic = client.elastic_channel("DB", "SCH", "T");
    let mut events = elastic.events();
    for chunk in 0..20u64 {
        elastic
            .append_rows((chunk * 50..chunk * 50 + 50).map(|id| Row { id }))
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
    let status = emu.status();
    let ch = status["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel_name"] == "ELASTIC")
        .unwrap()
        .clone();
    assert_eq!(ch["retried_appends"], 1, "{ch}");
    client.close().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipes_elastic_channel_appends_to_its_elastic_endpoint() {
    let (emu, client) = start().await;
    let elastic = client.elastic_pipe_channel("DB", "SCH", "P");
    elastic
        .append_rows((0..10).map(|id| Row { id }))
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
