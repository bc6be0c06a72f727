//! The retry loop (`HttpClient::execute`) driven through REST calls: what is retried, with
//! which request id, for how long; what is never resent.

use http::Method;

use crate::http::Call;
use crate::test_support::*;

/// The REST layer of `account` with a request timeout of 300 ms.
async fn rest_timing_out_after_300_ms(account: &MockAccount) -> RestApi {
    account
        .rest_with(
            account
                .builder()
                .request_timeout(Duration::from_millis(300)),
        )
        .await
}

#[tokio::test]
async fn retryable_statuses_are_retried_with_the_same_request_id() {
    for status in [429u16, 500, 502, 503, 504] {
        // Arrange
        let account = MockAccount::start().await;
        answering(
            "DELETE",
            CHANNEL_PATH,
            ResponseTemplate::new(status)
                .set_body_string("\"ERR_GENERAL_EXCEPTION_RETRY_REQUEST\""),
        )
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&account.server)
        .await;
        answering(
            "DELETE",
            CHANNEL_PATH,
            ResponseTemplate::new(200).set_body_string("{}"),
        )
        .expect(1)
        .mount(&account.server)
        .await;
        let api = account.rest().await;

        // Act
        api.drop_channel(&simple()).await.unwrap();

        // Assert
        let reqs = account.requests_to(CHANNEL_PATH).await;
        assert_eq!(reqs.len(), 3, "status {status}");
        let ids: Vec<_> = reqs
            .iter()
            .map(|r| query(r, "requestId").unwrap())
            .collect();
        assert!(
            ids.iter().all(|id| id == &ids[0]),
            "status {status}: {ids:?}"
        );
        let counts: Vec<_> = reqs
            .iter()
            .map(|r| query(r, "retryCount").unwrap())
            .collect();
        assert_eq!(counts, ["0", "1", "2"], "status {status}");
    }
}

