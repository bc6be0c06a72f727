//! A mock Snowflake account for tests, shared by this crate's unit tests and integration
//! tests, and offered to applications that test their own pipelines against wiremock
//! (feature `test-util`; not a stable API).
//!
//! [`MockAccount`] answers hostname discovery (with `127.0.0.1`, so the ingest host is the
//! same server) and the scoped-token exchange (fresh JWT-shaped tokens), and mounts channel
//! endpoints on request. The committed test key ([`TEST_KEY`]) is for tests only.
//! [`MetricsRecorder`] records the metrics the client reports (`docs/METRICS.md`).
//! [`conformance`] is the suite every backend runs: the exactly-once writer model and the
//! protocol cases over the public API.

pub mod conformance;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::{ClientBuilder, RetryConfig, StreamingIngestClient};

/// The test RSA key (PKCS#8 PEM). Test-only: see tests/fixtures/README.md.
pub const TEST_KEY: &str = include_str!("../../tests/fixtures/test_key.p8");
/// The same key, encrypted (PKCS#8 PBES2) with [`TEST_PASSPHRASE`].
pub const TEST_KEY_ENCRYPTED: &str = include_str!("../../tests/fixtures/test_key_encrypted.p8");
/// Passphrase of [`TEST_KEY_ENCRYPTED`].
pub const TEST_PASSPHRASE: &str = "test-passphrase";
/// The public key (SPKI PEM).
pub const TEST_PUBLIC_KEY: &str = include_str!("../../tests/fixtures/test_key.pub.pem");

/// The key's fingerprint, computed independently with openssl and Python (see
/// tests/fixtures/README.md).
pub fn test_fingerprint() -> &'static str {
    include_str!("../../tests/fixtures/test_key.fingerprint").trim()
}

/// Retries with millisecond backoffs (at most 5 attempts within 5 s), so tests stay fast.
pub fn fast_retry() -> RetryConfig {
    let retry = RetryConfig::default()
        .initial_backoff(Duration::from_millis(1))
        .max_backoff(Duration::from_millis(5))
        .max_attempts(5)
        .total_budget(Duration::from_secs(5));
    // The crate's own unit tests also fix the jitter.
    #[cfg(test)]
    let retry = retry.rng_seed(1);
    retry
}

/// A JWT-shaped scoped token expiring in `ttl`, with `marker` in its payload.
pub fn scoped_token(ttl: Duration, marker: usize) -> String {
    let enc = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&v).unwrap())
    };
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + ttl.as_secs();
    format!(
        "{}.{}.c2ln",
        enc(serde_json::json!({"alg": "HS256", "typ": "JWT"})),
        enc(serde_json::json!({"exp": exp, "n": marker}))
    )
}

/// Answers the token exchange with a new token each time (`…"n":1…`, `…"n":2…`).
#[derive(Debug, Clone)]
pub struct TokenResponder {
    /// Exchanges answered so far.
    pub count: Arc<AtomicUsize>,
    /// Lifetime of each token.
    pub ttl: Duration,
    /// Delay before each answer.
    pub delay: Duration,
}

impl Respond for TokenResponder {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.count.fetch_add(1, Ordering::SeqCst) + 1;
        ResponseTemplate::new(200)
            .set_body_string(scoped_token(self.ttl, n))
            .insert_header("content-type", "text/plain")
            .set_delay(self.delay)
    }
}

/// A wiremock Snowflake account (see the [module docs](self)).
#[derive(Debug)]
pub struct MockAccount {
    /// The wiremock server: mount more endpoints on it.
    pub server: MockServer,
    exchanges: Arc<AtomicUsize>,
}

impl MockAccount {
    /// Starts a server with hostname and token-exchange mocks (1 h tokens).
    pub async fn start() -> Self {
        Self::start_with(Duration::from_secs(3600), Duration::ZERO).await
    }

    /// Starts a server whose tokens live `ttl` and whose exchanges answer after
    /// `exchange_delay`.
    pub async fn start_with(ttl: Duration, exchange_delay: Duration) -> Self {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v2/streaming/hostname"))
            .respond_with(ResponseTemplate::new(200).set_body_string("127.0.0.1"))
            .named("hostname")
            .mount(&server)
            .await;
        let exchanges = Arc::new(AtomicUsize::new(0));
        Mock::given(method("POST"))
            .and(path("/oauth/token"))
            .respond_with(TokenResponder {
                count: Arc::clone(&exchanges),
                ttl,
                delay: exchange_delay,
            })
            .named("token exchange")
            .mount(&server)
            .await;
        Self { server, exchanges }
    }

    /// Wraps a server on which the caller mounted hostname discovery and the token exchange
    /// itself ([`exchanges`](Self::exchanges) then counts nothing).
    pub fn from_server(server: MockServer) -> Self {
        Self {
            server,
            exchanges: Arc::default(),
        }
    }

    /// How many token exchanges the server has answered.
    pub fn exchanges(&self) -> usize {
        self.exchanges.load(Ordering::SeqCst)
    }

