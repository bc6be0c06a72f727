//! The `sensor_stream` process tests' broker check and consumer command.

use std::path::Path;
use std::process::{Command, Stdio};

use snowpipe_apps::sensor_stream::nats_server;

/// Whether `nats-server` is installed. Without it the `sensor_stream` `test` skips, saying
/// how to install it, except under `CI=true`, where a missing server is a failure.
pub fn nats_available(test: &str) -> bool {
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

/// `sensor_stream consume` of `shards` shards of `stream` on the broker at `nats`, into
/// `SENSOR_READINGS_PIPE` of the emulator at `emulator`, signing in with the key in `key`.
pub fn consume_cmd(
    bin: &Path,
    nats: &str,
    stream: &str,
    shards: u32,
    emulator: &str,
    key: &Path,
) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(["consume", "--nats", nats, "--stream", stream, "--shards"])
        .arg(shards.to_string())
        .args([
            "--database",
            "STREAMING_INGEST",
            "--schema",
            "SENSORS",
            "--pipe",
            "SENSOR_READINGS_PIPE",
        ])
        .env("SNOWFLAKE_URL", emulator)
        .env("SNOWFLAKE_ACCOUNT", "SENSORS")
        .env("SNOWFLAKE_USER", "STREAMING_INGEST")
        .env("SNOWFLAKE_PRIVATE_KEY_FILE", key)
        .env_remove("SNOWFLAKE_PRIVATE_KEY")
        .stdin(Stdio::null());
    cmd
}
