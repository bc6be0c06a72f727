//! An in-process emulator for SDK integration tests: a table with a typed schema, the test
//! key registered, and a client builder pointed at it.
//!
//! Used by `tests/it/bad_input.rs`, `tests/it/ownership.rs` and others.

use std::sync::OnceLock;
use std::time::Duration;

use snowpipe_emulator::{Emulator, EmulatorConfig};
use snowpipe_streaming::{Channel, ClientBuilder, StreamingIngestClient};

use super::{fast_retry, TEST_KEY, TEST_PUBLIC_KEY};

/// Database, schema, table and pipe of [`DDL`].
pub const DB: &str = "DB";
/// See [`DB`].
pub const SCHEMA: &str = "SCH";
/// See [`DB`].
pub const TABLE: &str = "T";
/// A named pipe on [`TABLE`].
pub const PIPE: &str = "P";

/// A table with a NOT NULL number column and a bounded string, so rows can violate the
/// schema, and a pipe on it.
pub const DDL: &str = "
CREATE DATABASE IF NOT EXISTS DB;
CREATE SCHEMA IF NOT EXISTS SCH;
CREATE OR REPLACE TABLE T (ID NUMBER NOT NULL, NAME VARCHAR(20));
CREATE OR REPLACE PIPE P AS COPY INTO T FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING')) MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE;
";

/// An emulator config with [`DDL`], the committed test key registered and immediate commits.
pub fn config() -> EmulatorConfig {
    config_with_ddl(DDL)
}

/// [`config`] with the test's own `ddl` instead of [`DDL`].
pub fn config_with_ddl(ddl: &str) -> EmulatorConfig {
    EmulatorConfig::for_tests()
        .with_ddl(ddl)
        .with_public_key(TEST_PUBLIC_KEY)
}

/// Starts an emulator with [`config`].
pub async fn start() -> Emulator {
    Emulator::start(config()).await.expect("emulator starts")
}

/// A builder for `emu`: the test key, fast retries, a short client lag.
pub fn builder(emu: &Emulator) -> ClientBuilder {
    builder_for_url(&emu.url())
}

/// A builder for an emulator (or anything else) at `url`.
pub fn builder_for_url(url: &str) -> ClientBuilder {
    at_test_pace(
        StreamingIngestClient::builder()
            .account("MYORG-MYACCT")
            .user("TESTER")
            .private_key_pem(TEST_KEY),
        url,
    )
}

/// `builder` pointed at `url`, at the tests' pace: fast retries, a short client lag, quick
/// commit polls.
pub fn at_test_pace(builder: ClientBuilder, url: &str) -> ClientBuilder {
    builder
        .url(url)
        .retry(fast_retry())
        .max_client_lag(Duration::from_millis(20))
        .commit_poll_interval(Duration::from_millis(20))
}

/// A connected client for `emu`.
pub async fn client(emu: &Emulator) -> StreamingIngestClient {
    builder(emu)
        .build()
        .await
        .expect("client connects to the emulator")
}

/// An emulator with [`config`], a client of it, and channel `name` opened on [`PIPE`].
pub async fn open_channel(name: &str) -> (Emulator, StreamingIngestClient, Channel) {
    let emu = start().await;
    let client = client(&emu).await;
    let channel = open_on(&client, PIPE, name).await;
    (emu, client, channel)
}

/// Opens channel `name` of `client` on `pipe` in [`DB`].[`SCHEMA`].
pub async fn open_on(client: &StreamingIngestClient, pipe: &str, name: &str) -> Channel {
    client
        .pipe(DB, SCHEMA, pipe)
        .open_channel(name)
        .await
        .expect("channel opens on the emulator")
}

/// Closes `channel` waiting for its rows to commit, then its client and the emulator, and
/// returns the ids the table holds (in order).
pub async fn finish(channel: Channel, client: StreamingIngestClient, emu: Emulator) -> Vec<i64> {
    close_committed([channel]).await;
    let landed = ids(&emu);
    client.close().await.expect("the client closes");
    emu.shutdown().await;
    landed
}

/// Closes each of `channels`, in turn, waiting for its rows to commit.
pub async fn close_committed(channels: impl IntoIterator<Item = Channel>) {
    for channel in channels {
        channel
            .close_with(snowpipe_streaming::CloseOptions::default().wait_for_commit(true))
            .await
            .expect("the channel closes with its rows committed");
    }
}

/// A second RSA key pair (PKCS#8 PEM, SPKI PEM), generated once per test binary, that no
/// emulator registers unless told to.
pub fn other_key() -> &'static (String, String) {
    static KEY: OnceLock<(String, String)> = OnceLock::new();
    KEY.get_or_init(|| {
        let key = snowpipe_emulator::KeyPair::from_seed(4242).expect("RSA key generation");
        (
            key.private_key_pem().to_owned(),
            key.public_key_pem().to_owned(),
        )
    })
}

/// The emulator's status entry (`emu.status()["channels"]`) of channel `name`.
pub fn server_channel(emu: &Emulator, name: &str) -> serde_json::Value {
    let status = emu.status();
    status["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel_name"] == name)
        .unwrap_or_else(|| panic!("{name} in {status}"))
        .clone()
}

/// The IDs stored in the test table, sorted.
pub fn ids(emu: &Emulator) -> Vec<i64> {
    emu.query(&format!(
        r#"SELECT ID FROM "{DB}.{SCHEMA}.{TABLE}" ORDER BY ID"#
    ))
    .expect("query")
    .into_iter()
    .map(|r| r[0].as_i64().expect("numeric ID"))
    .collect()
}
