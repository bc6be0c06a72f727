//! A Confluent Schema Registry client: a schema by its id, fetched once and cached.
//!
//! `GET {url}/schemas/ids/{id}` (the registry's REST API) answers
//! `{"schema": "<the schema as a string>", "schemaType": "AVRO" | "JSON" | "PROTOBUF"}`
//! (`schemaType` absent means Avro). A schema id names one schema for good, so a parsed answer is
//! kept for the run. A failure (an unknown id, an unreachable registry, an answer that is not a
//! schema) is kept for [`RETRY_AFTER`], so a burst of messages with a bad id costs one request,
//! not one each; every message it concerns becomes a dead letter naming the failure.
//!
//! Requests go through reqwest with rustls (as the SDK), with basic auth when given (the secret is
//! never logged or put in a reason), a [`TIMEOUT`] each, and answers of at most [`MAX_ANSWER`]
//! bytes. Only partition workers call it, never the poll thread, so a slow registry delays the
//! partitions that wait for a schema and nothing else.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::avro::AvroSchema;
use crate::protobuf::ProtoSchema;

/// How long one request may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read.
pub const MAX_ANSWER: usize = 1 << 20;
/// How long a failure is remembered before the id is asked for again.
pub const RETRY_AFTER: Duration = Duration::from_secs(10);
/// Most ids cached (a run sees a handful; a flood of garbage ids must not grow it for good).
const MAX_CACHED: usize = 10_000;

/// A schema as the registry gave it, parsed.
#[derive(Debug)]
pub enum Registered {
    /// An Avro schema.
    Avro(Box<AvroSchema>),
    /// A JSON Schema (the payload is JSON text; the schema itself is not applied).
    Json,
    /// A Protobuf schema, compiled.
    Protobuf(ProtoSchema),
}

impl Registered {
    /// The registry's name of its type.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Avro(_) => "AVRO",
            Self::Json => "JSON",
            Self::Protobuf(_) => "PROTOBUF",
        }
    }
}

/// `user:password` for the registry's basic auth; never printed.
#[derive(Clone)]
pub struct BasicAuth {
    user: String,
    password: String,
}

impl BasicAuth {
    /// Parses `user:password` (the Confluent clients' `basic.auth.user.info`).
    ///
    /// # Errors
    /// Text without a `:` (the message does not repeat the text).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (user, password) = text.split_once(':').ok_or_else(|| {
            "the Schema Registry credentials are not USER:PASSWORD (no ':' found)".to_owned()
        })?;
        Ok(Self {
            user: user.to_owned(),
            password: password.to_owned(),
        })
    }
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BasicAuth(***)")
    }
}

enum Cached {
    Ok(Arc<Registered>),
    Failed(String, Instant),
}

/// The client and its cache, shared by the partition workers.
pub struct Registry {
    url: String,
    auth: Option<BasicAuth>,
    http: reqwest::Client,
    cache: Mutex<HashMap<u32, Cached>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("url", &self.url).finish()
    }
}

impl Registry {
    /// A client of the registry at `url` (`http://` or `https://`, no credentials in it).
    ///
    /// # Errors
    /// A URL that is not `http(s)://…`, one with `user:password@` (they belong in
    /// `auth`), or an HTTP client that cannot be built.
    pub fn new(url: &str, auth: Option<BasicAuth>) -> Result<Self, String> {
        let url = url.trim().trim_end_matches('/').to_owned();
        let Some(rest) = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
        else {
            return Err(format!(
                "--schema-registry-url {url:?} is not an http:// or https:// URL"
            ));
        };
        if rest
            .split('/')
            .next()
            .is_some_and(|host| host.contains('@'))
        {
            return Err(
                "--schema-registry-url holds credentials: remove them from the URL and \
                 give them with --schema-registry-basic-auth"
                    .to_owned(),
            );
        }
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .build()
            .map_err(|e| format!("cannot build the Schema Registry client: {e}"))?;
        Ok(Self {
            url,
            auth,
            http,
            cache: Mutex::default(),
        })
    }

    /// The registry's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The schema with `id`: from the cache, or fetched and parsed.
    ///
    /// # Errors
    /// The dead-letter reason: the id is unknown, the registry cannot be reached or answered
    /// something that is not a schema (remembered for [`RETRY_AFTER`]).
    pub async fn schema(&self, id: u32) -> Result<Arc<Registered>, String> {
        match crate::consumer::lock(&self.cache).get(&id) {
            Some(Cached::Ok(s)) => return Ok(Arc::clone(s)),
            Some(Cached::Failed(why, at)) if at.elapsed() < RETRY_AFTER => return Err(why.clone()),
            _ => {}
        }
        let fetched = self.fetch(id).await.map(Arc::new);
        let mut cache = crate::consumer::lock(&self.cache);
        if cache.len() >= MAX_CACHED {
            cache.retain(|_, c| matches!(c, Cached::Ok(_)));
        }
        if cache.len() < MAX_CACHED {
            let entry = match &fetched {
                Ok(s) => Cached::Ok(Arc::clone(s)),
                Err(why) => Cached::Failed(why.clone(), Instant::now()),
            };
            cache.insert(id, entry);
        }
        fetched
    }

