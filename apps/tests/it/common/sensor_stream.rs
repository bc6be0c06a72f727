//! The `sensor_stream` process tests' broker check and consumer command.

use std::path::{Path, PathBuf};
use std::time::Duration;

use snowpipe_emulator::{Emulator, EmulatorConfig};
use std::process::{Command, Stdio};

use snowpipe_apps::sensor_stream::nats_server;
use snowpipe_apps::sensor_stream::pipeline::SETUP_SQL;

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

/// An in-process emulator declared by sensor_stream's `sql/setup.sql` (strict offsets, 200 ms
/// commits), and the test key written to `dir/key.p8` (mode 0600) for child processes.
pub fn start_emulator(rt: &tokio::runtime::Runtime, dir: &Path) -> (Emulator, PathBuf) {
    let mut config = EmulatorConfig::default();
    config.ddl = vec![SETUP_SQL.to_string()];
    config.public_keys = vec![crate::common::TEST_PUBLIC_KEY.to_string()];
    config.commit_delay = Duration::from_millis(200);
    config.strict_offsets = true;
    let emulator = rt
        .block_on(Emulator::start(config))
        .expect("start the emulator");
    let key = dir.join("key.p8");
    std::fs::write(&key, crate::common::TEST_KEY).unwrap();
    std::fs::set_permissions(
        &key,
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600),
    )
    .unwrap();
    (emulator, key)
}

/// The configuration of the JetStream stream `name`, as the server holds it now.
pub fn stream_config(
    rt: &tokio::runtime::Runtime,
    js: &async_nats::jetstream::Context,
    name: &str,
) -> async_nats::jetstream::stream::Config {
    rt.block_on(async {
        js.get_stream(name)
            .await
            .unwrap()
            .info()
            .await
            .map(|i| i.config.clone())
    })
    .unwrap()
}
