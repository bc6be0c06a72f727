//! The emulator's catalog: databases, schemas, tables and pipes declared with Snowflake DDL.
//!
//! A setup script is split into statements with sqlparser's tokenizer (so `;` inside strings
//! and comments is safe). Each statement is parsed with sqlparser's Snowflake dialect, except
//! `CREATE PIPE ... AS COPY INTO ... FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING'))` and
//! `DROP PIPE`, which sqlparser does not accept and which a small dedicated parser reads from
//! the same tokens.
//!
//! Modelled statements: `USE DATABASE|SCHEMA|<db>[.<schema>]`, `CREATE [OR REPLACE] DATABASE`,
//! `CREATE [OR REPLACE] SCHEMA`, `CREATE [OR REPLACE] [TRANSIENT] TABLE` (with columns, or
//! `LIKE`/`CLONE` of a known table), `CREATE [OR REPLACE] PIPE`, `DROP DATABASE|SCHEMA|TABLE|PIPE`.
//! Everything else (roles, users, warehouses, grants, `SET`, `ALTER`, ...) is accepted and
//! ignored, each producing a note `ignored: <statement>`.
//!
//! Identifiers follow Snowflake: unquoted identifiers fold to upper case, quoted identifiers
//! keep their case exactly. As in a Snowflake session, `CREATE DATABASE d` also creates the
//! schema `d.PUBLIC` and makes both current, and `CREATE SCHEMA s` makes `s` current. Each call
//! to [`Catalog::apply_sql`] is one session: it starts with no current database or schema.
//!
//! Every table also has a default pipe `<TABLE>-STREAMING`, which [`Catalog::resolve_pipe`]
//! finds without it being declared.

mod model;
mod pipe_ddl;
mod script;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sqlparser::ast::{
    ColumnOption, CreateTableLikeKind, ObjectName, ObjectNamePart, ObjectType, SchemaName,
    Statement, Use,
};
use sqlparser::dialect::SnowflakeDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

pub use model::{Column, ColumnType, Table};

use pipe_ddl::{CreatePipe, PipeStatement};
use script::RawStatement;

/// Databases, schemas, tables and pipes declared with Snowflake DDL.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    databases: BTreeMap<String, Database>,
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
}

/// One SELECT item of a pipe transform.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectionItem {
    /// For `$1:A.B` or `$1['a']`, the path of JSON keys (`["A", "B"]`, kept case-sensitive as
    /// Snowflake does); `Some(vec![])` for `$1` itself; `None` for any other expression.
    pub path: Option<Vec<String>>,
    /// The cast after `::`, upper-cased (`TIMESTAMP`, `NUMBER(7,2)`), if any.
    pub cast: Option<String>,
    /// The item's text, for messages.
    pub text: String,
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

/// An error applying a DDL script.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The DDL file could not be read.
    #[error("cannot read DDL file {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An error in a DDL file (the message includes the inner error).
    #[error("{path}: {error}")]
    InFile {
        /// The file.
        path: PathBuf,
        /// The error in the file.
        error: Box<CatalogError>,
    },
    /// The script cannot be tokenized (an unterminated string or quoted identifier...).
    #[error("DDL script, line {line}: {message}")]
    Tokenize {
        /// 1-based line of the problem.
        line: u64,
        /// The tokenizer's message.
        message: String,
    },
    /// A statement is invalid.
    #[error("DDL statement {statement} (line {line}) `{snippet}`: {kind}")]
    Statement {
        /// 1-based statement number in the script.
        statement: usize,
        /// 1-based line where the statement starts.
        line: u64,
        /// The start of the statement.
        snippet: String,
        /// What is wrong.
        kind: StatementError,
    },
}

