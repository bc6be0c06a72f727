//! The emulator's catalog: databases, schemas, tables and pipes declared with Snowflake DDL.
//!
//! A setup script is split into statements with sqlparser's tokenizer (so `;` inside strings
//! and comments is safe). Each statement is parsed with sqlparser's Snowflake dialect, except
//! `CREATE PIPE ... AS COPY INTO ... FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING'))` and
//! `DROP PIPE`, which sqlparser does not accept and which a small dedicated parser reads from
//! the same tokens. A pipe's transform (its SELECT list and `WHERE`) is parsed with sqlparser
//! and checked at `CREATE PIPE`: expressions the emulator does not evaluate are refused there.
//!
//! Modelled statements: `USE DATABASE|SCHEMA|<db>[.<schema>]`, `CREATE [OR REPLACE] DATABASE`,
//! `CREATE [OR REPLACE] SCHEMA`, `CREATE [OR REPLACE] [TRANSIENT] TABLE` (with columns, or
//! `LIKE`/`CLONE` of a known table), `CREATE [OR REPLACE] PIPE`, `DROP DATABASE|SCHEMA|TABLE|PIPE`,
//! `ALTER TABLE … ADD [COLUMN]` and `ALTER TABLE … ALTER [COLUMN] … DROP|SET NOT NULL` (what
//! schema evolution stores), `ALTER TABLE … SET ENABLE_SCHEMA_EVOLUTION = TRUE|FALSE` (what the
//! Kafka connector sends; alone in its `SET`).
//! `ALTER USER … SET RSA_PUBLIC_KEY[_2] = '…'` records the key for the user in that slot
//! (`ALTER USER … UNSET RSA_PUBLIC_KEY[_2]` removes it; see `user_keys.rs`),
//! `ALTER USER … SET DEFAULT_ROLE = R` / `CREATE USER … DEFAULT_ROLE = R` the user's default
//! role, and `GRANT ROLE R TO USER U` / `REVOKE ROLE R FROM USER U` the roles a user may name
//! in a SQL API request. Everything else (roles, users, warehouses, other grants, `SET`, other
//! `ALTER`s, ...) is accepted and ignored, each producing a note `ignored: <statement>` (the
//! notes of the configured scripts are logged at start and kept: `Emulator::ddl_notes`).
//!
//! Identifiers follow Snowflake: unquoted identifiers fold to upper case, quoted identifiers
//! keep their case exactly. As in a Snowflake session, `CREATE DATABASE d` also creates the
//! schema `d.PUBLIC` and makes both current, and `CREATE SCHEMA s` makes `s` current. Each call
//! to [`Catalog::apply_sql`] is one session: it starts with no current database or schema.
//!
//! Every table also has a default pipe `<TABLE>-STREAMING`, which [`Catalog::resolve_pipe`]
//! finds without it being declared.

mod apply;
mod errors;
mod model;
mod pipe_compile;
mod pipe_ddl;
pub(crate) mod pipe_expr;
mod script;
mod user_keys;

pub use user_keys::UserKey;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

pub use errors::{CatalogError, LookupError, StatementError};
pub(crate) use model::{check_name_length, same_name_ignoring_case};
pub use model::{storage_names, Column, ColumnDefault, ColumnType, Table, MAX_COLUMN_NAME_CHARS};

/// Databases, schemas, tables and pipes declared with Snowflake DDL.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    databases: BTreeMap<String, Database>,
    user_keys: Vec<UserKey>,
    /// `DEFAULT_ROLE` by user, as DDL set it.
    default_roles: BTreeMap<String, String>,
    /// `(user, role)` pairs `GRANT ROLE <role> TO USER <user>` granted (and no `REVOKE`
    /// took back).
    user_roles: BTreeSet<(String, String)>,
}

#[derive(Debug, Clone, Default)]
struct Database {
    schemas: BTreeMap<String, Schema>,
}

#[derive(Debug, Clone, Default)]
struct Schema {
    tables: BTreeMap<String, Table>,
    pipes: BTreeMap<String, PipeDefinition>,
}

