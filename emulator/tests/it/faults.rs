//! Fault injection over HTTP.

use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::json;
use snowpipe_emulator::{Endpoint, FaultAction, FaultPlan, FaultRule};

#[tokio::test]
async fn status_faults_with_json_bare_string_and_html_bodies() {
    let (emu, c) = connected(config()).await;
    let f = emu.faults();
    f.add(
        FaultRule::new(
            Endpoint::OpenChannel,
            FaultAction::status(409, "ERR_OPEN_CHANNEL_IN_PROGRESS"),
        )
        .times(1),
    );
    f.add(
        FaultRule::new(
            Endpoint::OpenChannel,
            FaultAction::status(409, "ERR_CHANNEL_HAS_UNCOMMITTED_DATA"),
        )
        .times(1),
    );
    let r = c.open("c", json!({})).await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (409, Some("ERR_OPEN_CHANNEL_IN_PROGRESS"))
    );
    let r = c.open("c", json!({})).await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (409, Some("ERR_CHANNEL_HAS_UNCOMMITTED_DATA"))
    );
    let ct = c.open_ok("c").await;

    f.add(
        FaultRule::new(
            Endpoint::AppendRows,
            FaultAction::bare_string(503, "ERR_GENERAL_EXCEPTION_RETRY_REQUEST"),
        )
        .times(1),
    );
    f.add(
        FaultRule::new(
            Endpoint::AppendRows,
            FaultAction::status(429, "ERR_TOO_MANY_REQUESTS"),
        )
        .times(1),
    );
    f.add(FaultRule::new(Endpoint::AppendRows, FaultAction::status(401, "390114")).times(1));
    f.add(
        FaultRule::new(
            Endpoint::AppendRows,
            FaultAction::raw(500, "oops", "text/plain"),
        )
        .times(1),
    );
    let r = c.append("c", &ct, "", "1", &rows(0..1)).await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (503, "\"ERR_GENERAL_EXCEPTION_RETRY_REQUEST\"")
    );
    let r = c.append("c", &ct, "", "1", &rows(0..1)).await;
    assert_eq!(r.status, 429);
    let r = c.append("c", &ct, "", "1", &rows(0..1)).await;
    assert_eq!(r.status, 401);
    let r = c.append("c", &ct, "", "1", &rows(0..1)).await;
    assert_eq!((r.status, r.text.as_str()), (500, "oops"));
    assert_eq!(count(&emu), 0, "faulted appends are not applied");
    // Rules are exhausted: the same token still works.
    c.append_ok("c", &ct, "1", &rows(0..1)).await;

    f.add(
        FaultRule::new(
            Endpoint::DropChannel,
            FaultAction::raw(404, "<html>gateway</html>", "text/html"),
        )
        .times(1),
    );
    f.add(
        FaultRule::new(
            Endpoint::DropChannel,
            FaultAction::status(404, "ERR_CHANNEL_DOES_NOT_EXIST_OR_NOT_AUTHORIZED"),
        )
        .times(1),
    );
    let path = format!("{BASE}/channels/c");
    let r = c.send(reqwest::Method::DELETE, &path, None).await;
    assert_eq!((r.status, r.text.as_str()), (404, "<html>gateway</html>"));
    let r = c.send(reqwest::Method::DELETE, &path, None).await;
    assert_eq!(
        r.body["code"],
        "ERR_CHANNEL_DOES_NOT_EXIST_OR_NOT_AUTHORIZED"
    );
    assert_eq!(
        c.send(reqwest::Method::DELETE, &path, None).await.status,
        200
    );
    let log = emu.requests();
    assert!(log.iter().filter(|r| !r.faults.is_empty()).count() >= 8);
    emu.shutdown().await;
}

#[tokio::test]
async fn lost_ack_applies_the_append_but_drops_the_response() {
    let (emu, c) = connected(config()).await;
    let ct = c.open_ok("c").await;
    emu.faults()
        .add(FaultRule::new(Endpoint::AppendRows, FaultAction::LostAck).times(1));
    let q = format!(
        "startOffsetToken=1&endOffsetToken=5&continuationToken={ct}&requestId=a&retryCount=0"
    );
    let r = c.append_raw("c", &q, rows(0..5).into_bytes(), None).await;
    assert!(r.is_err(), "the response must be lost");
    assert_eq!(count(&emu), 5, "the append was applied");
    assert_eq!(
        c.status(&["c"]).await["c"]["last_committed_offset_token"],
        "5"
    );
    // The client retries with the same token: stale by default.
    let q = q.replace("retryCount=0", "retryCount=1");
    let r = c
        .append_raw("c", &q, rows(0..5).into_bytes(), None)
        .await
        .unwrap();
    assert_eq!(r.body["code"], "STALE_CONTINUATION_TOKEN_SEQUENCER");
    assert!(emu
        .requests()
        .iter()
        .any(|r| r.status == 0 && r.faults.iter().any(|f| f.contains("lost_ack"))));
    emu.shutdown().await;
}

