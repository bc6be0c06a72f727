//! Unit tests of configuration sources and validation (no network).

use std::collections::HashMap;

use super::account::parse_account_url;
use super::*;
use crate::auth::ControlAuth;
use crate::test_support::TEST_KEY;

fn valid() -> ClientBuilder {
    ClientBuilder::new()
        .account("myorg-myacct")
        .user("me")
        .private_key_pem(TEST_KEY)
}

fn err_setting(b: ClientBuilder) -> (String, String) {
    match b.resolve() {
        Err(Error::Config {
            setting, message, ..
        }) => (setting, message),
        Err(other) => panic!("expected a config error, got {other:?}"),
        Ok(_) => panic!("expected a config error, got Ok"),
    }
}

#[test]
fn env_variables_fill_the_builder_and_setters_override_them() {
    let env: HashMap<&str, String> = [
        ("SNOWFLAKE_ACCOUNT", "acct_from_env".to_owned()),
        ("SNOWFLAKE_USER", "user_env".to_owned()),
        ("SNOWFLAKE_URL", "http://127.0.0.1:9".to_owned()),
        ("SNOWFLAKE_PRIVATE_KEY", TEST_KEY.to_owned()),
        ("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE", "".to_owned()),
        ("SNOWFLAKE_ROLE", "ENV_ROLE".to_owned()),
        ("SS_APPLICATION", "app1".to_owned()),
    ]
    .into_iter()
    .collect();
    let b = ClientBuilder::new().with_env(|k| env.get(k).cloned());
    assert_eq!(b.account.as_deref(), Some("acct_from_env"));
    assert_eq!(b.credentials.user.as_deref(), Some("user_env"));
    assert_eq!(b.url.as_deref(), Some("http://127.0.0.1:9"));
    assert_eq!(b.role.as_deref(), Some("ENV_ROLE"));
    assert_eq!(b.application.as_deref(), Some("app1"));
    assert!(b.credentials.private_key.is_some());
    assert!(
        b.credentials.private_key_passphrase.is_none(),
        "empty variables are skipped"
    );
    let b = b.role("OVERRIDE");
    assert_eq!(b.role.as_deref(), Some("OVERRIDE"));
    let r = b.resolve().unwrap();
    assert_eq!(r.connect.account_url.as_str(), "http://127.0.0.1:9/");
    assert_eq!(r.connect.role.as_deref(), Some("OVERRIDE"));
}

#[test]
fn profile_json_with_official_keys() {
    let profile = serde_json::json!({
        "account": "myorg-myacct",
        "user": "me",
        "url": "https://127.0.0.1:8443",
        "private_key": TEST_KEY,
        "role": "R",
        "authorization_type": "JWT",
        "enable_rowset_compression": false,
        "auth_refresh_buffer_duration_seconds": 120,
        "max_client_lag": 250,
        "replace_underscore_with_dash_in_host": "false",
        "some_future_key": "ignored",
        "max_buffered_kb_for_rowset_mode": "300000",
        "private_key_passphrase": null
    });
    let b = ClientBuilder::from_profile_json(&profile.to_string()).unwrap();
    assert_eq!(b.channel.compression, Compression::None);
    assert_eq!(b.auth_refresh_ahead, Duration::from_secs(120));
    assert_eq!(b.channel.max_client_lag, Duration::from_millis(250));
    assert!(!b.replace_underscore_with_dash_in_host);
    let r = b.resolve().unwrap();
    assert_eq!(r.connect.account_url.as_str(), "https://127.0.0.1:8443/");
    assert!(matches!(r.connect.control, ControlAuth::KeyPair(_)));
}

#[test]
fn profile_scheme_host_port_make_the_url() {
    let b = ClientBuilder::from_profile_json(
        r#"{"account":"a","user":"u","host":"127.0.0.1","port":8080,"ssl":"off"}"#,
    )
    .unwrap()
    .private_key_pem(TEST_KEY);
    assert_eq!(
        b.resolve().unwrap().connect.account_url.as_str(),
        "http://127.0.0.1:8080/"
    );
    let b = ClientBuilder::from_profile_json(
        r#"{"account":"a","user":"u","host":"x.y.z","scheme":"https"}"#,
    )
    .unwrap()
    .private_key_pem(TEST_KEY);
    assert_eq!(
        b.resolve().unwrap().connect.account_url.as_str(),
        "https://x.y.z/"
    );
}

