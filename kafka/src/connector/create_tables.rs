//! `--create-tables`: a missing target table is created as Snowflake's Kafka connector creates
//! it, through Snowflake's SQL API (`snowpipe_streaming::sql`), when its first partition is
//! assigned and before that partition's channel opens.
//!
//! The statement is the connector's (`internal/StandardSnowflakeConnectionService.java`,
//! `createTableWithOnlyMetadataColumn`, in `snowflakedb/snowflake-kafka-connector`; v4 runs it
//! for a missing table whatever `snowflake.enable.schematization` says,
//! `internal/streaming/SnowflakeSinkServiceV2.java`):
//!
//! ```sql
//! create table if not exists <table> (record_metadata variant comment '…')
//!   enable_schema_evolution = true error_logging = true
//! ```
//!
//! The table is the default pipe's (`<TABLE>-STREAMING`), written as the identifier it is (a
//! quoted name keeps its case, others are upper-cased: what the connector's `identifier(?)`
//! binding resolves to; the emulator's DDL does not take `identifier(…)`). As the connector
//! does (`tableExist`, a `desc table` first), the table is described before it is created:
//! one that exists is used as it is, so a role without CREATE TABLE still writes to the
//! tables it was given. With `--layout
//! record-content` the statement also declares `record_content variant`: the connector gets
//! that column from its own schema evolution, which types it `VARIANT` whatever the value
//! (`records/SnowflakeSinkRecord.java`, `RECORD_CONTENT_WRAPPER_SCHEMA`), where the server's
//! evolution, which this sink relies on, would type it from its first value (a string would
//! make it `VARCHAR`); v3 declared both columns the same way
//! (`SnowflakeConnectionServiceV1.createTable`). `if not exists` leaves an existing table as it
//! is. Each table is created once per run; a statement that fails stops the sink, naming the
//! table and Snowflake's answer.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use snowpipe_streaming::default_pipe_table;
use snowpipe_streaming::sql::SqlClient;

use crate::error::{fail, Context, Error, Result};
use crate::lock::lock;
use crate::rows::layout::LayoutKind;

/// The comment the connector gives the columns it creates.
const COMMENT: &str =
    "created by automatic table creation from Snowflake Kafka Connector High Performance";

/// The statement that creates `table` (as the connector names it) for rows of `layout`.
pub fn statement(table: &str, layout: LayoutKind) -> String {
    let content = match layout {
        LayoutKind::Columns => String::new(),
        LayoutKind::RecordContent => format!(", record_content variant comment '{COMMENT}'"),
    };
    format!(
        "create table if not exists {table} (record_metadata variant comment \
         '{COMMENT}'{content}) enable_schema_evolution = true error_logging = true"
    )
}

/// What was learnt about each table this run, asked once: partitions of one topic open
/// concurrently, and the first to ask answers for the others, who wait for it. A failure is not
/// kept (the next caller asks again).
struct PerTable<T> {
    cells: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<T>>>>,
}

impl<T: Clone> PerTable<T> {
    fn new() -> Self {
        Self {
            cells: Mutex::default(),
        }
    }

    /// `table`'s answer, from `ask` the first time.
    ///
    /// # Cancellation
    /// Dropping the future leaves the table unanswered; a waiting caller asks in its place.
    async fn get<F: Future<Output = Result<T>>>(
        &self,
        table: &str,
        ask: impl FnOnce() -> F,
    ) -> Result<T> {
        let cell = Arc::clone(lock(&self.cells).entry(table.to_owned()).or_default());
        cell.get_or_try_init(ask).await.cloned()
    }
}

/// Whether the table (`kind` `table`) or pipe (`pipe`) `name` exists: `desc <kind> <name>`, with
/// Snowflake's "does not exist or not authorized" (`002003`) as no, as the connector's
/// `tableExist` and `pipeExist` ask.
///
/// # Errors
/// Any other failure: whether it exists cannot be told, and the caller must not guess.
async fn exists(sql: &SqlClient, kind: &str, name: &str, flag: &str) -> Result<bool> {
    let statement = format!("desc {kind} {name}");
    match sql.query(&statement).await {
        Ok(_) => Ok(true),
        Err(snowpipe_streaming::Error::Sql(e)) if e.code.as_deref() == Some("002003") => Ok(false),
        Err(e) => Err(e).with_context(Error::Snowflake, || {
            format!("{flag}: cannot tell whether the {kind} {name} exists (`{statement}`)")
        }),
    }
}

/// Creates the missing tables of the pipes the sink writes to.
pub struct TableCreator {
    sql: SqlClient,
    layout: LayoutKind,
    /// Tables created (or found) this run.
    done: PerTable<()>,
}

impl std::fmt::Debug for TableCreator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableCreator")
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

impl TableCreator {
    /// A creator running its statements on `sql` (in the pipes' database and schema), for
    /// tables of `layout`.
    pub fn new(sql: SqlClient, layout: LayoutKind) -> Self {
        Self {
            sql,
            layout,
            done: PerTable::new(),
        }
    }

