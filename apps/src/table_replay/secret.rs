//! The source password: never on the command line if it can be helped, never printed.
//!
//! The password comes, in this order, from `--password-file FILE` (first line),
//! `TABLE_REPLAY_PASSWORD`, or the `--source` URL itself (`mysql://USER:PASS@…`, best given
//! through `TABLE_REPLAY_SOURCE`: a URL with a password on the command line is visible to
//! every local user in `ps`, so it draws a warning). `--help` hides the environment's values.

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::common::say::say_warn;

/// The most `--password-file` may hold (a password is its first line): past it, a device, a
/// FIFO or a sparse file put there by mistake is refused, not read whole.
const MAX_PASSWORD_FILE_BYTES: u64 = 64 << 10;

/// The password variable.
pub(super) const PASSWORD_ENV: &str = "TABLE_REPLAY_PASSWORD";

/// `(start, end)` of the password in `mysql://USER:PASS@HOST…`, if the URL has one.
fn password_span(url: &str) -> Option<(usize, usize)> {
    let rest_at = url.find("://")? + 3;
    let rest = &url[rest_at..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest[..authority_end].rfind('@')?;
    let colon = rest[..at].find(':')?;
    Some((rest_at + colon + 1, rest_at + at))
}

/// Whether the URL carries a (non-empty) password.
pub(super) fn has_password(url: &str) -> bool {
    password_span(url).is_some_and(|(a, b)| b > a)
}

/// The URL with its password replaced by `***`, for messages and `Debug`.
pub(super) fn redact(url: &str) -> String {
    match password_span(url) {
        Some((a, b)) if b > a => format!("{}***{}", &url[..a], &url[b..]),
        _ => url.to_owned(),
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The URL to connect with: `url` with the password of `--password-file` or
/// `TABLE_REPLAY_PASSWORD` (`env_password`) put in.
///
/// # Errors
/// When the file cannot be read (past [`MAX_PASSWORD_FILE_BYTES`], not UTF-8, a FIFO nobody
/// writes: `snowpipe_cli_support::bounded_file`), when a password is given twice (URL and file/variable), or
/// when the URL names no user to give the password to. Messages never hold the password.
pub(super) fn source_url(
    url: &str,
    password_file: Option<&Path>,
    env_password: Option<String>,
) -> Result<String> {
    let (password, from) = match (password_file, env_password) {
        (Some(file), _) => {
            let text = snowpipe_cli_support::bounded_file::read_text(
                file,
                "password file",
                MAX_PASSWORD_FILE_BYTES,
            )
            .with_context(|| format!("cannot read the password file {}", file.display()))?;
            let line = text.lines().next().unwrap_or_default().to_owned();
            (line, format!("--password-file {}", file.display()))
        }
        (None, Some(p)) if !p.is_empty() => (p, PASSWORD_ENV.to_owned()),
        _ => return Ok(url.to_owned()),
    };
    if has_password(url) {
        bail!(
            "the source URL has a password and {from} gives one too: keep one (the URL \
             without `:PASS`, the password in {PASSWORD_ENV} or --password-file)"
        );
    }
    let Some(rest_at) = url.find("://").map(|i| i + 3) else {
        bail!("invalid --source URL; expected mysql://USER@HOST:PORT/DB");
    };
    let rest = &url[rest_at..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        bail!(
            "the source URL names no user for the password of {from}; expected \
             mysql://USER@HOST:PORT/DB"
        );
    };
    // `USER:@HOST` (an empty password) or `USER@HOST`.
    let user = rest[..at].strip_suffix(':').unwrap_or(&rest[..at]);
    Ok(format!(
        "{}{user}:{}{}",
        &url[..rest_at],
        percent_encode(&password),
        &rest[at..]
    ))
}

/// Warns (on stderr, without the password) when an argument is a URL with a password: the
/// command line is visible to every local user in `ps`.
pub(super) fn warn_on_command_line(args: impl IntoIterator<Item = String>) {
    for arg in args {
        let value = arg.strip_prefix("--source=").unwrap_or(&arg);
        if value.contains("://") && has_password(value) {
            say_warn!(
                "warning: the source URL on the command line holds a password ({}), visible to \
                 every local user in `ps`: set TABLE_REPLAY_SOURCE instead, or leave the \
                 password out and set {PASSWORD_ENV} or pass --password-file",
                redact(value)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_found_redacted_and_put_in() {
        let url = "mysql://app:s3cr%40t@db.example:3306/shop";
        assert!(has_password(url));
        assert_eq!(redact(url), "mysql://app:***@db.example:3306/shop");
        assert!(!has_password("mysql://app@db:3306/shop"));
        assert!(!has_password("mysql://db:3306/shop"));
        assert_eq!(redact("mysql://db:3306/x@y"), "mysql://db:3306/x@y");

        let put = source_url("mysql://app@db:3306/shop", None, Some("p@ss:w/rd".into())).unwrap();
        assert_eq!(put, "mysql://app:p%40ss%3Aw%2Frd@db:3306/shop");
        assert_eq!(
            source_url("mysql://app@db/shop", None, None).unwrap(),
            "mysql://app@db/shop"
        );
        let twice = source_url(url, None, Some("other".into())).unwrap_err();
        assert!(twice.to_string().contains("keep one"), "{twice}");
        assert!(!format!("{twice:#}").contains("other"), "{twice:#}");
        let no_user = source_url("mysql://db:3306/shop", None, Some("pw".into())).unwrap_err();
        assert!(no_user.to_string().contains("names no user"), "{no_user}");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\n").unwrap();
        assert_eq!(
            source_url("mysql://app:@db/shop", Some(&file), Some("env".into())).unwrap(),
            "mysql://app:from-file@db/shop"
        );
        let missing = source_url("mysql://app@db/shop", Some(&dir.path().join("no")), None);
        assert!(missing
            .unwrap_err()
            .to_string()
            .contains("cannot read the password file"));
    }
}
