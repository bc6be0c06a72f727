//! Key-pair and PAT authentication through the public builder, against a wiremock account.

use crate::common;

use std::time::{SystemTime, UNIX_EPOCH};

use crate::common::*;
use snowpipe_streaming::{Error, StreamingIngestClient};
use wiremock::matchers::path;
use wiremock::{Mock, ResponseTemplate};

#[tokio::test]
async fn build_signs_a_keypair_jwt_snowflake_can_verify() {
    // Arrange
    let sf = MockAccount::start().await;

    // Act
    sf.client().await;

    // Assert: both control-plane calls carry a JWT signed by the test key.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for p in ["/v2/streaming/hostname", "/oauth/token"] {
        let reqs = sf.requests_to(p).await;
        assert_eq!(reqs.len(), 1, "{p}");
        let r = &reqs[0];
        assert_eq!(
            header(r, "x-snowflake-authorization-token-type").as_deref(),
            Some("KEYPAIR_JWT")
        );
        let claims = verify_jwt(&bearer(r));
        assert_eq!(claims["sub"], "MYORG-MYACCT.TESTER");
        assert_eq!(
            claims["iss"],
            format!("MYORG-MYACCT.TESTER.SHA256:{}", test_fingerprint())
        );
        let iat = claims["iat"].as_u64().unwrap();
        let exp = claims["exp"].as_u64().unwrap();
        assert!(iat.abs_diff(now) < 120, "iat is in seconds");
        assert_eq!(exp - iat, 59 * 60);
        assert!(claims.get("scp").is_none(), "no role, no scp claim");
    }
    assert_eq!(sf.exchanges(), 1);
}

#[tokio::test]
async fn locator_accounts_lose_their_region_suffix_and_roles_become_scp() {
    let sf = MockAccount::start().await;
    sf.builder()
        .account("xy12345.us-east-2.aws")
        .user("mixedCase")
        .role("Ingest_Role")
        .build()
        .await
        .unwrap();
    let r = &sf.requests_to("/oauth/token").await[0];
    let claims = verify_jwt(&bearer(r));
    assert_eq!(claims["sub"], "XY12345.MIXEDCASE");
    assert_eq!(claims["scp"], "session:role:Ingest_Role");
}

#[tokio::test]
async fn an_encrypted_key_file_with_its_passphrase() {
    let sf = MockAccount::start().await;
    StreamingIngestClient::builder()
        .account("myorg-myacct")
        .user("tester")
        .url(sf.url())
        .private_key_file(fixture("test_key_encrypted.p8"))
        .private_key_passphrase(TEST_PASSPHRASE)
        .retry(fast_retry())
        .build()
        .await
        .unwrap();
    let claims = verify_jwt(&bearer(&sf.requests_to("/oauth/token").await[0]));
    assert!(claims["iss"]
        .as_str()
        .unwrap()
        .ends_with(test_fingerprint()));
}

