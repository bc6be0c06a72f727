//! The destination of the `table_replay` process tests: an emulator holding the DDL the
//! binary's `ddl` subcommand printed, and the environment that points a process at it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{ChildStderr, Command, Output};
use std::time::Duration;

use snowpipe_emulator::{Emulator, EmulatorConfig};

/// Asserts that the `ddl` subcommand succeeded and declared `pipe`; returns what it printed.
pub fn ddl_printed(out: Output, pipe: &str) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ddl = String::from_utf8(out.stdout).unwrap();
    assert!(
        ddl.contains(&format!("CREATE PIPE IF NOT EXISTS REPLAY.PUBLIC.{pipe}")),
        "{ddl}"
    );
    ddl
}

/// Starts the destination: an emulator with database `REPLAY`, schema `PUBLIC` and `ddl`,
/// strict offsets, its data under `dir` (BINARY columns in hex, the emulator's default), the test key accepted. Returns it with
/// the path of the private key's file.
pub async fn destination(ddl: String, dir: &Path) -> (Emulator, PathBuf) {
    destination_of(replay_scripts(ddl), dir).await
}

/// The DDL scripts of [`destination`]: database `REPLAY`, schema `PUBLIC`, then `ddl`.
pub fn replay_scripts(ddl: String) -> Vec<String> {
    vec![
        "CREATE DATABASE IF NOT EXISTS REPLAY; CREATE SCHEMA IF NOT EXISTS REPLAY.PUBLIC;".into(),
        ddl,
    ]
}

/// The emulator with exactly the DDL `scripts` (nothing added), data in `dir`, and the key.
pub async fn destination_of(scripts: Vec<String>, dir: &Path) -> (Emulator, PathBuf) {
    let (mut config, key) = destination_config(scripts, dir);
    config.data_dir = Some(dir.join("emulator"));
    (Emulator::start(config).await.unwrap(), key)
}

/// [`destination_of`]'s configuration without its data directory, and the private key's
/// file (written in `dir`).
pub fn destination_config(scripts: Vec<String>, dir: &Path) -> (EmulatorConfig, PathBuf) {
    let key = dir.join("key.p8");
    std::fs::write(&key, super::TEST_KEY).unwrap();
    let mut config = EmulatorConfig::default();
    config.ddl = scripts;
    config.public_keys = vec![super::TEST_PUBLIC_KEY.into()];
    config.commit_delay = Duration::from_millis(150);
    config.strict_offsets = true;
    (config, key)
}

/// Points `cmd` at `emulator` (account and user `REPLAY`, the private key in `key`).
pub fn at_destination<'a>(
    cmd: &'a mut Command,
    emulator: &Emulator,
    key: &Path,
) -> &'a mut Command {
    cmd.env("SNOWFLAKE_URL", emulator.url())
        .env("SNOWFLAKE_ACCOUNT", "REPLAY")
        .env("SNOWFLAKE_USER", "REPLAY")
        .env("SNOWFLAKE_PRIVATE_KEY_FILE", key)
}

/// Waits (up to 60 s) until a replay's `stderr` says it is `replaying `; panics naming
/// `round` otherwise.
pub fn wait_until_replaying(stderr: ChildStderr, round: u64) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.starts_with("replaying ") {
                let _ = tx.send(());
            }
        }
    });
    assert!(
        rx.recv_timeout(Duration::from_secs(60)).is_ok(),
        "round {round}: the replay did not start within 60 s"
    );
}

/// Writes `row` as an earlier version wrote its dead letters (no `SOURCE_KEY_TEXT`): through
/// `pipe` (in `REPLAY.PUBLIC`) on a channel of its own at `token`, waiting for its commit.
pub async fn earlier_dead_letter(
    emulator: &Emulator,
    pipe: &str,
    row: serde_json::Value,
    token: u64,
) {
    let client = snowpipe_streaming::ClientBuilder::new()
        .account("REPLAY")
        .user("REPLAY")
        .url(emulator.url())
        .private_key_pem(super::TEST_KEY.to_owned())
        .build()
        .await
        .unwrap();
    let channel = client
        .pipe("REPLAY", "PUBLIC", pipe)
        .open_channel("earlier_version")
        .await
        .unwrap();
    let token = snowpipe_streaming::OffsetToken::from(token);
    channel
        .append(
            snowpipe_streaming::Rows::serde(&[row]),
            snowpipe_streaming::Positions::at(token.clone()),
        )
        .await
        .unwrap();
    channel
        .wait_for_commit(&token, Duration::from_secs(20))
        .await
        .unwrap();
    channel.close().await.unwrap();
    client.close().await.unwrap();
}
