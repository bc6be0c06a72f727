//! `--migrate-v3-offsets`: a partition whose channel opens with no committed offset token
//! takes Snowflake's Kafka connector v3's position from its Snowpipe Streaming Classic channel,
//! as connector v4 does (`snowflake.streaming.classic.offset.migration`), through the SQL API
//! (`snowpipe_streaming::sql`):
//!
//! ```sql
//! SELECT SYSTEM$MIGRATE_SSV1_CHANNEL_OFFSET('<table>', '<CLASSIC CHANNEL>', '<channel>', '<pipe>')
//! ```
//!
//! The statement and its answer are the connector's
//! (`internal/StandardSnowflakeConnectionService.java`, `migrateSsv1ChannelOffset`;
//! `internal/streaming/v2/migration/Ssv1MigrationResponse.java`, in
//! `snowflakedb/snowflake-kafka-connector`): the table as a quoted identifier, the classic
//! channel's name upper-cased, the new channel's name and the pipe; the answer's first column is
//! JSON with `ssv1_channel_found` and `migrated_offset`. On success Snowflake has written the
//! offset to the new channel, which the sink then reopens to read it, so the partition resumes
//! at the migrated offset + 1.
//!
//! The classic channel is v3's: `<topic>_<partition>`, or `<NAME>_<topic>_<partition>` with
//! `--migrate-v3-include-connector-name` (the connector's
//! `snowflake.streaming.classic.offset.migration.include.connector.name`; `NAME` sanitized by
//! v3's rule, [`crate::connector::naming`]).
//!
//! What each mode does (`SnowpipeStreamingPartitionChannel.parseOrMigrateOffsetToken`):
//!
//! | answer | `best-effort` | `strict` |
//! |---|---|---|
//! | `migrated_offset: N` | resume at N + 1 | resume at N + 1 |
//! | found, no offset | start as without migration (`--start`) | same |
//! | not found | log, start as without migration | stop, naming the channel |
//! | the call fails | stop, naming the channel | stop, naming the channel |
//!
//! A failed call stops the sink in both modes, as the connector does: starting from the group's
//! offset instead could write again what v3 already wrote.

use clap::ValueEnum;
use snowpipe_streaming::sql::SqlClient;

use crate::connector::naming::{fold_unquoted, ConnectorName, Naming};
use crate::error::{err, fail, Context, Error, Result};

/// `--migrate-v3-offsets`: the connector's `snowflake.streaming.classic.offset.migration`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Never migrate (the default).
    #[default]
    Skip,
    /// Migrate when the classic channel exists; go on without it otherwise.
    BestEffort,
    /// Migrate; stop when the classic channel does not exist.
    Strict,
}

impl Mode {
    /// The mode of a connector value (`skip`, `best_effort`, `strict`, any case).
    ///
    /// # Errors
    /// Another value, naming the three.
    pub fn of_connector(value: &str) -> Result<Self> {
        match value.to_ascii_lowercase().as_str() {
            "skip" => Ok(Self::Skip),
            "best_effort" => Ok(Self::BestEffort),
            "strict" => Ok(Self::Strict),
            other => fail!(
                Config,
                "snowflake.streaming.classic.offset.migration={other}: the connector knows \
                 skip, best_effort and strict"
            ),
        }
    }
}

/// The function's answer (`Ssv1MigrationResponse`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub(crate) struct Answer {
    /// Whether the classic channel exists.
    pub ssv1_channel_found: bool,
    /// Its committed offset, now the new channel's (`None`: nothing committed, or not found).
    #[serde(default)]
    pub migrated_offset: Option<i64>,
}

/// The statement for `table`'s classic channel `classic` → `channel` on `pipe`.
pub(crate) fn statement(table: &str, classic: &str, channel: &str, pipe: &str) -> String {
    // Snowflake's string literals take `\` as an escape: doubled too, so that no name (a
    // topic2table map's table may hold a `\` and a `'`) can end the literal early.
    let lit = |s: &str| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"));
    format!(
        "SELECT SYSTEM$MIGRATE_SSV1_CHANNEL_OFFSET({}, {}, {}, {})",
        lit(&quoted(table)),
        lit(&fold_unquoted(classic)),
        lit(channel),
        lit(pipe)
    )
}

