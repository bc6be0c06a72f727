//! Token refresh after 401 and ahead of expiry, and OAuth, through REST calls.

use crate::test_support::*;

/// Status calls refused (401) with scoped token number 1 and answered with no statuses
/// otherwise, counted in `hits`.
fn status_rejecting_token_1(hits: std::sync::Arc<AtomicUsize>) -> RejectToken {
    RejectToken {
        reject: 1,
        ok: ResponseTemplate::new(200).set_body_string(r#"{"channel_statuses":{}}"#),
        hits,
    }
}

#[tokio::test]
async fn a_401_refreshes_the_token_and_retries_with_the_same_request_id() {
    let account = MockAccount::start().await;
    answer(
        &account,
        "POST",
        STATUS_PATH,
        status_rejecting_token_1(Default::default()),
    )
    .await;
    let api = account.rest().await;
    assert_eq!(account.exchanges(), 1);

    api.bulk_channel_status(&simple().pipe, &["CH".into()])
        .await
        .unwrap();

    assert_eq!(account.exchanges(), 2);
    let reqs = account.requests_to(STATUS_PATH).await;
    assert_eq!(reqs.len(), 2);
    assert_eq!(query(&reqs[0], "requestId"), query(&reqs[1], "requestId"));
    assert_eq!(query(&reqs[1], "retryCount").as_deref(), Some("1"));
    assert_ne!(
        header(&reqs[0], "authorization"),
        header(&reqs[1], "authorization")
    );
}

#[tokio::test]
async fn concurrent_401s_share_one_token_exchange() {
    // Arrange: every call made with token #1 is rejected; the exchange is slow so the
    // callers pile up behind one refresh.
    const N: usize = 16;
    let account =
        MockAccount::start_with(Duration::from_secs(3600), Duration::from_millis(100)).await;
    let hits = std::sync::Arc::new(AtomicUsize::new(0));
    Mock::given(method("POST"))
        .and(path_regex(r":bulk-channel-status$"))
        .respond_with(status_rejecting_token_1(std::sync::Arc::clone(&hits)))
        .mount(&account.server)
        .await;
    let api = std::sync::Arc::new(account.rest().await);
    assert_eq!(account.exchanges(), 1);

    // Act
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let api = std::sync::Arc::clone(&api);
            tokio::spawn(async move {
                let pipe = PipePath {
                    database: "DB".into(),
                    schema: "SCH".into(),
                    pipe: format!("P{i}"),
                };
                api.bulk_channel_status(&pipe, &["CH".into()]).await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }

    // Assert: exactly one extra exchange, and every call retried once.
    assert_eq!(account.exchanges(), 2);
    assert_eq!(hits.load(Ordering::SeqCst), 2 * N);
}

#[tokio::test]
async fn repeated_401s_become_an_auth_error() {
    let account = MockAccount::start().await;
    answer(
        &account,
        "POST",
        STATUS_PATH,
        ResponseTemplate::new(401).set_body_string(r#"{"code":"390303","message":"invalid"}"#),
    )
    .await;
    let api = account.rest().await;
    let err = api
        .bulk_channel_status(&simple().pipe, &["CH".into()])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Auth { .. }), "{err:?}");
    assert!(err.to_string().contains("scoped token"), "{err}");
    // The first attempt and one retry per refresh (two refreshes).
    assert_eq!(account.requests_to(STATUS_PATH).await.len(), 3);
    assert_eq!(account.exchanges(), 3);
}

#[tokio::test]
async fn the_token_is_refreshed_ahead_of_expiry() {
    // A 4 s token is refreshed at half its life. Its `exp` has whole-second precision, so the
    // lifetime the client sees is between 3 and 4 s: at 2.6 s it is inside the refresh window
    // (after 1.5–2 s) and not yet expired (3–4 s), whatever the sub-second phase.
    let account = MockAccount::start_with(Duration::from_secs(4), Duration::ZERO).await;
    answer(&account, "DELETE", CHANNEL_PATH, ResponseTemplate::new(200)).await;
    let api = account.rest().await;
    api.drop_channel(&simple()).await.unwrap();
    assert_eq!(account.exchanges(), 1);
    tokio::time::sleep(Duration::from_millis(2600)).await;
    // Inside the refresh window: the call goes out with the still-valid token at once and
    // the refresh runs in the background.
    let first = api.tokens().token().await.unwrap().generation;
    api.drop_channel(&simple()).await.unwrap();
    for _ in 0..500 {
        if api.tokens().token().await.unwrap().generation != first {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(account.exchanges(), 2);
    api.drop_channel(&simple()).await.unwrap();
    let reqs = account.requests_to(CHANNEL_PATH).await;
    assert_eq!(
        header(&reqs[0], "authorization"),
        header(&reqs[1], "authorization")
    );
    assert_ne!(
        header(&reqs[0], "authorization"),
        header(&reqs[2], "authorization")
    );
}

/// An account whose first token exchange succeeds and every later one answers `status`.
async fn account_whose_refresh_fails(status: u16) -> MockAccount {
    let server = wiremock::MockServer::start().await;
    hostname_answer("127.0.0.1").mount(&server).await;
    answer_once(&server, 1, "POST", "/oauth/token", token_response()).await;
    answering(
        "POST",
        "/oauth/token",
        ResponseTemplate::new(status).set_body_string(r#"{"code":"390400","message":"x"}"#),
    )
    .with_priority(2)
    .mount(&server)
    .await;
    answering(
        "POST",
        STATUS_PATH,
        status_rejecting_token_1(Default::default()),
    )
    .mount(&server)
    .await;
    MockAccount::from_server(server)
}

/// The error of a status call whose token, refused with a 401, cannot be refreshed because
/// the exchange answers `status`.
async fn error_when_refresh_fails(status: u16) -> Error {
    let account = account_whose_refresh_fails(status).await;
    account
        .rest()
        .await
        .bulk_channel_status(&simple().pipe, &["CH".into()])
        .await
        .unwrap_err()
}

#[tokio::test]
async fn a_transient_exchange_failure_after_a_401_stays_retryable() {
    for status in [500, 503] {
        let err = error_when_refresh_fails(status).await;
        assert!(matches!(err, Error::Server(_)), "{status}: {err:?}");
        assert_eq!(err.status(), Some(status));
        assert!(err.is_retryable(), "{status}: {err}");
        assert!(err.to_string().contains("token exchange"), "{err}");
    }
}

#[tokio::test]
async fn a_refused_exchange_is_an_auth_error() {
    for status in [400, 403] {
        let err = error_when_refresh_fails(status).await;
        assert!(matches!(err, Error::Auth { .. }), "{status}: {err:?}");
        assert!(!err.is_retryable());
        let msg = err.to_string();
        assert!(msg.contains(&format!("HTTP {status} 390400")), "{msg}");
        assert!(msg.contains("role"), "{msg}");
    }
}

#[tokio::test]
async fn the_user_agent_carries_the_application() {
    let account = MockAccount::start().await;
    account
        .rest_with(account.builder().application("ski_resort"))
        .await;
    let r = &account.requests_to("/v2/streaming/hostname").await[0];
    assert!(header(r, "user-agent")
        .unwrap()
        .ends_with(" (app=ski_resort)"));
}

/// Answers the OAuth token endpoint with access tokens `at1`, `at2`, ... and rotated refresh
/// tokens `rt1`, `rt2`, ...
struct IdP(std::sync::Arc<AtomicUsize>);

impl Respond for IdP {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": format!("at{n}"), "expires_in": 600, "refresh_token": format!("rt{n}"),
            "token_type": "Bearer"
        }))
    }
}

