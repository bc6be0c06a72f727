//! A store's error as one short line naming its cause and the fix, instead of
//! `object_store`'s chain (each layer repeats the one below it: a plain-HTTP refusal was 600
//! characters of the same URL three times). The common causes are recognized by what the
//! chain says; anything else is its innermost message, once, cut to [`MOST_CHARS`]. Every
//! byte the store sent (keys, XML) is shown with control characters escaped (`names.rs`).

use std::error::Error as _;
use std::path::Path;

use crate::names;

/// The most characters of an unrecognized cause shown (escaped).
pub(crate) const MOST_CHARS: usize = 300;

/// Why a plain-HTTP endpoint is refused, and the fix.
pub(crate) const PLAIN_HTTP: &str =
    "plain HTTP is refused: for an S3-compatible server on http://, set AWS_ALLOW_HTTP=true";

/// `doing` (`"cannot list s3://b/p/"`) failed with `e`: one line, its cause and the fix.
pub(crate) fn explain(doing: &str, e: &object_store::Error) -> String {
    let chain = chain(e);
    format!("{doing}: {}", cause(e, &chain))
}

/// Every layer's message, joined.
fn chain(e: &object_store::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(" | ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn cause(e: &object_store::Error, chain: &str) -> String {
    if let object_store::Error::InvalidPath { source } = e {
        return format!(
            "an object's key under it is not a path snowpipe load can read ({}): rename or \
             remove that object, or name a narrower prefix or a glob that leaves it out",
            shown(&source.to_string())
        );
    }
    let code = xml_code(chain);
    if chain.contains("builder error") && chain.contains("http://") {
        PLAIN_HTTP.into()
    } else if chain.contains("169.254.169.254") || chain.contains("169.254.170.2") {
        "no credentials found (none in the environment, and no instance or container role \
         answered): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a web identity \
         (AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN)"
            .into()
    } else if code == Some("NoSuchBucket") {
        "no such bucket: check the URL's bucket name (and AWS_ENDPOINT_URL, AWS_REGION)".into()
    } else if matches!(
        code,
        Some("InvalidAccessKeyId" | "SignatureDoesNotMatch" | "ExpiredToken")
    ) {
        format!(
            "the store refused the credentials ({}): check AWS_ACCESS_KEY_ID, \
             AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN",
            code.unwrap_or_default()
        )
    } else if code == Some("AccessDenied") || chain.contains("403 Forbidden") {
        "access denied: the credentials may not list or read there (s3:ListBucket on the \
         bucket, s3:GetObject on its objects)"
            .into()
    } else if matches!(e, object_store::Error::NotFound { .. }) || code == Some("NoSuchKey") {
        "no such object: check the URL (a prefix ends with `/`)".into()
    } else {
        innermost(e)
    }
}

/// The `<Code>` of an S3 XML error in `chain`.
fn xml_code(chain: &str) -> Option<&str> {
    let start = chain.find("<Code>")? + "<Code>".len();
    let len = chain[start..].find("</Code>")?;
    Some(&chain[start..start + len])
}

/// The deepest layer's message, shown once, cut to [`MOST_CHARS`].
fn innermost(e: &object_store::Error) -> String {
    let mut last: &dyn std::error::Error = e;
    while let Some(s) = last.source() {
        last = s;
    }
    let text = shown(&last.to_string());
    let cut: String = text.chars().take(MOST_CHARS).collect();
    let more = if cut.len() < text.len() { "…" } else { "" };
    format!("{cut}{more}")
}

fn shown(text: &str) -> String {
    names::shown(Path::new(text)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generic(message: &str) -> object_store::Error {
        object_store::Error::Generic {
            store: "S3",
            source: message.into(),
        }
    }

    #[test]
    fn each_common_cause_is_named_with_its_fix_once() {
        for (message, want) in [
            (
                "Error performing GET http://127.0.0.1:1/b?list-type=2 in 14µs - HTTP error: \
                 builder error: Error performing GET http://127.0.0.1:1/b?list-type=2",
                "AWS_ALLOW_HTTP=true",
            ),
            (
                "Error performing PUT http://169.254.169.254/latest/api/token - 403 Forbidden",
                "AWS_ACCESS_KEY_ID",
            ),
            (
                "404 Not Found: <Error><Code>NoSuchBucket</Code><Message>x</Message></Error>",
                "no such bucket",
            ),
            (
                "403: <Error><Code>SignatureDoesNotMatch</Code></Error>",
                "refused the credentials (SignatureDoesNotMatch)",
            ),
            (
                "403: <Error><Code>AccessDenied</Code></Error>",
                "s3:ListBucket",
            ),
        ] {
            let line = explain("cannot list s3://b/p/", &generic(message));
            assert!(line.starts_with("cannot list s3://b/p/: "), "{line}");
            assert!(line.contains(want), "{message} → {line}");
            assert!(
                !line.contains("http://127.0.0.1:1/b?list-type=2 in"),
                "{line}"
            );
        }
    }

    #[test]
    fn a_bad_key_is_named_escaped_and_anything_else_is_cut_and_escaped() {
        let bad = object_store::path::Path::parse("p/\u{1b}[31mred/../x").unwrap_err();
        let line = explain("cannot list s3://b/p/", &bad.into());
        assert!(
            line.contains("narrower prefix") && line.contains("\\u{1b}"),
            "{line}"
        );
        assert!(!line.contains('\u{1b}'), "{line}");
        let long = "x\u{7}".repeat(400);
        let line = explain("cannot read s3://b/k", &generic(&long));
        assert!(!line.contains('\u{7}') && line.ends_with('…'), "{line}");
        assert!(line.chars().count() < MOST_CHARS + 40, "{}", line.len());
    }
}
