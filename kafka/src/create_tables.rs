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

use std::collections::HashSet;
use std::sync::Mutex;

use anyhow::{bail, Context, Result};
use snowpipe_streaming::sql::SqlClient;

use crate::config::SinkArgs;
use crate::consumer::lock;
use crate::layout::LayoutKind;

/// The comment the connector gives the columns it creates.
const COMMENT: &str =
    "created by automatic table creation from Snowflake Kafka Connector High Performance";

/// The table of a default pipe (`ORDERS-STREAMING` → `ORDERS`, `"Click Log-STREAMING"` →
/// `"Click Log"`), or `None` for a pipe of another name.
pub fn table_of(pipe: &str) -> Option<String> {
    match pipe.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
        Some(inner) => inner
            .strip_suffix("-STREAMING")
            .filter(|t| !t.is_empty())
            .map(|t| format!("\"{t}\"")),
        None => pipe
            .strip_suffix("-STREAMING")
            .filter(|t| !t.is_empty())
            .map(str::to_owned),
    }
}

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

/// Creates the missing tables of the pipes the sink writes to.
pub struct TableCreator {
    sql: SqlClient,
    layout: LayoutKind,
    /// Tables created (or found) this run.
    done: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for TableCreator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableCreator")
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

impl TableCreator {
    /// The creator `--create-tables` asks for (`None` without it), with a SQL API client of
    /// the same connection as the streaming client.
    ///
    /// # Errors
    /// A `--pipe` that is not a default pipe `<TABLE>-STREAMING` (its table cannot be
    /// known), a connection setting the SQL client refuses.
    pub fn new(args: &SinkArgs) -> Result<Option<Self>> {
        if !args.create_tables {
            return Ok(None);
        }
        let sql = args.default_pipes_sql_client(
            "--create-tables",
            "create its table (and pipe) yourself and give --no-create-tables (a connector \
             file's default is to create tables), or write to the table's default pipe",
        )?;
        Ok(Some(Self {
            sql,
            layout: args.layout,
            done: Mutex::default(),
        }))
    }

    /// Creates the table of `pipe` unless it exists (once per run).
    ///
    /// # Errors
    /// A pipe that is not a default pipe, or the statement failing (Snowflake's answer).
    pub async fn ensure(&self, pipe: &str) -> Result<()> {
        let Some(table) = table_of(pipe) else {
            bail!("--create-tables: pipe {pipe} is not a default pipe <TABLE>-STREAMING");
        };
        if lock(&self.done).contains(&table) {
            return Ok(());
        }
        match self.sql.query(&format!("desc table {table}")).await {
            Ok(_) => {
                tracing::info!(%table, "--create-tables: the table exists");
                lock(&self.done).insert(table);
                return Ok(());
            }
            // Snowflake's "does not exist or not authorized": create it.
            Err(snowpipe_streaming::Error::Sql(e)) if e.code.as_deref() == Some("002003") => {}
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!(
                    "--create-tables: cannot tell whether the table {table} exists (`desc \
                     table {table}`)"
                )))
            }
        }
        let statement = statement(&table, self.layout);
        self.sql.query(&statement).await.with_context(|| {
            format!("--create-tables: cannot create the table {table} (`{statement}`)")
        })?;
        tracing::info!(%table, "--create-tables: table created, or found");
        lock(&self.done).insert(table);
        Ok(())
    }
}

/// `--table-named-pipes` (set by `--connector-config`): a table's pipe is the one named exactly
/// like the table when it exists, else its default pipe `<TABLE>-STREAMING`, as connector v4
/// chooses (`internal/streaming/SnowflakeSinkServiceV2.java` `startPartitions`: `desc pipe` of
/// the table's name; `kafka/docs/connector-compatibility.md` §15.5). A team that made its own
/// pipe (a transform, a column mapping) for the connector keeps writing through it.
pub struct TableNamedPipes {
    sql: SqlClient,
    /// The pipe chosen for each default pipe, this run.
    chosen: Mutex<std::collections::HashMap<String, String>>,
}

impl std::fmt::Debug for TableNamedPipes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableNamedPipes").finish_non_exhaustive()
    }
}

impl TableNamedPipes {
    /// The chooser `--table-named-pipes` asks for (`None` without it).
    ///
    /// # Errors
    /// A `--pipe` that is not a default pipe, a connection setting the SQL client refuses.
    pub fn new(args: &SinkArgs) -> Result<Option<Self>> {
        if !args.table_named_pipes {
            return Ok(None);
        }
        let sql = args.default_pipes_sql_client(
            "--table-named-pipes",
            "name the pipe with --pipe and leave --table-named-pipes out",
        )?;
        Ok(Some(Self {
            sql,
            chosen: Mutex::default(),
        }))
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
        if let Some(p) = lock(&self.chosen).get(default_pipe) {
            return Ok(p.clone());
        }
        let Some(table) = table_of(default_pipe) else {
            bail!(
                "--table-named-pipes: pipe {default_pipe} is not a default pipe <TABLE>-STREAMING"
            );
        };
        let chosen = match self.sql.query(&format!("desc pipe {table}")).await {
            Ok(_) => {
                tracing::info!(pipe = %table, "a pipe named like the table exists: writing through it, as connector v4 does");
                table
            }
            Err(snowpipe_streaming::Error::Sql(e)) if e.code.as_deref() == Some("002003") => {
                default_pipe.to_owned()
            }
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!(
                    "--table-named-pipes: cannot tell whether a pipe named like the table \
                     {table} exists (`desc pipe {table}`)"
                )))
            }
        };
        lock(&self.chosen).insert(default_pipe.to_owned(), chosen.clone());
        Ok(chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_the_default_pipes() {
        let cases = [
            ("ORDERS-STREAMING", Some("ORDERS")),
            ("\"Click Log-STREAMING\"", Some("\"Click Log\"")),
            ("orders-STREAMING", Some("orders")),
            ("ORDERS_PIPE", None),
            ("-STREAMING", None),
            ("\"-STREAMING\"", None),
            ("ORDERS-streaming", None),
        ];
        for (pipe, table) in cases {
            assert_eq!(table_of(pipe).as_deref(), table, "{pipe}");
        }
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

    #[test]
    fn a_pipe_that_is_not_a_default_pipe_is_refused_at_start() {
        let parse = |pipe: &str| {
            crate::config::parse_args([
                "x",
                "--brokers",
                "b",
                "--topic",
                "t",
                "--group",
                "g",
                "--database",
                "d",
                "--schema",
                "s",
                "--pipe",
                pipe,
                "--create-tables",
            ])
            .unwrap()
        };
        let err = TableCreator::new(&parse("MY_PIPE"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("--pipe MY_PIPE is not one"), "{err}");
    }
}
