//! wiremock tests of protocol details from docs/protocol.md: lenient status
//! parsing, status codes, reserved names, the role, retries and sticky sessions.

use crate::{Positions, Rows};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use super::*;
use crate::api::{status_code_is_invalid, OpenChannelRequest};
use crate::test_support::{answer, answering, append_ok};

/// A one-row append whose body claims `uncompressed_len` bytes (what the pacing counts).
fn one_row(uncompressed_len: usize) -> crate::transport::AppendRequest {
    crate::transport::AppendRequest {
        body: bytes::Bytes::from_static(b"{\"a\":1}\n"),
        compression: crate::Compression::None,
        uncompressed_len,
        row_count: 1,
        start_offset_token: None,
        end_offset_token: None,
        continuation_token: "ct".into(),
        min_append_timestamp_ms: 1,
    }
}
use crate::test_support::*;

const CHANNEL_PATH: &str = "/v2/streaming/databases/DB/schemas/SCH/pipes/PIPE/channels/CH";
const STATUS_PATH: &str = "/v2/streaming/databases/DB/schemas/SCH/pipes/PIPE:bulk-channel-status";

fn simple() -> ChannelPath {
    ChannelPath {
        pipe: PipePath {
            database: "DB".into(),
            schema: "SCH".into(),
            pipe: "PIPE".into(),
        },
        channel: "CH".into(),
    }
}

/// A status carrying both spellings of the doubly documented fields, numbers as strings and
/// the error timestamp as RFC 3339 text: each alone made serde fail the whole response.
fn awkward_status(code: &str) -> serde_json::Value {
    serde_json::json!({
        "database_name": "DB", "schema_name": "SCH", "pipe_name": "PIPE", "channel_name": "CH",
        "channel_status_code": code, "last_committed_offset_token": "7",
        "latest_offset_token": "7",
        "created_on_ms": "1795239216945", "rows_inserted": "7", "rows_parsed": 7.0,
        "rows_error_count": 2, "rows_errors": 3,
        "last_error_offset_upper_bound": 6, "last_error_message": "bad row",
        "last_error_timestamp": "2026-11-22T10:00:00.5Z", "last_error_timestamp_ms": null,
        "snowflake_avg_processing_latency_ms": {"unexpected": "object"}
    })
}

/// A mock account whose opens answer [`awkward_status`] of `code` and whose status calls
/// answer `statuses` (the `channel_statuses` object).
async fn account_answering_awkwardly(code: &str, statuses: serde_json::Value) -> MockAccount {
    let account = MockAccount::start().await;
    answer(
        &account,
        "PUT",
        CHANNEL_PATH,
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "next_continuation_token": "ct0",
            "channel_status": awkward_status(code),
        })),
    )
    .await;
    answer(
        &account,
        "POST",
        STATUS_PATH,
        ResponseTemplate::new(200)
            .set_body_json(serde_json::json!({ "channel_statuses": statuses })),
    )
    .await;
    account
}

#[tokio::test]
async fn open_and_bulk_status_parse_both_spellings_and_string_values() {
    let account = account_answering_awkwardly(
        "SUCCESS",
        serde_json::json!({"CH": {"channel_status_code": "ACTIVE", "rows_errors": 4,
            "last_error_timestamp": 1_795_239_216_i64}}),
    )
    .await;
    let api = account.rest().await;

    let open = api
        .open_channel(&simple(), &OpenChannelRequest::default())
        .await
        .expect("an open response with both spellings parses");
    let s = open.channel_status;
    assert_eq!(s.last_committed_offset_token.as_deref(), Some("7"));
    assert_eq!(s.created_on_ms, Some(1_795_239_216_945));
    assert_eq!(s.rows_inserted, Some(7));
    assert_eq!(s.rows_parsed, Some(7));
    assert_eq!(s.rows_error_count, Some(2), "rows_error_count wins");
    assert_eq!(s.last_error_offset_upper_bound.as_deref(), Some("6"));
    assert_eq!(s.last_error_timestamp_ms, Some(1_795_341_600_500));
    assert_eq!(s.snowflake_avg_processing_latency_ms, None);

    let bulk = api
        .bulk_channel_status(&simple().pipe, &["CH".to_owned()])
        .await
        .expect("a bulk status with the docs' spellings parses");
    let s = &bulk["CH"];
    assert_eq!(s.rows_error_count, Some(4));
    assert_eq!(
        s.last_error_timestamp_ms,
        Some(1_795_239_216_000),
        "seconds become milliseconds"
    );
}

