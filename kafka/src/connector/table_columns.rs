//! `snowflake.validation=client_side` (`--client-side-validation`): each table's columns, read
//! once with `DESC TABLE` when its first partition opens (and again after each evolution),
//! and client-side schema evolution, as connector v4.1.0 runs them
//! (`internal/streaming/v2/SnowpipeStreamingPartitionChannel.java` `initializeValidation` and
//! `handleStructuralError`, `internal/schemaevolution/SnowflakeSchemaEvolutionService.java`;
//! `kafka/docs/connector-compatibility-tables.md` §14). The rules a row is checked by are
//! `rows/validate/`, and the rows are checked where a batch is split
//! (`rows/batch/split.rs`, `check_rows`); this module holds what needs Snowflake: the columns
//! and the evolution, supplied through `TableColumns` (it is never handed the rows).
//!
//! * A table that does not exist, or has a column of a type v4 does not validate (GEOGRAPHY, a
//!   structured OBJECT, …), is written without client-side validation, with a warning, as v4
//!   does. Any other failure to describe it stops the sink (v4 would go on unvalidated).
//! * A row with keys that have no column, or without a NOT NULL column, is evolved when the
//!   table has `ENABLE_SCHEMA_EVOLUTION` (`show tables like`, as v4's `shouldEvolveSchema`
//!   asks, once per table): `alter table … add column "<key>" <type> comment '…'` with
//!   `SnowflakeColumnTypeMapper`'s type (v4 writes `if not exists`; "already exists" is taken
//!   as done instead), `alter table … alter "<column>" drop not null`, then the columns are
//!   read again and the row checked again. v4 also asks `show
//!   grants` whether its role may evolve the table; here the `ALTER` itself answers: one the
//!   role may not run is a dead letter with Snowflake's answer. A row still off after that,
//!   or any such row of a table without schema evolution, is a dead letter naming the
//!   columns. Partitions of a table evolve one at a time (a column another partition or
//!   instance added is kept).
//! * Evolution is capped (`evolution_caps.rs`, issue 81; v4 has no cap): a row that would add
//!   more columns than one message, a minute or the table may take is a dead letter naming
//!   the cap, and nothing is altered for it.
//! * Case, as v4 (`RowValidator.detectExtraColumns` matches a key against `DESC TABLE`'s
//!   names exactly; `StandardSnowflakeConnectionService.appendColumnsToTable` quotes it): a
//!   key is upper-cased only under `--normalize-columns`
//!   (`snowflake.compatibility.enable.column.identifier.normalization=true`, v3's shape), so
//!   there `a` lands in `A`; without it `a` adds the column `"a"` beside `A`, as v4 adds it.
//! * NOT NULL is dropped where v4 drops it: for a column without a default that a row leaves
//!   out or gives null, when the table evolves (`ValidationResultMapper
//!   .mapToSchemaEvolutionItems`, `alterNonNullableColumns`), never for a row refused by a cap.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use snowpipe_streaming::default_pipe_table;
use snowpipe_streaming::sql::{QueryResult, SqlClient};

use super::evolution_caps::{Added, EvolutionCaps};
use crate::error::{fail, Context, Error, Result};
use crate::lock::lock;
use crate::rows::validate::table::{TableColumns, DISABLED};
use crate::rows::validate::{Columns, Structural};

/// The comment v4 gives the columns its evolution adds (`ColumnInfos.getDdlComments`).
const ADDED: &str = "column created by schema evolution from Snowflake Kafka Connector";

/// The start of the dead-letter reason for a row past an evolution cap (`evolution_caps.rs`).
const CAPPED: &str = "Structural validation error (schema evolution capped)";

/// Client-side validation for the tables of a run.
pub struct ClientSide {
    sql: SqlClient,
    normalize_time: bool,
    caps: EvolutionCaps,
    tables: Mutex<HashMap<String, Arc<Once>>>,
}