/// A table name as the quoted identifier the connector passes (`orders` → `"ORDERS"`, as an
/// unquoted identifier resolves; an already quoted `"Click Log"` as it is).
fn quoted(table: &str) -> String {
    if table.len() >= 2 && table.starts_with('"') && table.ends_with('"') {
        table.to_owned()
    } else {
        format!("\"{}\"", fold_unquoted(table))
    }
}

/// v3's classic channel of `topic`/`partition`.
pub(crate) fn classic_channel(
    connector: Option<&ConnectorName>,
    include_name: bool,
    topic: &str,
    partition: i32,
) -> String {
    match connector {
        Some(c) if include_name => c.channel_name(Naming::V3WithName, topic, partition),
        _ => format!("{topic}_{partition}"),
    }
}

/// Runs the migration for the partitions of a run.
pub struct Migrator {
    sql: SqlClient,
    mode: Mode,
    connector: Option<ConnectorName>,
    include_name: bool,
}

impl std::fmt::Debug for Migrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Migrator")
            .field("mode", &self.mode)
            .field("include_name", &self.include_name)
            .finish_non_exhaustive()
    }
}

impl Migrator {
    /// A migrator calling the function on `sql` (in the pipes' database and schema), in
    /// `mode`, for the classic channels of `connector` (its name in them when `include_name`).
    pub fn new(
        sql: SqlClient,
        mode: Mode,
        connector: Option<ConnectorName>,
        include_name: bool,
    ) -> Self {
        Self {
            sql,
            mode,
            connector,
            include_name,
        }
    }

    /// Migrates `topic`/`partition`'s classic offset into `channel` on `pipe` (a channel
    /// opened with no committed token): `Some(offset)` when Snowflake now holds one for the
    /// channel (reopen it to read it), `None` to start as without migration.
    ///
    /// # Errors
    /// The call failing or answering what is not the function's JSON (any mode); the classic
    /// channel not found (`strict`). Each names the classic channel and the fix.
    pub async fn migrate(
        &self,
        pipe: &str,
        topic: &str,
        partition: i32,
        channel: &str,
    ) -> Result<Option<i64>> {
        let Some(table) = snowpipe_streaming::default_pipe_table(pipe) else {
            fail!(
                Config,
                "--migrate-v3-offsets: pipe {pipe} is not a default pipe <TABLE>-STREAMING"
            );
        };
        let classic = classic_channel(self.connector.as_ref(), self.include_name, topic, partition);
        let statement = statement(&table, &classic, channel, pipe);
        let fail = || {
            format!(
                "--migrate-v3-offsets: cannot migrate the offset of classic channel {classic} \
                 into {channel} (`{statement}`); fix the cause, or start without migrating \
                 (--migrate-v3-offsets skip)"
            )
        };
        let result = self
            .sql
            .query(&statement)
            .await
            .with_context(Error::Snowflake, fail)?;
        let text = result
            .rows
            .first()
            .and_then(|r| r.first())
            .and_then(Option::as_deref)
            .ok_or_else(|| err!(Snowflake, "the answer has no value"))
            .with_context(Error::Snowflake, fail)?;
        let answer: Answer = serde_json::from_str(text)
            .with_context(Error::Snowflake, || {
                format!("the answer {text:?} is not the function's JSON")
            })
            .with_context(Error::Snowflake, fail)?;
        match answer {
            Answer {
                migrated_offset: Some(offset),
                ..
            } => {
                tracing::info!(%classic, %channel, offset, "v3 offset migrated");
                Ok(Some(offset))
            }
            Answer {
                ssv1_channel_found: true,
                ..
            } => {
                tracing::info!(%classic, %channel, "classic channel found with no committed offset");
                Ok(None)
            }
            Answer { .. } if self.mode == Mode::Strict => {
                fail!(
                Snowflake,
                "--migrate-v3-offsets strict: classic channel {classic} not found for {channel} \
                 (table {table}). New topics since v3, the wrong --connector-name or \
                 --migrate-v3-include-connector-name give this; check them, or use \
                 --migrate-v3-offsets best-effort (or skip) to start without it"
            )
            }
            Answer { .. } => {
                tracing::warn!(%classic, %channel, "classic channel not found: starting without migration (--migrate-v3-offsets best-effort)");
                Ok(None)
            }
        }
    }
}

