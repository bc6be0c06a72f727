//! HTTPS with a per-client root CA, as with `snowpipe-emulator --tls`: a tiny TLS server on
//! 127.0.0.1 whose certificate is signed by a CA generated for the test.

use std::sync::atomic::Ordering;

use crate::common::tls::start_tls_account;
use crate::common::*;
use snowpipe_streaming::{Error, StreamingIngestClient, TransportErrorKind};

fn builder(url: &str) -> snowpipe_streaming::ClientBuilder {
    StreamingIngestClient::builder()
        .account("myorg-myacct")
        .user("tester")
        .url(url)
        .private_key_pem(TEST_KEY)
        .retry(fast_retry().max_attempts(2))
}

#[tokio::test]
async fn a_per_client_root_ca_makes_https_work() {
    let account = start_tls_account().await;
    builder(&account.url)
        .root_ca_pem(account.ca_pem.clone())
        .build()
        .await
        .unwrap();
    assert_eq!(
        account.hits.load(Ordering::SeqCst),
        2,
        "hostname + token exchange"
    );
}

#[tokio::test]
async fn a_url_without_scheme_means_https() {
    let account = start_tls_account().await;
    let bare = account.url.trim_start_matches("https://").to_owned();
    builder(&bare)
        .root_ca_pem(account.ca_pem.clone())
        .build()
        .await
        .unwrap();
    assert_eq!(account.hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_untrusted_certificate_fails_fast_with_a_fix() {
    let account = start_tls_account().await;
    // Generous retries: a TLS failure must not use them.
    let err = builder(&account.url)
        .retry(fast_retry().max_attempts(10))
        .build()
        .await
        .unwrap_err();
    match &err {
        Error::Transport(t) => {
            assert_eq!(t.kind, TransportErrorKind::Tls, "{err:?}");
            assert_eq!(t.attempts, 1, "a TLS failure is not retried: {err}");
        }
        other => panic!("expected a transport error, got {other:?}"),
    }
    assert!(!err.is_retryable());
    let msg = err.to_string();
    for needle in ["127.0.0.1", "root_ca_pem", "root_ca_file", "SSL_CERT_FILE"] {
        assert!(msg.contains(needle), "{needle:?} missing from: {msg}");
    }
    assert_eq!(account.hits.load(Ordering::SeqCst), 0);
}

/// `.invalid` never resolves (RFC 6761); the resolver answers at once, network or not.
#[tokio::test]
async fn an_unresolvable_account_host_names_the_host_and_stops_early() {
    let err = builder("https://no-such-account.invalid")
        .retry(fast_retry().max_attempts(10))
        .build()
        .await
        .unwrap_err();
    let Error::Transport(t) = &err else {
        panic!("expected a transport error, got {err:?}")
    };
    assert_eq!(t.kind, TransportErrorKind::Connect, "{err:?}");
    assert_eq!(
        t.attempts, 2,
        "a DNS failure is retried once, not 10 times: {err}"
    );
    let msg = err.to_string();
    for needle in ["no-such-account.invalid", "account identifier", "url"] {
        assert!(msg.contains(needle), "{needle:?} missing from: {msg}");
    }
}

#[tokio::test]
async fn a_root_ca_file_works_too() {
    let account = start_tls_account().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, &account.ca_pem).unwrap();
    builder(&account.url)
        .root_ca_file(&path)
        .build()
        .await
        .unwrap();
}
