//! End-to-end channel tests through the real client builder and REST layer against a
//! wiremock server that models a channel (sequencer, continuation tokens, uncommitted rows
//! discarded on reopen, commits on status polls). Real time, one server per test.

use snowpipe_streaming::{Positions, Rows};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use serde::Serialize;
use snowpipe_streaming::{Channel, OffsetToken, StreamingIngestClient};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, Request, Respond, ResponseTemplate};

#[derive(Serialize)]
struct Row {
    id: u64,
}

/// What the mock server remembers about its one channel.
#[derive(Default)]
struct Model {
    sequencer: u64,
    counter: u64,
    committed: Option<String>,
    pending: Vec<(Vec<u64>, Option<String>)>,
    rows: Vec<u64>,
    /// Answer the next append with 400 STALE_CONTINUATION_TOKEN_SEQUENCER (another writer).
    stale_next: bool,
    /// Status polls commit nothing while set (rows stay uncommitted until a reopen drops them).
    hold_commits: bool,
    opens: usize,
    appends: Vec<AppendSeen>,
}

#[derive(Debug, Clone)]
struct AppendSeen {
    continuation: String,
    start: String,
    end: String,
    ids: Vec<u64>,
    encoding: Option<String>,
}

#[derive(Clone, Default)]
struct Server(Arc<Mutex<Model>>);

impl Server {
    fn status(m: &Model) -> serde_json::Value {
        let mut s = channel_status("CH", m.committed.as_deref());
        s["rows_inserted"] = serde_json::json!(m.rows.len());
        s
    }
}

struct Open(Server);
impl Respond for Open {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let mut m = self.0 .0.lock().unwrap();
        m.opens += 1;
        m.sequencer += 1;
        m.counter = 0;
        m.pending.clear();
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "next_continuation_token": format!("s{}-0", m.sequencer),
            "channel_status": Server::status(&m),
        }))
    }
}

struct Append(Server);
impl Respond for Append {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let q: HashMap<String, String> = req.url.query_pairs().into_owned().collect();
        let encoding = header(req, "content-encoding");
        let body = match encoding.as_deref() {
            Some("zstd") => zstd::decode_all(&req.body[..]).unwrap(),
            None => req.body.clone(),
            Some(other) => panic!("unexpected encoding {other}"),
        };
        let ids: Vec<u64> = String::from_utf8(body)
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        let mut m = self.0 .0.lock().unwrap();
        let seen = AppendSeen {
            continuation: q.get("continuationToken").cloned().unwrap_or_default(),
            start: q.get("startOffsetToken").cloned().unwrap_or_default(),
            end: q.get("endOffsetToken").cloned().unwrap_or_default(),
            ids: ids.clone(),
            encoding,
        };
        m.appends.push(seen.clone());
        let expected = format!("s{}-{}", m.sequencer, m.counter);
        if std::mem::take(&mut m.stale_next)
            || !seen.continuation.starts_with(&format!("s{}-", m.sequencer))
        {
            return ResponseTemplate::new(400).set_body_json(serde_json::json!({
                "code": "STALE_CONTINUATION_TOKEN_SEQUENCER",
                "message": "Channel sequencer in the continuation token is stale. Please reopen the channel"
            }));
        }
        assert_eq!(
            seen.continuation, expected,
            "continuation tokens are chained"
        );
        m.counter += 1;
        let end = (!seen.end.is_empty()).then(|| seen.end.clone());
        m.pending.push((ids, end));
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "next_continuation_token": format!("s{}-{}", m.sequencer, m.counter)
        }))
    }
}

struct Status(Server);
impl Respond for Status {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let mut m = self.0 .0.lock().unwrap();
        let pending = if m.hold_commits {
            Vec::new()
        } else {
            std::mem::take(&mut m.pending)
        };
        for (ids, end) in pending {
            m.rows.extend(ids);
            if end.is_some() {
                m.committed = end;
            }
        }
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "channel_statuses": {"CH": Server::status(&m)}
        }))
    }
}

async fn setup() -> (MockAccount, Server, StreamingIngestClient) {
    let mock = MockAccount::start().await;
    let server = Server::default();
    Mock::given(method("PUT"))
        .and(path_regex(
            r"^/v2/streaming/databases/DB/schemas/SCH/pipes/PIPE/channels/CH$",
        ))
        .respond_with(Open(server.clone()))
        .named("open channel")
        .mount(&mock.server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(
            r"^/v2/streaming/data/databases/DB/schemas/SCH/pipes/PIPE/channels/CH/rows$",
        ))
        .respond_with(Append(server.clone()))
        .named("append rows")
        .mount(&mock.server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(
            r"^/v2/streaming/databases/DB/schemas/SCH/pipes/PIPE:bulk-channel-status$",
        ))
        .respond_with(Status(server.clone()))
        .named("bulk channel status")
        .mount(&mock.server)
        .await;
    let client = mock
        .builder()
        .max_client_lag(Duration::from_millis(50))
        .commit_poll_interval(Duration::from_millis(20))
        .build()
        .await
        .unwrap();
    (mock, server, client)
}

async fn open(client: &StreamingIngestClient) -> Channel {
    client
        .pipe("DB", "SCH", "PIPE")
        .open_channel("CH")
        .await
        .unwrap()
}