/// A mock account whose identity provider answers as [`IdP`].
async fn account_with_idp() -> MockAccount {
    let account = MockAccount::start().await;
    let idp_calls = std::sync::Arc::new(AtomicUsize::new(0));
    answer(&account, "POST", "/oauth/token-request", IdP(idp_calls)).await;
    account
}

fn oauth_builder(account: &MockAccount) -> crate::config::ClientBuilder {
    crate::config::ClientBuilder::new()
        .account("myacct")
        .url(account.server.uri())
        .authorization_type(crate::AuthorizationType::OAuth)
        .oauth_client("cid", "csecret")
        .oauth_refresh_token("rt0")
        .role("R")
        .retry(fast_retry())
}

#[tokio::test]
async fn oauth_gets_an_access_token_then_exchanges_it() {
    // Arrange
    let account = account_with_idp().await;

    // Act
    account.rest_with(oauth_builder(&account)).await;

    // Assert: one IdP call with Basic client credentials and the refresh token.
    let idp = account.requests_to("/oauth/token-request").await;
    assert_eq!(idp.len(), 1);
    assert_eq!(
        header(&idp[0], "authorization").as_deref(),
        Some("Basic Y2lkOmNzZWNyZXQ=")
    );
    assert_eq!(
        header(&idp[0], "x-snowflake-authorization-token-type"),
        None
    );
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&idp[0].body)
        .into_owned()
        .collect();
    assert_eq!(
        form,
        vec![
            ("grant_type".into(), "refresh_token".into()),
            ("refresh_token".into(), "rt0".into()),
            ("scope".into(), "session:role:R".into()),
        ]
    );
    // Hostname and exchange with the access token, token type OAUTH.
    assert_exchanged_with(
        &account,
        "Bearer at1",
        "OAUTH",
        "127.0.0.1 session:role:R",
        "urn:ietf:params:oauth:token-type:access_token",
    )
    .await;
}

#[tokio::test]
async fn oauth_refreshes_a_rejected_access_token_with_the_rotated_refresh_token() {
    let account = account_with_idp().await;
    // The first hostname call is rejected (revoked access token).
    let revoked = ResponseTemplate::new(401);
    answer_once(&account.server, 1, "GET", "/v2/streaming/hostname", revoked).await;
    account.rest_with(oauth_builder(&account)).await;

    let idp = account.requests_to("/oauth/token-request").await;
    assert_eq!(idp.len(), 2);
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&idp[1].body)
        .into_owned()
        .collect();
    assert!(
        form.contains(&("refresh_token".into(), "rt1".into())),
        "{form:?}"
    );
    let hostname = account.requests_to("/v2/streaming/hostname").await;
    assert_eq!(
        header(&hostname[1], "authorization").as_deref(),
        Some("Bearer at2")
    );
}

#[tokio::test]
async fn oauth_settings_are_required() {
    let account = MockAccount::start().await;
    let err = crate::config::ClientBuilder::new()
        .account("a")
        .url(account.server.uri())
        .authorization_type(crate::AuthorizationType::OAuth)
        .resolve()
        .unwrap_err();
    assert!(
        matches!(err, Error::Config { ref setting, .. } if setting == "oauth_client_id"),
        "{err:?}"
    );
}