/// A pipe found by [`Catalog::resolve_pipe`], with the names as stored in the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedPipe<'a> {
    /// The pipe's database, as stored.
    pub database: &'a str,
    /// The pipe's schema, as stored.
    pub schema: &'a str,
    /// The pipe's name, as stored (`<TABLE>-STREAMING` for a default pipe).
    pub pipe: String,
    /// The table the pipe loads into.
    pub table: &'a Table,
}

/// One pipe, for status pages (see [`Catalog::pipes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipeInfo {
    /// The pipe's database.
    pub database: String,
    /// The pipe's schema.
    pub schema: String,
    /// The pipe's name.
    pub name: String,
    /// The target table's name (unqualified; see `table_qualified`).
    pub table: String,
    /// `true` for a table's default pipe `<TABLE>-STREAMING`.
    pub is_default: bool,
    /// The target table's qualified name `DB.SCHEMA.TABLE`.
    pub table_qualified: String,
}

/// How a pipe maps JSON keys to columns (`MATCH_BY_COLUMN_NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchByColumnName {
    /// `CASE_INSENSITIVE` (also the default pipe's mode).
    CaseInsensitive,
    /// `CASE_SENSITIVE`.
    CaseSensitive,
    /// `NONE`: the pipe has a transform (`FROM (SELECT $1:C1, ...)`).
    None,
}

/// The transform of a pipe declared with `COPY INTO t [(cols)] FROM (SELECT ... FROM TABLE(...))`.
#[derive(Debug, Clone, PartialEq)]
pub struct PipeTransform {
    /// The column list after `COPY INTO t`, if any (normalized names); else the SELECT items
    /// fill the table's columns in order.
    pub target_columns: Option<Vec<String>>,
    /// The SELECT items, in order.
    pub items: Vec<ProjectionItem>,
    /// The `WHERE` predicate: rows for which it is not TRUE are dropped.
    pub(crate) filter: Option<pipe_expr::PipeExpr>,
}

/// One SELECT item of a pipe transform.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectionItem {
    /// For `$1:A.B` or `$1['a']` (optionally cast), the path of JSON keys (`["A", "B"]`, kept
    /// case-sensitive as Snowflake does); `Some(vec![])` for `$1` itself; `None` for any other
    /// expression (which the pipe evaluates all the same).
    pub path: Option<Vec<String>>,
    /// The cast after `::`, upper-cased (`TIMESTAMP`, `NUMBER(7,2)`), if any.
    pub cast: Option<String>,
    /// The item's text, for messages.
    pub text: String,
    /// The item's expression, as the emulator evaluates it.
    pub(crate) expr: pipe_expr::PipeExpr,
}

/// A pipe declared with `CREATE PIPE`.
#[derive(Debug, Clone, PartialEq)]
pub struct PipeDefinition {
    /// The pipe's database.
    pub database: String,
    /// The pipe's schema.
    pub schema: String,
    /// The pipe's name.
    pub name: String,
    /// The target table's database.
    pub table_database: String,
    /// The target table's schema.
    pub table_schema: String,
    /// The target table's name.
    pub table: String,
    /// The `MATCH_BY_COLUMN_NAME` option.
    pub match_by_column_name: MatchByColumnName,
    /// The transform, for the `FROM (SELECT ...)` form.
    pub transform: Option<PipeTransform>,
}

/// An identifier as written: unquoted identifiers fold to upper case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ident {
    pub(crate) value: String,
    pub(crate) quoted: bool,
}

impl Ident {
    pub(crate) fn normalized(&self) -> String {
        if self.quoted {
            self.value.clone()
        } else {
            self.value.to_uppercase()
        }
    }
}

/// The current database and schema of a script.
#[derive(Debug, Default)]
struct Session {
    database: Option<String>,
    schema: Option<String>,
    /// `ERROR_LOGGING = TRUE|FALSE` of the `CREATE TABLE` being applied (sqlparser does not
    /// read it; `apply_statement` takes it out of the text).
    error_logging: Option<bool>,
}

/// A fully qualified object name.
#[derive(Debug, Clone)]
struct Qualified {
    database: String,
    schema: String,
    name: String,
}

