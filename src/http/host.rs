//! What the transport knows about hosts: whether one is this machine (plain `http://` is
//! allowed only there, unless the builder's `danger_accept_cleartext_http` says otherwise),
//! and the resolver that keeps that promise.
//!
//! `localhost` and `*.localhost` count as this machine (RFC 6761 §6.3), so they must never be
//! looked up in DNS, where `evil.localhost` could point anywhere and carry credentials in
//! clear text: [`LocalhostResolver`] answers them with the loopback addresses itself, and
//! asks the system for every other name. The same names, and loopback IP literals, never go
//! through a configured proxy (the proxy's loopback is not this machine).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

/// Whether `url`'s host is this machine: `localhost`, `*.localhost`, `127.0.0.0/8` or `::1`.
/// The client sends `http://` only there (unless told otherwise); tools that send
/// credentials elsewhere (the Kafka sink's Schema Registry client) apply the same rule.
pub fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => is_localhost_name(d),
        None => false,
    }
}

/// `localhost` or a name under it (any case, with or without the root's trailing dot).
pub(crate) fn is_localhost_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// The `no_proxy` entries that keep this machine's names off a proxy.
pub(crate) const LOOPBACK_NO_PROXY: &str = "localhost,.localhost,127.0.0.1/8,::1";

/// Resolves `localhost` names to the loopback addresses without asking DNS; every other name
/// through the system resolver (`getaddrinfo`, as reqwest's default does).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LocalhostResolver;

impl reqwest::dns::Resolve for LocalhostResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = if is_localhost_name(&host) {
                vec![
                    SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
                    SocketAddr::from((Ipv6Addr::LOCALHOST, 0)),
                ]
            } else {
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect()
            };
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::dns::Resolve as _;

    #[test]
    fn loopback_hosts() {
        for (url, local) in [
            ("http://localhost:8080/", true),
            ("http://LOCALHOST/", true),
            ("http://acme.snowflakecomputing.localhost/", true),
            ("http://acme.localhost./", true),
            ("http://127.0.0.1/", true),
            ("http://127.8.9.10/", true),
            ("http://[::1]/", true),
            ("http://localhost.example.com/", false),
            ("http://notlocalhost/", false),
            ("http://10.0.0.1/", false),
            ("http://example.com/", false),
        ] {
            assert_eq!(is_loopback(&url::Url::parse(url).unwrap()), local, "{url}");
        }
    }

    /// A `*.localhost` name is answered with the loopback addresses, never looked up: in this
    /// sandbox DNS does not know `evil.localhost`, so a lookup would fail.
    #[tokio::test]
    async fn localhost_names_resolve_to_loopback_without_dns() {
        for name in [
            "evil.localhost",
            "Acme.Snowflakecomputing.LOCALHOST",
            "localhost",
        ] {
            let addrs: Vec<SocketAddr> = LocalhostResolver
                .resolve(name.parse().unwrap())
                .await
                .unwrap()
                .collect();
            assert!(!addrs.is_empty(), "{name}");
            assert!(
                addrs.iter().all(|a| a.ip().is_loopback()),
                "{name}: {addrs:?}"
            );
        }
        let addrs: Vec<SocketAddr> = LocalhostResolver
            .resolve("127.0.0.1".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert_eq!(addrs, [SocketAddr::from((Ipv4Addr::LOCALHOST, 0))]);
    }
}
