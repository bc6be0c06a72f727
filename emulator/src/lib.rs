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
//!
//! The rooms stand on floors, lowest first; a room uses only the rooms on its floor or below
//! (`module_graph_tests` checks, with this order):
//!
//! 1. `base`: errors (`ApiError`, [`EmulatorError`]), the [`clock`], the service's [`limits`],
//!    the pending-memory budget, [`faults`], the [`requests`] log and private files;
//! 2. `security`: authentication and role grants, the scoped-token secret, [`KeyPair`], TLS;
//! 3. `catalog`: tables and pipes from Snowflake DDL;
//!    `sql_sandbox`: SQLite's bounds for what users run (the authorizer over the catalog's
//!    tables, time and memory limits, bounded `LIKE`), which the rows and the storage follow;
//! 4. `convert`: JSON rows into typed SQLite values, pipe transforms, the value printers;
//!    `storage`: SQLite, its writer thread and readers;
//!    [`offline`]: the stored data and the row conversion without a server
//!    ([`status_from_data_dir`] too);
//! 5. `channels`: the channel state machine and commit queue;
//!    `stage`: the file mode's stage and its S3 side;
//!    `settings`: [`config`] ([`EmulatorConfig`]) and [`classic`] channel seeds;
//! 6. `sql_api`: the SQL API's statements, results and `SHOW`s;
//! 7. `service`: the protocol operations over the shared state (opens, appends, commits,
//!    status, DDL, file registrations, offset-span checks);
//! 8. `http`: requests in, responses out, the console;
//! 9. `server`: the listener and the running [`Emulator`]; `with_key`: an emulator with a key.

#![warn(missing_docs)]

mod base;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod catalog;
#[cfg(not(feature = "internals"))]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "public with the feature `internals`, for the integration tests"
)]
mod catalog;
mod channels;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod convert;
#[cfg(not(feature = "internals"))]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "public with the feature `internals`, for the integration tests"
)]
mod convert;
mod http;
#[cfg(test)]
mod module_graph_tests;
pub mod offline;
mod security;
mod server;
mod service;
mod settings;
mod sql_api;
mod sql_sandbox;
mod stage;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod storage;
#[cfg(not(feature = "internals"))]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "public with the feature `internals`, for the integration tests"
)]
mod storage;
mod with_key;

pub use base::{clock, faults, limits, option_file, requests};
pub use settings::{classic, config};

pub use base::clock::Clock;
pub use base::error::{BoxError, EmulatorError};
pub use base::faults::{Endpoint, FaultAction, FaultHandle, FaultPlan, FaultRule, FaultSpecError};
pub use base::limits::Limits;
pub use convert::{BinaryFormat, DEFAULT_TIMEZONE};
pub use security::auth::{public_key_fingerprint, AuthError, KeyError};
pub use security::key_pair::{write_private_key, KeyFiles, KeyPair, PASSPHRASE_VAR};
pub use service::offsets::offset_span_violation;
pub use settings::classic::ClassicChannel;
pub use settings::config::{DuplicateAppendPolicy, EmulatorConfig, TlsMode, MAX_PAYLOAD_BYTES};

/// Bounds the SQLite memory of each SQL API statement (96 MiB, one row's values included) in
/// this process, by giving SQLite the emulator's allocator. SQLite takes an allocator only
/// before it is first used in the process, and not safely while another thread starts it: call
/// this first thing in `main`, before anything opens a database (the `snowpipe-emulator`
/// binary does). Returns whether the bound is in force; without it each value is still bounded
/// (16 MiB) and each result (64 MiB), not one row's values together.
pub fn bound_sql_statement_memory() -> bool {
    sql_sandbox::heap::install()
}
pub use base::requests::RequestRecord;
pub use offline::status::status_from_data_dir;
pub use server::Emulator;
pub use service::ChannelTotals;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub use stage::upload::aws_chunked;
pub use stage::{DEFAULT_MAX_STAGE_BYTES, DEFAULT_MAX_STAGE_FILES};