impl Qualified {
    fn display(&self) -> String {
        format!("{}.{}.{}", self.database, self.schema, self.name)
    }
}

/// The suffix of a table's default pipe, `<TABLE>-STREAMING` (docs/protocol.md "Names"): the
/// emulator's one home for the rule. It stands in for Snowflake and does not link the client,
/// whose rule is `snowpipe_streaming::default_pipe_name`; the SDK's tests against the emulator
/// hold the two to the same names.
pub(crate) const DEFAULT_PIPE_SUFFIX: &str = "-STREAMING";

impl Catalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies a whole DDL script and returns one note per ignored statement
    /// (`ignored: GRANT ...`).
    ///
    /// The script is applied atomically: on error the catalog is left unchanged.
    ///
    /// # Errors
    ///
    /// [`CatalogError::Tokenize`] when the text cannot be tokenized, and
    /// [`CatalogError::Statement`] (naming the statement number, its line and a snippet) for a
    /// syntax error, an unsupported column type or construct, a duplicate `CREATE`, or a
    /// reference to an unknown database, schema or table.
    pub fn apply_sql(&mut self, sql: &str) -> Result<Vec<String>, CatalogError> {
        let statements = script::split_statements(sql)?;
        let mut next = self.clone();
        let mut session = Session::default();
        let mut notes = Vec::new();
        for statement in &statements {
            next.apply_statement(&mut session, statement, &mut notes)
                .map_err(|kind| CatalogError::Statement {
                    statement: statement.number,
                    line: statement.line,
                    snippet: statement.snippet(),
                    kind,
                })?;
        }
        *self = next;
        Ok(notes)
    }

    /// The public keys `ALTER USER … SET RSA_PUBLIC_KEY` registered, in script order.
    pub fn user_keys(&self) -> &[UserKey] {
        &self.user_keys
    }

    /// The default role DDL gave `user` (`ALTER USER … SET DEFAULT_ROLE = R`, or
    /// `CREATE USER … DEFAULT_ROLE = R`): the user's name exactly, else ignoring case, as the
    /// JWT's `sub` names users in upper case.
    pub fn default_role(&self, user: &str) -> Option<&str> {
        self.default_roles
            .get(user)
            .or_else(|| {
                self.default_roles
                    .iter()
                    .find(|(u, _)| u.eq_ignore_ascii_case(user))
                    .map(|(_, r)| r)
            })
            .map(String::as_str)
    }

    /// Whether `GRANT ROLE <role> TO USER <user>` granted `role` to `user` (the user's name
    /// exactly, else ignoring case, as [`Catalog::default_role`]; the role ignoring case and
    /// surrounding double quotes, as the emulator's `--grant` compares roles).
    pub fn role_granted_to_user(&self, user: &str, role: &str) -> bool {
        let role = role.trim_matches('"');
        self.user_roles
            .iter()
            .any(|(u, r)| u.eq_ignore_ascii_case(user) && r.eq_ignore_ascii_case(role))
    }

    /// Reads a DDL file (at most [`crate::option_file::MAX_DDL_FILE_BYTES`], as the binary's
    /// `--ddl`: opened without blocking, so a device, a FIFO nobody writes or a sparse file is
    /// refused, not read whole nor waited on) and applies it with [`Catalog::apply_sql`].
    ///
    /// # Errors
    ///
    /// [`CatalogError::Io`] when the file cannot be read, is past the limit or not UTF-8, else the errors of
    /// [`Catalog::apply_sql`] wrapped in [`CatalogError::InFile`].
    pub fn apply_sql_file(&mut self, path: &Path) -> Result<Vec<String>, CatalogError> {
        let sql = crate::base::option_file::read(
            path,
            "DDL",
            crate::base::option_file::MAX_DDL_FILE_BYTES,
        )
        .and_then(|bytes| {
            String::from_utf8(bytes).map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, "it is not UTF-8 text")
            })
        })
        .map_err(|source| CatalogError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        self.apply_sql(&sql).map_err(|error| CatalogError::InFile {
            path: path.to_path_buf(),
            error: Box::new(error),
        })
    }

    /// Resolves a pipe named in a REST URL (names as sent by clients, already percent-decoded).
    ///
    /// Each of the three names is looked up exactly first, else upper-cased (as an unquoted
    /// identifier would be). Declared pipes come first; otherwise a name ending in
    /// `-STREAMING` (any case) is the default pipe of the table named by its prefix.
    ///
    /// # Errors
    ///
    /// [`LookupError::Database`], [`LookupError::Schema`] or [`LookupError::Pipe`] for unknown
    /// names; [`LookupError::Table`] for the default pipe of an unknown table or a pipe whose
    /// table was dropped.
    pub fn resolve_pipe(
        &self,
        database: &str,
        schema: &str,
        pipe: &str,
    ) -> Result<ResolvedPipe<'_>, LookupError> {
        let (db_name, db) = lookup(&self.databases, database)
            .ok_or_else(|| LookupError::Database(database.into()))?;
        let (schema_name, sch) =
            lookup(&db.schemas, schema).ok_or_else(|| LookupError::Schema(schema.into()))?;
        if let Some((_, definition)) = lookup(&sch.pipes, pipe) {
            let table = self
                .table_exact(
                    &definition.table_database,
                    &definition.table_schema,
                    &definition.table,
                )
                .ok_or_else(|| {
                    LookupError::Table(format!(
                        "{}.{}.{}",
                        definition.table_database, definition.table_schema, definition.table
                    ))
                })?;
            return Ok(ResolvedPipe {
                database: db_name,
                schema: schema_name,
                pipe: definition.name.clone(),
                table,
            });
        }
        let quoted = unquote(pipe);
        let default_table = match &quoted {
            // `"My Table-STREAMING"` → the table `"My Table"`, case-sensitive.
            Some(exact) => strip_default_pipe_suffix(exact).map(|t| format!("\"{t}\"")),
            None => strip_default_pipe_suffix(pipe).map(str::to_owned),
        };
        if let Some(table_name) = default_table.as_deref() {
            let (_, table) = lookup(&sch.tables, table_name)
                .ok_or_else(|| LookupError::Table(table_name.into()))?;
            return Ok(ResolvedPipe {
                database: db_name,
                schema: schema_name,
                pipe: table.default_pipe_name(),
                table,
            });
        }
        Err(LookupError::Pipe(pipe.into()))
    }

    /// The definition of a declared pipe (`None` for default pipes and unknown names), looked
    /// up like [`Catalog::resolve_pipe`] does. Use it to read a pipe's transform.
    pub fn pipe_definition(
        &self,
        database: &str,
        schema: &str,
        pipe: &str,
    ) -> Option<&PipeDefinition> {
        let (_, db) = lookup(&self.databases, database)?;
        let (_, sch) = lookup(&db.schemas, schema)?;
        lookup(&sch.pipes, pipe).map(|(_, p)| p)
    }

    /// A declared pipe by its exact (normalized) names, as [`Catalog::table_exact`].
    pub fn pipe_exact(&self, database: &str, schema: &str, pipe: &str) -> Option<&PipeDefinition> {
        self.databases
            .get(database)?
            .schemas
            .get(schema)?
            .pipes
            .get(pipe)
    }

    /// A table, each name looked up exactly first, else upper-cased.
    pub fn table(&self, database: &str, schema: &str, table: &str) -> Option<&Table> {
        let (_, db) = lookup(&self.databases, database)?;
        let (_, sch) = lookup(&db.schemas, schema)?;
        lookup(&sch.tables, table).map(|(_, t)| t)
    }

    /// All tables, ordered by database, schema and name.
    pub fn tables(&self) -> impl Iterator<Item = &Table> {
        self.databases
            .values()
            .flat_map(|db| db.schemas.values())
            .flat_map(|schema| schema.tables.values())
    }

    /// Whether a database exists (exact name, else upper-cased).
    pub fn has_database(&self, database: &str) -> bool {
        lookup(&self.databases, database).is_some()
    }

    /// Whether a schema exists (exact names, else upper-cased).
    pub fn has_schema(&self, database: &str, schema: &str) -> bool {
        lookup(&self.databases, database)
            .is_some_and(|(_, db)| lookup(&db.schemas, schema).is_some())
    }

    /// Declared pipes and every table's default pipe, ordered by database and schema, with
    /// declared pipes first.
    pub fn pipes(&self) -> Vec<PipeInfo> {
        let mut out = Vec::new();
        for (db_name, db) in &self.databases {
            for (schema_name, schema) in &db.schemas {
                for pipe in schema.pipes.values() {
                    out.push(PipeInfo {
                        database: db_name.clone(),
                        schema: schema_name.clone(),
                        name: pipe.name.clone(),
                        table: pipe.table.clone(),
                        is_default: false,
                        table_qualified: format!(
                            "{}.{}.{}",
                            pipe.table_database, pipe.table_schema, pipe.table
                        ),
                    });
                }
                for table in schema.tables.values() {
                    out.push(PipeInfo {
                        database: db_name.clone(),
                        schema: schema_name.clone(),
                        name: table.default_pipe_name(),
                        table: table.name.clone(),
                        is_default: true,
                        table_qualified: table.qualified_name(),
                    });
                }
            }
        }
        out
    }

    /// Whether a database of exactly this name exists (the SQL API's `database` field is
    /// case-sensitive).
    pub fn has_database_exact(&self, database: &str) -> bool {
        self.databases.contains_key(database)
    }

    /// Whether a schema of exactly these names exists.
    pub fn has_schema_exact(&self, database: &str, schema: &str) -> bool {
        self.databases
            .get(database)
            .is_some_and(|db| db.schemas.contains_key(schema))
    }

    /// A table by its exact (normalized) names: unquoted identifiers already upper-cased,
    /// quoted ones as written.
    pub fn table_exact(&self, database: &str, schema: &str, table: &str) -> Option<&Table> {
        self.databases
            .get(database)?
            .schemas
            .get(schema)?
            .tables
            .get(table)
    }
}

