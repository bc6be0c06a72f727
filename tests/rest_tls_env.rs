//! `SSL_CERT_FILE` is trusted by every client, as in the official SDK. The only test in this
//! binary, because it sets a process-wide environment variable.

mod common;

use common::tls::start_tls_account;
use common::*;
use snowpipe_streaming::StreamingIngestClient;

#[tokio::test]
async fn the_ca_named_by_ssl_cert_file_is_trusted() {
    // Arrange
    let account = start_tls_account().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &account.ca_pem).unwrap();
    std::env::set_var("SSL_CERT_FILE", &ca);

    // Act: no root_ca_* setting.
    let result = StreamingIngestClient::builder()
        .account("myorg-myacct")
        .user("tester")
        .url(&account.url)
        .private_key_pem(TEST_KEY)
        .retry(fast_retry().max_attempts(1))
        .build()
        .await;

    // Assert
    result.unwrap();
    assert_eq!(account.hits.load(std::sync::atomic::Ordering::SeqCst), 2);
}