/// What is wrong with one DDL statement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    /// The statement does not parse.
    #[error("syntax error: {0}")]
    Syntax(String),
    /// The statement parses but the emulator does not support it.
    #[error("not supported by the emulator: {0}")]
    Unsupported(String),
    /// A column has a type the emulator does not model.
    #[error("column {column}: {message}")]
    ColumnType {
        /// The column.
        column: String,
        /// Which type and what is supported.
        message: String,
    },
    /// A plain `CREATE` of an object that exists.
    #[error("{kind} {name} already exists; use CREATE OR REPLACE to replace it or IF NOT EXISTS to keep it")]
    AlreadyExists {
        /// `database`, `schema`, `table` or `pipe`.
        kind: &'static str,
        /// The object's qualified name.
        name: String,
    },
    /// A statement refers to an object that does not exist.
    #[error("{kind} {name} does not exist; create it earlier in the script")]
    DoesNotExist {
        /// `database`, `schema`, `table` or `pipe`.
        kind: &'static str,
        /// The object's qualified name.
        name: String,
    },
    /// An unqualified name with no current database or schema.
    #[error(
        "no current {0}: add USE DATABASE/USE SCHEMA before this statement or qualify the name"
    )]
    NoCurrent(&'static str),
}

/// A name from a REST URL that the catalog does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// Unknown database.
    #[error("Database '{0}' does not exist or not authorized.")]
    Database(String),
    /// Unknown schema.
    #[error("Schema '{0}' does not exist or not authorized.")]
    Schema(String),
    /// Unknown pipe.
    #[error("Pipe '{0}' does not exist or not authorized.")]
    Pipe(String),
    /// Unknown table (a default pipe `<TABLE>-STREAMING` of a missing table, or a pipe whose
    /// table was dropped).
    #[error("Table '{0}' does not exist or not authorized.")]
    Table(String),
}

impl LookupError {
    /// The Snowflake error code the REST API answers with (docs/wire-protocol.md §5.2).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Database(_) => "ERR_DATABASE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
            Self::Schema(_) => "ERR_SCHEMA_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
            Self::Pipe(_) => "ERR_PIPE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
            Self::Table(_) => "ERR_TABLE_DOES_NOT_EXIST_NOT_AUTHORIZED",
        }
    }

    /// The HTTP status the REST API answers with: 404 for all of them.
    pub fn http_status(&self) -> u16 {
        404
    }
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