impl std::fmt::Debug for ClientSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSide")
            .field("normalize_time", &self.normalize_time)
            .finish_non_exhaustive()
    }
}

/// A table's check, made once (`None`: the table is written unvalidated).
type Once = tokio::sync::OnceCell<Option<Arc<TableCheck>>>;

/// One table's columns and its evolution.
pub struct TableCheck {
    table: String,
    sql: SqlClient,
    normalize_time: bool,
    columns: RwLock<Arc<Columns>>,
    /// Whether the table has `ENABLE_SCHEMA_EVOLUTION` (asked the first time a row needs it).
    evolves: tokio::sync::OnceCell<bool>,
    /// How far producers may evolve it.
    caps: EvolutionCaps,
    /// Evolutions of the table run one at a time, holding the columns they added lately.
    evolving: tokio::sync::Mutex<Added>,
}

/// The columns of a `DESC TABLE` answer.
fn described(result: &QueryResult) -> Result<Columns, String> {
    let at = |name: &str| result.column_index(name);
    columns_of(
        [at("name"), at("type"), at("null?"), at("default")],
        &result.rows,
    )
}

/// The columns of `DESC TABLE` rows, given where its `name`, `type`, `null?` and `default`
/// columns are.
fn columns_of(at: [Option<usize>; 4], rows: &[Vec<Option<String>>]) -> Result<Columns, String> {
    let [Some(n), Some(t), Some(nl), d] = at else {
        return Err("DESC TABLE answered without name, type and null? columns".into());
    };
    let cell = |row: &[Option<String>], i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    let rows: Vec<[String; 4]> = rows
        .iter()
        .map(|r| {
            let default = d.map(|d| cell(r, d)).unwrap_or_default();
            [cell(r, n), cell(r, t), cell(r, nl), default]
        })
        .collect();
    Columns::from_describe(
        rows.iter()
            .map(|[a, b, c, d]| (a.as_str(), b.as_str(), c.as_str(), d.as_str())),
    )
}

/// `name` as a quoted identifier (v4's `quoteIdentifier` for the columns it adds).
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl ClientSide {
    /// Validation running its statements on `sql` (in the pipes' database and schema);
    /// `normalize_time`: `snowflake.feature.normalize.time`; `caps`: how far producers may
    /// evolve a table.
    pub fn new(sql: SqlClient, normalize_time: bool, caps: EvolutionCaps) -> Self {
        Self {
            sql,
            normalize_time,
            caps,
            tables: Mutex::default(),
        }
    }

    /// The check of the table `default_pipe` writes (`<TABLE>-STREAMING`), its columns read
    /// once per run; `None` when the table is written unvalidated (see the module).
    ///
    /// # Errors
    /// `default_pipe` is not a default pipe; `DESC TABLE` failing other than "does not
    /// exist".
    pub async fn table(&self, default_pipe: &str) -> Result<Option<Arc<TableCheck>>> {
        let Some(table) = default_pipe_table(default_pipe) else {
            fail!(
                Config,
                "snowflake.validation=client_side validates the table of a default pipe \
                 <TABLE>-STREAMING; {default_pipe} is not one (connector v4 refuses other pipes \
                 too, ERROR_0032): set snowflake.validation=server_side"
            );
        };
        let cell = Arc::clone(lock(&self.tables).entry(table.clone()).or_default());
        cell.get_or_try_init(|| async {
            let columns = match self.describe(&table).await? {
                Some(Ok(c)) if !c.is_empty() => c,
                Some(Ok(_)) | None => {
                    tracing::warn!(%table, "client-side validation: the table was not found; \
                        its rows go unvalidated, as connector v4 writes them");
                    return Ok(None);
                }
                Some(Err(why)) => {
                    tracing::warn!(%table, "client-side validation is off for the table, as \
                        connector v4 turns it off: {why}");
                    return Ok(None);
                }
            };
            tracing::info!(%table, columns = columns.len(), "client-side validation: columns read");
            Ok(Some(Arc::new(TableCheck {
                table: table.clone(),
                sql: self.sql.clone(),
                normalize_time: self.normalize_time,
                columns: RwLock::new(Arc::new(columns)),
                evolves: tokio::sync::OnceCell::new(),
                caps: self.caps,
                evolving: tokio::sync::Mutex::new(Added::default()),
            })))
        })
        .await
        .cloned()
    }

    /// `DESC TABLE`: the columns, `Some(Err)` for a type v4 does not validate, `None` for a
    /// table that does not exist.
    async fn describe(&self, table: &str) -> Result<Option<Result<Columns, String>>> {
        describe(&self.sql, table).await
    }
}