#[test]
fn status_codes_known_invalid_are_invalid_and_unknown_ones_are_healthy() {
    for code in [
        "ERR_CHANNEL_MUST_BE_REOPENED",
        "ERR_CHANNEL_MUST_BE_REOPENED_DUE_TO_ROW_SEQ_GAP",
        "ERR_CHANNEL_HAS_INVALID_CLIENT_SEQUENCER",
        "ERR_CHANNEL_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
        "ERR_CHANNEL_NO_LONGER_EXISTS",
        "ERR_PIPE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
        "STALE_PIPE_CACHE",
    ] {
        assert!(status_code_is_invalid(code), "{code}");
    }
    for code in [
        "SUCCESS",
        "ACTIVE",
        "success",
        "SOMETHING_NEW_AND_INFORMATIONAL",
    ] {
        assert!(!status_code_is_invalid(code), "{code}");
    }
}

/// A client whose open answers `code`: opens on healthy or unknown codes, refuses invalid
/// ones.
#[tokio::test]
async fn open_accepts_active_and_unknown_status_codes_and_refuses_invalid_ones() {
    for (code, opens) in [
        ("SUCCESS", true),
        ("ACTIVE", true),
        ("SOMETHING_NEW", true),
        ("ERR_CHANNEL_MUST_BE_REOPENED", false),
    ] {
        let account =
            account_answering_awkwardly(code, serde_json::json!({"CH": awkward_status(code)}))
                .await;
        let client = account.builder().build().await.unwrap();
        let result = client.pipe("DB", "SCH", "PIPE").open_channel("CH").await;
        assert_eq!(result.is_ok(), opens, "{code}: {result:?}");
        if let Ok(ch) = result {
            assert_eq!(ch.status().status_code.as_deref(), Some(code));
            ch.close().await.unwrap();
        }
        client.close().await.unwrap();
    }
}

/// A healthy status of channel `name` with committed token `committed`.
fn status_of(name: &str, committed: Option<&str>) -> serde_json::Value {
    serde_json::json!({
        "database_name": "DB", "schema_name": "SCH", "pipe_name": "PIPE", "channel_name": name,
        "channel_status_code": "SUCCESS", "last_committed_offset_token": committed,
        "created_on_ms": 1, "rows_inserted": 0, "rows_parsed": 0, "rows_error_count": 0
    })
}

/// Mounts open and append for channel `orders` (the rows go nowhere).
async fn mount_orders(account: &MockAccount) {
    answer(
        account,
        "PUT",
        "/v2/streaming/databases/DB/schemas/SCH/pipes/PIPE/channels/orders",
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "next_continuation_token": "ct0", "channel_status": status_of("orders", None)
        })),
    )
    .await;
    answer(
        account,
        "POST",
        "/v2/streaming/data/databases/DB/schemas/SCH/pipes/PIPE/channels/orders/rows",
        append_ok(),
    )
    .await;
}

