//! The emulator side: the `emulator` subcommand and reading the emulator's tables for the
//! report.

use std::path::Path;

use anyhow::{Context, Result};

/// The Snowflake setup: the embedded emulator declares its catalog from it.
pub const SETUP_SQL: &str = include_str!("sql/setup.sql");

/// `ski_resort emulator`: the emulator library with the pipeline's defaults (DDL from
/// `sql/setup.sql`); prints `listening on URL` and serves until Ctrl-C or SIGTERM.
///
/// # Errors
/// When a file cannot be read or written, no key is given, or the emulator cannot start.
///
/// # Cancellation
/// Dropping the future drops the emulator, which stops serving.
pub async fn emulator(args: crate::common::EmulatorArgs) -> Result<()> {
    // Snowflake's per-channel rate, channel and pipe limits, as the real service.
    args.serve(SETUP_SQL, snowpipe_emulator::Limits::Snowflake)
        .await
}

/// Opens the emulator's SQLite database in `data_dir` read-only.
///
/// # Errors
/// If the directory holds no emulator database.
pub fn open_emulator_db(data_dir: &Path) -> Result<rusqlite::Connection> {
    snowpipe_emulator::offline::open_read_only(data_dir).with_context(|| {
        format!(
            "cannot open the emulator database in {}",
            data_dir.display()
        )
    })
}
