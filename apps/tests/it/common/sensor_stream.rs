//! The `sensor_stream` process tests' broker checks and consumer command, and the set-up
//! they share: the runtime, the emulator, its SQL client, the `SENSORS` stream, the handler's
//! environment.

use std::path::{Path, PathBuf};
use std::time::Duration;

use snowpipe_emulator::{Emulator, EmulatorConfig};
use std::process::{Command, Stdio};

use snowpipe_apps::sensor_stream::nats_server;
use snowpipe_apps::sensor_stream::pipeline::SETUP_SQL;
use snowpipe_cli_support::server_start;
use snowpipe_streaming::sql::SqlClient;

/// Whether `nats-server` is installed. Without it the `sensor_stream` `test` skips, saying
/// how to install it, except under `CI=true`, where a missing server is a failure.
pub fn nats_available(test: &str) -> bool {
    installed(
        nats_server::binary().is_some(),
        "nats-server",
        nats_server::INSTALL_HINT,
        &format!("sensor_stream {test} test"),
    )
}

/// Whether a Kinesis server (kinesalite) is installed. Without it the test skips, printing
/// `skipping {what}:` and how to install it, except under `CI=true`, where a missing server is
/// a failure.
pub fn kinesis_server_available(what: &str) -> bool {
    use snowpipe_apps::sensor_stream::kinesis::server;
    installed(
        server::binary().is_some(),
        "Kinesis server",
        server::INSTALL_HINT,
        what,
    )
}

/// `found`, or (the `server` missing) `false` after printing that `what` is skipped and
/// `hint`; under `CI=true` a missing server is a failure.
fn installed(found: bool, server: &str, hint: &str, what: &str) -> bool {
    server_start::require_or_skip(found, server, &format!("{what}: {hint}"))
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

/// A multi-threaded runtime for the in-process emulator and the test's own clients.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A SQL client of the emulator at `url` as `SENSORS`/`STREAMING_INGEST`, signing in with the
/// key in `key`, in the schema `STREAMING_INGEST.SENSORS`.
pub fn sql_client(url: &str, key: &Path) -> SqlClient {
    snowpipe_streaming::StreamingIngestClient::builder()
        .account("SENSORS")
        .user("STREAMING_INGEST")
        .url(url)
        .private_key_file(key)
        .build_sql()
        .unwrap()
        .database("STREAMING_INGEST")
        .schema("SENSORS")
}

/// A producer's connection to the broker at `url` and its stream `name` on `sensors.*`
/// (file storage), created as a producer would provision it.
pub async fn provision_stream(url: &str, name: &str) -> async_nats::jetstream::Context {
    use async_nats::jetstream::{self, stream};
    let client = async_nats::connect(url).await.expect("connect to nats");
    let js = jetstream::new(client);
    js.get_or_create_stream(stream::Config {
        name: name.into(),
        subjects: vec!["sensors.*".into()],
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("provision {name}: {e}"));
    js
}

/// The environment of the Kinesis Lambda handler writing into `KINESIS_READINGS_PIPE` of the
/// emulator at `emulator`, signing in with the key in `key`, with `FAILURE_MODE=failure_mode`.
pub fn kinesis_handler_env(
    emulator: &str,
    key: &Path,
    failure_mode: &str,
) -> Vec<(String, String)> {
    [
        ("SNOWFLAKE_URL", emulator.to_owned()),
        ("SNOWFLAKE_ACCOUNT", "SENSORS".into()),
        ("SNOWFLAKE_USER", "STREAMING_INGEST".into()),
        ("SNOWFLAKE_PRIVATE_KEY_FILE", key.display().to_string()),
        ("SNOWPIPE_DATABASE", "STREAMING_INGEST".into()),
        ("SNOWPIPE_SCHEMA", "SENSORS".into()),
        ("SNOWPIPE_PIPE", "KINESIS_READINGS_PIPE".into()),
        ("FAILURE_MODE", failure_mode.into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}
