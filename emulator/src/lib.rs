//! `snowpipe-emulator`: a local server of Snowflake's Snowpipe Streaming REST API
//! (high-performance architecture), faithful enough that our client and the official Python SDK
//! stream rows into it unchanged.
//!
//! It is an independent implementation: it shares no wire types with the SDK crate.
//!
//! ```no_run
//! # async fn demo() -> Result<(), snowpipe_emulator::EmulatorError> {
//! use snowpipe_emulator::{Emulator, EmulatorConfig};
//! let config = EmulatorConfig::for_tests()
//!     .with_ddl("CREATE DATABASE D; CREATE SCHEMA S; CREATE TABLE T (ID NUMBER, NAME VARCHAR);");
//! let emu = Emulator::start(config).await?;
//! println!("listening on {}", emu.url());
//! // … point a client at emu.url(), then:
//! let rows = emu.query(r#"SELECT COUNT(*) FROM "D.S.T""#)?;
//! # let _ = rows;
//! emu.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Storage: each Snowflake table `DB.SCHEMA.TABLE` is the SQLite table `"DB.SCHEMA.TABLE"` in
//! `<data-dir>/emulator.sqlite3`; see [`storage`].

#![warn(missing_docs)]

mod auth;
pub mod catalog;
mod channels;
pub mod config;
mod console;
pub mod faults;
mod http;
mod key_pair;
pub mod limits;
mod offsets;
mod pending_budget;
mod private_fs;
pub mod requests;
mod server;
mod service;
mod sql_api;
mod sql_sandbox;
pub mod storage;
mod tls;
mod token_secret;

pub use auth::{public_key_fingerprint, AuthError, KeyError};
pub mod convert;
pub mod offline;
pub use config::{DuplicateAppendPolicy, EmulatorConfig, TlsMode, MAX_PAYLOAD_BYTES};
pub use faults::{Endpoint, FaultAction, FaultHandle, FaultPlan, FaultRule, FaultSpecError};
pub use key_pair::KeyPair;
pub use limits::Limits;
pub use offsets::offset_span_violation;
pub use requests::RequestRecord;
pub use server::Emulator;

/// A cause kept inside an [`EmulatorError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why the emulator could not start or answer a library call. Each variant keeps the message
/// (what failed, and where) and, when there was one, the underlying error as its
/// [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmulatorError {
    /// Invalid configuration (a public key, a file).
    #[error("configuration error: {message}")]
    Config {
        /// What is wrong.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
    /// The DDL could not be applied.
    #[error("DDL error: {message}")]
    Catalog {
        /// What is wrong.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
    /// TLS setup failed.
    #[error("TLS error: {message}")]
    Tls {
        /// What is wrong.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
    /// Socket or file error.
    #[error("I/O error: {message}")]
    Io {
        /// What is wrong.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
    /// SQLite error.
    #[error("storage error: {message}")]
    Storage {
        /// What is wrong.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
}

impl EmulatorError {
    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::Config {
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn catalog(message: impl Into<String>) -> Self {
        Self::Catalog {
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn tls(message: impl Into<String>) -> Self {
        Self::Tls {
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn io(message: impl Into<String>) -> Self {
        Self::Io {
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn storage(message: impl Into<String>) -> Self {
        Self::Storage {
            message: message.into(),
            source: None,
        }
    }

    /// Keeps `cause` as this error's source.
    pub(crate) fn with_source(mut self, cause: impl Into<BoxError>) -> Self {
        let (Self::Config { source, .. }
        | Self::Catalog { source, .. }
        | Self::Tls { source, .. }
        | Self::Io { source, .. }
        | Self::Storage { source, .. }) = &mut self;
        *source = Some(cause.into());
        self
    }
}

/// Reads the status of a data directory without a running emulator (what
/// `snowpipe-emulator status --data-dir DIR` prints): pipes from the stored DDL, channels with
/// their committed offset tokens and counters, and row counts per table.
///
/// # Errors
/// When the directory holds no emulator database.
pub fn status_from_data_dir(dir: &std::path::Path) -> Result<serde_json::Value, EmulatorError> {
    let conn = storage::open_read_only(dir)?;
    let mut catalog = catalog::Catalog::new();
    for sql in storage::stored_ddl(&conn)? {
        catalog
            .apply_sql(&sql)
            .map_err(|e| EmulatorError::catalog(e.to_string()).with_source(e))?;
    }
    // Default pipes exist from their first use (docs/protocol.md "Table features").
    let created = storage::created_default_pipes(&conn)
        .map_err(|e| EmulatorError::storage(e.to_string()).with_source(e))?;
    let pipes: Vec<serde_json::Value> = catalog
        .pipes()
        .into_iter()
        .filter(|p| {
            !p.is_default
                || created.iter().any(|(d, s, n)| {
                    (d.as_str(), s.as_str(), n.as_str())
                        == (p.database.as_str(), p.schema.as_str(), p.name.as_str())
                })
        })
        .map(|p| {
            serde_json::json!({"database": p.database, "schema": p.schema, "name": p.name,
                               "table": p.table, "is_default": p.is_default})
        })
        .collect();
    let mut tables = Vec::new();
    for t in catalog.tables() {
        let q = t.qualified_name();
        let sql = format!("SELECT COUNT(*) FROM \"{}\"", q.replace('"', "\"\""));
        let rows = storage::query(&conn, &sql)
            .ok()
            .and_then(|(_, r)| r.first().and_then(|r| r.first()).cloned())
            .unwrap_or(serde_json::Value::Null);
        tables.push(serde_json::json!({"name": q, "rows": rows}));
    }
    let (cols, rows) = storage::query(&conn, "SELECT * FROM _emulator_channels ORDER BY 1,2,3,4")?;
    let channels: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|r| serde_json::Value::Object(cols.iter().cloned().zip(r).collect()))
        .collect();
    Ok(serde_json::json!({
        "database_file": dir.join(storage::DB_FILE).display().to_string(),
        "pipes": pipes, "channels": channels, "tables": tables,
    }))
}