async fn describe(sql: &SqlClient, table: &str) -> Result<Option<Result<Columns, String>>> {
    match sql.query(&format!("desc table {table}")).await {
        Ok(r) => Ok(Some(described(&r))),
        Err(snowpipe_streaming::Error::Sql(e)) if e.code.as_deref() == Some("002003") => Ok(None),
        Err(e) => Err(e).with_context(Error::Snowflake, || {
            format!("snowflake.validation=client_side: cannot read the columns of {table} (`desc table {table}`)")
        }),
    }
}

impl TableCheck {
    /// The table's columns as last read.
    fn current(&self) -> Arc<Columns> {
        Arc::clone(
            &self
                .columns
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Evolves the table for `s`, then reads its columns again.
    ///
    /// # Errors
    /// The dead letter's reason: the table does not evolve, or Snowflake refused the `ALTER`.
    async fn evolved(&self, s: &Structural) -> Result<(), String> {
        let evolves = self
            .evolves
            .get_or_try_init(|| self.schema_evolution())
            .await
            .map_err(|e| {
                s.reason(&format!(
                    "{DISABLED}: cannot tell whether the table evolves: {e:#}"
                ))
            })?;
        if !*evolves {
            return Err(s.reason(DISABLED)
                + &format!(
                    "; add the columns to {} yourself, or let the connector's evolution add them: \
                 ALTER TABLE {} SET ENABLE_SCHEMA_EVOLUTION = TRUE",
                    self.table, self.table
                ));
        }
        let mut added = self.evolving.lock().await;
        // Another partition (or instance) may have evolved the table meanwhile.
        self.refresh()
            .await
            .map_err(|e| s.reason(&format!("{DISABLED}: {e:#}")))?;
        let columns = self.current();
        let new: Vec<&(String, &str)> = s.extra.iter().filter(|(c, _)| !columns.has(c)).collect();
        let now = std::time::Instant::now();
        added
            .check(self.caps, &self.table, columns.len(), new.len(), now)
            .map_err(|why| s.reason(CAPPED) + "; " + &why)?;
        added.record(new.len(), now);
        for (column, ty) in new {
            // v4 writes `add column if not exists`; Snowflake answers a column another writer
            // just added with "already exists", taken as done, so the plain form serves both
            // (the emulator does not read `if not exists` there).
            let statement = format!(
                "alter table {} add column {} {ty} comment '{ADDED}'",
                self.table,
                quoted(column)
            );
            match self.sql.query(&statement).await {
                Err(e) if e.to_string().contains("already exists") => continue,
                other => self.answered(other, &statement, s)?,
            }
            tracing::info!(table = %self.table, %column, %ty, "schema evolution: column added");
        }
        for column in s.missing_not_null.iter().chain(&s.null_not_null) {
            let statement = format!(
                "alter table {} alter {} drop not null",
                self.table,
                quoted(column)
            );
            let answer = self.sql.query(&statement).await;
            self.answered(answer, &statement, s)?;
            tracing::info!(table = %self.table, %column, "schema evolution: NOT NULL dropped");
        }
        self.refresh()
            .await
            .map_err(|e| s.reason(&format!("{DISABLED}: {e:#}")))
    }

    /// Snowflake's answer to an evolution statement, as the dead letter's reason when it failed.
    fn answered(
        &self,
        answer: snowpipe_streaming::Result<QueryResult>,
        statement: &str,
        s: &Structural,
    ) -> Result<(), String> {
        answer.map(|_| ()).map_err(|e| {
            s.reason(&format!("{DISABLED}: `{statement}` failed: {e}"))
                + "; grant the connector's role EVOLVE SCHEMA (or OWNERSHIP) on the table, or add the columns yourself"
        })
    }

    /// Reads the columns again.
    async fn refresh(&self) -> Result<()> {
        if let Some(Ok(c)) = describe(&self.sql, &self.table).await? {
            *self
                .columns
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(c);
        }
        Ok(())
    }

    /// `show tables like '<name>'`: whether the table has `ENABLE_SCHEMA_EVOLUTION` (v4's
    /// `shouldEvolveSchema`, its `hasTableOptionEnabled`).
    async fn schema_evolution(&self) -> Result<bool> {
        let name = match self
            .table
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
        {
            Some(inner) => inner.replace("\"\"", "\""),
            None => self.table.clone(),
        };
        let pattern = name
            .replace('\\', "\\\\")
            .replace('_', "\\_")
            .replace('%', "\\%")
            .replace('\'', "''");
        let statement = format!("show tables like '{pattern}'");
        let r = self
            .sql
            .query(&statement)
            .await
            .with_context(Error::Snowflake, || format!("`{statement}`"))?;
        let (Some(n), Some(e)) = (
            r.column_index("name"),
            r.column_index("enable_schema_evolution"),
        ) else {
            return Ok(false);
        };
        Ok(r.rows.iter().any(|row| {
            row.get(n).cloned().flatten().as_deref() == Some(name.as_str())
                && row.get(e).cloned().flatten().as_deref() == Some("Y")
        }))
    }
}

impl TableColumns for TableCheck {
    fn columns(&self) -> Arc<Columns> {
        self.current()
    }

    fn normalize_time(&self) -> bool {
        self.normalize_time
    }

    fn evolve(
        &self,
        s: &Structural,
    ) -> impl std::future::Future<Output = Result<(), String>> + Send {
        self.evolved(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::validate::{self, Outcome};

    fn row(cells: &[&str]) -> Vec<Option<String>> {
        cells.iter().map(|c| Some((*c).to_owned())).collect()
    }

    /// `DESC TABLE`'s columns (`name`, `type`, `kind`, `null?`, `default`, …) as v4's
    /// `ColumnSchema.fromDescribeTableRow` reads them.
    #[test]
    fn desc_table_answers_are_read_as_v4_reads_them() {
        let at = [Some(0), Some(1), Some(3), Some(4)];
        let rows = [
            row(&["RECORD_METADATA", "VARIANT", "COLUMN", "Y", ""]),
            row(&["ID", "NUMBER(38,0)", "COLUMN", "N", ""]),
            row(&[
                "AT",
                "TIMESTAMP_NTZ(9)",
                "COLUMN",
                "N",
                "CURRENT_TIMESTAMP()",
            ]),
        ];
        let columns = columns_of(at, &rows).unwrap();
        assert_eq!(columns.len(), 3);
        assert!(columns.has("ID") && !columns.has("id"));
        // ID is NOT NULL without a default: a row without it is off; AT has a default.
        assert!(matches!(
            validate::row(br#"{"RECORD_METADATA":{}}"#, &columns, true),
            Outcome::Structural(s) if s.missing_not_null == ["ID"]
        ));
        let geography = [row(&["G", "GEOGRAPHY", "COLUMN", "Y", ""])];
        assert!(columns_of(at, &geography)
            .unwrap_err()
            .contains("GEOGRAPHY"));
        assert!(columns_of([None, Some(1), Some(3), None], &rows).is_err());
        assert_eq!(quoted("a\"b"), "\"a\"\"b\"");
    }
}
