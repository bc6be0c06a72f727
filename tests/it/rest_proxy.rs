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
    // Arrange: the account URL has no server behind it; the "proxy" (a wiremock server) answers.
    let proxy = MockAccount::start().await;
    let account = closed_port_url();

    // Act
    proxy
        .builder()
        .url(&account)
        .proxy(proxy.url())
        .build()
        .await
        .unwrap();

    // Assert: both control-plane calls reached the proxy, addressed to the account host.
    let reqs = proxy.server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 2);
    let host = account.trim_start_matches("http://");
    for r in &reqs {
        assert_eq!(header(r, "host").as_deref(), Some(host));
    }
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
