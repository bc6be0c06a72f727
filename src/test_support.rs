//! Shared helpers for the crate's wiremock tests (compiled only for tests).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::config::ClientBuilder;
use crate::http::RetryConfig;
use crate::rest::RestApi;

pub(crate) const TEST_KEY: &str = include_str!("../tests/fixtures/test_key.p8");
pub(crate) const TEST_PUBLIC_KEY: &str = include_str!("../tests/fixtures/test_key.pub.pem");
pub(crate) const TEST_FINGERPRINT: &str = include_str!("../tests/fixtures/test_key.fingerprint");

/// A JWT-shaped scoped token with the given `exp` offset and a marker in its payload.
pub(crate) fn scoped_token(ttl: Duration, marker: usize) -> String {
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
pub(crate) struct TokenResponder {
    pub(crate) count: Arc<AtomicUsize>,
    pub(crate) ttl: Duration,
    pub(crate) delay: Duration,
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

/// A mock account: hostname discovery answers `127.0.0.1` (so the ingest host is the same
/// server) and the token exchange hands out fresh JWT-shaped tokens.
pub(crate) struct MockAccount {
    pub(crate) server: MockServer,
    pub(crate) exchanges: Arc<AtomicUsize>,
}

impl MockAccount {
    pub(crate) async fn start() -> Self {
        Self::start_with(Duration::from_secs(3600), Duration::ZERO).await
    }

    pub(crate) async fn start_with(ttl: Duration, exchange_delay: Duration) -> Self {
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

    pub(crate) fn exchanges(&self) -> usize {
        self.exchanges.load(Ordering::SeqCst)
    }

    /// A builder pointing at the mock, with tiny backoffs.
    pub(crate) fn builder(&self) -> ClientBuilder {
        ClientBuilder::new()
            .account("myorg-myacct")
            .user("tester")
            .url(self.server.uri())
            .private_key_pem(TEST_KEY)
            .retry(fast_retry())
    }

    /// The REST layer, connected.
    pub(crate) async fn rest(&self) -> RestApi {
        self.rest_with(self.builder()).await
    }

    pub(crate) async fn rest_with(&self, builder: ClientBuilder) -> RestApi {
        RestApi::connect(builder.resolve().unwrap().connect)
            .await
            .unwrap()
    }

    /// Requests received for `path`.
    pub(crate) async fn requests_to(&self, p: &str) -> Vec<Request> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.url.path() == p)
            .collect()
    }
}

/// Retries with millisecond backoffs so tests stay fast.
pub(crate) fn fast_retry() -> RetryConfig {
    RetryConfig::default()
        .initial_backoff(Duration::from_millis(1))
        .max_backoff(Duration::from_millis(5))
        .max_attempts(5)
        .total_budget(Duration::from_secs(5))
        .rng_seed(1)
}

/// The value of query parameter `name`.
pub(crate) fn query(req: &Request, name: &str) -> Option<String> {
    req.url
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The raw (still percent-encoded) query string.
pub(crate) fn raw_query(req: &Request) -> String {
    req.url.query().unwrap_or_default().to_owned()
}

/// A header as a string.
pub(crate) fn header(req: &Request, name: &str) -> Option<String> {
    req.headers
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

/// Captures everything logged (at trace level) by every test of this binary. A global
/// subscriber, because thread-local ones race with tracing's global callsite cache when tests
/// run in parallel.
#[derive(Clone, Default)]
pub(crate) struct LogCapture(Arc<std::sync::Mutex<Vec<u8>>>);

impl LogCapture {
    /// The capture, installed as the global subscriber on first use.
    pub(crate) fn global() -> &'static Self {
        static CAPTURE: std::sync::OnceLock<LogCapture> = std::sync::OnceLock::new();
        CAPTURE.get_or_init(|| {
            let capture = Self::default();
            let writer = capture.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("no other global subscriber in unit tests");
            capture
        })
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Property-test settings: `cases` cases from a fixed seed, so `cargo test` explores the same
/// inputs on every run; `PROPTEST_RNG_SEED=N` (or `PROPTEST_RNG_SEED=random` for a fresh
/// seed every run) and `PROPTEST_CASES=N` explore further.
pub(crate) fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    use proptest::test_runner::{Config, RngSeed};
    let mut config = Config::with_cases(cases);
    config.rng_seed = match std::env::var("PROPTEST_RNG_SEED").ok().as_deref() {
        Some("random") => RngSeed::Random,
        Some(s) => s.parse().map_or(RngSeed::Fixed(0x5EED), RngSeed::Fixed),
        None => RngSeed::Fixed(0x5EED),
    };
    if let Some(n) = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        config.cases = n;
    }
    config
}