/// The real service applies a request it has read whole even if the client is gone: a client
/// that sends a whole append, gives up 100 ms into the injected latency and hangs up still
/// finds its rows (which is what makes a blind retry dangerous).
#[tokio::test]
async fn a_request_read_whole_is_applied_after_the_client_hangs_up_during_latency() {
    use tokio::io::AsyncWriteExt;

    let (emu, c) = connected(config()).await;
    let ct = c.open_ok("c").await;
    emu.faults()
        .add(FaultRule::new(Endpoint::AppendRows, FaultAction::Latency { ms: 2000 }).times(1));
    let body = rows(0..5);
    let request = format!(
        "POST {DATA}/channels/c/rows?startOffsetToken=1&endOffsetToken=5&continuationToken={ct}\
         &requestId=a&retryCount=0 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n{body}",
        c.token,
        body.len()
    );
    let mut client = tokio::net::TcpStream::connect(emu.addr()).await.unwrap();
    client.write_all(request.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(client);
    // The connection is closed; the emulator finishes the append on its own.
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(&emu) < 5 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count(&emu), 5, "the append was applied");
    assert_eq!(
        c.wait_committed("c", "5").await["last_committed_offset_token"],
        "5"
    );
    let log = emu.requests();
    assert!(
        log.iter()
            .any(|r| r.status == 200 && r.faults.iter().any(|f| f.contains("latency"))),
        "the append is logged as answered: {:?}",
        log.iter()
            .map(|r| (r.status, &r.faults))
            .collect::<Vec<_>>()
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn invalidation_and_sequencer_bump_behind_the_clients_back() {
    let (emu, c) = connected(config()).await;
    let ct = c.open_ok("c").await;
    assert!(emu.invalidate_channel("DB", "SCH", "P", "c"));
    assert!(!emu.invalidate_channel("DB", "SCH", "P", "nope"));
    assert_eq!(
        c.status(&["c"]).await["c"]["channel_status_code"],
        "ERR_CHANNEL_MUST_BE_REOPENED"
    );
    let r = c.append("c", &ct, "", "1", &rows(0..1)).await;
    assert_eq!(r.body["code"], "ERR_CHANNEL_MUST_BE_REOPENED");
    let ct = c.open_ok("c").await;
    assert_eq!(
        c.status(&["c"]).await["c"]["channel_status_code"],
        "SUCCESS"
    );
    let ct = c.append_ok("c", &ct, "1", &rows(0..1)).await;

    // A rule that invalidates on the next append, then one that bumps the sequencer.
    emu.faults()
        .add(FaultRule::new(Endpoint::AppendRows, FaultAction::InvalidateChannel).times(1));
    let r = c.append("c", &ct, "", "2", &rows(1..2)).await;
    assert_eq!(r.body["code"], "ERR_CHANNEL_MUST_BE_REOPENED");
    let ct = c.open_ok("c").await;
    emu.faults().add(
        FaultRule::new(Endpoint::AppendRows, FaultAction::BumpSequencer)
            .on_channel("c")
            .times(1),
    );
    let r = c.append("c", &ct, "", "2", &rows(1..2)).await;
    assert_eq!(r.body["code"], "STALE_CONTINUATION_TOKEN_SEQUENCER");
    emu.shutdown().await;
}

#[tokio::test]
async fn latency_and_config_plan_from_json() {
    let plan = FaultPlan::from_json(
        r#"{"rules":[{"endpoint":"bulk_status","action":{"kind":"latency","ms":300},"max_times":1},
                     {"endpoint":"pipe_info","action":{"kind":"status","status":500,"code":"ERR_GENERAL_EXCEPTION_RETRY_REQUEST"},"every_nth":2}]}"#,
    )
    .unwrap();
    let (emu, c) = connected(config().with_faults(plan)).await;
    let t = Instant::now();
    c.status(&["x"]).await;
    assert!(t.elapsed() >= Duration::from_millis(300));
    let p = format!("{BASE}:pipe-info");
    let codes: Vec<u16> = futures_lite(&c, &p).await;
    assert_eq!(codes, vec![200, 500, 200, 500]);
    emu.faults().clear();
    emu.shutdown().await;
}

async fn futures_lite(c: &Client, path: &str) -> Vec<u16> {
    let mut v = Vec::new();
    for _ in 0..4 {
        v.push(
            c.send(reqwest::Method::POST, path, Some(json!({})))
                .await
                .status,
        );
    }
    v
}

#[tokio::test]
async fn seeded_probability_is_reproducible_over_http() {
    async fn run(seed: u64) -> Vec<u16> {
        let mut cfg = config();
        cfg.seed = seed;
        cfg.faults = FaultPlan {
            rules: vec![
                FaultRule::new(Endpoint::BulkStatus, FaultAction::status(503, "X"))
                    .probability(0.5),
            ],
        };
        let (emu, c) = connected(cfg).await;
        let mut out = Vec::new();
        for _ in 0..20 {
            let r = c
                .pipe_action("bulk-channel-status", json!({"channel_names": ["a"]}))
                .await;
            out.push(r.status);
        }
        emu.shutdown().await;
        out
    }
    let a = run(3).await;
    assert_eq!(a, run(3).await);
    assert!(a.contains(&503) && a.contains(&200));
}
