//! Shared harness of the integration tests. The wiremock "Snowflake account" (hostname
//! discovery, the scoped-token exchange, channel endpoints) and the committed test key are
//! the crate's own `test_util` (feature `test-util`), the same the unit tests use; the
//! emulator, example, chaos and TLS helpers are here.
//!
//! Every test file that uses it declares `mod common;`; not every file uses every helper.
#![allow(dead_code, unreachable_pub)]

pub mod chaos;
pub mod ecommerce;
pub mod emulator;
pub mod example;
pub mod sdk_streamer;
pub mod tls;

use std::path::PathBuf;

#[allow(unused_imports)]
pub use snowpipe_streaming::test_util::{
    bearer, channel_status, fast_retry, header, scoped_token, test_fingerprint, verify_jwt,
    MetricsRecorder, MockAccount, TEST_KEY, TEST_KEY_ENCRYPTED, TEST_PASSPHRASE, TEST_PUBLIC_KEY,
};

/// Path of a file under tests/fixtures.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}
