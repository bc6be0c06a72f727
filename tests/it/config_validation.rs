//! `build()` validates every setting before touching the network and names the one at fault.

use std::time::Duration;

use crate::common::*;
use snowpipe_streaming::{ClientBuilder, Error, StreamingIngestClient};

fn base() -> ClientBuilder {
    StreamingIngestClient::builder()
        .account("myorg-myacct")
        .user("tester")
        .private_key_pem(TEST_KEY)
        .url("http://127.0.0.1:9")
}

async fn setting_of(builder: ClientBuilder) -> String {
    match builder.build().await {
        Err(Error::Config { setting, .. }) => setting,
        Err(other) => panic!("expected a config error, got {other:?}"),
        Ok(_) => panic!("expected a config error, got a client"),
    }
}

#[tokio::test]
async fn each_invalid_setting_is_named() {
    let cases: Vec<(ClientBuilder, &str)> = vec![
        (StreamingIngestClient::builder(), "account"),
        (base().url("ftp://127.0.0.1"), "url"),
        (base().url("https://host.example.com/some/path"), "url"),
        (
            base().max_client_lag(Duration::from_millis(1)),
            "max_client_lag",
        ),
        (
            base().max_client_lag(Duration::from_secs(3600)),
            "max_client_lag",
        ),
        (base().max_request_bytes(10), "max_request_bytes"),
        (base().max_request_bytes(32_000_000), "max_request_bytes"),
        (base().memory_budget_bytes(1_000_000), "memory_budget_bytes"),
        (base().application("bad app"), "application"),
        (base().root_ca_pem("garbage"), "root_ca_pem"),
        (base().root_ca_file(fixture("nope.pem")), "root_ca_file"),
        (base().proxy("not a proxy url"), "proxy"),
        (base().request_timeout(Duration::ZERO), "request_timeout"),
    ];
    for (builder, expected) in cases {
        assert_eq!(setting_of(builder).await, expected);
    }
}

#[tokio::test]
async fn an_unreachable_account_is_a_transport_error_after_retries() {
    // Nothing listens on this port: connect failures are retried, then reported.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let err = base()
        .url(url)
        .retry(fast_retry())
        .build()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
    assert!(err.is_retryable());
    assert!(err.to_string().contains("hostname discovery"), "{err}");
}

#[tokio::test]
async fn the_emulator_root_ca_setting_accepts_a_pem_bundle() {
    // A real CA certificate (Mozilla bundle style) parses; the TLS handshake itself is
    // exercised by the emulator tests.
    let sf = MockAccount::start().await;
    let ca = include_str!("../fixtures/test_ca.pem");
    sf.builder().root_ca_pem(ca).build().await.unwrap();
}
