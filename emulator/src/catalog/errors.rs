//! What the catalog reports: script errors (with the statement, line and snippet), statement
//! errors, and lookup errors with their REST error code and HTTP status.

use std::path::PathBuf;

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
    /// The statement parses but does not compile (Snowflake's "SQL compilation error").
    #[error("SQL compilation error: {0}")]
    Compilation(String),
    /// `ALTER COLUMN … SET DATA TYPE` to a type Snowflake does not change the column to in
    /// place (a narrowing, another scale, another type): its code and message.
    #[error("SQL compilation error: {message}")]
    TypeChange {
        /// Snowflake's error code (`040050`, `002108`).
        code: &'static str,
        /// `cannot change column C from type X to Y[ because …]`.
        message: String,
    },
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
    /// The Snowflake error code the REST API answers with (docs/protocol-semantics.md §5.2).
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