/// Exact key first, else the upper-cased key.
fn lookup<'a, V>(map: &'a BTreeMap<String, V>, name: &str) -> Option<(&'a str, &'a V)> {
    if let Some(exact) = unquote(name) {
        // A quoted identifier in a URL is case-sensitive (docs/protocol.md "Names").
        return map.get_key_value(&exact).map(|(k, v)| (k.as_str(), v));
    }
    map.get_key_value(name)
        .or_else(|| map.get_key_value(&name.to_uppercase()))
        .map(|(k, v)| (k.as_str(), v))
}

/// `"My ""x"""` → `My "x"`; `None` when `name` is not a quoted identifier.
pub(crate) fn unquote(name: &str) -> Option<String> {
    let inner = name.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.is_empty()).then(|| inner.replace("\"\"", "\""))
}

/// The default pipe of table `table` as a client names it in a URL (docs/protocol.md
/// "Names"): `T-STREAMING`, or `"My Table-STREAMING"` for a quoted table name.
pub fn default_pipe_for(table: &str) -> String {
    match table.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) if !inner.is_empty() => format!("\"{inner}{DEFAULT_PIPE_SUFFIX}\""),
        _ => format!("{table}{DEFAULT_PIPE_SUFFIX}"),
    }
}

/// `T-STREAMING` (suffix in any case) → `T`.
fn strip_default_pipe_suffix(pipe: &str) -> Option<&str> {
    let split = pipe.len().checked_sub(DEFAULT_PIPE_SUFFIX.len())?;
    let suffix = pipe.get(split..)?;
    (split > 0 && suffix.eq_ignore_ascii_case(DEFAULT_PIPE_SUFFIX)).then(|| &pipe[..split])
}

/// The first table a DDL script creates in a new database `D` (tests).
///
/// # Panics
/// When the script fails or creates no table.
#[cfg(test)]
pub(crate) fn table_from_ddl(sql: &str) -> Table {
    let mut catalog = Catalog::new();
    catalog
        .apply_sql(&format!("CREATE DATABASE D; {sql}"))
        .unwrap();
    let table = catalog.tables().next().unwrap().clone();
    table
}