#[test]
fn profile_errors_name_the_key() {
    let e = ClientBuilder::from_profile_json("[1]").unwrap_err();
    assert!(e.to_string().contains("profile"), "{e}");
    let e = ClientBuilder::from_profile_json("{nope").unwrap_err();
    assert!(e.to_string().contains("not valid JSON"), "{e}");
    let e = ClientBuilder::from_profile_json(r#"{"request_timeout":"5"}"#).unwrap_err();
    assert!(
        e.to_string().contains("request_timeout") && e.to_string().contains("unit"),
        "{e}"
    );
    let e = ClientBuilder::from_profile_json(r#"{"compression":"lz4"}"#).unwrap_err();
    assert!(e.to_string().contains("compression"), "{e}");
    let e = ClientBuilder::from_profile_json(r#"{"ssl":"maybe"}"#).unwrap_err();
    assert!(e.to_string().contains("ssl"), "{e}");
    let e = ClientBuilder::from_profile_json(r#"{"role":{"a":1}}"#).unwrap_err();
    assert!(e.to_string().contains("role"), "{e}");
    let e = ClientBuilder::from_profile_json(r#"{"authorization_type":"SAML"}"#).unwrap_err();
    assert!(e.to_string().contains("authorization_type"), "{e}");
    let e = ClientBuilder::from_profile_file("/nonexistent/profile.json").unwrap_err();
    assert!(e.to_string().contains("/nonexistent/profile.json"), "{e}");
}

#[test]
fn with_config_covers_this_crates_keys() {
    let b = valid()
        .with_config(ConfigKey::RequestTimeout, "5s")
        .unwrap()
        .with_config("CONNECT_TIMEOUT".parse::<ConfigKey>().unwrap(), "250ms")
        .unwrap()
        .with_config(ConfigKey::MaxRequestBytes, "1_000_000")
        .unwrap()
        .with_config(ConfigKey::MemoryBudgetBytes, "64000000")
        .unwrap()
        .with_config(ConfigKey::Compression, "gzip")
        .unwrap()
        .with_config(ConfigKey::CommitPollInterval, "50ms")
        .unwrap()
        .with_config(ConfigKey::RetryMaxAttempts, "3")
        .unwrap()
        .with_config(ConfigKey::RetryTotalBudget, "10s")
        .unwrap()
        .with_config(ConfigKey::MaxClientLag, "2s")
        .unwrap();
    assert_eq!(b.http.request_timeout, Duration::from_secs(5));
    assert_eq!(b.http.connect_timeout, Duration::from_millis(250));
    assert_eq!(b.channel.max_request_bytes, 1_000_000);
    assert_eq!(b.channel.memory_budget_bytes, 64_000_000);
    assert_eq!(b.channel.compression, Compression::Gzip);
    assert_eq!(b.channel.commit_poll_interval, Duration::from_millis(50));
    assert_eq!(b.retry.max_attempts, 3);
    assert_eq!(b.retry.total_budget, Duration::from_secs(10));
    assert_eq!(b.channel.max_client_lag, Duration::from_secs(2));
    b.resolve().unwrap();
}

#[test]
fn default_url_comes_from_the_account() {
    let r = valid().resolve().unwrap();
    assert_eq!(
        r.connect.account_url.as_str(),
        "https://myorg-myacct.snowflakecomputing.com/"
    );
}

#[test]
fn url_rules() {
    let ok = |u: &str| parse_account_url(u, "url").unwrap().to_string();
    assert_eq!(ok("http://127.0.0.1:8080"), "http://127.0.0.1:8080/");
    assert_eq!(ok("https://127.0.0.1:8443/"), "https://127.0.0.1:8443/");
    assert_eq!(
        ok("127.0.0.1:8443"),
        "https://127.0.0.1:8443/",
        "https unless http is spelled out"
    );
    assert_eq!(
        ok("acct.snowflakecomputing.com"),
        "https://acct.snowflakecomputing.com/"
    );
    let bad = |u: &str| parse_account_url(u, "url").unwrap_err().to_string();
    assert!(bad("ftp://x.y.z").contains("scheme"));
    assert!(bad("https://x.y.z/path").contains("without a path"));
    assert!(bad("https://x.y.z/?a=1").contains("without a path"));
    assert!(bad("https://u:p@x.y.z").contains("credentials"));
    assert!(bad("").contains("empty"));
    assert!(bad("http://").contains("url"));
}

#[test]
fn missing_identity_settings_are_named() {
    assert_eq!(err_setting(ClientBuilder::new()).0, "account");
    assert_eq!(err_setting(ClientBuilder::new().account("a")).0, "user");
    assert_eq!(
        err_setting(ClientBuilder::new().account("a").user("u")).0,
        "private_key"
    );
    let (s, m) = err_setting(valid().private_key_file("/x.p8"));
    assert_eq!(s, "private_key");
    assert!(m.contains("keep only one"), "{m}");
    assert_eq!(err_setting(valid().account("bad account!")).0, "account");
    let (s, _) = err_setting(
        ClientBuilder::new()
            .account("a")
            .authorization_type(AuthorizationType::ProgrammaticAccessToken),
    );
    assert_eq!(s, "personal_access_token");
}

#[test]
fn a_pat_alone_selects_pat_authentication_without_a_user() {
    let r = ClientBuilder::new()
        .account("a")
        .personal_access_token("tok")
        .resolve()
        .unwrap();
    assert!(matches!(r.connect.control, ControlAuth::Pat(_)));
}

#[test]
fn channel_settings_are_range_checked() {
    assert_eq!(
        err_setting(valid().max_client_lag(Duration::from_millis(5))).0,
        "max_client_lag"
    );
    assert_eq!(
        err_setting(valid().max_client_lag(Duration::from_secs(601))).0,
        "max_client_lag"
    );
    valid()
        .max_client_lag(Duration::from_millis(10))
        .resolve()
        .unwrap();
    valid()
        .max_client_lag(Duration::from_secs(600))
        .resolve()
        .unwrap();
    assert_eq!(
        err_setting(valid().max_request_bytes(1023)).0,
        "max_request_bytes"
    );
    assert_eq!(
        err_setting(valid().max_request_bytes(4_000_001)).0,
        "max_request_bytes"
    );
    let (s, m) = err_setting(
        valid()
            .max_request_bytes(4_000_000)
            .memory_budget_bytes(7_999_999),
    );
    assert_eq!(s, "memory_budget_bytes");
    assert!(m.contains("twice"), "{m}");
    valid()
        .max_request_bytes(4_000_000)
        .memory_budget_bytes(8_000_000)
        .resolve()
        .unwrap();
    assert_eq!(
        err_setting(valid().commit_poll_interval(Duration::ZERO)).0,
        "commit_poll_interval"
    );
    assert_eq!(
        err_setting(valid().recovery_timeout(Duration::from_millis(10))).0,
        "recovery_timeout"
    );
    assert_eq!(
        valid()
            .recovery_timeout(Duration::from_secs(30))
            .resolve()
            .unwrap()
            .channel
            .recovery_timeout,
        Duration::from_secs(30)
    );
    assert_eq!(
        err_setting(valid().request_timeout(Duration::ZERO)).0,
        "request_timeout"
    );
    assert_eq!(
        err_setting(valid().connect_timeout(Duration::ZERO)).0,
        "connect_timeout"
    );
}

#[test]
fn application_names_are_checked() {
    valid().application("ski_resort-1.0").resolve().unwrap();
    for bad in [
        "",
        "has space",
        "paren(",
        "back\\slash",
        &"x".repeat(65),
        "é",
    ] {
        assert_eq!(
            err_setting(valid().application(bad)).0,
            "application",
            "{bad:?}"
        );
    }
}

#[test]
fn tls_and_proxy_settings_are_validated() {
    let (s, m) = err_setting(valid().root_ca_pem("not a cert"));
    assert_eq!(s, "root_ca_pem");
    assert!(m.contains("no PEM certificate"), "{m}");
    assert_eq!(
        err_setting(valid().root_ca_file("/nonexistent/ca.pem")).0,
        "root_ca_file"
    );
    assert_eq!(err_setting(valid().proxy("::not a url::")).0, "proxy");
    assert_eq!(err_setting(valid().no_proxy("localhost")).0, "no_proxy");
    valid()
        .proxy("http://127.0.0.1:3128")
        .no_proxy("localhost,127.0.0.1")
        .resolve()
        .unwrap();
}

#[test]
fn debug_output_redacts_secrets() {
    let b = valid()
        .private_key_passphrase("hunter2")
        .personal_access_token("pat-123")
        .root_ca_pem("-----BEGIN CERTIFICATE-----");
    let dbg = format!("{b:?}");
    assert!(!dbg.contains("MII"), "{dbg}");
    assert!(!dbg.contains("hunter2"), "{dbg}");
    assert!(!dbg.contains("pat-123"), "{dbg}");
    assert!(dbg.contains("myorg-myacct"));
    let r = format!(
        "{:?}",
        valid().private_key_passphrase("hunter2").resolve().unwrap()
    );
    assert!(!r.contains("MII") && !r.contains("hunter2"), "{r}");
}

#[test]
fn debug_output_hides_proxy_credentials() {
    let r = valid()
        .proxy("http://alice:s3cret@127.0.0.1:3128")
        .resolve()
        .unwrap();
    let dbg = format!("{r:?}");
    assert!(!dbg.contains("s3cret"), "{dbg}");
    let dbg = format!("{:?}", valid().proxy("http://alice:s3cret@127.0.0.1:3128"));
    assert!(!dbg.contains("s3cret"), "{dbg}");
}

#[test]
fn every_config_key_round_trips_and_is_accepted_by_with_config() {
    let mut seen = std::collections::HashSet::new();
    for key in ConfigKey::ALL {
        assert!(seen.insert(key.as_str()), "{key} listed twice");
        assert_eq!(key.as_str().parse::<ConfigKey>().unwrap(), *key);
        assert_eq!(
            format!(" {} ", key.as_str().to_uppercase())
                .parse::<ConfigKey>()
                .unwrap(),
            *key
        );
        // A value of the wrong shape is refused naming the key, not ignored as unknown.
        if let Err(e) = ClientBuilder::new().with_config(*key, "{not a value}") {
            assert!(e.to_string().contains(key.as_str()), "{e}");
        }
    }
    assert!("no_such_key".parse::<ConfigKey>().is_err());
    // Every environment variable from_env reads belongs to exactly one key.
    let vars: Vec<_> = ConfigKey::ALL.iter().filter_map(|k| k.env_var()).collect();
    assert_eq!(vars.len(), 8, "{vars:?}");
}

#[test]
fn recovery_timeout_and_zstd_level_have_keys() {
    let b = ClientBuilder::new()
        .with_config(ConfigKey::RecoveryTimeout, "45s")
        .unwrap()
        .with_config("ZSTD_LEVEL".parse::<ConfigKey>().unwrap(), "3")
        .unwrap();
    assert_eq!(b.channel.recovery_timeout, Duration::from_secs(45));
    assert_eq!(b.channel.zstd_level, 3);
    let err = ClientBuilder::new()
        .with_config(ConfigKey::ZstdLevel, "fast")
        .unwrap_err();
    assert!(err.to_string().contains("zstd_level"), "{err}");
    let b = ClientBuilder::new()
        .with_config(ConfigKey::ZstdLevel, "40")
        .unwrap();
    let err = b.channel.validate().unwrap_err();
    assert!(err.to_string().contains("zstd_level"), "{err}");
}

#[test]
fn cleartext_http_only_to_loopback_unless_asked_for() {
    let with = |url: &str| {
        ClientBuilder::new()
            .account("a")
            .user("u")
            .url(url)
            .private_key_pem(crate::test_util::TEST_KEY)
    };
    for ok in [
        "http://127.0.0.1:8080",
        "http://127.9.9.9",
        "http://[::1]:9",
        "http://localhost:1",
        "http://emu.localhost",
        "https://x.example.com",
    ] {
        assert!(with(ok).resolve().is_ok(), "{ok} refused");
    }
    for bad in [
        "http://x.example.com",
        "http://10.0.0.7:8080",
        "http://[fe80::1]",
    ] {
        let e = with(bad).resolve().map(|_| ()).expect_err(bad);
        let msg = e.to_string();
        assert!(
            msg.contains("clear text") && msg.contains("danger_accept_cleartext_http"),
            "{bad}: {msg}"
        );
        assert!(with(bad)
            .danger_accept_cleartext_http(true)
            .resolve()
            .is_ok());
        assert!(with(bad)
            .with_config(ConfigKey::DangerAcceptCleartextHttp, "true")
            .unwrap()
            .resolve()
            .is_ok());
    }
    // The OAuth token endpoint too: a client secret would cross the network in clear.
    let oauth = |endpoint: &str| {
        ClientBuilder::new()
            .account("a")
            .user("u")
            .url("https://a.snowflakecomputing.com")
            .oauth_client("id", "secret")
            .oauth_token_endpoint(endpoint)
            .with_config(ConfigKey::AuthorizationType, "oauth")
            .unwrap()
    };
    let e = oauth("http://idp.example.com/token")
        .resolve()
        .map(|_| ())
        .expect_err("refused");
    assert!(e.to_string().contains("oauth_token_endpoint"), "{e}");
    assert!(oauth("http://127.0.0.1:9/token").resolve().is_ok());
}

/// The client reports the lag its channels batch by: the builder's, else the default.
#[tokio::test]
async fn a_client_reports_the_lag_its_channels_batch_by() {
    use crate::channel::testing::FakeApi;
    use crate::StreamingIngestClient;
    let set = valid()
        .max_client_lag(Duration::from_millis(250))
        .resolve()
        .unwrap();
    let client = StreamingIngestClient::from_parts(FakeApi::new() as _, set.channel);
    assert_eq!(client.max_client_lag(), Duration::from_millis(250));
    let default =
        StreamingIngestClient::from_parts(FakeApi::new() as _, valid().resolve().unwrap().channel);
    assert_eq!(default.max_client_lag(), Duration::from_secs(1));
}
