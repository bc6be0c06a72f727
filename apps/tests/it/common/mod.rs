//! Shared harness of the applications' process tests: the binaries and the helpers that run
//! them (`bin`), the chaos suite's faults and processes (`chaos`, `sdk_streamer`), the
//! `ecommerce` processes (`ecommerce`), the `sensor_stream` consumer (`sensor_stream`) and
//! the `table_replay` destination (`table_replay`). The committed test key is the SDK's `test_util`.
//!
//! Declared once, in `main.rs`; the test modules `use crate::common::...`.
#![allow(dead_code, unreachable_pub)]

pub mod big_values;
pub mod bin;
pub mod blackhole_proxy;
pub mod chaos;
pub mod ecommerce;
pub mod lambda_esm;
pub mod sdk_streamer;
pub mod sensor_stream;
pub mod table_replay;
pub mod table_replay_follow;

use std::path::PathBuf;
use std::sync::OnceLock;

pub use snowpipe_streaming::test_util::{fast_retry, TEST_KEY, TEST_PUBLIC_KEY};

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
