//! Connecting: hostname discovery and the scoped-token exchange.

use crate::rest::tests::*;

#[tokio::test]
async fn connect_discovers_the_host_and_exchanges_a_scoped_token() {
    // Arrange
    let account = MockAccount::start().await;

    // Act
    let api = account.rest().await;

    // Assert
    assert_eq!(api.ingest_base(), account.server.uri());
    let hostname = account.requests_to("/v2/streaming/hostname").await;
    assert_eq!(hostname.len(), 1);
    let h = &hostname[0];
    assert_eq!(h.method.as_str(), "GET");
    assert_eq!(
        header(h, "x-snowflake-authorization-token-type").as_deref(),
        Some("KEYPAIR_JWT")
    );
    assert_eq!(header(h, "accept").as_deref(), Some("application/json"));
    assert!(header(h, "user-agent")
        .unwrap()
        .starts_with("SnowpipeStreamingSDK/v"));
    assert_uuid(&query(h, "requestId").unwrap());
    assert_eq!(query(h, "retryCount").as_deref(), Some("0"));
    let jwt = header(h, "authorization").unwrap();
    let jwt = jwt.strip_prefix("Bearer ").unwrap();
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(TEST_PUBLIC_KEY.as_bytes()).unwrap();
    let claims = jsonwebtoken::decode::<serde_json::Value>(
        jwt,
        &key,
        &jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256),
    )
    .unwrap()
    .claims;
    assert_eq!(claims["sub"], "MYORG-MYACCT.TESTER");
    assert_eq!(
        claims["iss"],
        format!("MYORG-MYACCT.TESTER.SHA256:{}", TEST_FINGERPRINT.trim())
    );
    assert!(claims.get("scp").is_none());

    let token = account.requests_to("/oauth/token").await;
    assert_eq!(token.len(), 1);
    let t = &token[0];
    assert_eq!(t.method.as_str(), "POST");
    assert_eq!(
        header(t, "content-type").as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        header(t, "x-snowflake-authorization-token-type").as_deref(),
        Some("KEYPAIR_JWT")
    );
    assert_eq!(
        std::str::from_utf8(&t.body).unwrap(),
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&scope=127.0.0.1"
    );
    // A fresh JWT per control-plane request (both valid; they may share a second).
    assert!(header(t, "authorization").unwrap().starts_with("Bearer ey"));
}

#[tokio::test]
async fn role_goes_into_the_jwt_scp_claim_and_the_scope() {
    let account = MockAccount::start().await;
    account.rest_with(account.builder().role("MyRole")).await;
    let t = &account.requests_to("/oauth/token").await[0];
    assert!(std::str::from_utf8(&t.body)
        .unwrap()
        .ends_with("&scope=127.0.0.1+session%3Arole%3AMyRole"));
    let jwt = header(t, "authorization").unwrap()[7..].to_owned();
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(TEST_PUBLIC_KEY.as_bytes()).unwrap();
    let claims = jsonwebtoken::decode::<serde_json::Value>(
        &jwt,
        &key,
        &jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256),
    )
    .unwrap()
    .claims;
    assert_eq!(claims["scp"], "session:role:MyRole");
}