#[tokio::test]
async fn exhausted_retries_return_the_last_server_error() {
    let (account, api) = rest_answering(
        "POST",
        STATUS_PATH,
        ResponseTemplate::new(503).set_body_string("\"ERR_GENERAL_EXCEPTION_RETRY_REQUEST\""),
    )
    .await;
    let err = api
        .bulk_channel_status(&simple().pipe, &["CH".to_owned()])
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(
        err.snowflake_code(),
        Some("ERR_GENERAL_EXCEPTION_RETRY_REQUEST")
    );
    assert!(err.is_retryable());
    assert!(err.request_id().is_some());
    let Error::Server(s) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(s.attempts, 5);
    assert_eq!(account.requests_to(STATUS_PATH).await.len(), 5);
    assert!(err.to_string().contains("after 5 attempts"), "{err}");
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let (_account, api) = rest_answering_first_then(
        "DELETE",
        CHANNEL_PATH,
        ResponseTemplate::new(429).insert_header("Retry-After", "1"),
        ResponseTemplate::new(200),
    )
    .await;
    let start = Instant::now();
    api.drop_channel(&simple()).await.unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(950),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn the_total_budget_caps_retry_after() {
    let account = MockAccount::start().await;
    answer(
        &account,
        "DELETE",
        CHANNEL_PATH,
        // An hour: a loop that honoured it past the budget would hang, which the 60 s bound
        // below catches on any machine however loaded.
        ResponseTemplate::new(503).insert_header("Retry-After", "3600"),
    )
    .await;
    let api = account
        .rest_with(
            account
                .builder()
                .retry(fast_retry().total_budget(Duration::from_millis(200))),
        )
        .await;
    let start = Instant::now();
    let err = api.drop_channel(&simple()).await.unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(account.requests_to(CHANNEL_PATH).await.len(), 2);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    for (status, body, code) in [
        (
            400u16,
            r#"{"code":"STALE_CONTINUATION_TOKEN_SEQUENCER","message":"reopen"}"#,
            Some("STALE_CONTINUATION_TOKEN_SEQUENCER"),
        ),
        (
            403,
            r#"{"error_code":"ERR_DATABASE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED","message":"no"}"#,
            Some("ERR_DATABASE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED"),
        ),
        (404, r#"{"message":"pipe not found"}"#, None),
        (
            409,
            r#"{"code":"ERR_CHANNEL_MUST_BE_REOPENED","message":"x"}"#,
            Some("ERR_CHANNEL_MUST_BE_REOPENED"),
        ),
    ] {
        let (account, api) = rest_answering(
            "POST",
            ROWS_PATH,
            ResponseTemplate::new(status).set_body_string(body),
        )
        .await;
        let err = append_simple(&api, Compression::Zstd).await.unwrap_err();
        assert_eq!(err.status(), Some(status));
        assert_eq!(err.snowflake_code(), code, "{err}");
        assert!(!err.is_retryable(), "{status}");
        assert_eq!(account.requests_to(ROWS_PATH).await.len(), 1, "{status}");
    }
}

#[tokio::test]
async fn a_non_json_404_is_retried_as_a_misrouted_request() {
    let (account, api) = rest_answering_first_then(
        "DELETE",
        CHANNEL_PATH,
        ResponseTemplate::new(404).set_body_string("<html><body>Not Found</body></html>"),
        ResponseTemplate::new(200),
    )
    .await;
    api.drop_channel(&simple()).await.unwrap();
    assert_eq!(account.requests_to(CHANNEL_PATH).await.len(), 2);
}

#[tokio::test]
async fn open_channel_retries_409_in_progress_and_uncommitted_data_only() {
    // Arrange: two retryable 409s, then success.
    let account = MockAccount::start().await;
    for (priority, body) in [
        (
            1,
            r#"{"code":"ERR_OPEN_CHANNEL_IN_PROGRESS","message":"busy"}"#,
        ),
        (
            2,
            r#"{"code":"ERR_CHANNEL_HAS_UNCOMMITTED_DATA","message":"wait"}"#,
        ),
    ] {
        let busy = ResponseTemplate::new(409).set_body_string(body);
        answer_once(&account.server, priority, "PUT", CHANNEL_PATH, busy).await;
    }
    answering("PUT", CHANNEL_PATH, open_response())
        .with_priority(3)
        .mount(&account.server)
        .await;
    let api = account.rest().await;

    // Act
    let resp = api
        .open_channel(&simple(), &OpenChannelRequest::default())
        .await
        .unwrap();

    // Assert
    assert_eq!(resp.next_continuation_token, "ct0");
    assert_eq!(account.requests_to(CHANNEL_PATH).await.len(), 3);

    // The same 409 on append rows is not retried.
    answer(
        &account,
        "POST",
        ROWS_PATH,
        ResponseTemplate::new(409).set_body_string(r#"{"code":"ERR_OPEN_CHANNEL_IN_PROGRESS"}"#),
    )
    .await;
    let err = append_simple(&api, Compression::None).await.unwrap_err();
    assert_eq!(err.status(), Some(409));
    assert_eq!(account.requests_to(ROWS_PATH).await.len(), 1);
}

#[tokio::test]
async fn open_channel_gives_up_on_a_persistent_409() {
    let (account, api) = rest_answering(
        "PUT",
        CHANNEL_PATH,
        ResponseTemplate::new(409)
            .set_body_string(r#"{"code":"ERR_CHANNEL_HAS_UNCOMMITTED_DATA","message":"wait"}"#),
    )
    .await;
    let err = api
        .open_channel(&simple(), &OpenChannelRequest::default())
        .await
        .unwrap_err();
    assert_eq!(
        err.snowflake_code(),
        Some("ERR_CHANNEL_HAS_UNCOMMITTED_DATA")
    );
    assert_eq!(account.requests_to(CHANNEL_PATH).await.len(), 5);
}

#[tokio::test]
async fn a_retried_append_resends_the_identical_request() {
    // Documents the duplicate risk: after a 503 the same body, continuation token and
    // requestId are sent again (retryCount 1). If the first attempt had been applied, the
    // rows would land twice; Snowflake documents retryCount > 0 as "duplicates possible".
    let (account, api) =
        rest_answering_first_then("POST", ROWS_PATH, ResponseTemplate::new(503), append_ok()).await;
    append_simple(&api, Compression::Zstd).await.unwrap();
    let reqs = account.requests_to(ROWS_PATH).await;
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].body, reqs[1].body);
    assert_eq!(
        query(&reqs[0], "continuationToken"),
        query(&reqs[1], "continuationToken")
    );
    assert_eq!(query(&reqs[0], "requestId"), query(&reqs[1], "requestId"));
    assert_eq!(query(&reqs[1], "retryCount").as_deref(), Some("1"));
}

#[tokio::test]
async fn an_append_timeout_is_not_resent() {
    // Arrange: the server takes longer than the request timeout.
    let account = MockAccount::start().await;
    answer(
        &account,
        "POST",
        ROWS_PATH,
        append_ok().set_delay(Duration::from_secs(2)),
    )
    .await;
    let api = rest_timing_out_after_300_ms(&account).await;

    // Act
    let err = append_simple(&api, Compression::Zstd).await.unwrap_err();

    // Assert: one attempt, reported as a timeout the channel must recover from by replay.
    let Error::Transport(t) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(t.kind, TransportErrorKind::Timeout);
    assert_eq!(t.attempts, 1);
    assert!(err.request_id().is_some());
    assert_eq!(account.requests_to(ROWS_PATH).await.len(), 1);
}

#[tokio::test]
async fn an_idempotent_call_is_retried_after_a_timeout() {
    let account = MockAccount::start().await;
    answer_first_then(
        &account,
        "POST",
        STATUS_PATH,
        ResponseTemplate::new(200).set_delay(Duration::from_secs(2)),
        ResponseTemplate::new(200).set_body_string(r#"{"channel_statuses":{}}"#),
    )
    .await;
    let api = rest_timing_out_after_300_ms(&account).await;
    let map = api
        .bulk_channel_status(&simple().pipe, &["CH".into()])
        .await
        .unwrap();
    assert!(map.is_empty());
    assert_eq!(account.requests_to(STATUS_PATH).await.len(), 2);
}

#[tokio::test]
async fn connection_failures_are_retried_then_reported() {
    // A port nothing listens on: connection refused on every attempt.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let account = MockAccount::start().await;
    let resolved = account.builder().resolve().unwrap();
    let call = Call::new(
        "append rows",
        Method::POST,
        format!("http://127.0.0.1:{port}/rows"),
    )
    .not_idempotent();
    let err = resolved
        .connect
        .http
        .execute(&call, &resolved.connect.control)
        .await
        .unwrap_err();
    let Error::Transport(t) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(t.kind, TransportErrorKind::Connect);
    assert_eq!(
        t.attempts, 5,
        "connect failures are retried even for appends"
    );
    assert!(err.is_retryable());
    // The host is named (it is what to check); the path and query (tokens) are not.
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "the host is named: {err}"
    );
    assert!(
        !err.to_string().contains("/rows"),
        "no URL path in the message: {err}"
    );
    assert!(
        err.to_string().contains("cannot connect to 127.0.0.1"),
        "{err}"
    );
}

#[tokio::test]
async fn an_undecodable_success_body_is_a_decode_error() {
    let (_account, api) = rest_answering(
        "POST",
        ROWS_PATH,
        ResponseTemplate::new(200).set_body_string("{\"unexpected\":true}"),
    )
    .await;
    let err = append_simple(&api, Compression::Zstd).await.unwrap_err();
    let Error::Transport(t) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(t.kind, TransportErrorKind::Decode);
    assert!(err.request_id().is_some());
    assert!(!err.is_retryable(), "a malformed 200 is not retry-later");
}