const DEFAULT_PIPE_SUFFIX: &str = "-STREAMING";

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

    /// Reads a DDL file and applies it with [`Catalog::apply_sql`].
    ///
    /// # Errors
    ///
    /// [`CatalogError::Io`] when the file cannot be read, else the errors of
    /// [`Catalog::apply_sql`] wrapped in [`CatalogError::InFile`].
    pub fn apply_sql_file(&mut self, path: &Path) -> Result<Vec<String>, CatalogError> {
        let sql = std::fs::read_to_string(path).map_err(|source| CatalogError::Io {
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

    fn table_exact(&self, database: &str, schema: &str, table: &str) -> Option<&Table> {
        self.databases
            .get(database)?
            .schemas
            .get(schema)?
            .tables
            .get(table)
    }

    fn apply_statement(
        &mut self,
        session: &mut Session,
        statement: &RawStatement,
        notes: &mut Vec<String>,
    ) -> Result<(), StatementError> {
        let ignored = || format!("ignored: {}", statement.snippet());
        if pipe_ddl::is_pipe_statement(&statement.tokens) {
            let parsed = pipe_ddl::parse(&statement.tokens).map_err(StatementError::Syntax)?;
            return self.apply_pipe_statement(session, parsed);
        }
        let parsed = match Parser::parse_sql(&SnowflakeDialect, &statement.text) {
            Ok(parsed) => parsed,
            Err(_) if is_unmodelled(&statement.tokens) => {
                notes.push(ignored());
                return Ok(());
            }
            Err(e) => return Err(StatementError::Syntax(strip_parser_prefix(&e.to_string()))),
        };
        for parsed in parsed {
            if !self.apply_parsed(session, parsed)? {
                notes.push(ignored());
            }
        }
        Ok(())
    }

    /// Applies one parsed statement; `Ok(false)` when the statement is not modelled.
    fn apply_parsed(
        &mut self,
        session: &mut Session,
        statement: Statement,
    ) -> Result<bool, StatementError> {
        match statement {
            Statement::Use(use_) => self.apply_use(session, use_),
            Statement::CreateDatabase {
                db_name,
                if_not_exists,
                or_replace,
                clone,
                ..
            } => {
                if clone.is_some() {
                    return Err(StatementError::Unsupported(
                        "CREATE DATABASE ... CLONE".into(),
                    ));
                }
                let parts = idents(&db_name)?;
                let [name] = parts.as_slice() else {
                    return Err(StatementError::Syntax(format!(
                        "a database name has one part, found {db_name}"
                    )));
                };
                let name = name.normalized();
                let exists = self.databases.contains_key(&name);
                if keep_existing(exists, if_not_exists, or_replace, "database", || {
                    name.clone()
                })? {
                    return Ok(true);
                }
                let mut db = Database::default();
                db.schemas.insert("PUBLIC".into(), Schema::default());
                self.databases.insert(name.clone(), db);
                session.database = Some(name);
                session.schema = Some("PUBLIC".into());
                Ok(true)
            }
            Statement::CreateSchema {
                schema_name,
                if_not_exists,
                or_replace,
                clone,
                ..
            } => {
                if clone.is_some() {
                    return Err(StatementError::Unsupported(
                        "CREATE SCHEMA ... CLONE".into(),
                    ));
                }
                let (SchemaName::Simple(name) | SchemaName::NamedAuthorization(name, _)) =
                    &schema_name
                else {
                    return Err(StatementError::Unsupported(
                        "CREATE SCHEMA AUTHORIZATION without a schema name".into(),
                    ));
                };
                let (database, schema) = self.schema_name(session, &idents(name)?)?;
                let db = self.databases.get_mut(&database).ok_or_else(|| {
                    StatementError::DoesNotExist {
                        kind: "database",
                        name: database.clone(),
                    }
                })?;
                let exists = db.schemas.contains_key(&schema);
                if keep_existing(exists, if_not_exists, or_replace, "schema", || {
                    format!("{database}.{schema}")
                })? {
                    return Ok(true);
                }
                db.schemas.insert(schema.clone(), Schema::default());
                session.database = Some(database);
                session.schema = Some(schema);
                Ok(true)
            }
            Statement::CreateTable(create) => {
                let name = qualify(session, &idents(&create.name)?)?;
                if create.query.is_some() {
                    return Err(StatementError::Unsupported(
                        "CREATE TABLE ... AS SELECT; declare the columns instead".into(),
                    ));
                }
                let source = match (&create.like, &create.clone) {
                    (
                        Some(
                            CreateTableLikeKind::Parenthesized(like)
                            | CreateTableLikeKind::Plain(like),
                        ),
                        _,
                    ) => Some(&like.name),
                    (None, Some(clone)) => Some(clone),
                    (None, None) => None,
                };
                let columns = if let Some(source) = source {
                    let source = qualify(session, &idents(source)?)?;
                    self.table_exact(&source.database, &source.schema, &source.name)
                        .ok_or_else(|| StatementError::DoesNotExist {
                            kind: "table",
                            name: source.display(),
                        })?
                        .columns
                        .clone()
                } else {
                    columns(&create.columns)?
                };
                if columns.is_empty() {
                    return Err(StatementError::Syntax(
                        "a table needs at least one column".into(),
                    ));
                }
                let schema = self.schema_mut(&name)?;
                let exists = schema.tables.contains_key(&name.name);
                if keep_existing(
                    exists,
                    create.if_not_exists,
                    create.or_replace,
                    "table",
                    || name.display(),
                )? {
                    return Ok(true);
                }
                schema.tables.insert(
                    name.name.clone(),
                    Table {
                        database: name.database,
                        schema: name.schema,
                        name: name.name,
                        columns,
                    },
                );
                Ok(true)
            }
            Statement::Drop {
                object_type,
                if_exists,
                names,
                ..
            } => {
                for name in &names {
                    self.drop_object(session, object_type, if_exists, &idents(name)?)?;
                }
                Ok(matches!(
                    object_type,
                    ObjectType::Table | ObjectType::Schema | ObjectType::Database
                ))
            }
            _ => Ok(false),
        }
    }

    fn apply_use(&mut self, session: &mut Session, use_: Use) -> Result<bool, StatementError> {
        match use_ {
            Use::Database(name) | Use::Catalog(name) => {
                let parts = idents(&name)?;
                let [db] = parts.as_slice() else {
                    return Err(StatementError::Syntax(format!(
                        "USE DATABASE takes a one-part name, found {name}"
                    )));
                };
                let db = db.normalized();
                self.require_database(&db)?;
                session.database = Some(db);
                session.schema = None;
                if self.databases[session.database.as_deref().unwrap_or_default()]
                    .schemas
                    .contains_key("PUBLIC")
                {
                    session.schema = Some("PUBLIC".into());
                }
                Ok(true)
            }
            Use::Schema(name) => {
                let (db, schema) = self.schema_name(session, &idents(&name)?)?;
                self.require_schema(&db, &schema)?;
                session.database = Some(db);
                session.schema = Some(schema);
                Ok(true)
            }
            Use::Object(name) => {
                let parts = idents(&name)?;
                match parts.as_slice() {
                    [_] => self.apply_use(session, Use::Database(name)),
                    [_, _] => self.apply_use(session, Use::Schema(name)),
                    _ => Err(StatementError::Syntax(format!(
                        "USE takes a database or database.schema, found {name}"
                    ))),
                }
            }
            _ => Ok(false),
        }
    }

    fn apply_pipe_statement(
        &mut self,
        session: &Session,
        statement: PipeStatement,
    ) -> Result<(), StatementError> {
        match statement {
            PipeStatement::Drop { if_exists, name } => {
                let name = qualify(session, &name)?;
                let removed = self.schema_mut(&name)?.pipes.remove(&name.name);
                if removed.is_none() && !if_exists {
                    return Err(StatementError::DoesNotExist {
                        kind: "pipe",
                        name: name.display(),
                    });
                }
                Ok(())
            }
            PipeStatement::Create(create) => self.create_pipe(session, create),
        }
    }

    fn create_pipe(&mut self, session: &Session, create: CreatePipe) -> Result<(), StatementError> {
        let name = qualify(session, &create.name)?;
        let target = qualify(session, &create.target)?;
        let table = self
            .table_exact(&target.database, &target.schema, &target.name)
            .ok_or_else(|| StatementError::DoesNotExist {
                kind: "table",
                name: target.display(),
            })?;
        if let Some(transform) = &create.transform {
            let targets = transform.target_columns.as_ref();
            if let Some(missing) = targets
                .into_iter()
                .flatten()
                .find(|c| table.column(c).is_none())
            {
                return Err(StatementError::DoesNotExist {
                    kind: "column",
                    name: format!("{}.{missing}", target.display()),
                });
            }
            let slots = targets.map_or(table.columns.len(), Vec::len);
            if transform.items.len() != slots {
                return Err(StatementError::Syntax(format!(
                    "the SELECT has {} items but COPY INTO fills {slots} columns",
                    transform.items.len()
                )));
            }
        }
        let schema = self.schema_mut(&name)?;
        let exists = schema.pipes.contains_key(&name.name);
        if keep_existing(
            exists,
            create.if_not_exists,
            create.or_replace,
            "pipe",
            || name.display(),
        )? {
            return Ok(());
        }
        schema.pipes.insert(
            name.name.clone(),
            PipeDefinition {
                database: name.database,
                schema: name.schema,
                name: name.name,
                table_database: target.database,
                table_schema: target.schema,
                table: target.name,
                match_by_column_name: create.match_by_column_name,
                transform: create.transform,
            },
        );
        Ok(())
    }

    fn drop_object(
        &mut self,
        session: &Session,
        object_type: ObjectType,
        if_exists: bool,
        parts: &[Ident],
    ) -> Result<(), StatementError> {
        let (kind, removed) = match object_type {
            ObjectType::Table => {
                let name = qualify(session, parts)?;
                let removed = self.schema_mut(&name)?.tables.remove(&name.name).is_some();
                ("table", (removed, name.display()))
            }
            ObjectType::Schema => {
                let (db, schema) = self.schema_name(session, parts)?;
                self.require_database(&db)?;
                let removed = self
                    .databases
                    .get_mut(&db)
                    .is_some_and(|d| d.schemas.remove(&schema).is_some());
                ("schema", (removed, format!("{db}.{schema}")))
            }
            ObjectType::Database => {
                let [db] = parts else {
                    return Err(StatementError::Syntax(
                        "a database name has one part".into(),
                    ));
                };
                let db = db.normalized();
                let removed = self.databases.remove(&db).is_some();
                ("database", (removed, db))
            }
            _ => return Ok(()),
        };
        match removed {
            (false, name) if !if_exists => Err(StatementError::DoesNotExist { kind, name }),
            _ => Ok(()),
        }
    }

    /// `schema` or `db.schema` → (database, schema).
    fn schema_name(
        &self,
        session: &Session,
        parts: &[Ident],
    ) -> Result<(String, String), StatementError> {
        match parts {
            [schema] => Ok((
                session
                    .database
                    .clone()
                    .ok_or(StatementError::NoCurrent("database"))?,
                schema.normalized(),
            )),
            [db, schema] => Ok((db.normalized(), schema.normalized())),
            _ => Err(StatementError::Syntax(
                "a schema name has at most 2 parts (database.schema)".into(),
            )),
        }
    }

    fn require_database(&self, db: &str) -> Result<(), StatementError> {
        if self.databases.contains_key(db) {
            Ok(())
        } else {
            Err(StatementError::DoesNotExist {
                kind: "database",
                name: db.into(),
            })
        }
    }

    fn require_schema(&self, db: &str, schema: &str) -> Result<(), StatementError> {
        self.require_database(db)?;
        if self.databases[db].schemas.contains_key(schema) {
            Ok(())
        } else {
            Err(StatementError::DoesNotExist {
                kind: "schema",
                name: format!("{db}.{schema}"),
            })
        }
    }

    fn schema_mut(&mut self, name: &Qualified) -> Result<&mut Schema, StatementError> {
        self.require_schema(&name.database, &name.schema)?;
        Ok(self
            .databases
            .get_mut(&name.database)
            .and_then(|db| db.schemas.get_mut(&name.schema))
            .expect("checked above"))
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
fn unquote(name: &str) -> Option<String> {
    let inner = name.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.is_empty()).then(|| inner.replace("\"\"", "\""))
}

/// The default pipe of table `table` as a client names it in a URL (docs/protocol.md
/// "Names"): `T-STREAMING`, or `"My Table-STREAMING"` for a quoted table name.
pub fn default_pipe_for(table: &str) -> String {
    match table.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) if !inner.is_empty() => format!("\"{inner}-STREAMING\""),
        _ => format!("{table}-STREAMING"),
    }
}

/// `T-STREAMING` (suffix in any case) → `T`.
fn strip_default_pipe_suffix(pipe: &str) -> Option<&str> {
    let split = pipe.len().checked_sub(DEFAULT_PIPE_SUFFIX.len())?;
    let suffix = pipe.get(split..)?;
    (split > 0 && suffix.eq_ignore_ascii_case(DEFAULT_PIPE_SUFFIX)).then(|| &pipe[..split])
}

/// A 1-, 2- or 3-part name → (database, schema, name), using the session for missing parts.
fn qualify(session: &Session, parts: &[Ident]) -> Result<Qualified, StatementError> {
    let current =
        |value: &Option<String>, what| value.clone().ok_or(StatementError::NoCurrent(what));
    let (database, schema, name) = match parts {
        [name] => (
            current(&session.database, "database")?,
            current(&session.schema, "schema")?,
            name.normalized(),
        ),
        [schema, name] => (
            current(&session.database, "database")?,
            schema.normalized(),
            name.normalized(),
        ),
        [db, schema, name] => (db.normalized(), schema.normalized(), name.normalized()),
        _ => {
            return Err(StatementError::Syntax(
                "a name has at most 3 parts (database.schema.object)".into(),
            ))
        }
    };
    Ok(Qualified {
        database,
        schema,
        name,
    })
}

fn idents(name: &ObjectName) -> Result<Vec<Ident>, StatementError> {
    name.0
        .iter()
        .map(|part| match part {
            ObjectNamePart::Identifier(ident) => Ok(Ident {
                value: ident.value.clone(),
                quoted: ident.quote_style.is_some(),
            }),
            ObjectNamePart::Function(_) => Err(StatementError::Unsupported(format!(
                "identifier functions in names ({name})"
            ))),
        })
        .collect()
}

fn columns(defs: &[sqlparser::ast::ColumnDef]) -> Result<Vec<Column>, StatementError> {
    let mut out: Vec<Column> = Vec::with_capacity(defs.len());
    for def in defs {
        let name = Ident {
            value: def.name.value.clone(),
            quoted: def.name.quote_style.is_some(),
        }
        .normalized();
        if out.iter().any(|c| c.name == name) {
            return Err(StatementError::Syntax(format!("duplicate column {name}")));
        }
        let ty = ColumnType::from_data_type(&def.data_type).map_err(|message| {
            StatementError::ColumnType {
                column: name.clone(),
                message,
            }
        })?;
        let nullable = !def.options.iter().any(|o| {
            matches!(
                o.option,
                ColumnOption::NotNull | ColumnOption::PrimaryKey(_)
            )
        });
        out.push(Column { name, ty, nullable });
    }
    Ok(out)
}

/// Statements sqlparser may fail on that the emulator would ignore anyway: access control,
/// session settings, inspection, and CREATE/DROP/ALTER of objects it does not model.
fn is_unmodelled(tokens: &[Token]) -> bool {
    let words: Vec<String> = tokens
        .iter()
        .take(6)
        .map_while(|t| match t {
            Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
            _ => None,
        })
        .collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    const MODELLED: [&str; 13] = [
        "TABLE",
        "DATABASE",
        "SCHEMA",
        "PIPE",
        "TRANSIENT",
        "TEMPORARY",
        "TEMP",
        "LOCAL",
        "GLOBAL",
        "VOLATILE",
        "HYBRID",
        "OR",
        "IF",
    ];
    match words.as_slice() {
        ["GRANT" | "REVOKE" | "SHOW" | "DESC" | "DESCRIBE" | "ALTER" | "COMMENT" | "SET"
        | "UNSET", ..] => true,
        ["CREATE", "OR", "REPLACE", kind, ..] | ["CREATE", kind, ..] | ["DROP", kind, ..] => {
            !MODELLED.contains(kind)
        }
        _ => false,
    }
}

/// sqlparser's messages start with "sql parser error: ".
fn strip_parser_prefix(message: &str) -> String {
    message
        .strip_prefix("sql parser error: ")
        .unwrap_or(message)
        .to_string()
}

/// Snowflake's rule for `CREATE` of an object that may already exist: `IF NOT EXISTS` keeps it
/// (`Ok(true)`: nothing more to do), `OR REPLACE` replaces it (`Ok(false)`: go on and create),
/// and a plain `CREATE` is an [`StatementError::AlreadyExists`] error.
fn keep_existing(
    exists: bool,
    if_not_exists: bool,
    or_replace: bool,
    kind: &'static str,
    name: impl FnOnce() -> String,
) -> Result<bool, StatementError> {
    if !exists || (or_replace && !if_not_exists) {
        return Ok(false);
    }
    if if_not_exists {
        return Ok(true);
    }
    Err(StatementError::AlreadyExists { kind, name: name() })
}