#[tokio::test]
async fn underscores_in_the_ingest_host_become_dashes_and_scheme_and_port_are_kept() {
    let server = wiremock::MockServer::start().await;
    hostname_answer(" my_acct.ingest.example\n")
        .mount(&server)
        .await;
    let tokens = TokenResponder {
        count: std::sync::Arc::new(AtomicUsize::new(0)),
        ttl: Duration::from_secs(3600),
        delay: Duration::ZERO,
    };
    answering("POST", "/oauth/token", tokens)
        .mount(&server)
        .await;
    let account = MockAccount::from_server(server);
    // Cleartext to a host that is not loopback is refused unless asked for.
    let options = account.builder().resolve().expect("valid settings").connect;
    let e = crate::rest::RestApi::connect(options)
        .await
        .map(|_| ())
        .expect_err("refused");
    let msg = format!("{e}");
    assert!(
        msg.contains("my-acct.ingest.example") && msg.contains("danger_accept_cleartext_http"),
        "{msg}"
    );
    let api = account
        .rest_with(account.builder().danger_accept_cleartext_http(true))
        .await;
    let port = account.server.address().port();
    assert_eq!(
        api.ingest_base(),
        format!("http://my-acct.ingest.example:{port}")
    );
    let t = &account.requests_to("/oauth/token").await[0];
    assert!(std::str::from_utf8(&t.body)
        .unwrap()
        .ends_with("&scope=my-acct.ingest.example"));

    let api = account
        .rest_with(
            account
                .builder()
                .replace_underscore_with_dash_in_host(false)
                .danger_accept_cleartext_http(true),
        )
        .await;
    assert_eq!(
        api.ingest_base(),
        format!("http://my_acct.ingest.example:{port}")
    );
}

#[tokio::test]
async fn pat_authenticates_the_control_plane_with_a_token_exchange() {
    let account = MockAccount::start().await;
    let builder = crate::config::ClientBuilder::new()
        .account("myacct")
        .url(account.server.uri())
        .personal_access_token("pat-secret")
        .role("R1")
        .retry(fast_retry());
    account.rest_with(builder).await;
    assert_exchanged_with(
        &account,
        "Bearer pat-secret",
        "PROGRAMMATIC_ACCESS_TOKEN",
        "127.0.0.1 session:role:R1",
        "programmatic_access_token",
    )
    .await;
}

async fn account_rejecting(p: &'static str) -> wiremock::MockServer {
    let server = wiremock::MockServer::start().await;
    Mock::given(path(p))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            serde_json::json!({"code": "390144", "message": "JWT token is invalid."}),
        ))
        .with_priority(1)
        .mount(&server)
        .await;
    hostname_answer("127.0.0.1").mount(&server).await;
    server
}

#[tokio::test]
async fn a_401_on_discovery_or_exchange_is_an_auth_error_naming_the_fingerprint() {
    for p in ["/v2/streaming/hostname", "/oauth/token"] {
        let server = account_rejecting(p).await;
        let account = MockAccount::from_server(server);
        let resolved = account.builder().resolve().unwrap();
        let err = RestApi::connect(resolved.connect).await.unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Auth { .. }), "{err:?}");
        assert!(msg.contains(TEST_FINGERPRINT.trim()), "{msg}");
        assert!(msg.contains("MYORG-MYACCT.TESTER"), "{msg}");
        assert!(msg.contains("390144"), "{msg}");
        assert!(!err.is_retryable());
        // Retried with backoff like the official SDK (>= 1.8.1), then given up: the same
        // credentials are most likely rejected again.
        let tries = account.requests_to(p).await;
        assert_eq!(tries.len(), 3, "{p}");
        assert_eq!(query(&tries[2], "retryCount").as_deref(), Some("2"));
        assert_eq!(query(&tries[0], "requestId"), query(&tries[2], "requestId"));
    }
}

#[tokio::test]
async fn non_jwt_scoped_token_falls_back_to_the_default_ttl() {
    let server = wiremock::MockServer::start().await;
    Mock::given(path("/v2/streaming/hostname"))
        .respond_with(ResponseTemplate::new(200).set_body_string("127.0.0.1"))
        .mount(&server)
        .await;
    Mock::given(path("/oauth/token"))
        .respond_with(ResponseTemplate::new(200).set_body_string("opaque-token"))
        .mount(&server)
        .await;
    let account = MockAccount::from_server(server);
    let api = account.rest().await;
    let t = api.tokens().token().await.unwrap();
    let left = t.expires_at - tokio::time::Instant::now();
    assert!(
        left > Duration::from_secs(3500) && left <= Duration::from_secs(3600),
        "{left:?}"
    );
}
