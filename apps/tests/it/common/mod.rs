//! Shared harness of the applications' process tests: the binaries and the helpers that run
//! them (`bin`), the chaos suite's faults and processes (`chaos`, `sdk_streamer`), the
//! `ecommerce` processes (`ecommerce`) and the `table_replay` destination (`table_replay`). The committed test key is the SDK's `test_util`.
//!
//! Declared once, in `main.rs`; the test modules `use crate::common::...`.
#![allow(dead_code, unreachable_pub)]

pub mod bin;
pub mod chaos;
pub mod ecommerce;
pub mod sdk_streamer;
pub mod table_replay;

use std::path::PathBuf;
use std::sync::OnceLock;

pub use snowpipe_streaming::test_util::{fast_retry, TEST_KEY, TEST_PUBLIC_KEY};

/// Whether `nats-server` is installed. Without it the `sensor_stream` `test` skips, saying
/// how to install it, except under `CI=true`, where a missing server is a failure.
pub fn nats_available(test: &str) -> bool {
    use snowpipe_apps::sensor_stream::nats_server;
    if nats_server::binary().is_some() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{} (CI=true: a missing nats-server is a failure; .ci/run installs it)",
        nats_server::INSTALL_HINT
    );
    eprintln!(
        "skipping sensor_stream {test} test: {}",
        nats_server::INSTALL_HINT
    );
    false
}

/// A file holding [`TEST_KEY`] (under cargo's per-package temporary directory), for
/// processes that read their key from `SNOWFLAKE_PRIVATE_KEY_FILE`.
pub fn test_key_file() -> PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("test_key.p8");
        std::fs::write(&path, TEST_KEY).expect("write the test key");
        path
    })
    .clone()
}