#[tokio::test]
async fn a_status_reported_under_another_case_of_the_name_is_found() {
    let account = MockAccount::start().await;
    mount_orders(&account).await;
    let status = |committed| {
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "channel_statuses": {"ORDERS": status_of("ORDERS", committed)}
        }))
    };
    answer(&account, "POST", STATUS_PATH, status(None)).await;
    let client = account
        .builder()
        .max_client_lag(std::time::Duration::from_millis(10))
        .commit_poll_interval(std::time::Duration::from_millis(10))
        .build()
        .await
        .unwrap();
    let ch = client
        .pipe("DB", "SCH", "PIPE")
        .open_channel("orders")
        .await
        .unwrap();
    ch.append(
        Rows::serde([&serde_json::json!({"a": 1})]),
        Positions::at(crate::OffsetToken::from(1u64)),
    )
    .await
    .unwrap();
    ch.flush().await.unwrap();
    // Committed once sent: a token reported before this handle sent it would be another
    // writer's (the channel would fail with OwnershipLost).
    answering("POST", STATUS_PATH, status(Some("1")))
        .with_priority(1)
        .mount(&account.server)
        .await;
    ch.wait_for_commit(
        &crate::OffsetToken::from(1u64),
        std::time::Duration::from_secs(5),
    )
    .await
    .expect("the status answered as ORDERS is the status of orders");
    ch.close().await.unwrap();
    client.close().await.unwrap();
}

#[tokio::test]
async fn elastic_in_any_case_is_refused_as_a_named_channel_before_any_request() {
    let account = MockAccount::start().await;
    let client = account.builder().build().await.unwrap();
    for name in ["ELASTIC", "elastic", "Elastic"] {
        let err = client
            .pipe("DB", "SCH", "PIPE")
            .open_channel(name)
            .await
            .expect_err(name);
        assert!(
            matches!(&err, crate::Error::InvalidArgument { .. }),
            "{name}: {err:?}"
        );
        assert!(err.to_string().contains("reserved"), "{err}");
    }
    let opens = account
        .server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "PUT")
        .count();
    assert_eq!(opens, 0);
    client.close().await.unwrap();
}

#[tokio::test]
async fn a_transient_403_or_401_on_the_control_plane_is_retried_with_backoff() {
    for (status, p) in [(403u16, "/oauth/token"), (401, "/v2/streaming/hostname")] {
        let server = wiremock::MockServer::start().await;
        Mock::given(path(p))
            .respond_with(
                ResponseTemplate::new(status)
                    .set_body_json(serde_json::json!({"code": "390144", "message": "not yet"})),
            )
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
        hostname_answer("127.0.0.1").mount(&server).await;
        token_answer().mount(&server).await;
        let account = MockAccount::from_server(server);
        let resolved = account.builder().resolve().unwrap();
        RestApi::connect(resolved.connect)
            .await
            .unwrap_or_else(|e| panic!("{status} on {p} then success: {e}"));
        let tries = account.requests_to(p).await;
        assert_eq!(tries.len(), 2, "{p}");
        assert_eq!(query(&tries[1], "retryCount").as_deref(), Some("1"));
    }
}

#[tokio::test]
async fn a_408_is_retried_as_its_predicate_says() {
    let (account, api) = rest_answering_first_then(
        "POST",
        STATUS_PATH,
        ResponseTemplate::new(408).set_body_string("request timeout"),
        ResponseTemplate::new(200).set_body_json(serde_json::json!({"channel_statuses": {}})),
    )
    .await;
    api.bulk_channel_status(&simple().pipe, &["CH".into()])
        .await
        .expect("a 408 is retried");
    let tries = account.requests_to(STATUS_PATH).await;
    assert_eq!(tries.len(), 2);
    assert_eq!(query(&tries[0], "requestId"), query(&tries[1], "requestId"));
    // And when it persists, the error says retryable, as the loop behaved.
    let account = MockAccount::start().await;
    answer(&account, "POST", STATUS_PATH, ResponseTemplate::new(408)).await;
    let err = account
        .rest()
        .await
        .bulk_channel_status(&simple().pipe, &["CH".into()])
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(408));
    assert!(err.is_retryable());
    assert_eq!(
        account.requests_to(STATUS_PATH).await.len(),
        5,
        "fast_retry's attempts"
    );
}

/// Answers appends with `x-snowflake-session: s<n>` on the n-th request, except the third,
/// which carries none.
struct SessionResponder(std::sync::atomic::AtomicUsize);

