//! The `Host` check that keeps web pages out (DNS rebinding).
//!
//! The emulator listens on 127.0.0.1 only, but a web page can still reach it: its own host
//! name, re-pointed at 127.0.0.1 after the page loaded, makes the browser send the page's
//! requests (and read the answers) to the emulator, with the page's host name in `Host`.
//! `GET /` and `/console/state` show every table's latest rows without credentials, so every
//! request must name the emulator by a loopback name: `127.0.0.1` (any `127.x.y.z`), `[::1]`,
//! `localhost` or `*.localhost`, with any port, or the configured `ingest_host`. A request
//! without `Host` (HTTP/1.0 tools) is let through: browsers always send one.

use http::{header, HeaderMap, Uri};

use crate::base::api_error::ApiError;

/// The host name of a `Host` value: port and IPv6 brackets removed, trailing dot dropped,
/// lower case.
fn host_name(host: &str) -> String {
    let host = host.trim();
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether `host` (a `Host` header value) names this machine's loopback interface or
/// `extra` (the configured ingest host, itself possibly with a port).
pub(super) fn allowed(host: &str, extra: Option<&str>) -> bool {
    let name = host_name(host);
    if name == "localhost" || name.ends_with(".localhost") {
        return true;
    }
    if let Ok(ip) = name.parse::<std::net::IpAddr>() {
        return ip.is_loopback();
    }
    extra.is_some_and(|e| !e.trim().is_empty() && host_name(e) == name)
}

/// Refuses (403 `ERR_HOST_NOT_ALLOWED`) a request whose `Host` (or absolute URI authority)
/// is not a loopback name nor `extra`.
///
/// # Errors
/// The 403, naming the host received and the names accepted.
pub(super) fn check(headers: &HeaderMap, uri: &Uri, extra: Option<&str>) -> Result<(), ApiError> {
    let host = headers
        .get(header::HOST)
        .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
        .or_else(|| uri.authority().map(|a| a.as_str().to_owned()));
    match host {
        None => Ok(()),
        Some(h) if allowed(&h, extra) => Ok(()),
        Some(h) => Err(ApiError::new(
            403,
            "ERR_HOST_NOT_ALLOWED",
            format!(
                "Host {h:?} is not a name of this machine: the emulator answers only requests \
                 addressed to 127.0.0.1, [::1], localhost or *.localhost (or the configured \
                 --ingest-host), so that web pages cannot read it through DNS rebinding; \
                 connect with one of those names or start the emulator with --ingest-host {}",
                host_name(&h)
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_and_the_ingest_host_pass() {
        for h in [
            "127.0.0.1",
            "127.0.0.1:8443",
            "127.1.2.3:1",
            "[::1]:443",
            "[::1]",
            "localhost",
            "LOCALHOST:80",
            "localhost.",
            "acme.snowflakecomputing.localhost:8080",
        ] {
            assert!(allowed(h, None), "{h}");
        }
        for h in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "10.0.0.1",
            "[::2]:80",
            "",
            "notlocalhost",
        ] {
            assert!(!allowed(h, None), "{h}");
        }
        assert!(allowed("ingest.acme.test:8443", Some("ingest.acme.test")));
        assert!(allowed("Ingest.Acme.Test", Some("ingest.acme.test:443")));
        assert!(!allowed("evil.example", Some("")));
    }
}
