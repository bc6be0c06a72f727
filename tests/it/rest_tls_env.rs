//! `SSL_CERT_FILE` is trusted by every client, as in the official SDK. The variable is set in
//! a child process, not in this one, which every integration test shares.

use crate::common::tls::start_tls_account;
use crate::common::*;
use snowpipe_streaming::StreamingIngestClient;

#[tokio::test]
async fn the_ca_named_by_ssl_cert_file_is_trusted() {
    // Arrange
    let account = start_tls_account().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &account.ca_pem).unwrap();

    // Act: the client, with no root_ca_* setting, in a process with SSL_CERT_FILE set.
    run_test_in_child(
        "rest_tls_env::ssl_cert_file_child",
        &[
            ("SSL_CERT_FILE", ca.display().to_string()),
            ("IT_ACCOUNT_URL", account.url.clone()),
        ],
        &[],
    )
    .await;

    // Assert: the child's client reached the account over TLS.
    assert_eq!(account.hits.load(std::sync::atomic::Ordering::SeqCst), 2);
}

/// The client side of [`the_ca_named_by_ssl_cert_file_is_trusted`], in a child process with
/// `SSL_CERT_FILE` set.
#[tokio::test]
#[ignore = "a child process of the_ca_named_by_ssl_cert_file_is_trusted"]
async fn ssl_cert_file_child() {
    if !in_child() {
        return;
    }
    let url = std::env::var("IT_ACCOUNT_URL").expect("IT_ACCOUNT_URL");
    StreamingIngestClient::builder()
        .account("myorg-myacct")
        .user("tester")
        .url(&url)
        .private_key_pem(TEST_KEY)
        .retry(fast_retry().max_attempts(1))
        .build()
        .await
        .unwrap();
}