impl wiremock::Respond for SessionResponder {
    fn respond(&self, _: &wiremock::Request) -> ResponseTemplate {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let ok = ResponseTemplate::new(200)
            .set_body_json(serde_json::json!({"next_continuation_token": format!("ct{n}")}));
        if n == 3 {
            ok
        } else {
            ok.insert_header("x-snowflake-session", format!("s{n}").as_str())
        }
    }
}

#[tokio::test]
async fn the_session_header_is_echoed_per_channel_and_reset_on_reopen() {
    let account = MockAccount::start().await;
    let rows = "/v2/streaming/data/databases/DB/schemas/SCH/pipes/PIPE/channels/CH/rows";
    answer(
        &account,
        "PUT",
        CHANNEL_PATH,
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "next_continuation_token": "ct0", "channel_status": status_of("CH", None)
        })),
    )
    .await;
    answer(&account, "POST", rows, SessionResponder(Default::default())).await;
    let api = account.rest().await;
    // Each channel's session is its actor's: the REST layer keeps none, it returns the
    // session with the ack.
    let wire = ChannelWire::default();
    let request = || one_row(8);
    api.open_channel(&simple(), &OpenChannelRequest::default())
        .await
        .unwrap();
    // What the actor does: echo the session the last ack returned.
    let mut session = None;
    for _ in 0..4 {
        session = api
            .append_rows(&simple(), &request(), session.as_ref(), &wire)
            .await
            .unwrap()
            .session;
    }
    // The actor forgets the session before every reopen.
    api.open_channel(&simple(), &OpenChannelRequest::default())
        .await
        .unwrap();
    api.append_rows(&simple(), &request(), None, &wire)
        .await
        .unwrap();
    let sent: Vec<Option<String>> = account
        .requests_to(rows)
        .await
        .iter()
        .map(|r| header(r, "x-snowflake-session"))
        .collect();
    assert_eq!(
        sent,
        [
            None,              // nothing issued yet
            Some("s1".into()), // echoes the first answer
            Some("s2".into()), // the second
            None,              // the third answer carried none: forgotten
            None,              // reopened: a new incarnation starts without one
        ]
    );
}

/// A mock account accepting every append, to any channel.
async fn account_accepting_appends() -> MockAccount {
    let account = MockAccount::start().await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::path_regex("/rows$"))
        .respond_with(append_ok())
        .mount(&account.server)
        .await;
    account
}

/// Appends `request()` four times through `api` to [`simple`]'s channel (one wire state), and
/// returns when the first append started.
async fn append_four_times(
    api: &RestApi,
    request: impl Fn() -> crate::transport::AppendRequest,
) -> (std::time::Instant, ChannelWire) {
    let wire = ChannelWire::default();
    let started = std::time::Instant::now();
    for _ in 0..4 {
        api.append_rows(&simple(), &request(), None, &wire)
            .await
            .unwrap();
    }
    (started, wire)
}

/// The pacing's schedule, with no clock read: four appends asked for at once start a gap
/// apart; one asked for after its slot has passed starts at once (a slow request is not paid
/// back with a burst); another channel's clock is its own, so its first append goes at once;
/// the gap is the request spacing or bytes / rate, whichever is longer.
#[test]
fn the_pacing_schedule_spaces_a_channels_appends_by_the_gap() {
    use super::{append_gap, take_slot};
    let ms = Duration::from_millis;
    let t0 = tokio::time::Instant::now();
    let mut clock = None;
    let starts: Vec<_> = (0..4).map(|_| take_slot(&mut clock, t0, ms(100))).collect();
    assert_eq!(starts, [t0, t0 + ms(100), t0 + ms(200), t0 + ms(300)]);
    let mut other = None;
    assert_eq!(take_slot(&mut other, t0, ms(100)), t0);
    let late = t0 + Duration::from_secs(10);
    assert_eq!(take_slot(&mut clock, late, ms(100)), late);
    assert_eq!(clock, Some(late + ms(100)));
    // 10 requests/s; none; 250 KB/s and 1 MB/s on 100 KB; a 1 byte/s setting capped at 1 h.
    assert_eq!(append_gap(ms(100), 0, 8), ms(100));
    assert_eq!(append_gap(Duration::ZERO, 0, 100_000), Duration::ZERO);
    assert_eq!(append_gap(ms(100), 250_000, 100_000), ms(400));
    assert_eq!(append_gap(ms(100), 1_000_000, 8), ms(100));
    assert_eq!(append_gap(Duration::ZERO, 1_000_000, 100_000), ms(100));
    assert_eq!(
        append_gap(Duration::ZERO, 1, usize::MAX),
        Duration::from_secs(3600)
    );
}

