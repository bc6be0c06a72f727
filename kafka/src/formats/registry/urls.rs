//! The registries' URLs: each checked (`http(s)://`, no credentials), and quoted with any
//! `user:password@` taken out ([`redact_url`]).

/// `url` with any `user:password@` replaced by `***@`, to be quoted in a message.
pub(crate) fn redact_url(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[start..];
    // Up to the last `@` anywhere: a password may hold `/`, `?` or `#` (unescaped, it is no
    // valid URL, but it is still a secret).
    match rest.rfind('@') {
        Some(at) => format!("{}***{}", &url[..start], &rest[at..]),
        None => url.to_owned(),
    }
}

/// One registry URL of `--schema-registry-url`, checked: `http://` or `https://` (the scheme in
/// any case), no credentials; without a trailing `/`.
pub(super) fn check_url(url: &str) -> Result<String, String> {
    let url = url.trim().trim_end_matches('/');
    let scheme_end = url.find("://");
    let scheme = scheme_end.map(|i| url[..i].to_ascii_lowercase());
    let Some(("http" | "https", end)) = scheme.as_deref().zip(scheme_end) else {
        return Err(format!(
            "--schema-registry-url {:?} is not an http:// or https:// URL",
            redact_url(url)
        ));
    };
    let rest = &url[end + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    // Any `@`: credentials whose password holds `/`, `?` or `#` end the authority early.
    if rest.contains('@') {
        return Err(format!(
            "--schema-registry-url {:?} holds credentials: remove them from the URL and give \
             them with --schema-registry-basic-auth",
            redact_url(url)
        ));
    }
    if authority.is_empty() {
        return Err(format!("--schema-registry-url {url:?} names no host"));
    }
    Ok(format!("{}://{rest}", scheme.unwrap_or_default()))
}

/// Whether `url` (as [`check_url`] gives it) is `http://` to a host other than this machine
/// (the SDK's rule, [`snowpipe_streaming::is_loopback`]); an `http://` URL that does not parse
/// counts as elsewhere.
pub(super) fn is_cleartext_elsewhere(url: &str) -> bool {
    match reqwest::Url::parse(url) {
        Ok(u) => u.scheme() == "http" && !snowpipe_streaming::is_loopback(&u),
        Err(_) => url.starts_with("http://"),
    }
}
