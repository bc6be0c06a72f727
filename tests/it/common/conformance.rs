//! The backends the integration tests run the conformance suite
//! (`snowpipe_streaming::test_util::conformance`) against: the in-process emulator
//! ([`EmulatorTarget`]) and, when `SNOWFLAKE_ACCOUNT` is set, that account ([`account`]).
//! The in-memory fake runs it in the unit tests (`src/channel/conformance_tests.rs`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use snowpipe_emulator::{Emulator, Endpoint, FaultAction, FaultPlan, FaultRule};
use snowpipe_streaming::test_util::conformance::{ConformanceTarget, Knobs, SqlTarget, Table};
use snowpipe_streaming::{ClientBuilder, StreamingIngestClient};

use super::emulator as emu_common;

/// The emulator as a conformance target: tables made and read through its SQL API, clients at
/// the tests' pace ([`emu_common::builder`]), and the appends it accepted counted from its
/// request log.
pub struct EmulatorTarget {
    /// The emulator (its status and request log, for checks beyond the suite's).
    pub emulator: Emulator,
    sql: SqlTarget,
}

impl EmulatorTarget {
    /// An emulator in strict-offsets mode committing `commit_ms` after each append, every
    /// append taking `append_ms` (so crashes land between requests).
    pub async fn start(commit_ms: u64, append_ms: u64) -> Arc<Self> {
        let mut config = emu_common::config_with_ddl(
            "CREATE DATABASE IF NOT EXISTS DB; CREATE SCHEMA IF NOT EXISTS SCH;",
        )
        .with_commit_delay(Duration::from_millis(commit_ms));
        if append_ms > 0 {
            let latency =
                FaultRule::new(Endpoint::AppendRows, FaultAction::Latency { ms: append_ms });
            config = config.with_faults(FaultPlan {
                rules: vec![latency],
            });
        }
        let emulator = Emulator::start(config).await.expect("emulator starts");
        let sql = SqlTarget::new(emu_common::builder(&emulator), "DB", "SCH")
            .expect("the SQL client builds");
        Arc::new(Self { emulator, sql })
    }

    /// The emulator's status entry of channel `name` (`fenced_appends`, ...).
    pub fn server_channel(&self, name: &str) -> serde_json::Value {
        emu_common::server_channel(&self.emulator, name)
    }
}

#[async_trait]
impl ConformanceTarget for EmulatorTarget {
    async fn create_table(&self, name: &str) -> Table {
        self.sql.create_table(name).await
    }

    async fn client(&self, table: &Table, knobs: &Knobs) -> StreamingIngestClient {
        self.sql.client(table, knobs).await
    }

    async fn ids(&self, table: &Table) -> Vec<i64> {
        self.sql.ids(table).await
    }

    fn accepted_appends(&self) -> Option<usize> {
        let log = self.emulator.requests();
        Some(
            log.iter()
                .filter(|r| r.endpoint == Endpoint::AppendRows && r.status == 200)
                .count(),
        )
    }
}

/// The variables that name the account the suite runs against, besides
/// `ClientBuilder::from_env`'s (`SNOWFLAKE_USER`, `SNOWFLAKE_PRIVATE_KEY_FILE`, ...): the
/// database and the schema (a scratch one: the suite's tables are left there).
pub const ACCOUNT_VARS: [&str; 3] = [
    "SNOWFLAKE_ACCOUNT",
    "SNOWFLAKE_DATABASE",
    "SNOWFLAKE_SCHEMA",
];

/// The account named by `SNOWFLAKE_ACCOUNT` (with [`ACCOUNT_VARS`]) as a target, or `None`
/// (printing why) when one of them is not set.
pub fn account() -> Option<Arc<SqlTarget>> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let Some(missing) = ACCOUNT_VARS.iter().find(|k| var(k).is_none()) {
        eprintln!("skipped: {missing} is not set (the suite runs against an account when {ACCOUNT_VARS:?} are)");
        return None;
    }
    let (db, schema) = (var(ACCOUNT_VARS[1])?, var(ACCOUNT_VARS[2])?);
    let target = SqlTarget::new(ClientBuilder::from_env(), &db, &schema)
        .expect("the account's settings are complete");
    Some(Arc::new(target))
}
