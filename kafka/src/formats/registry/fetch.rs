//! The HTTP client's side: one round of requests for an id over the registries' URLs
//! ([`Registry::fetch`]), each answer classified by whose fault a failure is ([`Attempt`]).

use std::sync::atomic::Ordering;

use super::cache::fingerprint;
use super::schema::{parse_envelope, Answer};
use super::{Registry, MAX_ANSWER};

/// Confluent's `error_code` for "schema not found".
const SCHEMA_NOT_FOUND: u64 = 40403;

/// One request's outcome.
pub(super) enum Attempt {
    /// A registry's answer for the id (not yet compiled), its hash ([`fingerprint`]) and size.
    Got(Answer, u64, usize),
    /// The message's fault.
    Dead(String),
    /// Try again (later, or at the next URL).
    Passing(String),
    /// The credentials are refused.
    Refused(String),
}

/// At most 200 characters of what a registry sent, escaped: it goes into logs and reasons.
fn excerpt(text: &str) -> String {
    text.chars()
        .take(200)
        .collect::<String>()
        .escape_debug()
        .to_string()
}

impl Registry {
    /// One round: the URL that answered last, then the others in turn while they fail for a
    /// passing reason or refuse the credentials.
    pub(super) async fn fetch(&self, id: u32) -> Attempt {
        let first = self.current.load(Ordering::Relaxed) % self.urls.len();
        let mut passing = Vec::new();
        let mut refused = None;
        for k in 0..self.urls.len() {
            let i = (first + k) % self.urls.len();
            match self.fetch_from(&self.urls[i], id).await {
                Attempt::Passing(why) => passing.push(why),
                Attempt::Refused(why) => refused = refused.or(Some(why)),
                answered => {
                    self.current.store(i, Ordering::Relaxed);
                    return answered;
                }
            }
        }
        match refused {
            Some(why) => Attempt::Refused(why),
            None => Attempt::Passing(passing.join("; ")),
        }
    }

    async fn fetch_from(&self, base: &str, id: u32) -> Attempt {
        let url = format!("{base}/schemas/ids/{id}");
        let mut request = self.http.get(&url).header(
            reqwest::header::ACCEPT,
            "application/vnd.schemaregistry.v1+json, application/json",
        );
        if let Some(auth) = &self.auth {
            request = request.basic_auth(&auth.user, Some(&auth.password));
        }
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                return Attempt::Passing(format!("{base} cannot be reached: {}", without_url(&e)))
            }
        };
        let status = response.status();
        if status.is_redirection() {
            let to: String = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .map(excerpt)
                .unwrap_or_default();
            return Attempt::Refused(format!(
                "{base} answered HTTP {status}, a redirect (to \"{to}\"): the sink does not \
                 follow redirects, so that the registry's credentials never go to another host \
                 or over http; give the registry's own URL with --schema-registry-url"
            ));
        }
        let mut body = Vec::new();
        let mut whole = true;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) if body.len() + chunk.len() > MAX_ANSWER => {
                    whole = false;
                    break;
                }
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(e) => {
                    return Attempt::Passing(format!(
                        "reading the answer of {base} failed: {}",
                        without_url(&e)
                    ))
                }
            }
        }
        if status.is_success() {
            if !whole {
                return Attempt::Dead(format!(
                    "the Schema Registry's answer is larger than {MAX_ANSWER} bytes"
                ));
            }
            // Only read here (linear in the answer); compiled by the caller, off the workers.
            return match parse_envelope(&body) {
                Ok(answer) => Attempt::Got(answer, fingerprint(&body), body.len()),
                Err(why) => Attempt::Passing(format!(
                    "{base} answered HTTP {status} with {why}: is --schema-registry-url the \
                     registry's URL?"
                )),
            };
        }
        let excerpt = excerpt(&String::from_utf8_lossy(&body));
        match classify(status.as_u16(), &body) {
            Class::NotFound => Attempt::Dead(format!(
                "the Schema Registry answered HTTP {status}: the id is not in this registry (is \
                 the producer's registry the same?) ({excerpt})"
            )),
            Class::Refused => Attempt::Refused(format!(
                "the Schema Registry at {base} refuses the sink's credentials (HTTP {status}: \
                 {excerpt}): give the registry's USER:PASSWORD with --schema-registry-basic-auth \
                 (or value.converter.basic.auth.user.info in --connector-config), and check that \
                 the user may read schemas"
            )),
            Class::Passing(hint) => {
                Attempt::Passing(format!("{base} answered HTTP {status}{hint} ({excerpt})"))
            }
        }
    }
}

/// Whose fault an answer that is not a success is.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Class {
    /// The id is not in the registry.
    NotFound,
    /// The credentials are refused.
    Refused,
    /// Anything else: try again (with a hint for the log).
    Passing(&'static str),
}

/// Classifies an HTTP `status` (not a success) with its `body`.
pub(super) fn classify(status: u16, body: &[u8]) -> Class {
    #[derive(serde::Deserialize)]
    struct ErrorAnswer {
        error_code: u64,
    }
    match status {
        404 => match serde_json::from_slice::<ErrorAnswer>(body) {
            Ok(e) if e.error_code == SCHEMA_NOT_FOUND => Class::NotFound,
            _ => Class::Passing(
                ": not the registry's \"schema not found\" (error_code 40403), so the URL's path \
                 is likely wrong: check --schema-registry-url",
            ),
        },
        401 | 403 => Class::Refused,
        408 | 429 => Class::Passing(""),
        s if s >= 500 => Class::Passing(""),
        _ => Class::Passing(": an answer the sink does not expect; check --schema-registry-url"),
    }
}

/// A reqwest error's text without its URL (the URL is already in the reason).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(&format!(" ({url})"), "");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