/// A partition's channel, just opened, with v3's position when it has no committed token:
/// migrated, then closed and reopened so the handle reads the migrated token.
///
/// # Errors
/// As [`Migrator::migrate`]; closing or reopening the channel failing.
pub(crate) async fn resume(
    m: &Migrator,
    pipe: &snowpipe_streaming::Pipe,
    pipe_name: &str,
    topic: &str,
    partition: i32,
    channel: snowpipe_streaming::Channel,
) -> Result<snowpipe_streaming::Channel> {
    if channel.latest_committed_offset_token().is_some() {
        return Ok(channel);
    }
    let name = channel.name().to_owned();
    if m.migrate(pipe_name, topic, partition, &name)
        .await?
        .is_none()
    {
        return Ok(channel);
    }
    // The migration wrote a token this handle never sent: when its commit poller saw it first,
    // the handle counts as taken by another writer, which is just what happened, and its close
    // says so. Nothing of ours is in flight on it (no row was appended), so the reopen below
    // goes ahead either way.
    match channel.close().await {
        Ok(_) | Err(snowpipe_streaming::Error::OwnershipLost { .. }) => {}
        Err(e) => {
            return Err(e).with_context(Error::Snowflake, || {
                format!("--migrate-v3-offsets: cannot close {name} to reopen it")
            })
        }
    }
    pipe.open_channel(&name)
        .await
        .with_context(Error::Snowflake, || {
            format!("--migrate-v3-offsets: cannot reopen {name} after migrating")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statement_is_the_connectors() {
        assert_eq!(
            statement("ORDERS", "orders_0", "SINK_orders_0", "ORDERS-STREAMING"),
            "SELECT SYSTEM$MIGRATE_SSV1_CHANNEL_OFFSET('\"ORDERS\"', 'ORDERS_0', \
             'SINK_orders_0', 'ORDERS-STREAMING')"
        );
        assert_eq!(
            statement("\"Click Log\"", "it's_1", "c", "\"Click Log-STREAMING\""),
            "SELECT SYSTEM$MIGRATE_SSV1_CHANNEL_OFFSET('\"Click Log\"', 'IT''S_1', 'c', \
             '\"Click Log-STREAMING\"')"
        );
        // Issue 56: a backslash cannot escape the literal's closing quote.
        assert_eq!(
            statement("\"A\\')--\"", "c_0", "c", "p"),
            "SELECT SYSTEM$MIGRATE_SSV1_CHANNEL_OFFSET('\"A\\\\'')--\"', 'C_0', 'c', 'p')"
        );
    }

    #[test]
    fn classic_channels_are_v3s() {
        let name = crate::connector::naming::parse_name("snowflake-sink").unwrap();
        assert_eq!(classic_channel(Some(&name), false, "orders", 3), "orders_3");
        assert_eq!(classic_channel(None, true, "orders", 3), "orders_3");
        assert_eq!(
            classic_channel(Some(&name), true, "orders", 3),
            name.channel_name(Naming::V3WithName, "orders", 3)
        );
    }

    #[test]
    fn connector_values_map_to_modes() {
        for (v, m) in [
            ("skip", Mode::Skip),
            ("best_effort", Mode::BestEffort),
            ("STRICT", Mode::Strict),
        ] {
            assert_eq!(Mode::of_connector(v).unwrap(), m, "{v}");
        }
        let e = Mode::of_connector("best-effort").unwrap_err().to_string();
        assert!(e.contains("skip, best_effort and strict"), "{e}");
    }

    #[test]
    fn answers_parse_as_the_connector_reads_them() {
        for (text, found, offset) in [
            (
                r#"{"ssv1_channel_found":true,"migrated_offset":41}"#,
                true,
                Some(41),
            ),
            (
                r#"{"ssv1_channel_found":true,"migrated_offset":null}"#,
                true,
                None,
            ),
            (r#"{"ssv1_channel_found":false,"other":1}"#, false, None),
        ] {
            let a: Answer = serde_json::from_str(text).unwrap();
            assert_eq!(
                (a.ssv1_channel_found, a.migrated_offset),
                (found, offset),
                "{text}"
            );
        }
    }
}