    /// Whether the table of `pipe` exists (`desc table`, read-only: nothing is created or
    /// remembered), for `snowpipe-kafka check`.
    ///
    /// # Errors
    /// A pipe that is not a default pipe, or Snowflake's answer when it is neither the table
    /// nor "does not exist or not authorized".
    pub async fn table_exists(&self, pipe: &str) -> Result<bool> {
        let Some(table) = default_pipe_table(pipe) else {
            fail!(
                Config,
                "--create-tables: pipe {pipe} is not a default pipe <TABLE>-STREAMING"
            );
        };
        exists(&self.sql, "table", &table, "--create-tables").await
    }

    /// Creates the table of `pipe` unless it exists (once per run).
    ///
    /// # Errors
    /// A pipe that is not a default pipe, or the statement failing (Snowflake's answer).
    pub async fn ensure(&self, pipe: &str) -> Result<()> {
        let Some(table) = default_pipe_table(pipe) else {
            fail!(
                Config,
                "--create-tables: pipe {pipe} is not a default pipe <TABLE>-STREAMING"
            );
        };
        self.done
            .get(&table, || async {
                if exists(&self.sql, "table", &table, "--create-tables").await? {
                    tracing::info!(%table, "--create-tables: the table exists");
                    return Ok(());
                }
                let statement = statement(&table, self.layout);
                self.sql
                    .query(&statement)
                    .await
                    .with_context(Error::Snowflake, || {
                        format!("--create-tables: cannot create the table {table} (`{statement}`)")
                    })?;
                tracing::info!(%table, "--create-tables: table created, or found");
                Ok(())
            })
            .await
    }
}

/// `--table-named-pipes` (set by `--connector-config`): a table's pipe is the one named exactly
/// like the table when it exists, else its default pipe `<TABLE>-STREAMING`, as connector v4
/// chooses (`internal/streaming/SnowflakeSinkServiceV2.java` `startPartitions`: `desc pipe` of
/// the table's name; `kafka/docs/connector-compatibility-tables.md` §15.5). A team that made its own
/// pipe (a transform, a column mapping) for the connector keeps writing through it.
pub struct TableNamedPipes {
    sql: SqlClient,
    /// The pipe chosen for each table, this run.
    chosen: PerTable<String>,
}

impl std::fmt::Debug for TableNamedPipes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableNamedPipes").finish_non_exhaustive()
    }
}

impl TableNamedPipes {
    /// A chooser asking `sql` (in the pipes' database and schema).
    pub fn new(sql: SqlClient) -> Self {
        Self {
            sql,
            chosen: PerTable::new(),
        }
    }

    /// The pipe to write the table of `default_pipe` through: the table's name when a pipe of
    /// that name exists, else `default_pipe` (asked once per table and run).
    ///
    /// # Errors
    /// `default_pipe` is not a default pipe; Snowflake cannot be asked (an answer other than
    /// "does not exist or not authorized": the sink stops rather than guess which pipe).
    ///
    /// # Cancellation
    /// Dropping the future drops the request; nothing is remembered.
    pub async fn pipe_for(&self, default_pipe: &str) -> Result<String> {
        let Some(table) = default_pipe_table(default_pipe) else {
            fail!(
                Config,
                "--table-named-pipes: pipe {default_pipe} is not a default pipe <TABLE>-STREAMING"
            );
        };
        self.chosen
            .get(&table, || async {
                if exists(&self.sql, "pipe", &table, "--table-named-pipes").await? {
                    tracing::info!(pipe = %table, "a pipe named like the table exists: writing through it, as connector v4 does");
                    Ok(table.clone())
                } else {
                    Ok(default_pipe.to_owned())
                }
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Partitions of one topic open together: the first asks, the others wait for its answer;
    /// a failed answer is not kept.
    #[tokio::test]
    async fn each_table_is_asked_once_and_a_failure_is_asked_again() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let cache = PerTable::<String>::new();
        let asked = AtomicUsize::new(0);
        let ask = || async {
            asked.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            Ok("PIPE".to_owned())
        };
        let answers = futures_util::future::join_all((0..8).map(|_| cache.get("T", ask))).await;
        assert!(answers.iter().all(|a| a.as_deref().ok() == Some("PIPE")));
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        let failed = cache
            .get("U", || async { fail!(Snowflake, "no answer") })
            .await;
        assert!(failed.is_err());
        assert_eq!(cache.get("U", ask).await.unwrap(), "PIPE");
        assert_eq!(asked.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn the_statement_is_the_connectors() {
        assert_eq!(
            statement("ORDERS", LayoutKind::Columns),
            "create table if not exists ORDERS (record_metadata variant comment \
             'created by automatic table creation from Snowflake Kafka Connector High \
             Performance') enable_schema_evolution = true error_logging = true"
        );
        assert_eq!(
            statement("\"Click Log\"", LayoutKind::RecordContent),
            "create table if not exists \"Click Log\" (record_metadata variant comment \
             'created by automatic table creation from Snowflake Kafka Connector High \
             Performance', record_content variant comment 'created by automatic table creation \
             from Snowflake Kafka Connector High Performance') enable_schema_evolution = true \
             error_logging = true"
        );
    }
}
