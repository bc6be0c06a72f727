//! The account's URL (from `url`, or `scheme`/`host`/`port`, or the account identifier) and
//! the application name: parsing and checks.

use super::ClientBuilder;
use crate::{Error, Result};

impl ClientBuilder {
    pub(super) fn account_url(&self, account: &str) -> Result<url::Url> {
        let (text, setting) = match (&self.url, &self.url_host) {
            (Some(u), _) => (u.trim().to_owned(), "url"),
            (None, Some(host)) => {
                let scheme = self.url_scheme.as_deref().unwrap_or("https");
                let port = self
                    .url_port
                    .as_deref()
                    .map(|p| format!(":{}", p.trim()))
                    .unwrap_or_default();
                (format!("{scheme}://{}{port}", host.trim()), "host")
            }
            (None, None) => (
                format!("https://{account}.snowflakecomputing.com"),
                "account",
            ),
        };
        parse_account_url(&text, setting)
    }
}

/// Parses and checks an account URL: `http` or `https` (https when no scheme is given), a
/// host, an optional port, and nothing else.
pub(crate) fn parse_account_url(text: &str, setting: &str) -> Result<url::Url> {
    let text = text.trim();
    if text.is_empty() {
        return Err(Error::config(setting, "the URL is empty"));
    }
    let full = if text.contains("://") {
        text.to_owned()
    } else {
        format!("https://{text}")
    };
    let url = url::Url::parse(&full)
        .map_err(|e| Error::config_caused(setting, format!("{text:?} is not a valid URL"), e))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(Error::config(
            setting,
            format!(
                "unsupported scheme {:?}: use https (or http, spelled out, for a local emulator)",
                url.scheme()
            ),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::config(setting, format!("{text:?} has no host")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::config(
            setting,
            "the URL must not contain credentials",
        ));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(Error::config(
            setting,
            format!("{text:?} must be just scheme://host[:port], without a path or query"),
        ));
    }
    Ok(url)
}

/// `http://` only to loopback, unless `danger_accept_cleartext_http` (see the builder).
///
/// # Errors
/// [`Error::Config`] naming `setting` for cleartext to another host.
pub(crate) fn check_cleartext(url: &url::Url, setting: &str, accept: bool) -> Result<()> {
    if url.scheme() != "http" || accept || crate::http::is_loopback(url) {
        return Ok(());
    }
    Err(Error::config(
        setting,
        format!(
            "http://{} is not a loopback host: without TLS the credentials (key-pair JWT, PAT, \
             OAuth secrets) and the rows would cross the network in clear text. Use https://; \
             http:// is for the local emulator (127.0.0.1, ::1, localhost), or set \
             danger_accept_cleartext_http = true if you must",
            url.host_str().unwrap_or_default()
        ),
    ))
}

pub(super) fn validate_application(app: &str) -> Result<()> {
    let ok = (1..=64).contains(&app.len())
        && app
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && !matches!(b, b'(' | b')' | b'\\'));
    if ok {
        Ok(())
    } else {
        Err(Error::config(
            "application",
            "must be 1-64 visible ASCII characters without spaces, '(', ')' or '\\'",
        ))
    }
}
