//! Loading settings from profile.json and building a client from it.

use std::io::Write as _;

use crate::common::*;
use snowpipe_streaming::{ClientBuilder, ConfigKey, Error};

#[tokio::test]
async fn a_profile_file_with_the_official_keys_builds_a_client() {
    // Arrange: a profile as the official SDK reads it, plus unknown keys (warnings only).
    let sf = MockAccount::start().await;
    let profile = serde_json::json!({
        "account": "myorg-myacct",
        "user": "tester",
        "url": sf.url(),
        "private_key_file": fixture("test_key_encrypted.p8"),
        "private_key_passphrase": TEST_PASSPHRASE,
        "role": "PROFILE_ROLE",
        "authorization_type": "JWT",
        "enable_telemetry_reporting": false,
        "max_buffered_kb_for_rowset_mode": "300000",
        "a_key_nobody_knows": 1
    });
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(profile.to_string().as_bytes()).unwrap();

    // Act
    let builder = ClientBuilder::from_profile_file(file.path()).unwrap();
    builder.retry(fast_retry()).build().await.unwrap();

    // Assert
    let claims = verify_jwt(&bearer(&sf.requests_to("/oauth/token").await[0]));
    assert_eq!(claims["sub"], "MYORG-MYACCT.TESTER");
    assert_eq!(claims["scp"], "session:role:PROFILE_ROLE");
}

#[tokio::test]
async fn setters_override_profile_values() {
    let sf = MockAccount::start().await;
    let profile = serde_json::json!({
        "account": "myorg-myacct", "user": "someone_else", "url": "http://127.0.0.1:9",
        "private_key": TEST_KEY, "role": "OLD"
    });
    ClientBuilder::from_profile_json(&profile.to_string())
        .unwrap()
        .user("tester")
        .url(sf.url())
        .role("NEW")
        .retry(fast_retry())
        .build()
        .await
        .unwrap();
    let claims = verify_jwt(&bearer(&sf.requests_to("/oauth/token").await[0]));
    assert_eq!(claims["sub"], "MYORG-MYACCT.TESTER");
    assert_eq!(claims["scp"], "session:role:NEW");
}

#[test]
fn profile_errors_name_the_problem() {
    let err = ClientBuilder::from_profile_file("/definitely/not/here/profile.json").unwrap_err();
    assert!(
        matches!(err, Error::Config { ref setting, .. } if setting == "profile"),
        "{err:?}"
    );
    let err = ClientBuilder::from_profile_json(r#"{"max_client_lag": "soon"}"#).unwrap_err();
    assert!(
        matches!(err, Error::Config { ref setting, .. } if setting == "max_client_lag"),
        "{err:?}"
    );
    let err = ClientBuilder::from_profile_json(r#"["account"]"#).unwrap_err();
    assert!(err.to_string().contains("JSON object"), "{err}");
}

#[test]
fn with_config_sets_keys_by_name() {
    let b = ClientBuilder::new()
        .with_config(ConfigKey::Account, "a")
        .and_then(|b| b.with_config(ConfigKey::Compression, "none"))
        .and_then(|b| b.with_config(ConfigKey::MaxClientLag, "250ms"))
        .unwrap();
    let dbg = format!("{b:?}");
    assert!(dbg.contains("max_client_lag: 250ms"), "{dbg}");
    assert!(dbg.contains("compression: None"), "{dbg}");
}
