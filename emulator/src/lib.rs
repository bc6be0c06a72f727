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
//! `<data-dir>/emulator.sqlite3`; [`offline`] reads it without a server.
//!
//! The catalog, the row conversion and the storage (`catalog`, `convert`, `storage`) are
//! internal: public only with the feature `internals`, which exists for this crate's own
//! integration tests (its dev-dependency on itself enables it) and is not a stable API.
//! [`offline`] is the stable surface over them.

#![warn(missing_docs)]

mod api_error;
mod auth;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod catalog;
#[cfg(not(feature = "internals"))]
#[allow(dead_code)] // what only the integration tests call
mod catalog;
mod channels;
pub mod classic;
pub mod clock;
pub mod config;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod convert;
#[cfg(not(feature = "internals"))]
#[allow(dead_code)] // what only the integration tests call
mod convert;
mod error;
pub mod faults;
mod http;
mod key_pair;
pub mod limits;
pub mod offline;
mod offsets;
mod pending_budget;
mod private_fs;
pub mod requests;
mod server;
mod service;
mod sql_api;
mod sql_sandbox;
mod stage;
mod status;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod storage;
#[cfg(not(feature = "internals"))]
#[allow(dead_code)] // what only the integration tests call
mod storage;
mod tls;
mod token_secret;

pub use auth::{public_key_fingerprint, AuthError, KeyError};
pub use classic::ClassicChannel;
pub use clock::Clock;
pub use config::{DuplicateAppendPolicy, EmulatorConfig, TlsMode, MAX_PAYLOAD_BYTES};
pub use convert::{BinaryFormat, DEFAULT_TIMEZONE};
pub use error::{BoxError, EmulatorError};
pub use faults::{Endpoint, FaultAction, FaultHandle, FaultPlan, FaultRule, FaultSpecError};
pub use key_pair::{write_private_key, KeyFiles, KeyPair, PASSPHRASE_VAR};
pub use limits::Limits;
pub use offsets::offset_span_violation;

/// Bounds the SQLite memory of each SQL API statement (96 MiB, one row's values included) in
/// this process, by giving SQLite the emulator's allocator. SQLite takes an allocator only
/// before it is first used in the process, and not safely while another thread starts it: call
/// this first thing in `main`, before anything opens a database (the `snowpipe-emulator`
/// binary does). Returns whether the bound is in force; without it each value is still bounded
/// (16 MiB) and each result (64 MiB), not one row's values together.
pub fn bound_sql_statement_memory() -> bool {
    sql_sandbox::heap::install()
}
pub use requests::RequestRecord;
pub use server::{ChannelTotals, Emulator};
#[cfg(feature = "internals")]
#[doc(hidden)]
pub use stage::upload::aws_chunked;
pub use stage::{DEFAULT_MAX_STAGE_BYTES, DEFAULT_MAX_STAGE_FILES};
pub use status::status_from_data_dir;