#[tokio::test]
async fn rows_are_batched_sent_with_chained_tokens_and_committed() {
    // Arrange
    let (_mock, server, client) = setup().await;
    let ch = open(&client).await;
    assert_eq!(ch.latest_committed_offset_token(), None);
    // Act
    for i in 0..10u64 {
        ch.append(
            Rows::serde((i * 10..i * 10 + 10).map(|id| Row { id })),
            Positions::span(OffsetToken::from(i * 10)..=OffsetToken::from(i * 10 + 9)),
        )
        .await
        .unwrap();
    }
    ch.flush().await.unwrap();
    ch.wait_for_commit(&OffsetToken::from(99u64), Duration::from_secs(10))
        .await
        .unwrap();
    // Assert
    {
        let m = server.0.lock().unwrap();
        assert_eq!(m.rows, (0..100).collect::<Vec<_>>());
        assert_eq!(m.committed.as_deref(), Some("99"));
        let first = &m.appends[0];
        assert_eq!(first.continuation, "s1-0");
        assert_eq!(first.start, "0");
        assert_eq!(first.ids[0], 0);
        assert_eq!(first.encoding.as_deref(), Some("zstd"));
        assert_eq!(m.appends.last().unwrap().end, "99");
    }
    assert_eq!(
        ch.latest_committed_offset_token(),
        Some(OffsetToken::from(99u64))
    );
    client.close().await.unwrap();
}

#[tokio::test]
async fn a_stale_continuation_token_fences_the_handle_and_the_next_owner_resumes_once() {
    // Arrange
    let (_mock, server, client) = setup().await;
    let ch = open(&client).await;
    ch.append(
        Rows::serde([&Row { id: 1 }]),
        Positions::at(OffsetToken::from(1u64)),
    )
    .await
    .unwrap();
    ch.flush().await.unwrap();
    ch.wait_for_commit(&OffsetToken::from(1u64), Duration::from_secs(10))
        .await
        .unwrap();
    // Act: row 2 is accepted but not yet committed when another writer opens the channel
    // (no status poll may commit row 2 between its acknowledgement and that open).
    server.0.lock().unwrap().hold_commits = true;
    ch.append(
        Rows::serde([&Row { id: 2 }]),
        Positions::at(OffsetToken::from(2u64)),
    )
    .await
    .unwrap();
    ch.flush().await.unwrap();
    {
        let mut m = server.0.lock().unwrap();
        m.pending.clear(); // the other writer's open discards uncommitted rows
        m.stale_next = true;
        m.hold_commits = false;
    }
    ch.append(
        Rows::serde([&Row { id: 3 }]),
        Positions::at(OffsetToken::from(3u64)),
    )
    .await
    .unwrap();
    let err = ch.flush().await.unwrap_err();
    // Assert: final for this handle, nothing resent, no reopen.
    assert!(err.is_ownership_lost(), "{err}");
    assert_eq!(
        err.last_committed_offset_token(),
        Some(&OffsetToken::from(1u64))
    );
    assert_eq!(
        err.snowflake_code(),
        Some("STALE_CONTINUATION_TOKEN_SEQUENCER")
    );
    {
        let m = server.0.lock().unwrap();
        assert_eq!(m.opens, 1, "the fenced handle reopened the channel");
        let sent: Vec<u64> = m.appends.iter().flat_map(|a| a.ids.clone()).collect();
        assert_eq!(sent, [1, 2, 3], "the fenced handle sent again");
    }
    assert_eq!(ch.status().recoveries, 0);
    assert!(ch.close().await.unwrap_err().is_ownership_lost());
    // The new owner (here: this client again, as after a rebalance) resumes after the
    // committed token: every row once.
    let ch = open(&client).await;
    let next = ch
        .latest_committed_offset_token()
        .unwrap()
        .as_u64()
        .unwrap()
        + 1;
    ch.append(
        Rows::serde((next..=3).map(|id| Row { id })),
        Positions::span(OffsetToken::from(next)..=OffsetToken::from(3u64)),
    )
    .await
    .unwrap();
    ch.flush().await.unwrap();
    ch.wait_for_commit(&OffsetToken::from(3u64), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        server.0.lock().unwrap().rows,
        [1, 2, 3],
        "every row exactly once"
    );
    ch.close().await.unwrap();
}

#[tokio::test]
async fn close_with_commit_wait_then_drop_channel() {
    // Arrange
    let (mock, server, client) = setup().await;
    Mock::given(method("DELETE"))
        .and(path_regex(
            r"^/v2/streaming/databases/DB/schemas/SCH/pipes/PIPE/channels/CH$",
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"last_committed_offset_token": "5"})),
        )
        .named("drop channel")
        .mount(&mock.server)
        .await;
    let ch = open(&client).await;
    // Act
    ch.append(
        Rows::serde((1..=5).map(|id| Row { id })),
        Positions::at(OffsetToken::from(5u64)),
    )
    .await
    .unwrap();
    let last = ch.drop_channel().await.unwrap();
    // Assert
    assert_eq!(last, Some(OffsetToken::from(5u64)));
    assert_eq!(server.0.lock().unwrap().rows, [1, 2, 3, 4, 5]);
    assert_eq!(
        mock.requests_to("/v2/streaming/databases/DB/schemas/SCH/pipes/PIPE/channels/CH")
            .await
            .len(),
        2
    );
}