    async fn fetch(&self, id: u32) -> Result<Registered, String> {
        let url = format!("{}/schemas/ids/{id}", self.url);
        let mut request = self.http.get(&url).header(
            reqwest::header::ACCEPT,
            "application/vnd.schemaregistry.v1+json, application/json",
        );
        if let Some(auth) = &self.auth {
            request = request.basic_auth(&auth.user, Some(&auth.password));
        }
        let fail = |what: String| format!("schema id {id}: {what}");
        let mut response = request.send().await.map_err(|e| {
            fail(format!(
                "the Schema Registry at {} cannot be reached: {}",
                self.url,
                without_url(&e)
            ))
        })?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| {
            fail(format!(
                "reading the Schema Registry's answer failed: {}",
                without_url(&e)
            ))
        })? {
            if body.len() + chunk.len() > MAX_ANSWER {
                return Err(fail(format!(
                    "the Schema Registry's answer is larger than {MAX_ANSWER} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            let excerpt: String = text.chars().take(200).collect();
            let hint = match status.as_u16() {
                404 => ": the id is not in this registry (is the producer's registry the same?)",
                401 | 403 => ": check --schema-registry-basic-auth",
                _ => "",
            };
            return Err(fail(format!(
                "the Schema Registry answered HTTP {status}{hint} ({excerpt})"
            )));
        }
        parse_answer(&body).map_err(fail)
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

#[derive(serde::Deserialize)]
struct Answer {
    schema: String,
    #[serde(rename = "schemaType")]
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<serde_json::Value>,
}

/// The registry's answer, parsed.
///
/// # Errors
/// An answer that is not `{"schema": "…"}`, a schema with references, an unknown schema type,
/// an Avro or Protobuf schema that does not parse.
fn parse_answer(body: &[u8]) -> Result<Registered, String> {
    let answer: Answer = serde_json::from_slice(body)
        .map_err(|e| format!("the Schema Registry's answer is not {{\"schema\": \"…\"}} ({e})"))?;
    if !answer.references.is_empty() {
        return Err(
            "the schema references other schemas, which this sink does not resolve yet".into(),
        );
    }
    match answer.schema_type.as_deref().unwrap_or("AVRO") {
        "AVRO" => AvroSchema::parse(&answer.schema).map(|s| Registered::Avro(Box::new(s))),
        "JSON" => Ok(Registered::Json),
        "PROTOBUF" => ProtoSchema::parse(&answer.schema).map(Registered::Protobuf),
        other => Err(format!("the schema type {other:?} is unknown")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse_by_their_schema_type() {
        let avro = br#"{"schema":"{\"type\":\"record\",\"name\":\"R\",\"fields\":[]}"}"#;
        assert_eq!(parse_answer(avro).unwrap().type_name(), "AVRO");
        let json = br#"{"schema":"{\"type\":\"object\"}","schemaType":"JSON"}"#;
        assert_eq!(parse_answer(json).unwrap().type_name(), "JSON");
        let cases: &[(&[u8], &str)] = &[
            (b"<html>", "is not {\"schema\""),
            (br#"{"schema":"\"nope\""}"#, "not an Avro schema"),
            (
                br#"{"schema":"x","schemaType":"XML"}"#,
                "\"XML\" is unknown",
            ),
            (
                br#"{"schema":"\"string\"","references":[{"name":"a","subject":"s","version":1}]}"#,
                "references other schemas",
            ),
        ];
        for (body, why) in cases {
            let err = parse_answer(body).unwrap_err();
            assert!(err.contains(why), "{err}");
        }
    }

    #[test]
    fn urls_are_http_and_hold_no_credentials_and_the_secret_is_never_printed() {
        assert!(Registry::new("http://127.0.0.1:8081/", None).is_ok());
        let err = Registry::new("ftp://x", None).unwrap_err();
        assert!(err.contains("not an http"), "{err}");
        let err = Registry::new("https://u:p@registry", None).unwrap_err();
        assert!(err.contains("holds credentials"), "{err}");
        assert!(!err.contains("u:p"), "{err}");
        let auth = BasicAuth::parse("user:s3cret\n").unwrap();
        assert_eq!(
            (auth.user.as_str(), auth.password.as_str()),
            ("user", "s3cret")
        );
        assert!(!format!("{auth:?}").contains("s3cret"));
        let err = BasicAuth::parse("s3cret").unwrap_err();
        assert!(!err.contains("s3cret"), "{err}");
    }
}