/// Through the REST layer: the request rate paces a channel's appends (four appends take at
/// least three gaps: a lower bound, which a loaded machine cannot break; how soon they go is
/// the schedule's test above), another channel has its own clock, and a rate of 0 (the byte
/// rate off too) leaves the channel's clock unset (no pacing at all).
#[tokio::test]
async fn appends_of_one_channel_are_paced_to_its_request_rate() {
    let account = account_accepting_appends().await;
    let request = || one_row(8);
    let other = ChannelPath {
        channel: "OTHER".into(),
        ..simple()
    };
    for (per_second, at_least) in [(10, 300), (0, 0)] {
        let api = account
            .rest_with(
                account
                    .builder()
                    .max_requests_per_second(per_second)
                    .max_bytes_per_second(0),
            )
            .await;
        let (started, wire) = append_four_times(&api, request).await;
        let ms = started.elapsed().as_millis();
        assert!(ms >= at_least, "{per_second}/s: 4 appends took {ms} ms");
        let other_wire = ChannelWire::default();
        api.append_rows(&other, &request(), None, &other_wire)
            .await
            .unwrap();
        let (ours, theirs) = (
            *wire.next_append.lock().unwrap(),
            *other_wire.next_append.lock().unwrap(),
        );
        assert_eq!(ours.is_some(), per_second > 0, "{per_second}/s");
        assert_eq!(theirs.is_some(), per_second > 0, "{per_second}/s");
    }
}

/// The per-channel byte rate (Snowflake's 20 MB/s uncompressed): after a request of `n`
/// bytes the channel's next waits `n / rate`, so a busy channel runs steadily instead of
/// meeting 429s; the request spacing still applies to small requests. Lower bounds only (the
/// schedule's exact gaps are `the_pacing_schedule_spaces_a_channels_appends_by_the_gap`).
#[tokio::test]
async fn appends_are_paced_by_uncompressed_bytes_per_channel() {
    let account = account_accepting_appends().await;
    // 100,000 bytes per request: the body is small, the uncompressed length is what counts.
    let request = || one_row(100_000);
    // 250 KB/s: 400 ms a request; unpaced: no clock; 1 MB/s: 100 ms, like 10 requests/s.
    for (bytes_per_second, per_second, at_least) in
        [(250_000, 10, 1_150), (0, 0, 0), (1_000_000, 0, 280)]
    {
        let api = account
            .rest_with(
                account
                    .builder()
                    .max_requests_per_second(per_second)
                    .max_bytes_per_second(bytes_per_second),
            )
            .await;
        let (started, wire) = append_four_times(&api, request).await;
        let ms = started.elapsed().as_millis();
        assert!(
            ms >= at_least,
            "{bytes_per_second} B/s: 4 appends of 100 KB took {ms} ms"
        );
        assert_eq!(
            wire.next_append.lock().unwrap().is_some(),
            bytes_per_second > 0
        );
    }
    // The key reaches the REST layer; the default is Snowflake's 20 MB/s.
    for (builder, rate) in [
        (
            account
                .builder()
                .with_config(crate::ConfigKey::MaxBytesPerSecond, "5000000")
                .unwrap(),
            5_000_000,
        ),
        (account.builder(), 20_000_000),
    ] {
        assert_eq!(
            builder.resolve().unwrap().connect.append_bytes_per_second,
            rate
        );
    }
}
