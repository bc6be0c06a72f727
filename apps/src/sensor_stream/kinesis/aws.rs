//! The Kinesis client: the AWS SDK for Rust on rustls with ring (no aws-lc, no openssl),
//! credentials and region from the usual AWS chain, and an optional endpoint (a local server).

use aws_sdk_kinesis::config::{BehaviorVersion, Region};
use aws_sdk_kinesis::Client;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};

/// Where the client connects.
#[derive(Debug, Clone, Default)]
pub struct Endpoint {
    /// A local Kinesis server (`http://127.0.0.1:PORT`); `None` for AWS itself.
    pub url: Option<String>,
    /// The region; `None`: the AWS chain's (`AWS_REGION`, the profile), else `us-east-1`
    /// when `url` is set (a local server accepts any).
    pub region: Option<String>,
}

/// A Kinesis client for `endpoint`, credentials from the AWS chain (environment variables,
/// `~/.aws` profiles, web identity, the container or instance metadata).
///
/// Loading the configuration does not fail: missing credentials surface on the first call,
/// as an error naming the chain.
pub async fn client(endpoint: &Endpoint) -> Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http);
    if let Some(region) = &endpoint.region {
        loader = loader.region(Region::new(region.clone()));
    }
    let shared = loader.load().await;
    let mut config = aws_sdk_kinesis::config::Builder::from(&shared);
    if let Some(url) = &endpoint.url {
        config = config.endpoint_url(url);
        if shared.region().is_none() {
            config = config.region(Region::new("us-east-1"));
        }
    }
    Client::from_conf(config.build())
}

/// A client for a private local server: its endpoint and fixed local credentials (a local
/// server checks none), never the user's AWS credentials.
pub fn local_client(url: &str) -> Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(http)
        .endpoint_url(url)
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_kinesis::config::Credentials::new(
            "local",
            "local",
            None,
            None,
            "local server",
        ))
        .build();
    Client::from_conf(config)
}