    /// The account URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        self.server.uri()
    }

    /// A builder for this server: account `myorg-myacct`, user `tester`, the test key and
    /// [`fast_retry`].
    pub fn builder(&self) -> ClientBuilder {
        StreamingIngestClient::builder()
            .account("myorg-myacct")
            .user("tester")
            .url(self.url())
            .private_key_pem(TEST_KEY)
            .retry(fast_retry())
    }

    /// A connected client.
    pub async fn client(&self) -> StreamingIngestClient {
        self.builder()
            .build()
            .await
            .expect("client builds against the mock")
    }

    /// Requests received for exactly this (percent-encoded) path.
    pub async fn requests_to(&self, p: &str) -> Vec<Request> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.url.path() == p)
            .collect()
    }

    /// Mounts open channel for every channel: `SUCCESS`, continuation token `ct0`, and the
    /// given committed offset token.
    pub async fn mount_open_channel(&self, committed: Option<&str>) {
        let body = serde_json::json!({
            "next_continuation_token": "ct0",
            "channel_status": channel_status("CH", committed),
        });
        Mock::given(method("PUT"))
            .and(path_regex(
                r"^/v2/streaming/databases/[^/]+/schemas/[^/]+/pipes/[^/]+/channels/[^/]+$",
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .named("open channel")
            .mount(&self.server)
            .await;
    }

    /// Mounts append rows for every channel, answering continuation tokens `ct1`, `ct2`, ...;
    /// returns the count of appends answered.
    pub async fn mount_append_rows(&self) -> Arc<AtomicUsize> {
        struct Next(Arc<AtomicUsize>);
        impl Respond for Next {
            fn respond(&self, _: &Request) -> ResponseTemplate {
                let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
                ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!({"next_continuation_token": format!("ct{n}")}))
            }
        }
        let count = Arc::new(AtomicUsize::new(0));
        Mock::given(method("POST"))
            .and(path_regex(
                r"^/v2/streaming/data/databases/[^/]+/schemas/[^/]+/pipes/[^/]+/channels/[^/]+/rows$",
            ))
            .respond_with(Next(Arc::clone(&count)))
            .named("append rows")
            .mount(&self.server)
            .await;
        count
    }
}

/// A channel status object as Snowflake returns it.
pub fn channel_status(channel: &str, committed: Option<&str>) -> serde_json::Value {
    serde_json::json!({
        "database_name": "DB", "schema_name": "SCH", "pipe_name": "PIPE", "channel_name": channel,
        "channel_status_code": "SUCCESS", "last_committed_offset_token": committed,
        "created_on_ms": 1_795_239_216_945_i64, "rows_inserted": 0, "rows_parsed": 0,
        "rows_error_count": 0, "last_error_offset_upper_bound": null, "last_error_message": null,
        "last_error_timestamp_ms": null, "snowflake_avg_processing_latency_ms": 12
    })
}

/// Decodes a JWT's claims after verifying its RS256 signature with [`TEST_PUBLIC_KEY`].
pub fn verify_jwt(token: &str) -> serde_json::Value {
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(TEST_PUBLIC_KEY.as_bytes()).unwrap();
    let validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
        .expect("the JWT verifies with the test public key")
        .claims
}

/// The bearer token of a request.
pub fn bearer(req: &Request) -> String {
    req.headers
        .get("authorization")
        .expect("authorization header")
        .to_str()
        .unwrap()
        .strip_prefix("Bearer ")
        .expect("a bearer token")
        .to_owned()
}

/// A header of a request, as a string.
pub fn header(req: &Request, name: &str) -> Option<String> {
    req.headers
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

/// The value of query parameter `name` of a request.
pub fn query(req: &Request, name: &str) -> Option<String> {
    req.url
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The raw (still percent-encoded) query string of a request.
pub fn raw_query(req: &Request) -> String {
    req.url.query().unwrap_or_default().to_owned()
}

/// A metric's name and its labels, sorted.
type MetricKey = (String, Vec<(String, String)>);

/// A `metrics` recorder that keeps every registered key and the counters' values (gauges
/// and histograms are registered, not recorded). Cheap to clone: clones share what they
/// record, so one clone can be installed (`metrics::set_global_recorder`, or
/// `metrics::set_default_local_recorder` for the current thread) and another read.
#[derive(Debug, Clone, Default)]
pub struct MetricsRecorder(Arc<Recorded>);

#[derive(Debug, Default)]
struct Recorded {
    keys: std::sync::Mutex<Vec<MetricKey>>,
    counters: std::sync::Mutex<HashMap<MetricKey, Arc<AtomicU64>>>,
}

impl MetricsRecorder {
    fn key(key: &metrics::Key) -> MetricKey {
        let mut labels: Vec<(String, String)> = key
            .labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect();
        labels.sort();
        (key.name().to_owned(), labels)
    }

    fn register(&self, key: &metrics::Key) -> MetricKey {
        let k = Self::key(key);
        self.0.keys.lock().unwrap().push(k.clone());
        k
    }

    /// The labels of every registration of metric `name` (sorted by label name).
    pub fn labels_of(&self, name: &str) -> Vec<Vec<(String, String)>> {
        let keys = self.0.keys.lock().unwrap();
        keys.iter()
            .filter(|(n, _)| n == name)
            .map(|(_, l)| l.clone())
            .collect()
    }

    /// The value of counter `name` with exactly `labels` (in any order); 0 if never
    /// registered.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let mut labels: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        labels.sort();
        self.0
            .counters
            .lock()
            .unwrap()
            .get(&(name.to_owned(), labels))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

impl metrics::Recorder for MetricsRecorder {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        let k = self.register(key);
        let c = Arc::clone(self.0.counters.lock().unwrap().entry(k).or_default());
        metrics::Counter::from_arc(c)
    }
    fn register_gauge(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        self.register(key);
        metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        key: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        self.register(key);
        metrics::Histogram::noop()
    }
}
