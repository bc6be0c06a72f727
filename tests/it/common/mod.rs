//! Shared harness of the integration tests. The wiremock "Snowflake account" (hostname
//! discovery, the scoped-token exchange, channel endpoints) and the committed test key are
//! the crate's own `test_util` (feature `test-util`), the same the unit tests use; the
//! emulator and TLS helpers, and [`run_test_in_child`], are here.
//!
//! Declared once, in `main.rs`; the test modules `use crate::common::...`.
#![allow(dead_code, unreachable_pub)]

pub mod conformance;
pub mod emulator;
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

/// Set in a child process started by [`run_test_in_child`].
const CHILD_MARKER: &str = "SNOWPIPE_IT_CHILD";

/// Whether this process is a child started by [`run_test_in_child`]: a child test returns
/// at once otherwise (`cargo test -- --ignored` runs it too).
pub fn in_child() -> bool {
    std::env::var_os(CHILD_MARKER).is_some()
}

/// Runs the ignored test `name` (its full path, e.g. `config_env::from_env_child`) of this
/// binary in a child process with the variables `set` set and `unset` removed, and panics
/// unless it ran and passed. For code that reads process-wide environment variables: every
/// integration test shares one process, so none may call `std::env::set_var`.
pub async fn run_test_in_child(name: &str, set: &[(&str, String)], unset: &[&str]) {
    let mut cmd = tokio::process::Command::new(std::env::current_exe().expect("current exe"));
    cmd.args([
        "--ignored",
        "--exact",
        name,
        "--test-threads=1",
        "--nocapture",
    ])
    .env(CHILD_MARKER, "1")
    .envs(set.iter().map(|(k, v)| (k, v)))
    .kill_on_drop(true);
    for k in unset {
        cmd.env_remove(k);
    }
    let out = cmd.output().await.expect("run this test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{name} in a child process: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A two-worker runtime with `recorded` installed as the `metrics` recorder of its workers and
/// of the calling thread (not globally: every integration test shares this process, and the
/// others' channels must not count in a test's recorder); runs `test` on it.
pub fn with_local_metrics<F: std::future::Future>(
    recorded: &MetricsRecorder,
    test: F,
) -> F::Output {
    let on_worker: &'static MetricsRecorder = Box::leak(Box::new(recorded.clone()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        // A worker's guard lives as long as the worker: leak it.
        .on_thread_start(move || std::mem::forget(metrics::set_default_local_recorder(on_worker)))
        .build()
        .unwrap();
    let _local = metrics::set_default_local_recorder(recorded);
    runtime.block_on(test)
}
