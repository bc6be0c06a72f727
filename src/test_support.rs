//! The unit tests' additions to the shared mock account ([`crate::test_util`]): the
//! crate-internal REST layer, log capture and property-test settings.

use std::sync::Arc;

use crate::config::ClientBuilder;
use crate::rest::RestApi;

pub(crate) use crate::test_util::*;

/// What unit tests add to [`MockAccount`]: the crate-internal REST layer, connected to it.
pub(crate) trait MockAccountExt {
    /// The REST layer, connected.
    async fn rest(&self) -> RestApi;
    /// The REST layer of `builder`, connected.
    async fn rest_with(&self, builder: ClientBuilder) -> RestApi;
}

impl MockAccountExt for MockAccount {
    async fn rest(&self) -> RestApi {
        self.rest_with(self.builder()).await
    }

    async fn rest_with(&self, builder: ClientBuilder) -> RestApi {
        RestApi::connect(builder.resolve().unwrap().connect)
            .await
            .unwrap()
    }
}

/// The test key's fingerprint.
pub(crate) const TEST_FINGERPRINT: &str = include_str!("../tests/fixtures/test_key.fingerprint");

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
