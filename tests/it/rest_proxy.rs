//! A per-client HTTP proxy: requests go through it (not only when process-wide env says so).

use crate::common::*;
use snowpipe_streaming::Error;

fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

#[tokio::test]
async fn requests_go_through_the_configured_proxy() {
    // Arrange: the account host does not exist (`.invalid`, never resolved: the proxy is
    // asked for it); the "proxy" (a wiremock server) answers.
    let proxy = MockAccount::start().await;
    let host = "acme.example.invalid:8080";

    // Act
    proxy
        .builder()
        .url(format!("http://{host}"))
        .danger_accept_cleartext_http(true)
        .proxy(proxy.url())
        .build()
        .await
        .unwrap();

    // Assert: both control-plane calls reached the proxy, addressed to the account host.
    let reqs = proxy.server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 2);
    for r in &reqs {
        assert_eq!(header(r, "host").as_deref(), Some(host));
    }
}

/// This machine's names never go through a proxy: the proxy's loopback is not ours, and
/// `http://localhost` through it would carry credentials in clear text across the network.
#[tokio::test]
async fn loopback_hosts_bypass_the_proxy() {
    let proxy = MockAccount::start().await;
    for account in [
        closed_port_url(),
        closed_port_url().replace("127.0.0.1", "localhost"),
    ] {
        let err = proxy
            .builder()
            .url(&account)
            .proxy(proxy.url())
            .build()
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Transport(_)), "{account}: {err:?}");
    }
    assert!(proxy.server.received_requests().await.unwrap().is_empty());
}

/// A `*.localhost` account is this machine, reached without asking DNS (which in this
/// sandbox does not know the name, and elsewhere could point it anywhere).
#[tokio::test]
async fn a_localhost_subdomain_reaches_this_machine_without_dns() {
    let account = MockAccount::start().await;
    let url = account
        .url()
        .replace("127.0.0.1", "acme.snowflakecomputing.localhost");
    account.builder().url(&url).build().await.unwrap();
    let reqs = account.server.received_requests().await.unwrap();
    assert!(!reqs.is_empty());
}

#[tokio::test]
async fn no_proxy_hosts_bypass_the_proxy() {
    let proxy = MockAccount::start().await;
    let err = proxy
        .builder()
        .url(closed_port_url())
        .proxy(proxy.url())
        .no_proxy("127.0.0.1")
        .build()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
    assert!(proxy.server.received_requests().await.unwrap().is_empty());
}