fn config_error(err: Error) -> (String, String) {
    match err {
        Error::Config {
            setting, message, ..
        } => (setting, message),
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[tokio::test]
async fn key_problems_are_reported_with_the_setting_and_the_fix() {
    let base = || {
        StreamingIngestClient::builder()
            .account("a")
            .user("u")
            .url("http://127.0.0.1:9")
    };
    let cases = [
        (
            base().private_key_pem(
                "-----BEGIN PRIVATE KEY-----\nnot base64!\n-----END PRIVATE KEY-----",
            ),
            "private_key",
            "not valid PEM",
        ),
        (
            base().private_key_pem(TEST_KEY_ENCRYPTED),
            "private_key_passphrase",
            "encrypted",
        ),
        (
            base()
                .private_key_pem(TEST_KEY_ENCRYPTED)
                .private_key_passphrase("wrong"),
            "private_key_passphrase",
            "passphrase is wrong",
        ),
        (
            base().private_key_file(fixture("ed25519_key.p8")),
            "private_key_file",
            "not an RSA key",
        ),
        (
            base().private_key_file(fixture("missing.p8")),
            "private_key_file",
            "missing.p8",
        ),
    ];
    for (builder, setting, needle) in cases {
        let err = builder.build().await.unwrap_err();
        let text = err.to_string();
        let (s, m) = config_error(err);
        assert_eq!(s, setting, "{text}");
        assert!(m.contains(needle), "{text}");
        assert!(!text.contains("MII"), "no key material in errors: {text}");
    }
}

#[tokio::test]
async fn a_rejected_key_is_an_auth_error_that_names_the_fingerprint() {
    // Arrange: the account rejects the token exchange.
    let sf = MockAccount::start().await;
    Mock::given(path("/oauth/token"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            serde_json::json!({"code": "390144", "message": "JWT token is invalid."}),
        ))
        .with_priority(1)
        .mount(&sf.server)
        .await;

    // Act
    let err = sf.builder().build().await.unwrap_err();

    // Assert
    assert!(matches!(err, Error::Auth { .. }), "{err:?}");
    assert!(!err.is_retryable());
    let text = format!("{err} {err:?}");
    assert!(text.contains(test_fingerprint()), "{text}");
    assert!(text.contains("RSA_PUBLIC_KEY_FP"), "{text}");
    assert!(!text.contains("eyJ"), "no JWT in the error: {text}");
    assert!(!text.contains("MII"), "no key in the error: {text}");
}

#[tokio::test]
async fn a_programmatic_access_token_needs_no_user_or_key() {
    let sf = MockAccount::start().await;
    StreamingIngestClient::builder()
        .account("myorg-myacct")
        .url(sf.url())
        .personal_access_token("my-pat")
        .retry(fast_retry())
        .build()
        .await
        .unwrap();
    let r = &sf.requests_to("/oauth/token").await[0];
    assert_eq!(bearer(r), "my-pat");
    assert_eq!(
        header(r, "x-snowflake-authorization-token-type").as_deref(),
        Some("PROGRAMMATIC_ACCESS_TOKEN")
    );
    let body = String::from_utf8(r.body.clone()).unwrap();
    assert!(
        body.contains("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange"),
        "{body}"
    );
    assert!(
        body.contains("subject_token_type=programmatic_access_token"),
        "{body}"
    );
}

#[tokio::test]
async fn client_debug_output_contains_no_secrets() {
    let sf = MockAccount::start().await;
    let builder = sf.builder().private_key_passphrase("hunter2");
    let builder_dbg = format!("{builder:?}");
    let client = builder.build().await.unwrap();
    let client_dbg = format!("{client:?}");
    for dbg in [builder_dbg, client_dbg] {
        assert!(!dbg.contains("MII"), "{dbg}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(!dbg.contains("eyJ"), "no token: {dbg}");
    }
}

/// Snowflake's key-pair setup, `ALTER USER … SET RSA_PUBLIC_KEY = '<base64 body>'`, in the
/// emulator's DDL registers the key for that user (no `--public-key`): the SDK connects and
/// streams as that user, and the same key signing for another user is refused.
#[tokio::test]
async fn a_key_registered_by_alter_user_in_ddl_lets_that_user_in() {
    let body: String = TEST_PUBLIC_KEY
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let ddl = format!(
        "{}\nALTER USER tester SET RSA_PUBLIC_KEY='{body}';",
        common::emulator::DDL
    );
    let emu = snowpipe_emulator::Emulator::start(
        snowpipe_emulator::EmulatorConfig::for_tests().with_ddl(ddl),
    )
    .await
    .expect("emulator");
    let client = common::emulator::builder(&emu)
        .build()
        .await
        .expect("TESTER connects");
    let channel = client
        .pipe(
            common::emulator::DB,
            common::emulator::SCHEMA,
            common::emulator::PIPE,
        )
        .open_channel("c")
        .await
        .expect("open");
    channel.close().await.expect("close");
    client.close().await.expect("close client");
    let other = common::emulator::builder(&emu)
        .user("SOMEONE_ELSE")
        .build()
        .await
        .map(|_| ())
        .expect_err("the key is TESTER's only");
    assert!(matches!(other, Error::Auth { .. }), "{other:?}");

    // A key that is not a key stops the emulator at start, naming the statement and the fix.
    let bad = snowpipe_emulator::Emulator::start(
        snowpipe_emulator::EmulatorConfig::for_tests()
            .with_ddl("ALTER USER tester SET RSA_PUBLIC_KEY='bm90IGEga2V5';"),
    )
    .await
    .map(|_| ())
    .expect_err("refused");
    let msg = bad.to_string();
    assert!(
        msg.contains("ALTER USER TESTER SET RSA_PUBLIC_KEY") && msg.contains("base64 body"),
        "{msg}"
    );
}
